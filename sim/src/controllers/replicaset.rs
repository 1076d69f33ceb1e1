//! The replicaset controller (`replicaset-controller`): creates Pods from the
//! template until `spec.replicas` run, deletes the newest beyond it (recording
//! `SuccessfulCreate` and `SuccessfulDelete` Events), and keeps the status counts.

use super::client::{Client, ObjectId};
use super::events;
use super::owned::{self, owner_ref, replicas};
use crate::apiserver::DeletePropagation;
use crate::store::{Change, ChangeType, ResourceId};
use serde_json::{json, Value};

fn replicasets() -> ResourceId {
    ResourceId::new("apps", "replicasets")
}

fn pods() -> ResourceId {
    ResourceId::new("", "pods")
}

/// The ReplicaSet a change concerns: the ReplicaSet itself, or the owner of a
/// changed Pod.
pub fn affected(client: &Client, c: &Change) -> Option<Value> {
    if c.resource == replicasets() && c.change != ChangeType::Deleted {
        let name = c.object["metadata"]["name"].as_str()?;
        return client.api().store().get(&replicasets(), &c.namespace, name);
    }
    if c.resource == pods() {
        let uid = owned::controller_uid(&c.object)?;
        return owned::by_uid(client.api(), &replicasets(), &c.namespace, uid);
    }
    None
}

fn source() -> Value {
    json!({"component": "replicaset-controller"})
}

fn running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
}

/// Most Pods one reconcile creates or deletes (the real controller's
/// `burstReplicas`); the Pods' own changes bring the ReplicaSet back for the rest.
const BURST_REPLICAS: i64 = 500;

/// Brings the ReplicaSet's Pods to its replica count and writes its status.
pub fn reconcile(client: &Client, rs: &Value) {
    if rs["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let meta = &rs["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or_default().to_string();
    let name = meta["name"].as_str().unwrap_or_default();
    let uid = meta["uid"].as_str().unwrap_or_default();
    let mut have = owned::owned_by(client.api(), &pods(), &ns, uid);
    let desired = replicas(rs);
    let template = &rs["spec"]["template"];
    let collection = ObjectId {
        resource: pods(),
        namespace: ns.clone(),
        name: String::new(),
    };
    let missing = (desired - have.len() as i64).min(BURST_REPLICAS);
    for _ in 0..missing {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": format!("{name}-"), "namespace": ns,
                         "labels": template["metadata"]["labels"],
                         "ownerReferences": [owner_ref(rs, "ReplicaSet", "apps/v1")]},
            "spec": template["spec"],
        });
        if let Ok(created) = client.create(&collection, pod) {
            let pod_name = created["metadata"]["name"].as_str().unwrap_or_default();
            let msg = format!("Created pod: {pod_name}");
            events::record(
                client,
                rs,
                "ReplicaSet",
                "apps/v1",
                "SuccessfulCreate",
                &msg,
                &source(),
            );
            have.push(created);
        }
    }
    if (have.len() as i64) > desired {
        have.sort_by(|a, b| {
            let rv = |p: &Value| {
                p["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|r| r.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            rv(b).cmp(&rv(a))
        });
        let extra = (have.len() - desired.max(0) as usize).min(BURST_REPLICAS as usize);
        for pod in have.drain(..extra) {
            let id = ObjectId::of(&pods(), &pod);
            if client.delete(&id, DeletePropagation::Background).is_ok() {
                let msg = format!("Deleted pod: {}", id.name);
                events::record(
                    client,
                    rs,
                    "ReplicaSet",
                    "apps/v1",
                    "SuccessfulDelete",
                    &msg,
                    &source(),
                );
            }
        }
    }
    let ready = have.iter().filter(|p| running(p)).count() as i64;
    let status = json!({
        "replicas": have.len(),
        "fullyLabeledReplicas": have.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": meta["generation"],
    });
    if rs["status"] == status {
        return;
    }
    let Some(fresh) = client.api().store().get(&replicasets(), &ns, name) else {
        return;
    };
    let mut next = fresh;
    next["status"] = status;
    let _ = client.update(&ObjectId::of(&replicasets(), rs), "status", next);
}
