//! Bad input, overload, start-up errors and graceful shutdown.

use crate::support::{request, start_of_recent_window, Node};
use kelemetry_testkit::workload::{deployment_lifecycle, event_list, pod_churn_batch};
use std::time::Duration;

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
    assert!(out.contains("--node-id 7 does not match node 0"), "{out}");

    node.restart();
    let found = node.stored(&[
        ("cluster", "home"),
        ("resource", "deployments"),
        ("name", "web"),
    ]);
    assert_eq!(found.len(), 1);
}

#[test]
fn rate_limits_per_cluster_and_per_client_answer_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        &[
            "--shards",
            "4",
            "--cluster-rate-limit",
            "50",
            "--client-rate-limit",
            "100",
        ],
    );
    let url = |cluster: &str| format!("http://{}/audit/{cluster}", node.http());
    let batch = |n: u64, size: u64| pod_churn_batch(n, size, start_of_recent_window()).to_string();
    // A cluster's burst is two seconds' worth (100 events); the next 60 are refused.
    assert_eq!(request("POST", &url("a"), &[], &batch(1, 100)).status, 200);
    let refused = request("POST", &url("a"), &[], &batch(2, 60));
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body.contains("--cluster-rate-limit"),
        "{}",
        refused.body
    );
    let wait: u64 = refused.retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // Another cluster has its own budget, until this client's (200 events) runs out;
    // the refused request above spent none of it.
    assert_eq!(request("POST", &url("b"), &[], &batch(3, 100)).status, 200);
    let refused = request("POST", &url("d"), &[], &batch(5, 100));
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("--client-rate-limit"),
        "{}",
        refused.body
    );
    // Retrying after Retry-After succeeds, and nothing refused was stored.
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(request("POST", &url("a"), &[], &batch(2, 60)).status, 200);
    assert!(node.stored(&[("cluster", "d")]).is_empty());
    let (status, out) = node.run_once(&["--cluster-rate-limit", "0"]);
    assert!(!status.success());
    assert!(out.contains("--cluster-rate-limit"), "{out}");
}
