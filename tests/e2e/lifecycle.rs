//! A Deployment lifecycle through the webhook, read back through the Jaeger API.

use crate::support::{start_of_recent_window, tag, Node};
use kelemetry_testkit::workload::{deployment_lifecycle, LifecycleNames};
use serde_json::Value;
use std::time::{Duration, Instant};

const CLUSTER: &str = "tracetest";

fn trace_of(node: &Node, resource: &str, name: &str) -> Value {
    let found = node.stored(&[("cluster", CLUSTER), ("resource", resource), ("name", name)]);
    assert_eq!(
        found.len(),
        1,
        "one trace per object per window for {resource}/{name}"
    );
    found[0].clone()
}

fn logs(trace: &Value, field_type: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for span in trace["spans"].as_array().unwrap() {
        for log in span["logs"].as_array().unwrap() {
            let fields = log["fields"].as_array().unwrap();
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|f| f["key"] == k)
                    .and_then(|f| f["value"].as_str())
            };
            if get("zzz-logType") == Some(field_type) {
                out.push((
                    span["operationName"].as_str().unwrap().to_string(),
                    get("event").unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// (linked name, role) of every link span.
fn links(trace: &Value) -> Vec<(String, String)> {
    let mut v: Vec<_> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| tag(s, "zzz-pseudoType") == Some("link"))
        .map(|s| {
            (
                tag(s, "linkedName").unwrap().to_string(),
                tag(s, "linkRole").unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn expected_links(names: &LifecycleNames) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut dep: Vec<_> = names
        .replicasets
        .iter()
        .map(|r| (r.clone(), "child".to_string()))
        .collect();
    dep.sort();
    out.push((format!("deployments/{}", names.deployment), dep));
    for rs in &names.replicasets {
        let mut l = vec![(names.deployment.clone(), "parent".to_string())];
        l.extend(
            names
                .pods
                .iter()
                .filter(|(r, _)| r == rs)
                .map(|(_, p)| (p.clone(), "child".to_string())),
        );
        l.sort();
        out.push((format!("replicasets/{rs}"), l));
    }
    for (rs, p) in &names.pods {
        out.push((
            format!("pods/{p}"),
            vec![(rs.clone(), "parent".to_string())],
        ));
    }
    out
}

fn resource_and_name(object: &str) -> (&str, &str) {
    object.split_once('/').unwrap()
}

/// Waits until every object's links are in place (cross-shard links arrive through
/// outboxes shortly after the webhook's 200) and returns all traces.
fn settled_traces(node: &Node, names: &LifecycleNames) -> Vec<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = Vec::new();
        let mut missing = Vec::new();
        for (object, want) in expected_links(names) {
            let (resource, name) = resource_and_name(&object);
            let t = trace_of(node, resource, name);
            if links(&t) != want {
                missing.push(format!("{object}: have {:?} want {want:?}", links(&t)));
            }
            all.push((object, t));
        }
        if missing.is_empty() {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "links never completed: {missing:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn deployment_lifecycle_traces_survive_replay_and_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--shards", "16"]);
    let (batches, names) = deployment_lifecycle("default", "demo", start_of_recent_window());
    let mut accepted = 0;
    for b in &batches {
        let (status, body) = node.post_audit(CLUSTER, b);
        assert_eq!(status, 200, "{body}");
        accepted += body["accepted"].as_u64().unwrap();
    }
    assert_eq!(
        accepted as usize,
        batches
            .iter()
            .map(|b| b["items"].as_array().unwrap().len())
            .sum::<usize>()
    );

    let traces = settled_traces(&node, &names);
    let deployment = &traces[0].1;
    let titles: Vec<&str> = deployment["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["operationName"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"kwok-admin update status"), "{titles:?}");
    assert!(titles.contains(&"kwok-admin delete"), "{titles:?}");
    let diffs = logs(deployment, "audit/objectDiff");
    assert!(
        diffs
            .iter()
            .any(|(title, d)| title == "kwok-admin update status"
                && d.contains("status.observedGeneration 1 -> 2\n")),
        "{diffs:#?}"
    );
    assert!(
        diffs.iter().any(|(_, d)| d.contains(
            "spec.template.spec.containers[0].image \"alpine:3.16\" -> \"alpine:3.17\"\n"
        )),
        "{diffs:#?}"
    );
    let snapshots = logs(deployment, "audit/objectSnapshot");
    let deletion = snapshots
        .iter()
        .find(|(t, _)| t == "kwok-admin delete")
        .expect("deletion snapshot");
    let snap: Value = serde_json::from_str(&deletion.1).unwrap();
    assert_eq!(snap["metadata"]["name"], "demo");
    assert_eq!(
        snap["spec"]["replicas"], 2,
        "the deletion snapshot is the last known state"
    );
    // The root is the object span: no references; everything else is its child.
    let spans = deployment["spans"].as_array().unwrap();
    assert_eq!(
        spans
            .iter()
            .filter(|s| s["references"].as_array().unwrap().is_empty())
            .count(),
        1
    );
    assert_eq!(tag(&spans[0], "resource"), Some("deployments"));

    let metrics = node.metrics_text();
    assert!(metrics.contains(&format!("kelemetry_ingest_events_total{{cluster=\"{CLUSTER}\",result=\"accepted\",source=\"audit\"}} {accepted}")), "{metrics}");
    assert!(metrics.contains("kelemetry_commit_duration_seconds_count"));
    assert!(metrics.contains("kelemetry_shard_leaders 16"));

    // Replaying every batch creates nothing new.
    for b in &batches {
        let (status, body) = node.post_audit(CLUSTER, b);
        assert_eq!(status, 200);
        assert_eq!(body["accepted"], 0, "{body}");
    }
    let replayed = settled_traces(&node, &names);
    assert_eq!(replayed, traces);

    // SIGKILL right after a 200, restart: nothing accepted is lost.
    let (late, late_names) = deployment_lifecycle("other", "late", start_of_recent_window());
    for b in &late {
        assert_eq!(node.post_audit(CLUSTER, b).0, 200);
    }
    node.kill();
    node.restart();
    assert_eq!(settled_traces(&node, &names), traces);
    let late_traces = settled_traces(&node, &late_names);
    assert_eq!(late_traces.len(), expected_links(&late_names).len());
}
