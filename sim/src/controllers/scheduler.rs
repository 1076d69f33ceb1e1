//! The scheduler stand-in (`system:kube-scheduler`): binds each unscheduled Pod to a
//! node (spread by the Pod's name) through the `binding` subresource and records
//! `Scheduled`.

use super::client::{Client, ObjectId};
use super::events;
use crate::store::{Change, ChangeType, ResourceId};
use serde_json::{json, Value};

fn pods() -> ResourceId {
    ResourceId::new("", "pods")
}

/// The scheduler's client.
pub fn client(api: std::sync::Arc<crate::apiserver::ApiServer>) -> Client {
    Client::acting_as(
        api,
        crate::audit::Requester::component(
            "system:kube-scheduler",
            &["system:authenticated"],
            "kube-scheduler/v1.32.0 (linux/amd64) kubernetes/kelemetry-sim/scheduler",
        ),
    )
}

/// Schedules the Pod of a change if it has no node yet.
pub fn on_change(client: &Client, c: &Change) {
    if c.resource != pods() || c.change == ChangeType::Deleted {
        return;
    }
    let Some(name) = c.object["metadata"]["name"].as_str() else {
        return;
    };
    let Some(current) = client.api().store().get(&pods(), &c.namespace, name) else {
        return;
    };
    let pod = &current;
    let assigned = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    if assigned || pod["metadata"].get("deletionTimestamp").is_some() {
        return;
    }
    let (nodes, _) = client
        .api()
        .store()
        .list(&ResourceId::new("", "nodes"), None);
    if nodes.is_empty() {
        return;
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let pick = xxhash_rust::xxh3::xxh3_64(name.as_bytes()) as usize % nodes.len();
    let node = nodes[pick]["metadata"]["name"].as_str().unwrap_or_default();
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let binding = json!({"apiVersion": "v1", "kind": "Binding",
                         "metadata": {"name": name, "namespace": ns},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    let bound = client.create_subresource(&ObjectId::of(&pods(), pod), "binding", binding);
    if let Err(e) = &bound {
        tracing::warn!(pod = name, error = %e, "cannot bind");
    }
    if bound.is_ok() {
        let msg = format!("Successfully assigned {ns}/{name} to {node}");
        let source: Value = json!({"component": "default-scheduler"});
        events::record(client, pod, "Pod", "v1", "Scheduled", &msg, &source);
    }
}
