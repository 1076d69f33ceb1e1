//! The simulator feeding a node through the audit webhook while the real `kubectl`
//! drives a Deployment's life: `create deployment` (2 replicas, sent as protobuf),
//! scale to 4, set image, scale to 2, delete. The trace the Jaeger UI would open shows the controllers' work.

use crate::support::{tag, Node};
use crate::traces::{
    children, fetch, field_values, log_field, log_fields, redirect, roots, with_mode,
};
use kelemetry_testkit::sim::{sibling_binary, SimProcess};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// The simulated cluster's name in spans and on the webhook path.
pub(crate) const CLUSTER: &str = "sim";

/// Waits until the Deployment's status observed `generation` with `ready` Pods.
fn wait_rolled_out(sim: &SimProcess, generation: i64, ready: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = sim.kubectl_json(&["get", "deployment", "demo"]).unwrap();
        let s = &d["status"];
        if s["observedGeneration"] == generation
            && s["readyReplicas"] == ready
            && s["updatedReplicas"] == ready
            && s["replicas"] == ready
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rollout to generation {generation} stuck: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The simulator of this build, writing its kubeconfig where the node's `--cluster`
/// flag expects it and auditing to `node`.
pub(crate) fn start_sim(kubeconfig: &Path, node: &Node, extra: &[&str]) -> SimProcess {
    let sim_bin =
        sibling_binary(Path::new(env!("CARGO_BIN_EXE_kelemetry")), "kelemetry-sim").unwrap();
    let webhook = format!("http://{}/audit/{CLUSTER}", node.http());
    let mut args = vec![
        "--audit-webhook",
        &webhook,
        "--audit-batch-max-wait",
        "200ms",
    ];
    args.extend_from_slice(extra);
    SimProcess::start_at(&sim_bin, kubeconfig, &args, tempfile::tempdir().unwrap()).unwrap()
}

/// `kubectl scale` Deployment `demo` to 4 and `kubectl set image` to `nginx:2`,
/// each rolled out (generations 2 and 3).
fn scale_to_4_and_set_image(sim: &SimProcess) {
    sim.kubectl(&["scale", "deployment", "demo", "--replicas=4"])
        .unwrap();
    wait_rolled_out(sim, 2, 4);
    sim.kubectl(&["set", "image", "deployment/demo", "nginx=nginx:2"])
        .unwrap();
    wait_rolled_out(sim, 3, 4);
}

/// `kubectl create deployment demo` (2 replicas, sent as protobuf), rolled out.
fn create_demo(sim: &SimProcess) {
    sim.kubectl(&[
        "create",
        "deployment",
        "demo",
        "--image=nginx:1",
        "--replicas=2",
    ])
    .unwrap();
    wait_rolled_out(sim, 1, 2);
}

/// The `ScalingReplicaSet` Events the simulator recorded for Deployment `demo`.
fn recorded_scaling_events(sim: &SimProcess) -> usize {
    let selector = "involvedObject.name=demo,reason=ScalingReplicaSet";
    sim.kubectl_json(&["get", "events", "--field-selector", selector])
        .unwrap()["items"]
        .as_array()
        .unwrap()
        .len()
}

/// Waits until the Deployment's trace `id` has exactly `recorded` ScalingReplicaSet
/// logs; more than that at any point is a duplicate.
fn wait_scaling_logs(node: &Node, id: &str, recorded: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let trace = fetch(node, &with_mode(id, "21000000"));
        let scaling = roots(&trace).first().map_or(0, |root| {
            log_fields(root)
                .iter()
                .filter(|l| log_field(l, "event").as_deref() == Some("ScalingReplicaSet"))
                .count()
        });
        if scaling == recorded {
            return;
        }
        assert!(
            scaling < recorded,
            "{scaling} ScalingReplicaSet logs for {recorded} Events"
        );
        assert!(
            Instant::now() < deadline,
            "only {scaling} of {recorded} Events arrived"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The SPEC's deployment scenario at `audit_level`: the trace must look the same at
/// every level; at `Metadata` every diff and snapshot comes from the object watchers.
fn rollout_is_one_traced_deployment(audit_level: &str) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("sim-kubeconfig");
    let watched = format!("{CLUSTER}={}", kubeconfig.display());
    let node = Node::start(dir.path(), &["--shards", "8", "--cluster", &watched]);
    let sim = start_sim(&kubeconfig, &node, &["--audit-level", audit_level]);
    wait_watching(&node, &["events", "apps/deployments", "apps/replicasets"]);
    create_demo(&sim);
    let first_replicaset = only_replicaset(&sim);
    scale_to_4_and_set_image(&sim);
    sim.kubectl(&["scale", "deployment", "demo", "--replicas=2"])
        .unwrap();
    wait_rolled_out(&sim, 4, 2);
    sim.kubectl(&["delete", "deployment", "demo"]).unwrap();
    let counters = sim.audit_flushed(Duration::from_secs(30)).unwrap();
    assert_eq!(counters["dropped"], 0, "{counters}");
    let recorded = recorded_scaling_events(&sim);
    assert_eq!(recorded, 5, "2, 2->4, new 0->4, old 4->0, 4->2");

    // tracing [full tree] (21000000) of the Deployment: one root, the controllers'
    // status updates with their diffs, the delete with its snapshot, and the two
    // ReplicaSets of the two templates as children (their links may still be in
    // flight through the outbox, so the trace is read until they are there).
    let ts = chrono::Utc::now().timestamp_micros();
    let id = redirect(&node, CLUSTER, "deployments", "demo", ts);
    // Every ScalingReplicaSet the simulator recorded is a log, once.
    wait_scaling_logs(&node, &id, recorded);
    let trace = wait_trace(&node, &with_mode(&id, "21000000"), 2);
    let root = roots(&trace)[0];
    assert_eq!(tag(root, "resource"), Some("deployments"));
    assert_eq!(tag(root, "name"), Some("demo"));
    let logs = log_fields(root);
    let audits = field_values(&logs, "audit");
    assert!(
        audits
            .iter()
            .any(|a| a == "system:serviceaccount:kube-system:deployment-controller update status"),
        "{audits:#?}"
    );
    let diffs = field_values(&logs, "diff");
    assert!(
        diffs
            .iter()
            .any(|d| d.contains("status.observedGeneration 1 -> 2")),
        "{diffs:#?}"
    );
    assert!(
        diffs.iter().all(|d| !d.contains("metadata.managedFields")),
        "{diffs:#?}"
    );
    let delete = logs
        .iter()
        .find(|l| log_field(l, "audit").as_deref() == Some("kubernetes-admin delete"))
        .expect("the delete is a log of the Deployment");
    let snapshot: Value =
        serde_json::from_str(&log_field(delete, "snapshot").expect("a deletion snapshot")).unwrap();
    assert_eq!(snapshot["metadata"]["name"], "demo");
    let kids = children(&trace, root);
    assert!(
        kids.iter()
            .all(|k| tag(k, "resource") == Some("replicasets")),
        "{kids:#?}"
    );

    // tracing [ancestors] (22000000) of the first ReplicaSet: the Deployment is the
    // root and the ReplicaSet its only child (its sibling is not an ancestor).
    let id = redirect(&node, CLUSTER, "replicasets", &first_replicaset, ts);
    let trace = wait_trace(&node, &with_mode(&id, "22000000"), 1);
    let root = roots(&trace)[0];
    assert_eq!(tag(root, "name"), Some("demo"));
    let kids = children(&trace, root);
    assert_eq!(tag(kids[0], "name"), Some(first_replicaset.as_str()));
}

/// Waits until `node` has listed `resources` of the simulator and follows them.
pub(crate) fn wait_watching(node: &Node, resources: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = node.metrics_text();
        let synced = |r: &&str| {
            metrics.contains(&format!(
                "kelemetry_watch_synced{{cluster=\"{CLUSTER}\",resource=\"{r}\"}} 1"
            ))
        };
        if resources.iter().all(synced) {
            return;
        }
        assert!(Instant::now() < deadline, "not watching {resources:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The name of the Deployment's only ReplicaSet.
fn only_replicaset(sim: &SimProcess) -> String {
    let list = sim.kubectl_json(&["get", "replicasets"]).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    items[0]["metadata"]["name"].as_str().unwrap().to_string()
}

/// Reads trace `id` until it has one root with `kids` children.
fn wait_trace(node: &Node, id: &str, kids: usize) -> Value {
    wait_trace_with(node, id, |trace| {
        let r = roots(trace);
        r.len() == 1 && children(trace, r[0]).len() == kids
    })
}

/// Reads trace `id` until `done` holds for it (links and Events arrive
/// asynchronously); fails after 30 seconds with the last trace read.
pub(crate) fn wait_trace_with(node: &Node, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let trace = fetch(node, id);
        if done(&trace) {
            return trace;
        }
        assert!(
            Instant::now() < deadline,
            "the trace never reached the expected shape: {trace}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_kubectl_driven_rollout_on_the_simulator_is_one_traced_deployment() {
    rollout_is_one_traced_deployment("RequestResponse");
}

#[test]
fn at_metadata_audit_level_the_watchers_supply_every_diff_and_snapshot() {
    rollout_is_one_traced_deployment("Metadata");
}

/// The holders of `duty` in `node`'s `/cluster/status`, once it lists the duty.
fn duty_holders(node: &Node, duty: &str) -> Option<Vec<u64>> {
    let (_, status) = node.http_get_json("/cluster/status");
    status["watch_duties"]
        .as_array()?
        .iter()
        .find(|d| d["duty"] == duty)
        .map(|d| {
            d["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .collect()
        })
}

#[test]
fn killing_the_events_duty_holder_loses_and_repeats_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("sim-kubeconfig");
    let watched = format!("{CLUSTER}={}", kubeconfig.display());
    let (mut nodes, _) = crate::cluster::start_cluster(dir.path(), "8", &["--cluster", &watched]);
    let events = format!("events/{CLUSTER}");
    // The roster assigns the Events duty to one node and each object duty to two.
    let deadline = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        if let Some([h]) = duty_holders(&nodes[0], &events).as_deref() {
            break *h as usize;
        }
        assert!(Instant::now() < deadline, "no holder of {events}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let survivor = (holder + 1) % nodes.len();
    let sim = start_sim(&kubeconfig, &nodes[survivor], &[]);
    wait_watching(&nodes[holder], &["events"]);
    let pods = format!("objects/{CLUSTER}/pods");
    let deadline = Instant::now() + Duration::from_secs(30);
    while duty_holders(&nodes[0], &pods).is_none_or(|h| h.len() != 2) {
        assert!(Instant::now() < deadline, "{pods} is not on two nodes");
        std::thread::sleep(Duration::from_millis(100));
    }

    create_demo(&sim);
    // The holder records how far it has committed; its successor resumes there.
    let deadline = Instant::now() + Duration::from_secs(15);
    while nodes[survivor].http_get_json("/cluster/status").1["watch_cursors"][&events].is_null() {
        assert!(Instant::now() < deadline, "no cursor of {events}");
        std::thread::sleep(Duration::from_millis(100));
    }
    nodes[holder].kill();
    let deadline = Instant::now() + Duration::from_secs(15);
    let next = loop {
        match duty_holders(&nodes[survivor], &events).as_deref() {
            Some([n]) if *n as usize != holder => break *n,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the Events duty was not taken over"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(next as usize, holder);
    let deadline = Instant::now() + Duration::from_secs(15);
    let resumed = format!("kelemetry_watch_resumed_total{{cluster=\"{CLUSTER}\"}} 1");
    while !nodes[next as usize].metrics_text().contains(&resumed) {
        assert!(
            Instant::now() < deadline,
            "the new holder did not resume from the cursor"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    scale_to_4_and_set_image(&sim);
    sim.audit_flushed(Duration::from_secs(30)).unwrap();

    let recorded = recorded_scaling_events(&sim);
    assert_eq!(recorded, 4, "0->2, 2->4, new 0->4, old 4->0");
    let ts = chrono::Utc::now().timestamp_micros();
    let id = redirect(&nodes[survivor], CLUSTER, "deployments", "demo", ts);
    wait_scaling_logs(&nodes[survivor], &id, recorded);
}
