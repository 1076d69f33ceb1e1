//! What the simulator audits and how: the Metadata level (no bodies), an
//! `audit.k8s.io/v1` Policy file deciding levels and stages per request, and the load
//! mode's traffic as an audited user; plus 410 Gone past the watch history.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{create_owned_pair, Received, Sim};

#[test]
fn metadata_level_has_no_bodies_and_compacted_versions_are_gone() {
    let (received, url) = Received::serve();
    let sim = Sim::start(&[
        "--audit-webhook",
        &url,
        "--audit-level",
        "Metadata",
        "--watch-history",
        "5",
    ]);
    let files = tempfile::tempdir().unwrap();
    create_owned_pair(&sim, files.path());
    for n in 2..6 {
        sim.kubectl(&["scale", "deployment", "demo", &format!("--replicas={n}")]);
    }
    // Both the list with an exact, compacted version and the watch from it are 410.
    let r = sim.raw(
        "/apis/apps/v1/namespaces/default/deployments?resourceVersion=2&resourceVersionMatch=Exact",
    );
    assert_eq!(r.status(), 410);
    let mut w = sim.raw("/apis/apps/v1/namespaces/default/deployments?watch=1&resourceVersion=2");
    let ev: Value = serde_json::from_str(&w.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);

    // A body that is not JSON is refused, and audited with the refusal.
    let status = sim.send(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        b"{not json",
    );
    assert_eq!(status, 400);
    // So is a request for a resource the server does not serve.
    assert_eq!(
        sim.raw("/apis/apps/v1/namespaces/default/widgets/w")
            .status(),
        404
    );

    sim.audit_flushed();
    let events = received.events();
    assert!(
        events.iter().any(|e| e["verb"] == "create"
            && e["objectRef"]["resource"] == "configmaps"
            && e["responseStatus"]["code"] == 400),
        "the refused create is audited"
    );
    assert!(
        events.iter().any(|e| e["verb"] == "get"
            && e["objectRef"]["resource"] == "widgets"
            && e["objectRef"]["name"] == "w"
            && e["objectRef"]["namespace"] == "default"
            && e["responseStatus"]["code"] == 404),
        "the request for an unknown resource is audited"
    );
    for e in &events {
        assert_eq!(e["level"], "Metadata");
        assert!(
            e.get("requestObject").is_none() && e.get("responseObject").is_none(),
            "{e}"
        );
    }
    let update = events
        .iter()
        .find(|e| e["verb"] == "patch" && e["objectRef"]["subresource"] == "scale")
        .expect("scale patches are audited");
    assert_eq!(update["objectRef"]["apiGroup"], "apps");
}

#[test]
fn an_audit_policy_file_decides_levels_and_stages_per_request() {
    let files = tempfile::tempdir().unwrap();
    let policy = files.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
         - level: None\n  resources: [{group: coordination.k8s.io, resources: [leases]}]\n\
         - level: RequestResponse\n  resources: [{group: apps, resources: [deployments, deployments/scale]}]\n\
         - level: Metadata\n",
    )
    .unwrap();
    let (received, url) = Received::serve();
    let sim = Sim::start(&[
        "--audit-webhook",
        &url,
        "--audit-policy-file",
        policy.to_str().unwrap(),
    ]);
    sim.kubectl(&[
        "create",
        "deployment",
        "demo",
        "--image=nginx:1",
        "--replicas=1",
    ]);
    sim.kubectl(&["scale", "deployment", "demo", "--replicas=2"]);
    sim.kubectl(&["create", "configmap", "c", "--from-literal=k=v"]);
    sim.audit_flushed();
    let events = received.events();
    assert!(events.iter().all(|e| e["stage"] != "RequestReceived"));
    assert!(events
        .iter()
        .all(|e| e["objectRef"]["resource"] != "leases"));
    let level_of = |verb: &str, resource: &str, sub: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| {
                e["verb"] == verb
                    && e["objectRef"]["resource"] == resource
                    && e["objectRef"]["subresource"].as_str().unwrap_or("") == sub
            })
            .map(|e| e["level"].clone())
            .collect()
    };
    assert_eq!(
        level_of("create", "deployments", ""),
        vec!["RequestResponse"]
    );
    assert_eq!(
        level_of("patch", "deployments", "scale"),
        vec!["RequestResponse"]
    );
    assert_eq!(level_of("create", "configmaps", ""), vec!["Metadata"]);
    let scale = events
        .iter()
        .find(|e| e["verb"] == "patch" && e["objectRef"]["subresource"] == "scale")
        .unwrap();
    assert_eq!(scale["responseObject"]["kind"], "Scale");
}

#[test]
fn a_bad_policy_file_names_the_flag() {
    let files = tempfile::tempdir().unwrap();
    let policy = files.path().join("policy.yaml");
    std::fs::write(&policy, "apiVersion: v1\nkind: ConfigMap\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kelemetry-sim"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--audit-policy-file",
            policy.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--audit-policy-file"), "{stderr}");
    assert!(stderr.contains("kind ConfigMap"), "{stderr}");
}

#[test]
fn load_mode_churns_pods_and_rolls_deployments_as_an_audited_user() {
    let (received, url) = Received::serve();
    let sim = Sim::start(&[
        "--audit-webhook",
        &url,
        "--nodes",
        "3",
        "--load-deployments",
        "2",
        "--load-replicas",
        "3",
        "--load-pod-churn-per-min",
        "600",
        "--load-rollouts-per-min",
        "120",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = sim.get_json(&["get", "deployments"]);
        let rolled = d["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"]["observedGeneration"].as_i64().unwrap_or(0) > 1)
            .count();
        if rolled == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "load Deployments never rolled: {d}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    sim.audit_flushed();
    let events = received.events();
    let by_load = |verb: &str, resource: &str| {
        events.iter().any(|e| {
            e["verb"] == verb
                && e["objectRef"]["resource"] == resource
                && e["user"]["username"] == "kubernetes-admin"
                && e["userAgent"] == "kelemetry-sim-load/v1"
        })
    };
    assert!(by_load("create", "deployments"));
    assert!(by_load("delete", "pods"), "pod churn is audited");
    assert!(by_load("patch", "deployments"), "rollouts are audited");
    assert!(
        events
            .iter()
            .any(|e| e["objectRef"]["resource"] == "leases"),
        "the kubelets hold node leases"
    );
}
