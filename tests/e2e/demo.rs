//! `kelemetry-demo`, as `scripts/run.sh` starts it: three nodes and the simulator,
//! the scripted rollout, and a trace of the Deployment before it says it is ready;
//! a SIGTERM (a supervisor's, or `timeout`'s) stops the ring with it, also one that
//! comes while the ring is still starting.

use kelemetry_testkit::sim::sibling_binary;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
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

/// Whether process `pid` still runs (an exited one nobody has reaped yet is a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Sends SIGTERM to `pid`.
fn sigterm(pid: u32) {
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// Starts the demo on free ports with its data in `dir`, and the lines it prints.
fn start_demo(dir: &Path) -> (Child, std::io::Lines<BufReader<ChildStdout>>) {
    let demo =
        sibling_binary(Path::new(env!("CARGO_BIN_EXE_kelemetry")), "kelemetry-demo").unwrap();
    let mut child = Command::new(demo)
        .args(["--http-addr", "127.0.0.1:0", "--query-addr", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

#[test]
fn the_demo_brings_up_a_ring_fed_by_the_simulator_traces_the_rollout_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut lines) = start_demo(dir.path());
    let mut text = String::new();
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

    sigterm(child.id());
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
    let left: Vec<&u32> = ring.iter().filter(|pid| alive(**pid)).collect();
    assert!(left.is_empty(), "still running after the demo: {left:?}");
}

#[test]
fn a_sigterm_while_the_ring_starts_stops_its_nodes_and_simulator_too() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, mut lines) = start_demo(dir.path());
    // The nodes are up once the demo starts the simulator; it then runs the
    // scenario, which takes seconds: the moment to stop it.
    let starting_sim = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("starting the Kubernetes simulator"));
    assert!(
        starting_sim.is_some(),
        "the demo ended before starting the simulator"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let ring = loop {
        let ring = children_of(child.id());
        if ring.len() == 4 {
            break ring;
        }
        assert!(
            Instant::now() < deadline,
            "no simulator beside the nodes: {ring:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    sigterm(child.id());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left: Vec<&u32> = ring.iter().filter(|pid| alive(**pid)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 60 s after the demo was stopped: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
