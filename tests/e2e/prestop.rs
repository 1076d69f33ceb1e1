//! The StatefulSet preStop decision against a running ring of node processes, with
//! the simulator as the API server holding the StatefulSet: scaling 5 -> 3 drains
//! nodes 4 and 3 one at a time (their hooks run together, as with
//! `podManagementPolicy: Parallel`) while writes go on, and nothing acknowledged is
//! lost; a pod that merely restarts drains nothing.

use crate::cluster::{post_until_acked, start_cluster_of};
use crate::membership::stored_exactly_once;
use crate::support::{start_of_recent_window, Node};
use kelemetry_testkit::sim::{sibling_binary, SimProcess};
use kelemetry_testkit::workload::deployment_lifecycle;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `kelemetry cluster leave-if-scaled-down` as the hook of pod `kelemetry-N`.
fn hook(sim: &SimProcess, ordinal: usize, node: &Node) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kelemetry"))
        .args([
            "cluster",
            "leave-if-scaled-down",
            "--statefulset",
            "kelemetry",
            "--namespace",
            "default",
            "--pod",
            &format!("kelemetry-{ordinal}"),
            "--kubeconfig",
            sim.kubeconfig().to_str().unwrap(),
            "--target",
            &format!("http://{}", node.http()),
            "--timeout",
            "2m",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finished(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    text
}

fn state_of(node: &Node, id: u64) -> String {
    let (_, status) = node.http_get_json("/cluster/status");
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .and_then(|n| n["state"].as_str())
        .unwrap_or("absent")
        .to_string()
}

#[test]
fn scaling_5_to_3_drains_the_two_leaving_nodes_one_at_a_time_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (started, _) = start_cluster_of(5, dir.path(), "8", &[]);
    let nodes: Vec<Option<Node>> = started.into_iter().map(Some).collect();
    let sim_bin =
        sibling_binary(Path::new(env!("CARGO_BIN_EXE_kelemetry")), "kelemetry-sim").unwrap();
    let sim = SimProcess::start(&sim_bin, &["--nodes", "0"]).unwrap();
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "kelemetry", "namespace": "default"},
        "spec": {"replicas": 5, "serviceName": "kelemetry-peers",
                 "selector": {"matchLabels": {"app": "kelemetry"}},
                 "template": {"metadata": {"labels": {"app": "kelemetry"}},
                              "spec": {"containers": [{"name": "kelemetry", "image": "kelemetry"}]}}}});
    let file = dir.path().join("sts.json");
    std::fs::write(&file, sts.to_string()).unwrap();
    sim.kubectl(&["create", "-f", file.to_str().unwrap()])
        .unwrap();

    let t0 = start_of_recent_window();
    let mut acked: Vec<Value> = Vec::new();
    let post = |d: i64, acked: &mut Vec<Value>| {
        let (batches, _) = deployment_lifecycle("default", &format!("app{d}"), t0 + d * 2_000_000);
        for b in batches {
            post_until_acked(&nodes[..3], d as usize, &b);
            acked.push(b);
        }
    };
    for d in 0..4 {
        post(d, &mut acked);
    }

    // A restart (the StatefulSet still wants 5): the hook returns without draining.
    let restart = finished(hook(&sim, 2, nodes[2].as_ref().unwrap()));
    assert!(restart.contains("not scaling down"), "{restart}");
    assert_eq!(state_of(nodes[0].as_ref().unwrap(), 2), "active");

    // Scale to 3: both leaving pods run their hooks at once.
    sim.kubectl(&["scale", "statefulset", "kelemetry", "--replicas=3"])
        .unwrap();
    let leaving_4 = hook(&sim, 4, nodes[4].as_ref().unwrap());
    let leaving_3 = hook(&sim, 3, nodes[3].as_ref().unwrap());
    // Writes go on during the drains.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut d = 4;
    while Instant::now() < deadline && d < 20 {
        post(d, &mut acked);
        d += 1;
    }
    let out_4 = finished(leaving_4);
    let out_3 = finished(leaving_3);
    assert!(out_4.contains("drained and removed"), "{out_4}");
    assert!(out_3.contains("drained and removed"), "{out_3}");
    assert!(
        out_3.contains("waiting for nodes [4] to leave first"),
        "node 3 waited for node 4: {out_3}"
    );
    let observer = nodes[0].as_ref().unwrap();
    assert_eq!(state_of(observer, 3), "removed");
    assert_eq!(state_of(observer, 4), "removed");
    for id in 0..3 {
        assert_eq!(state_of(observer, id), "active");
    }
    stored_exactly_once(observer, &acked);
}
