//! The real Jaeger UI (`../shared/jaeger-ui`, 2.19) served by a node with `--ui-dir`,
//! driven in Debian's headless Chromium by `tests/browser/jaeger-ui.mjs`
//! (playwright-core): search, open in `tracing [full tree]`, expand the Deployment
//! span and read its diff and delete snapshot, see the follow-limit warning, switch
//! the mode digits; every response the UI gets is a success. Screenshots of each step
//! are kept under `target/browser-artifacts` when it fails.

use crate::support::{start_of_recent_window, Node};
use kelemetry_testkit::workload::deployment_lifecycle;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Chromium, playwright-core and the UI build, or why the test cannot run.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    let tools = repo().join("target/tools");
    let ui = repo().join("../shared/jaeger-ui");
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("chromium is not installed (scripts/setup.sh installs it)".into());
    }
    if !tools.join("node_modules/playwright-core").exists() {
        return Err("playwright-core is not installed (scripts/setup.sh installs it)".into());
    }
    if !ui.join("index.html").exists() {
        return Err(format!("no Jaeger UI build at {}", ui.display()));
    }
    Ok((tools, ui))
}

#[test]
fn the_real_jaeger_ui_searches_opens_expands_and_switches_modes() {
    let (tools, ui) = match browser_tools() {
        Ok(t) => t,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "{why}; CI must have it");
            eprintln!("{why}; skipped");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let ui_dir = ui.to_str().unwrap();
    let node = Node::start(
        dir.path(),
        &["--shards", "8", "--ui-dir", ui_dir, "--follow-limit", "4"],
    );
    let t0 = start_of_recent_window();
    for d in 0..2 {
        let (batches, _) = deployment_lifecycle("default", &format!("app{d}"), t0 + d * 2_000_000);
        for b in batches {
            assert_eq!(node.post_audit("ui", &b).0, 200);
        }
    }
    let shots = repo().join("target/browser-artifacts");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(repo().join("tests/browser/jaeger-ui.mjs"))
        .args([
            &format!("http://{}", node.query_addr()),
            "ui",
            "app0",
            shots.to_str().unwrap(),
        ])
        .env("KELEMETRY_TOOLS", &tools)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the UI run failed: {stderr}{stdout}\nscreenshots: {}",
        shots.display()
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(summary["spans"].as_u64().unwrap() >= 2, "{summary}");
    assert!(summary["diff"]
        .as_str()
        .unwrap()
        .contains("status.observedGeneration"));
    assert_eq!(summary["warning"], true);
    std::fs::remove_dir_all(&shots).unwrap();
}
