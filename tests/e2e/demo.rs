//! `kelemetry-demo`, as `scripts/run.sh` starts it: three nodes and the simulator,
//! the scripted rollout, and a trace of the Deployment before it says it is ready;
//! a SIGTERM (a supervisor's, or `timeout`'s) stops the ring with it.

use kelemetry_testkit::sim::sibling_binary;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The fields after the command name (which may hold spaces) in parentheses.
        let after_name = stat.rsplit(')').next().unwrap_or("");
        let ppid = after_name.split_whitespace().nth(1);
        if ppid == Some(&pid.to_string()) {
            found.push(child);
        }
    }
    found
}

#[test]
fn the_demo_brings_up_a_ring_fed_by_the_simulator_traces_the_rollout_and_stops_on_sigterm() {
    let demo =
        sibling_binary(Path::new(env!("CARGO_BIN_EXE_kelemetry")), "kelemetry-demo").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(demo)
        .args(["--http-addr", "127.0.0.1:0", "--query-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut text = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.starts_with("running until") {
            break;
        }
    }
    assert!(text.contains("running until Ctrl-C or SIGTERM"), "{text}");
    for expected in [
        "scenario: create deployment demo with 2 replicas",
        "scenario: delete deployment demo",
        "the Deployment default/demo is trace ff20000000e1e3e7",
        "/api/traces/ff21000000e1e3e7",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let ring = children_of(child.id());
    assert_eq!(ring.len(), 4, "three nodes and the simulator: {ring:?}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "{status}: {rest:?}");
    assert!(
        rest.iter().any(|l| l.starts_with("stopping")),
        "no stopping line: {rest:?}"
    );
    let left: Vec<&u32> = ring
        .iter()
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    assert!(left.is_empty(), "still running after the demo: {left:?}");
}
