//! The Jaeger-facing API as the original's e2e suite drives it: `/redirect`, then the
//! same trace ID with other mode digits through `/api/traces/{id}`.

use crate::support::{start_of_recent_window, tag, urlencode, Node};
use crate::traces::{
    children, fetch, field_values, log_field, log_fields, redirect, roots, with_mode,
};
use kelemetry_testkit::workload::deployment_lifecycle;
use serde_json::Value;
use std::time::{Duration, Instant};

const CLUSTER: &str = "tracetest";

/// Waits until a ReplicaSet's links (its owner and `pods` pods) have arrived.
fn wait_for_links(node: &Node, rs: &str, pods: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = node.stored(&[
            ("cluster", CLUSTER),
            ("resource", "replicasets"),
            ("name", rs),
        ]);
        let links = t.first().map_or(0, |t| {
            t["spans"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| tag(s, "zzz-pseudoType") == Some("link"))
                .count()
        });
        if links == 1 + pods {
            return;
        }
        assert!(Instant::now() < deadline, "links of {rs} never arrived");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn redirect_then_modes_match_the_original_e2e_checks() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--shards", "16"]);
    let t0 = start_of_recent_window();
    let (batches, names) = deployment_lifecycle("default", "demo", t0);
    for b in &batches {
        assert_eq!(node.post_audit(CLUSTER, b).0, 200);
    }
    for rs in &names.replicasets {
        wait_for_links(
            &node,
            rs,
            names.pods.iter().filter(|(r, _)| r == rs).count(),
        );
    }
    let ts = t0 + 5_000_000;

    // deployment: tracing [full tree] (21000000).
    let id = redirect(&node, CLUSTER, "deployments", "demo", ts);
    let trace = fetch(&node, &with_mode(&id, "21000000"));
    let r = roots(&trace);
    assert_eq!(r.len(), 1, "exactly one root");
    let root = r[0];
    assert_eq!(tag(root, "resource"), Some("deployments"));
    assert_eq!(tag(root, "name"), Some("demo"));
    let logs = log_fields(root);
    let delete = logs
        .iter()
        .find(|l| log_field(l, "audit").is_some_and(|a| a.ends_with(" delete")))
        .expect("delete log");
    let snapshot: Value =
        serde_json::from_str(&log_field(delete, "snapshot").expect("snapshot field")).unwrap();
    assert_eq!(snapshot["metadata"]["name"], "demo");
    assert!(logs
        .iter()
        .any(|l| log_field(l, "audit").as_deref() == Some("kwok-admin update status")));
    let diffs = field_values(&logs, "diff");
    assert!(
        diffs
            .iter()
            .any(|d| d.contains("status.observedGeneration 1 -> 2")),
        "{diffs:#?}"
    );
    assert!(diffs.iter().all(|d| !d.contains("metadata.managedFields")));
    let kids = children(&trace, root);
    assert_eq!(kids.len(), 2, "the two ReplicaSets");
    assert!(kids
        .iter()
        .all(|k| tag(k, "resource") == Some("replicasets")));
    assert!(trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["traceID"] == with_mode(&id, "21000000")));
    assert_eq!(
        trace["processes"]["p1"]["serviceName"],
        "tracetest deployments"
    );

    // The same result in plain tracing mode is the Deployment alone.
    let plain = fetch(&node, &id);
    assert_eq!(plain["spans"].as_array().unwrap().len(), 1);

    // ancestors: tracing [ancestors] (22000000) from the first ReplicaSet.
    let rs_id = redirect(&node, CLUSTER, "replicasets", &names.replicasets[0], ts);
    let trace = fetch(&node, &with_mode(&rs_id, "22000000"));
    let r = roots(&trace);
    assert_eq!(r.len(), 1);
    assert_eq!(tag(r[0], "resource"), Some("deployments"));
    assert_eq!(tag(r[0], "name"), Some("demo"));
    assert_eq!(children(&trace, r[0]).len(), 1, "siblings excluded");

    // Results are replicated state: they survive a restart.
    node.kill();
    node.restart();
    let again = fetch(&node, &with_mode(&id, "21000000"));
    assert_eq!(
        again["spans"].as_array().unwrap().len(),
        trace_span_count(&node, &id)
    );
}

