//! Kubernetes Events as the real components record them: `core/v1` Events with the
//! involved object, reason, message and source component, created under the
//! recording component's identity.

use super::client::{Client, ObjectId};
use crate::store::ResourceId;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

static EVENT_SEQ: AtomicU64 = AtomicU64::new(0);

/// Records a `Normal` Event about `involved` (of `kind` and `api_version`).
pub fn record(
    client: &Client,
    involved: &Value,
    kind: &str,
    api_version: &str,
    reason: &str,
    message: &str,
    source: &Value,
) {
    let meta = &involved["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or("default").to_string();
    let name = meta["name"].as_str().unwrap_or_default();
    let n = EVENT_SEQ.fetch_add(1, Ordering::Relaxed);
    let now = chrono::Utc::now();
    let ts = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let micro = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let suffix = xxhash_rust::xxh3::xxh3_64(format!("{n}/{micro}/{name}").as_bytes());
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{suffix:016x}"), "namespace": ns},
        "involvedObject": {"kind": kind, "namespace": meta["namespace"], "name": name,
                           "uid": meta["uid"], "apiVersion": api_version,
                           "resourceVersion": meta["resourceVersion"]},
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": ts,
        "lastTimestamp": ts,
        "count": 1,
        "type": "Normal",
        "eventTime": null,
        "reportingComponent": source["component"],
        "reportingInstance": source["host"].as_str().unwrap_or(""),
    });
    let id = ObjectId {
        resource: ResourceId::new("", "events"),
        namespace: ns,
        name: String::new(),
    };
    if let Err(e) = client.create(&id, event) {
        tracing::warn!(reason, error = %e, "cannot record an Event");
    }
}
