//! The simulator against the real `kubectl` on this machine (and Debian's 1.20):
//! create, get with a label selector, scale, set image, watch, the three delete
//! propagation policies with the garbage collector, protobuf bodies, paged lists,
//! CRDs, Tables, the events.k8s.io view; plus the audit events the webhook receives
//! for them at RequestResponse level.

mod support;

use kelemetry_testkit::sim::mouse_crd;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{create_owned_pair, replicasets, write_json, Received, Sim};

#[test]
fn kubectl_drives_crud_patches_watch_and_deletion_policies_with_audit() {
    let (received, url) = Received::serve();
    let sim = Sim::start(&["--audit-webhook", &url]);
    let files = tempfile::tempdir().unwrap();

    // Create, label selectors, scale (scale subresource), set image (strategic merge).
    let uid = create_owned_pair(&sim, files.path());
    let found = sim.kubectl(&["get", "deployments", "-l", "app=demo", "-o", "name"]);
    assert_eq!(found.trim(), "deployment.apps/demo");
    let none = sim.kubectl(&["get", "deployments", "-l", "app in (other)", "-o", "name"]);
    assert_eq!(none.trim(), "");
    sim.kubectl(&["scale", "deployment", "demo", "--replicas=4"]);
    sim.kubectl(&["set", "image", "deployment/demo", "nginx=nginx:2"]);
    let d = sim.get_json(&["get", "deployment", "demo"]);
    assert_eq!(d["spec"]["replicas"], 4);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert_eq!(
        d["metadata"]["generation"], 3,
        "each spec change bumps the generation"
    );

    // The controllers rolled it out: the new template's ReplicaSet runs 4 Pods on the
    // simulated node, the old one none, and the status observed generation 3.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = sim.get_json(&["get", "deployment", "demo"]);
        let running = sim.get_json(&["get", "pods", "--field-selector", "status.phase=Running"])
            ["items"]
            .as_array()
            .unwrap()
            .len();
        if d["status"]["observedGeneration"] == 3
            && d["status"]["readyReplicas"] == 4
            && running == 4
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rollout did not finish: {}",
            d["status"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let reasons = sim.kubectl(&[
        "get",
        "events",
        "-o",
        "jsonpath={range .items[*]}{.reason}:{.message}{\"\\n\"}{end}",
    ]);
    for expected in [
        "ScalingReplicaSet:Scaled up replica set demo-",
        "SuccessfulCreate:Created pod: demo-",
        "Scheduled:Successfully assigned default/demo-",
        "Started:Started container nginx",
    ] {
        assert!(reasons.contains(expected), "no {expected:?} in {reasons}");
    }

    // A watch from resourceVersion 1 replays the history: the create first.
    let mut r = sim.raw(
        "/apis/apps/v1/namespaces/default/deployments?watch=1&resourceVersion=1&timeoutSeconds=1",
    );
    let mut first = String::new();
    BufReader::new(r.body_mut().as_reader())
        .read_line(&mut first)
        .unwrap();
    let ev: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "demo");

    // Foreground: kubectl waits until the collector removed the owned ReplicaSet and
    // then the Deployment.
    sim.kubectl(&[
        "delete",
        "deployment",
        "demo",
        "--cascade=foreground",
        "--timeout=20s",
    ]);
    assert!(
        replicasets(&sim).is_empty(),
        "foreground deletion removed the dependent"
    );
    // Background: the collector deletes the dependent after the owner.
    create_owned_pair(&sim, files.path());
    sim.kubectl(&["delete", "deployment", "demo"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !replicasets(&sim).is_empty() {
        assert!(
            Instant::now() < deadline,
            "background deletion left the dependent"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Orphan: the dependent stays, without the owner reference, which the collector
    // removes (kubectl waits until the owner is gone).
    create_owned_pair(&sim, files.path());
    sim.kubectl(&["delete", "deployment", "demo", "--cascade=orphan"]);
    let left = replicasets(&sim);
    assert!(!left.is_empty());
    for rs in &left {
        assert_eq!(rs["metadata"]["ownerReferences"], json!([]), "{rs}");
    }
    assert!(sim.get_json(&["get", "deployments"])["items"]
        .as_array()
        .unwrap()
        .is_empty());

    // The audit trail, as the real API server records it.
    sim.audit_flushed();
    let events = received.events();
    let complete = |verb: &str, resource: &str| -> Vec<Value> {
        events
            .iter()
            .filter(|e| e["stage"] == "ResponseComplete" && e["verb"] == verb)
            .filter(|e| e["objectRef"]["resource"] == resource)
            .cloned()
            .collect()
    };
    assert!(
        complete("update", "replicasets")
            .iter()
            .any(|e| e["user"]["username"]
                == "system:serviceaccount:kube-system:generic-garbage-collector"),
        "the collector's removal of the orphaned owner reference is audited"
    );
    let create = &complete("create", "deployments")[0];
    assert_eq!(create["user"]["username"], "kubernetes-admin");
    assert!(
        create["userAgent"]
            .as_str()
            .unwrap()
            .starts_with("kubectl/"),
        "{create}"
    );
    assert_eq!(create["responseStatus"]["code"], 201);
    assert_eq!(create["objectRef"]["name"], "demo");
    assert_eq!(create["level"], "RequestResponse");
    assert_eq!(create["responseObject"]["metadata"]["uid"], uid.as_str());
    assert!(create["requestObject"].is_object());
    let scale = complete("patch", "deployments")
        .into_iter()
        .find(|e| e["objectRef"]["subresource"] == "scale")
        .expect("a patch of the scale subresource");
    assert_eq!(scale["responseObject"]["kind"], "Scale");
    let gc_deletes = complete("delete", "replicasets");
    assert!(
        gc_deletes.iter().any(|e| e["user"]["username"]
            == "system:serviceaccount:kube-system:generic-garbage-collector"),
        "the collector's deletes are audited under its service account"
    );
    let by = |user: &str, verb: &str, resource: &str, sub: &str| {
        events.iter().any(|e| {
            e["stage"] == "ResponseComplete"
                && e["user"]["username"] == user
                && e["verb"] == verb
                && e["objectRef"]["resource"] == resource
                && e["objectRef"]["subresource"].as_str().unwrap_or("") == sub
        })
    };
    let sa = |name: &str| format!("system:serviceaccount:kube-system:{name}");
    assert!(by(
        &sa("deployment-controller"),
        "update",
        "deployments",
        "status"
    ));
    assert!(by(
        &sa("deployment-controller"),
        "create",
        "replicasets",
        ""
    ));
    assert!(by(&sa("replicaset-controller"), "create", "pods", ""));
    assert!(by("system:kube-scheduler", "create", "pods", "binding"));
    assert!(by("system:node:sim-node-0", "patch", "pods", "status"));
    let stages: Vec<&Value> = events
        .iter()
        .filter(|e| e["auditID"] == create["auditID"])
        .map(|e| &e["stage"])
        .collect();
    assert_eq!(stages, ["RequestReceived", "ResponseComplete"]);
}

#[test]
fn kubectl_typed_creates_send_protobuf_that_decodes_to_the_same_objects() {
    let sim = Sim::start(&[]);
    sim.kubectl(&["create", "namespace", "n2"]);
    sim.kubectl(&["create", "configmap", "c1", "--from-literal=a=b"]);
    sim.kubectl(&[
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=pw=hunter2",
    ]);
    sim.kubectl(&["create", "service", "clusterip", "svc1", "--tcp=80:8080"]);
    sim.kubectl(&[
        "create",
        "deployment",
        "typed",
        "--image=nginx:1",
        "--replicas=0",
    ]);
    assert_eq!(
        sim.get_json(&["get", "namespace", "n2"])["metadata"]["name"],
        "n2"
    );
    assert_eq!(
        sim.get_json(&["get", "configmap", "c1"])["data"],
        json!({"a": "b"})
    );
    assert_eq!(
        sim.get_json(&["get", "secret", "s1"])["data"],
        json!({"pw": "aHVudGVyMg=="})
    );
    let ports = &sim.get_json(&["get", "service", "svc1"])["spec"]["ports"][0];
    assert_eq!(
        (ports["port"].clone(), ports["targetPort"].clone()),
        (json!(80), json!(8080))
    );
    let d = sim.get_json(&["get", "deployment", "typed"]);
    assert_eq!(
        d["spec"]["replicas"], 0,
        "a zero in a pointer field is kept"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0],
        json!({"name": "nginx", "image": "nginx:1", "resources": {}}),
        "zero values the JSON form omits are omitted"
    );

    // A body that claims to be protobuf but is not answers 400, not a crash.
    let status = sim.send(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/vnd.kubernetes.protobuf",
        b"k8s\0\x0a\xff\xff",
    );
    assert_eq!(status, 400);
}

#[test]
fn paged_lists_and_writes_that_must_not_delete() {
    let sim = Sim::start(&[]);
    for name in ["a", "c", "e"] {
        sim.kubectl(&["create", "configmap", name, "--from-literal=k=v"]);
    }
    let base = "/api/v1/namespaces/default/configmaps";
    let mut r = sim.raw(&format!("{base}?limit=2"));
    let first: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&first), ["a", "c"]);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    let list_rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // Created between the pages and sorting before the cursor: not in the next page,
    // but a watch from the list's version replays it.
    sim.kubectl(&["create", "configmap", "b", "--from-literal=k=v"]);
    let mut r = sim.raw(&format!(
        "{base}?limit=2&continue={}",
        kelemetry_testkit::client::urlencode(&token)
    ));
    let second: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(names(&second), ["e"]);
    assert_eq!(second["metadata"]["resourceVersion"], list_rv.as_str());
    assert!(second["metadata"].get("continue").is_none());
    let mut w = sim.raw(&format!(
        "{base}?watch=1&resourceVersion={list_rv}&timeoutSeconds=1"
    ));
    let mut first_line = String::new();
    BufReader::new(w.body_mut().as_reader())
        .read_line(&mut first_line)
        .unwrap();
    let ev: Value = serde_json::from_str(&first_line).unwrap();
    assert_eq!(
        (
            ev["type"].as_str(),
            ev["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("b"))
    );

    // A patch cannot start a deletion, and a subresource cannot be deleted.
    sim.kubectl(&[
        "patch",
        "configmap",
        "a",
        "--type=merge",
        "-p",
        r#"{"metadata":{"deletionTimestamp":"2020-01-01T00:00:00Z"}}"#,
    ]);
    let a = sim.get_json(&["get", "configmap", "a"]);
    assert!(a["metadata"].get("deletionTimestamp").is_none(), "{a}");
    sim.kubectl(&[
        "create",
        "deployment",
        "kept",
        "--image=nginx:1",
        "--replicas=0",
    ]);
    let status = sim.send(
        "DELETE",
        "/apis/apps/v1/namespaces/default/deployments/kept/status",
        "application/json",
        b"{}",
    );
    assert_eq!(status, 405);
    let kept = sim.get_json(&["get", "deployment", "kept"]);
    assert_eq!(kept["metadata"]["name"], "kept");
}

#[test]
fn a_crd_with_an_irregular_plural_is_served_by_plural_singular_and_short_name() {
    let sim = Sim::start(&[]);
    let files = tempfile::tempdir().unwrap();
    let crd = mouse_crd();
    sim.kubectl(&["create", "-f", &write_json(files.path(), "crd.json", &crd)]);
    let mouse = json!({"apiVersion": "zoo.example.com/v1", "kind": "Mouse",
                       "metadata": {"name": "jerry"}, "spec": {"color": "brown"}});
    sim.kubectl(&[
        "create",
        "-f",
        &write_json(files.path(), "mouse.json", &mouse),
    ]);
    assert_eq!(
        sim.kubectl(&["get", "mice", "-o", "name"]).trim(),
        "mouse.zoo.example.com/jerry"
    );
    assert_eq!(
        sim.kubectl(&["get", "ms", "-o", "name"]).trim(),
        "mouse.zoo.example.com/jerry"
    );
    sim.kubectl(&[
        "patch",
        "mouse",
        "jerry",
        "--type=merge",
        "-p",
        r#"{"spec":{"color":"grey"}}"#,
    ]);
    let jerry = sim.get_json(&["get", "mouse", "jerry"]);
    assert_eq!(jerry["spec"]["color"], "grey");
    assert_eq!(jerry["metadata"]["generation"], 2);
    // An update of the CRD changes what is served: a new short name.
    sim.kubectl(&[
        "patch",
        "crd",
        "mice.zoo.example.com",
        "--type=merge",
        "-p",
        r#"{"spec":{"names":{"shortNames":["ms","mm"]}}}"#,
    ]);
    assert_eq!(
        sim.kubectl(&["get", "mm", "-o", "name"]).trim(),
        "mouse.zoo.example.com/jerry"
    );
    sim.kubectl(&["delete", "mouse", "jerry"]);
    assert_eq!(sim.kubectl(&["get", "mice", "-o", "name"]).trim(), "");
}

#[test]
fn kubectl_get_prints_the_columns_of_a_real_cluster() {
    let sim = Sim::start(&[]);
    sim.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1",
        "--replicas=2",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pods = sim.kubectl(&["get", "pods"]);
        let header: Vec<&str> = pods
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            "{pods}"
        );
        if pods
            .lines()
            .skip(1)
            .filter(|l| l.contains("1/1") && l.contains("Running"))
            .count()
            == 2
        {
            break;
        }
        assert!(Instant::now() < deadline, "{pods}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let deployments = sim.kubectl(&["get", "deployments"]);
    assert!(deployments.contains("UP-TO-DATE"), "{deployments}");
    assert!(
        deployments
            .lines()
            .any(|l| l.starts_with("web ") && l.contains("2/2")),
        "{deployments}"
    );
    let nodes = sim.kubectl(&["get", "nodes"]);
    assert!(
        nodes.contains("Ready") && nodes.contains("v1.32.0"),
        "{nodes}"
    );
    let events = sim.kubectl(&["get", "events"]);
    assert!(
        events.contains("ScalingReplicaSet") && events.contains("deployment/web"),
        "{events}"
    );
    // Other output formats still get the objects themselves.
    let json = sim.get_json(&["get", "pods"]);
    assert_eq!(json["items"].as_array().unwrap().len(), 2);
}

#[test]
fn events_k8s_io_is_a_view_of_the_core_events() {
    let sim = Sim::start(&[]);
    let files = tempfile::tempdir().unwrap();
    let rv = sim.get_json(&["get", "events"])["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // Written through events.k8s.io/v1, read through core/v1.
    let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "probe.1", "namespace": "default"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "probe-controller",
        "reportingInstance": "probe-1", "action": "Probing", "reason": "Probed",
        "regarding": {"kind": "ConfigMap", "namespace": "default", "name": "c", "apiVersion": "v1"},
        "note": "probed the ConfigMap", "type": "Normal"});
    let path = write_json(files.path(), "event.json", &event);
    sim.kubectl(&["create", "-f", &path]);
    let core = sim.get_json(&["get", "events.v1.", "probe.1"]);
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "probed the ConfigMap");
    assert_eq!(core["involvedObject"]["name"], "c");
    assert_eq!(core["reportingComponent"], "probe-controller");
    // Written by a controller through core/v1, read through events.k8s.io/v1.
    sim.kubectl(&["create", "deployment", "web", "--image=nginx:1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v1 = sim.get_json(&["get", "events.v1.events.k8s.io"]);
        let scaling = v1["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["reason"] == "ScalingReplicaSet")
            .cloned();
        if let Some(e) = scaling {
            assert_eq!(e["regarding"]["name"], "web");
            assert!(e["note"]
                .as_str()
                .unwrap()
                .starts_with("Scaled up replica set web-"));
            assert!(e.get("message").is_none());
            break;
        }
        assert!(Instant::now() < deadline, "{v1}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A watch through events.k8s.io/v1 sees both, converted.
    let mut w = sim.raw(&format!(
        "/apis/events.k8s.io/v1/namespaces/default/events?watch=1&resourceVersion={rv}&timeoutSeconds=1"
    ));
    let body = w.body_mut().read_to_string().unwrap();
    let seen: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        seen.iter()
            .any(|e| e["object"]["note"] == "probed the ConfigMap"),
        "{body}"
    );
    assert!(seen
        .iter()
        .all(|e| e["object"]["apiVersion"] == "events.k8s.io/v1"
            && e["object"].get("message").is_none()));
}

/// Debian's kubectl 1.20, unpacked by `scripts/setup.sh`.
fn kubectl_1_20() -> Option<std::path::PathBuf> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/kubectl-1.20/usr/bin/kubectl");
    path.exists().then_some(path)
}

#[test]
fn debians_kubectl_1_20_drives_the_same_workflow() {
    let Some(kubectl) = kubectl_1_20() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "scripts/setup.sh unpacks kubectl 1.20 into target/tools; CI must have it"
        );
        eprintln!("kubectl 1.20 not unpacked (run scripts/setup.sh); skipped");
        return;
    };
    let sim = Sim::start(&[]);
    let k = |args: &[&str]| {
        sim.0
            .kubectl_at(&kubectl, args)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert!(k(&["version", "--client"]).contains("v1.20"));
    k(&[
        "create",
        "deployment",
        "demo",
        "--image=nginx:1",
        "--replicas=2",
    ]);
    k(&["scale", "deployment", "demo", "--replicas=3"]);
    k(&["set", "image", "deployment/demo", "nginx=nginx:2"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d: Value =
            serde_json::from_str(&k(&["get", "deployment", "demo", "-o", "json"])).unwrap();
        if d["status"]["updatedReplicas"] == 3 && d["status"]["readyReplicas"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{d}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pods = k(&["get", "pods"]);
    assert!(
        pods.starts_with("NAME") && pods.contains("Running"),
        "{pods}"
    );
    // `apply` fetches /openapi/v2 first, then patches with the last-applied state.
    let files = tempfile::tempdir().unwrap();
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": v}});
    let path = write_json(files.path(), "cm1.json", &cm("v1"));
    assert!(k(&["apply", "-f", &path]).contains("created"));
    let path = write_json(files.path(), "cm2.json", &cm("v2"));
    assert!(k(&["apply", "-f", &path]).contains("configured"));
    assert_eq!(
        k(&["get", "configmap", "c", "-o", "jsonpath={.data.k}"]),
        "v2"
    );
    k(&["delete", "deployment", "demo"]);
}

#[test]
fn a_selector_watch_sees_objects_enter_and_leave_the_selection() {
    let sim = Sim::start(&[]);
    sim.kubectl(&["create", "configmap", "c", "--from-literal=k=v"]);
    let rv = sim.get_json(&["get", "configmap", "c"])["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    sim.kubectl(&["label", "configmap", "c", "team=a"]);
    sim.kubectl(&["annotate", "configmap", "c", "note=x"]);
    sim.kubectl(&["label", "configmap", "c", "team=b", "--overwrite"]);
    let mut w = sim.raw(&format!(
        "/api/v1/namespaces/default/configmaps?watch=1&labelSelector=team%3Da&resourceVersion={rv}&timeoutSeconds=1"
    ));
    let body = w.body_mut().read_to_string().unwrap();
    let types: Vec<String> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"], "{body}");
}

#[test]
fn dependents_of_a_cluster_scoped_owner_are_collected_in_every_namespace() {
    let sim = Sim::start(&["--nodes", "0"]);
    let files = tempfile::tempdir().unwrap();
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
    sim.kubectl(&[
        "create",
        "-f",
        &write_json(files.path(), "node.json", &node),
    ]);
    let uid = sim.get_json(&["get", "node", "n1"])["metadata"]["uid"].clone();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "per-node", "namespace": "kube-system",
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": uid}]}});
    sim.kubectl(&["create", "-f", &write_json(files.path(), "cm.json", &cm)]);
    sim.kubectl(&["delete", "node", "n1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim
        .0
        .kubectl(&["get", "configmap", "per-node", "-n", "kube-system"])
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "the node's ConfigMap was not collected"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