fn trace_span_count(node: &Node, id: &str) -> usize {
    fetch(node, &with_mode(id, "21000000"))["spans"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn services_operations_search_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--shards", "4", "--cluster-names", "staging"]);
    let (batches, _) = deployment_lifecycle("default", "web", start_of_recent_window());
    for b in &batches {
        assert_eq!(node.post_audit(CLUSTER, b).0, 200);
    }
    let (_, services) = node.query("/api/services");
    let services = services["data"].as_array().unwrap();
    assert_eq!(services.len(), 16);
    assert_eq!(services[0], "tracing");
    let (_, ops) = node.query("/api/services/tracing/operations");
    assert_eq!(ops["data"], serde_json::json!(["staging", CLUSTER]));
    let (status, ops) = node.query("/api/operations?service=tracing");
    assert_eq!(status, 200);
    assert_eq!(ops["data"][1]["name"], CLUSTER);
    assert_eq!(node.query("/api/operations").0, 400);
    // Any stored event tag is searchable: the audit ID of the Deployment's create.
    let by_audit = node.search("tracing", &[("auditId", "default-web-000001")]);
    assert_eq!(by_audit.len(), 1);
    assert_eq!(tag(&by_audit[0]["spans"][0], "name"), Some("web"));
    assert!(node
        .search("tracing", &[("auditId", "no-such-id")])
        .is_empty());
    let found = node.search(
        "tracing%20%5Bfull%20tree%5D&operation=tracetest",
        &[("resource", "deployments")],
    );
    assert_eq!(
        found.len(),
        1,
        "the Deployment and everything linked is one result"
    );
    let id = found[0]["traceID"].as_str().unwrap();
    assert!(id.starts_with("ff21000000e1e3e7"), "{id}");
    assert!(found[0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["traceID"] == id));
    let (status, body) = node.query("/api/traces?service=nope");
    assert_eq!(status, 400);
    assert!(body["errors"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("display mode"));
    assert_eq!(
        node.query(&format!("/api/traces/ff21000000e1e3e7{}", "0".repeat(16)))
            .0,
        404
    );
    let (status, body) = node.query("/api/dependencies?endTs=1&lookback=1");
    assert_eq!((status, body["data"].clone()), (200, serde_json::json!([])));
    assert_eq!(node.http_get("/redirect?cluster=tracetest").0, 400);
    assert_eq!(
        node.http_get("/redirect?cluster=nope&resource=pods&name=x")
            .0,
        404
    );
}

#[test]
fn api_v3_shapes_and_ui_serving() {
    let dir = tempfile::tempdir().unwrap();
    let ui = dir.path().join("ui");
    std::fs::create_dir_all(ui.join("static")).unwrap();
    std::fs::write(ui.join("index.html"), "<html>jaeger ui</html>").unwrap();
    std::fs::write(ui.join("static/app.js"), "console.log(1)").unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let node = Node::start(&data, &["--shards", "4", "--ui-dir", ui.to_str().unwrap()]);
    let t0 = start_of_recent_window();
    let (batches, _) = deployment_lifecycle("default", "v3demo", t0);
    for b in &batches {
        assert_eq!(node.post_audit(CLUSTER, b).0, 200);
    }
    let (_, s) = node.query("/api/v3/services");
    assert_eq!(s["services"].as_array().unwrap().len(), 16);
    let (_, o) = node.query("/api/v3/operations?service=tracing");
    assert_eq!(
        o["operations"][0],
        serde_json::json!({"name": CLUSTER, "spanKind": "internal"})
    );
    let rfc = |us: i64| {
        urlencode(
            &chrono::DateTime::from_timestamp_micros(us)
                .unwrap()
                .to_rfc3339(),
        )
    };
    let range = format!(
        "query.startTimeMin={}&query.startTimeMax={}",
        rfc(t0 - 60_000_000),
        rfc(t0 + 3_600_000_000)
    );
    let attrs = urlencode(r#"{"resource":"deployments","name":"v3demo"}"#);
    let (status, sums) = node.query(&format!(
        "/api/v3/trace-summaries?query.serviceName=tracing&{range}&query.attributes={attrs}"
    ));
    assert_eq!(status, 200, "{sums}");
    let sum = &sums["summaries"][0];
    let id = sum["traceId"].as_str().unwrap();
    assert!(
        id.len() == 32
            && id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert!(
        sum["minStartTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u128>()
            .is_ok(),
        "decimal string"
    );
    assert_eq!(sum["rootServiceName"], "tracetest deployments");
    let (status, traces) = node.query(&format!(
        "/api/v3/traces?query.serviceName=tracing&{range}&query.attributes={attrs}"
    ));
    assert_eq!(status, 200);
    let spans = &traces["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"];
    assert_eq!(spans[0]["traceId"], id);
    assert!(spans[0]["startTimeUnixNano"].is_string());
    let (status, one) = node.query(&format!("/api/v3/traces/{id}"));
    assert_eq!(status, 200);
    assert_eq!(
        one["result"]["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
        "tracetest deployments"
    );
    let (status, err) = node.query("/api/v3/trace-summaries?query.serviceName=tracing");
    assert_eq!(status, 400);
    assert_eq!(err["error"]["httpCode"], 400);
    let none = urlencode(r#"{"name":"absent"}"#);
    let (status, err) = node.query(&format!(
        "/api/v3/traces?query.serviceName=tracing&{range}&query.attributes={none}"
    ));
    assert_eq!(
        (status, err["error"]["message"].as_str()),
        (404, Some("No traces found"))
    );

    // The UI: deep links get index.html, static files are files, unknown API is 404.
    assert_eq!(
        node.query_text(&format!("/trace/{id}")),
        (200, "<html>jaeger ui</html>".to_string())
    );
    assert_eq!(
        node.query_text("/search?service=tracing"),
        (200, "<html>jaeger ui</html>".to_string())
    );
    assert_eq!(
        node.query_text("/static/app.js"),
        (200, "console.log(1)".to_string())
    );
    assert_eq!(node.query("/api/nope").0, 404);
}
