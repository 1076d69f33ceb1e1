//! A wide owner tree spread over many shards renders complete in full-tree mode.

use crate::support::{start_of_recent_window, tag, Node};
use kelemetry_testkit::workload::owner_tree;
use std::time::{Duration, Instant};

#[test]
fn deployment_with_ten_replicasets_and_a_hundred_pods_renders_complete() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--shards", "64"]);
    for b in owner_tree("default", "big", 10, 10, start_of_recent_window()) {
        assert_eq!(node.post_audit("c1", &b).0, 200);
    }
    // Owner-side links cross shards through outboxes; wait until the tree is whole.
    let deadline = Instant::now() + Duration::from_secs(60);
    let trace = loop {
        let found = node.search(
            "tracing%20%5Bfull%20tree%5D",
            &[
                ("cluster", "c1"),
                ("resource", "deployments"),
                ("name", "big"),
            ],
        );
        assert_eq!(found.len(), 1);
        if found[0]["spans"].as_array().unwrap().len() == 111 || Instant::now() > deadline {
            break found[0].clone();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(
        spans.len(),
        111,
        "1 Deployment + 10 ReplicaSets + 100 Pods, one span each"
    );
    // The outboxes that carried the links are reported, and drained.
    let metrics = node.metrics_text();
    let backlog: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("kelemetry_outbox_backlog{"))
        .collect();
    assert!(!backlog.is_empty(), "{metrics}");
    assert!(backlog.iter().all(|l| l.ends_with(" 0")), "{backlog:?}");
    assert!(
        spans.iter().all(|s| s["warnings"].is_null()),
        "no limit warning"
    );
    let pods = spans
        .iter()
        .filter(|s| tag(s, "resource") == Some("pods"))
        .count();
    assert_eq!(pods, 100);
    // Every pod hangs under a ReplicaSet, every ReplicaSet under the Deployment.
    let parent_resource = |s: &serde_json::Value| -> Option<String> {
        let parent = s["references"].as_array().unwrap().first()?["spanID"].clone();
        let p = spans.iter().find(|x| x["spanID"] == parent)?;
        tag(p, "resource").map(str::to_string)
    };
    for s in spans {
        match tag(s, "resource") {
            Some("pods") => assert_eq!(parent_resource(s).as_deref(), Some("replicasets")),
            Some("replicasets") => assert_eq!(parent_resource(s).as_deref(), Some("deployments")),
            _ => assert_eq!(parent_resource(s), None),
        }
    }
    // A lower follow limit cuts the tree and says so on the root.
    drop(node);
    let limited = Node::start(dir.path(), &["--shards", "64", "--follow-limit", "20"]);
    let found = limited.search(
        "tracing%20%5Bfull%20tree%5D",
        &[
            ("cluster", "c1"),
            ("resource", "deployments"),
            ("name", "big"),
        ],
    );
    let root = &found[0]["spans"][0];
    assert!(
        root["warnings"][0]
            .as_str()
            .unwrap()
            .contains("stopped at 20 objects"),
        "{root}"
    );
    assert!(found[0]["spans"].as_array().unwrap().len() <= 20);
}
