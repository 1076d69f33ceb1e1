//! The kubelet stand-in (`system:node:NAME`): registers its nodes, renews their
//! leases, starts the Pods bound to them (`Pulled`, `Created`, `Started`, then a
//! `patch status` to Running) and records `Killing` when one is deleted.

use super::client::{Client, ObjectId};
use super::events;
use crate::apiserver::patch::PatchType;
use crate::apiserver::ApiServer;
use crate::audit::Requester;
use crate::store::{Change, ChangeType, ResourceId};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How often a node renews its lease (the real default).
pub const LEASE_RENEW: Duration = Duration::from_secs(10);

fn pods() -> ResourceId {
    ResourceId::new("", "pods")
}

/// The client of the kubelet of `node`.
pub fn client(api: Arc<ApiServer>, node: &str) -> Client {
    Client::acting_as(
        api,
        Requester::component(
            &format!("system:node:{node}"),
            &["system:nodes", "system:authenticated"],
            &format!("kubelet/v1.32.0 (linux/amd64) kubernetes/kelemetry-sim/{node}"),
        ),
    )
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn micro_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Registers `node` (a Node and its Lease), as a kubelet does when it starts.
pub fn register(api: &Arc<ApiServer>, node: &str) {
    let c = client(api.clone(), node);
    let n = json!({"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node,
                                                         "kubernetes.io/os": "linux"}},
                   "status": {"conditions": [{"type": "Ready", "status": "True",
                                              "reason": "KubeletReady", "lastHeartbeatTime": now(),
                                              "lastTransitionTime": now()}],
                              "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                              "nodeInfo": {"kubeletVersion": "v1.32.0", "operatingSystem": "linux",
                                           "architecture": "amd64"}}});
    let nodes = ObjectId {
        resource: ResourceId::new("", "nodes"),
        namespace: String::new(),
        name: String::new(),
    };
    let _ = c.create(&nodes, n);
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": node, "namespace": "kube-node-lease"},
                       "spec": {"holderIdentity": node, "leaseDurationSeconds": 40,
                                "renewTime": micro_now()}});
    let leases = ObjectId {
        resource: ResourceId::new("coordination.k8s.io", "leases"),
        namespace: "kube-node-lease".into(),
        name: String::new(),
    };
    let _ = c.create(&leases, lease);
}

/// Renews the lease of every node every [`LEASE_RENEW`].
pub async fn renew_leases(api: Arc<ApiServer>, nodes: Vec<String>) {
    let mut tick = tokio::time::interval(LEASE_RENEW);
    loop {
        tick.tick().await;
        for node in &nodes {
            let id = ObjectId {
                resource: ResourceId::new("coordination.k8s.io", "leases"),
                namespace: "kube-node-lease".into(),
                name: node.clone(),
            };
            let body = json!({"spec": {"renewTime": micro_now()}});
            let _ = client(api.clone(), node).patch(&id, "", PatchType::Merge, body);
        }
    }
}

fn source(node: &str) -> Value {
    json!({"component": "kubelet", "host": node})
}

fn containers(pod: &Value) -> Vec<Value> {
    pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Starts a Pod bound to a node, or records `Killing` for a deleted one.
pub fn on_change(api: &Arc<ApiServer>, c: &Change) {
    if c.resource != pods() {
        return;
    }
    let pod = &c.object;
    let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
        return;
    };
    let kubelet = client(api.clone(), node);
    if c.change == ChangeType::Deleted {
        for ct in containers(pod) {
            let msg = format!(
                "Stopping container {}",
                ct["name"].as_str().unwrap_or_default()
            );
            events::record(&kubelet, pod, "Pod", "v1", "Killing", &msg, &source(node));
        }
        return;
    }
    // The stored Pod, not the change's snapshot: a queued older snapshot of a Pod
    // already started would start it twice.
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let Some(current) = api.store().get(&pods(), &c.namespace, name) else {
        return;
    };
    let pod = &current;
    if pod["status"]["phase"] == "Running" || pod["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let mut statuses = Vec::new();
    for ct in containers(pod) {
        let name = ct["name"].as_str().unwrap_or_default();
        let image = ct["image"].as_str().unwrap_or_default();
        let s = source(node);
        let pulled = format!("Container image \"{image}\" already present on machine");
        events::record(&kubelet, pod, "Pod", "v1", "Pulled", &pulled, &s);
        let created = format!("Created container {name}");
        events::record(&kubelet, pod, "Pod", "v1", "Created", &created, &s);
        let started = format!("Started container {name}");
        events::record(&kubelet, pod, "Pod", "v1", "Started", &started, &s);
        statuses.push(
            json!({"name": name, "image": image, "imageID": format!("docker.io/{image}"),
                             "ready": true, "started": true, "restartCount": 0,
                             "state": {"running": {"startedAt": now()}}}),
        );
    }
    let ip_tail =
        xxhash_rust::xxh3::xxh3_64(pod["metadata"]["uid"].to_string().as_bytes()) % 250 + 2;
    let status = json!({"status": {
        "phase": "Running",
        "hostIP": "10.0.0.1",
        "podIP": format!("10.244.0.{ip_tail}"),
        "startTime": now(),
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now()},
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}],
        "containerStatuses": statuses,
    }});
    let _ = kubelet.patch(
        &ObjectId::of(&pods(), pod),
        "status",
        PatchType::Strategic,
        status,
    );
}
