//! A real recorded watch stream (a Deployment rolling out two Pods on a kind cluster,
//! `testdata/real/watch-streams`) replayed by the simulator as if its cluster made
//! those changes, with no audit at all: the node's Event and object watchers alone
//! build the Deployment -> ReplicaSet -> Pod trace with its Events.

use crate::simulated::{wait_trace_with, wait_watching, CLUSTER};
use crate::support::{tag, Node};
use crate::traces::{children, log_field, log_fields, redirect, roots, with_mode};
use kelemetry_testkit::sim::{sibling_binary, SimProcess};
use std::path::Path;

fn recording() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata/real/watch-streams/kspan_deployment-2-pods.yaml")
}

#[test]
fn a_recorded_watch_stream_becomes_the_deployment_trace_with_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("sim-kubeconfig");
    let watched = format!("{CLUSTER}={}", kubeconfig.display());
    let node = Node::start(dir.path(), &["--shards", "8", "--cluster", &watched]);
    let sim_bin =
        sibling_binary(Path::new(env!("CARGO_BIN_EXE_kelemetry")), "kelemetry-sim").unwrap();
    let replay = recording();
    let sim = SimProcess::start_at(
        &sim_bin,
        &kubeconfig,
        &["--replay", replay.to_str().unwrap()],
        tempfile::tempdir().unwrap(),
    )
    .unwrap();
    wait_watching(
        &node,
        &["events", "apps/deployments", "apps/replicasets", "pods"],
    );
    let (status, body) = sim.post("/sim/replay?speed=20").unwrap();
    assert_eq!(
        (status, &body["applied"]),
        (200, &serde_json::json!(26)),
        "{body}"
    );

    let ts = chrono::Utc::now().timestamp_micros();
    let id = redirect(&node, CLUSTER, "deployments", "px", ts);
    // Full tree: the Deployment, its ReplicaSet(s) and under them the Pods that had
    // Events (Scheduled, Pulled, Created, Started).
    let trace = wait_trace_with(&node, &with_mode(&id, "21000000"), |trace| {
        let r = roots(trace);
        r.len() == 1
            && children(trace, r[0])
                .iter()
                .any(|rs| children(trace, rs).len() >= 2)
    });
    let root = roots(&trace)[0];
    assert_eq!(tag(root, "name"), Some("px"));
    let reasons: Vec<String> = log_fields(root)
        .iter()
        .filter_map(|l| log_field(l, "event"))
        .collect();
    assert!(
        reasons.iter().any(|r| r == "ScalingReplicaSet"),
        "{reasons:?}"
    );
    let replicasets = children(&trace, root);
    assert!(replicasets
        .iter()
        .all(|rs| tag(rs, "resource") == Some("replicasets")));
    let pods: Vec<_> = replicasets
        .iter()
        .flat_map(|rs| children(&trace, rs))
        .collect();
    assert!(pods.iter().all(|p| tag(p, "resource") == Some("pods")));
    let pod_events: Vec<String> = pods
        .iter()
        .flat_map(|p| log_fields(p))
        .filter_map(|l| log_field(&l, "event"))
        .collect();
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(
            pod_events.iter().any(|r| r == reason),
            "{reason} missing from {pod_events:?}"
        );
    }
}
