//! Bad input, overload, start-up errors and graceful shutdown.

use crate::support::{start_of_recent_window, Node};
use kelemetry_testkit::workload::{deployment_lifecycle, event_list, pod_churn_batch};

#[test]
fn bad_requests_and_overload_are_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        &[
            "--shards",
            "1",
            "--max-body-bytes",
            "20000",
            "--shard-queue-commands",
            "5",
        ],
    );
    let (status, body) = node.post_raw("/audit", b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "cluster");
    let (status, body) = node.post_raw("/audit/Bad_Cluster!", b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "cluster");
    let (status, body) = node.post_raw("/audit/c", b"[1,2");
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("body"))
    );
    let big = pod_churn_batch(0, 50, start_of_recent_window());
    let (status, body) = node.post_audit("c", &big);
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (413, Some("body")),
        "{body}"
    );
    // Ten commands for one shard whose queue holds five: refused, not buffered.
    let ten = pod_churn_batch(1, 10, start_of_recent_window());
    assert!(ten.to_string().len() < 20_000);
    let (status, body) = node.post_audit("c", &ten);
    assert_eq!(status, 429, "{body}");
    // A mixed batch with one malformed item is rejected whole: nothing is stored.
    let mut items = pod_churn_batch(2, 3, start_of_recent_window())["items"]
        .as_array()
        .unwrap()
        .clone();
    items[2]["requestReceivedTimestamp"] = "not a time".into();
    let (status, body) = node.post_audit("c", &event_list(items));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["item"], 2);
    assert_eq!(body["error"]["field"], "items[2].requestReceivedTimestamp");
    // An event dated year 9999 would escape retention forever: refused the same way.
    let mut items = pod_churn_batch(3, 2, start_of_recent_window())["items"]
        .as_array()
        .unwrap()
        .clone();
    items[1]["stageTimestamp"] = "9999-12-31T23:59:59Z".into();
    let (status, body) = node.post_audit("c", &event_list(items));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "items[1].stageTimestamp");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-clock-skew"),
        "{body}"
    );
    assert!(
        node.stored(&[("cluster", "c")]).is_empty(),
        "no half-applied batch"
    );
    let (status, body) = node.query("/api/traces?service=nope");
    assert_eq!(status, 400);
    assert!(body["errors"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("'service'"));
    assert_eq!(node.query("/api/traces/00ff").0, 404);
}

#[test]
fn default_cluster_shard_count_and_node_id_guards_and_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--shards", "4", "--default-cluster", "home"]);
    let (batches, _) = deployment_lifecycle("default", "web", start_of_recent_window());
    for b in &batches {
        let (status, body) = node.post_raw("/audit", b.to_string().as_bytes());
        assert_eq!(status, 200, "{body}");
    }
    let status = node.terminate();
    assert!(
        status.success(),
        "SIGTERM exits cleanly: {status}\n{}",
        node.log()
    );
    assert!(node.log().contains("shutdown complete"));

    let (status, out) = node.run_once(&["--shards", "8"]);
    assert!(!status.success());
    assert!(
        out.contains("--shards 8 does not match the 4 shards"),
        "{out}"
    );
    // Another node id on this data directory would reuse node 0's replicas.
    let (status, out) = node.run_once(&["--node-id", "7"]);
    assert!(!status.success());
    assert!(
        out.contains("--node-id 7 does not match node 0"),
        "{out}"
    );

    node.restart();
    let found = node.stored(&[
        ("cluster", "home"),
        ("resource", "deployments"),
        ("name", "web"),
    ]);
    assert_eq!(found.len(), 1);
}
