//! The deployment controller (`deployment-controller`): one ReplicaSet per pod
//! template (named by the template's hash), the current one scaled to
//! `spec.replicas` and older ones scaled to zero, each scaling recorded as a
//! `ScalingReplicaSet` Event, and the Deployment's status (with
//! `observedGeneration`) updated through the `status` subresource.

use super::client::{Client, ObjectId};
use super::events;
use super::owned::{self, owner_ref, replicas};
use crate::store::{Change, ChangeType, ResourceId};
use serde_json::{json, Value};

fn deployments() -> ResourceId {
    ResourceId::new("apps", "deployments")
}

fn replicasets() -> ResourceId {
    ResourceId::new("apps", "replicasets")
}

/// The `pod-template-hash` of a template: a short hash of its JSON (keys are
/// sorted, so equal templates hash alike).
pub fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h = xxhash_rust::xxh3::xxh3_64(template.to_string().as_bytes());
    (0..10)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// The Deployment a change concerns: the Deployment itself, or the owner of a
/// changed ReplicaSet.
pub fn affected(client: &Client, c: &Change) -> Option<Value> {
    if c.resource == deployments() && c.change != ChangeType::Deleted {
        // The stored object, not the change's snapshot: a queued older snapshot
        // would scale back what a newer one already did.
        let name = c.object["metadata"]["name"].as_str()?;
        return client.api().store().get(&deployments(), &c.namespace, name);
    }
    if c.resource == replicasets() {
        let uid = owned::controller_uid(&c.object)?;
        return owned::by_uid(client.api(), &deployments(), &c.namespace, uid);
    }
    None
}

fn source() -> Value {
    json!({"component": "deployment-controller"})
}

fn scale_event(client: &Client, d: &Value, rs: &str, from: i64, to: i64) {
    let dir = if to > from { "up" } else { "down" };
    let msg = format!("Scaled {dir} replica set {rs} from {from} to {to}");
    events::record(
        client,
        d,
        "Deployment",
        "apps/v1",
        "ScalingReplicaSet",
        &msg,
        &source(),
    );
}

/// Brings the Deployment's ReplicaSets and status in line with its spec.
pub fn reconcile(client: &Client, d: &Value) {
    if d["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let meta = &d["metadata"];
    let (ns, name, uid) = (
        meta["namespace"].as_str().unwrap_or_default(),
        meta["name"].as_str().unwrap_or_default(),
        meta["uid"].as_str().unwrap_or_default(),
    );
    let template = &d["spec"]["template"];
    let hash = template_hash(template);
    let desired = replicas(d);
    let rss = owned::owned_by(client.api(), &replicasets(), ns, uid);
    let current = rss
        .iter()
        .find(|rs| rs["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
    match current {
        None => {
            let revision = rss.len() + 1;
            let mut labels = template["metadata"]["labels"].clone();
            labels["pod-template-hash"] = hash.clone().into();
            let mut selector = d["spec"]["selector"].clone();
            selector["matchLabels"]["pod-template-hash"] = hash.clone().into();
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"] = labels.clone();
            let rs_name = format!("{name}-{hash}");
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs_name, "namespace": ns, "labels": labels,
                             "annotations": {"deployment.kubernetes.io/desired-replicas": desired.to_string(),
                                             "deployment.kubernetes.io/revision": revision.to_string()},
                             "ownerReferences": [owner_ref(d, "Deployment", "apps/v1")]},
                "spec": {"replicas": desired, "selector": selector, "template": rs_template},
            });
            let id = ObjectId {
                resource: replicasets(),
                namespace: ns.into(),
                name: String::new(),
            };
            if client.create(&id, rs).is_ok() {
                scale_event(client, d, &rs_name, 0, desired);
            }
        }
        Some(rs) if replicas(rs) != desired => scale_to(client, d, rs, desired),
        Some(_) => {}
    }
    for old in rss
        .iter()
        .filter(|rs| rs["metadata"]["labels"]["pod-template-hash"] != hash.as_str())
        .filter(|rs| replicas(rs) > 0)
    {
        scale_to(client, d, old, 0);
    }
    update_status(client, d, &hash);
}

fn scale_to(client: &Client, d: &Value, rs: &Value, to: i64) {
    let from = replicas(rs);
    let mut updated = rs.clone();
    updated["spec"]["replicas"] = to.into();
    updated["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
        replicas(d).to_string().into();
    if client
        .update(&ObjectId::of(&replicasets(), rs), "", updated)
        .is_ok()
    {
        let name = rs["metadata"]["name"].as_str().unwrap_or_default();
        scale_event(client, d, name, from, to);
    }
}

fn update_status(client: &Client, d: &Value, hash: &str) {
    let meta = &d["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or_default();
    let rss = owned::owned_by(
        client.api(),
        &replicasets(),
        ns,
        meta["uid"].as_str().unwrap_or_default(),
    );
    let sum = |field: &str| -> i64 {
        rss.iter()
            .map(|rs| rs["status"][field].as_i64().unwrap_or(0))
            .sum()
    };
    let updated: i64 = rss
        .iter()
        .filter(|rs| rs["metadata"]["labels"]["pod-template-hash"] == hash)
        .map(|rs| rs["status"]["replicas"].as_i64().unwrap_or(0))
        .sum();
    let status = json!({
        "observedGeneration": meta["generation"],
        "replicas": sum("replicas"),
        "updatedReplicas": updated,
        "readyReplicas": sum("readyReplicas"),
        "availableReplicas": sum("availableReplicas"),
        "unavailableReplicas": (replicas(d) - sum("availableReplicas")).max(0),
    });
    if d["status"] == status {
        return;
    }
    let mut next = d.clone();
    next["status"] = status;
    let _ = client.update(&ObjectId::of(&deployments(), d), "status", next);
}
