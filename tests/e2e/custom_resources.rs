//! Custom resources on the simulator at `Metadata` audit level: a CRD created while
//! the node watches is discovered at once, its objects are watched (their diffs come
//! from the watcher), and an Event about one lands on the object under the plural
//! discovery names (`mice`, not the `mouses` a table would guess), while one dated
//! centuries ahead is refused.

use crate::simulated::{start_sim, wait_trace_with, wait_watching, CLUSTER};
use crate::support::Node;
use crate::traces::{field_values, log_fields, redirect, roots, with_mode};
use kelemetry_testkit::sim::mouse_crd;
use serde_json::json;
use std::path::Path;

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn a_new_crd_is_watched_and_events_find_its_irregular_plural() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("sim-kubeconfig");
    let watched = format!("{CLUSTER}={}", kubeconfig.display());
    let node = Node::start(dir.path(), &["--shards", "8", "--cluster", &watched]);
    let sim = start_sim(&kubeconfig, &node, &["--audit-level", "Metadata"]);
    wait_watching(
        &node,
        &["events", "apiextensions.k8s.io/customresourcedefinitions"],
    );
    let crd = mouse_crd();
    sim.kubectl(&["create", "-f", &write(dir.path(), "crd.json", &crd)])
        .unwrap();
    // The CRD's change triggers a rediscovery: the new resource is watched.
    wait_watching(&node, &["zoo.example.com/mice"]);
    let mouse = json!({"apiVersion": "zoo.example.com/v1", "kind": "Mouse",
                       "metadata": {"name": "jerry", "namespace": "default"}, "spec": {"color": "brown"}});
    sim.kubectl(&["create", "-f", &write(dir.path(), "mouse.json", &mouse)])
        .unwrap();
    sim.kubectl(&[
        "patch",
        "mouse",
        "jerry",
        "--type=merge",
        "-p",
        r#"{"spec":{"color":"grey"}}"#,
    ])
    .unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let event = |name: &str, reason: &str, at: &str| {
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"apiVersion": "zoo.example.com/v1", "kind": "Mouse",
                               "namespace": "default", "name": "jerry"},
            "reason": reason, "message": "jerry did something", "type": "Normal",
            "source": {"component": "cat"}, "firstTimestamp": at, "lastTimestamp": at, "count": 1})
    };
    // An Event dated centuries ahead is not traced (it would escape retention), and
    // is watched before the real one, so it has been handled once that one shows.
    let future = event("jerry.teleport", "Teleported", "2999-01-01T00:00:00Z");
    sim.kubectl(&["create", "-f", &write(dir.path(), "future.json", &future)])
        .unwrap();
    let squeak = event("jerry.squeak", "Squeaked", &now);
    sim.kubectl(&["create", "-f", &write(dir.path(), "event.json", &squeak)])
        .unwrap();

    let ts = chrono::Utc::now().timestamp_micros();
    let id = redirect(&node, CLUSTER, "mice", "jerry", ts);
    let trace = wait_trace_with(&node, &with_mode(&id, "21000000"), |t| {
        roots(t).first().is_some_and(|root| {
            let logs = log_fields(root);
            let diffs = field_values(&logs, "diff");
            field_values(&logs, "event").contains(&"Squeaked".to_string())
                && diffs
                    .iter()
                    .any(|d| d.contains(r#"spec.color "brown" -> "grey""#))
        })
    });
    assert_eq!(roots(&trace).len(), 1);
    assert!(!trace.to_string().contains("Teleported"));
    assert!(node.metrics_text().contains(&format!(
        "kelemetry_ingest_events_total{{cluster=\"{CLUSTER}\",result=\"rejected_time\",source=\"event\"}} 1"
    )));
}
