//! The chaos harness, short: every kind of fault it injects (kills, pauses, and each
//! kind of partition through its per-node proxies) once against three real node
//! processes under load, then its invariants: nothing acknowledged lost or
//! duplicated, replicas identical, no split brain, a cut-off minority refusing
//! writes and marking reads stale.

use std::path::Path;
use std::process::Command;

const FAULTS: [&str; 9] = [
    "kill",
    "isolate-leader",
    "pause",
    "split",
    "one-way-out",
    "isolate-metadata-leader",
    "flap",
    "one-way-in",
    "delay",
];

#[test]
fn every_fault_kind_once_loses_nothing_and_splits_no_brain() {
    let node = Path::new(env!("CARGO_BIN_EXE_kelemetry"));
    let harness = node.with_file_name("kelemetry-chaos");
    assert!(
        harness.exists(),
        "{} missing: build the workspace binaries first (cargo build --workspace --bins)",
        harness.display()
    );
    let out = Command::new(&harness)
        .args(["--duration", "55s", "--interval", "1s", "--down", "2s"])
        .args(["--scale-every", "0", "--faults", &FAULTS.join(",")])
        .arg("--node-bin")
        .arg(node)
        .output()
        .expect("the harness runs");
    let report = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}\n{errors}");
    assert!(report.lines().any(|l| l == "PASS"), "{report}");
    let table: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with("faults injected"))
        .collect();
    for kind in FAULTS {
        assert!(
            table
                .iter()
                .any(|l| l.trim_start().starts_with(&format!("{kind} "))),
            "no {kind} fault in the report:\n{report}"
        );
    }
    let probes = report
        .lines()
        .find(|l| l.starts_with("cut-off minority"))
        .expect("probe line");
    assert!(probes.contains("acknowledged 0"), "{probes}");
    assert!(
        !probes.contains("writes refused 0"),
        "no minority was probed: {probes}"
    );
    assert!(probes.contains("unmarked 0"), "{probes}");
    assert!(
        !probes.contains("marked stale 0"),
        "no stale-marked read: {probes}"
    );
    assert!(report.contains("0 led by two nodes"), "{report}");
    assert!(report.contains("lost: 0, duplicated: 0"), "{report}");
}
