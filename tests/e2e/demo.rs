//! `kelemetry-demo`, as `scripts/run.sh` starts it: three nodes and the simulator,
//! the scripted rollout, and a trace of the Deployment before it says it is ready.

use kelemetry_testkit::sim::sibling_binary;
use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_brings_up_a_ring_fed_by_the_simulator_and_traces_the_rollout() {
    let demo =
        sibling_binary(Path::new(env!("CARGO_BIN_EXE_kelemetry")), "kelemetry-demo").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(demo)
        .args([
            "--once",
            "--http-addr",
            "127.0.0.1:0",
            "--query-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for expected in [
        "scenario: create deployment demo with 2 replicas",
        "scenario: delete deployment demo",
        "the Deployment default/demo is trace ff20000000e1e3e7",
        "/api/traces/ff21000000e1e3e7",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}
