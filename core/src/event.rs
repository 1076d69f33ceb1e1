//! Kubernetes `core/v1` Events as commands (SPEC 4).

use crate::audit::parse_time;
use crate::key::ObjectKey;
use crate::kinds::{
    group_of_api_version, is_cluster_scoped, resource_of_kind, version_of_api_version,
};
use serde::{Deserialize, Serialize};

/// A Kubernetes Event about one object, ready to become an event span.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeEventRecord {
    /// The involved object.
    pub key: ObjectKey,
    /// API version of the involved object.
    pub version: String,
    /// Event uid; with `resource_version` the dedupe key.
    pub uid: String,
    /// Event resourceVersion (a count increment is a new version and a new span).
    pub resource_version: String,
    /// Span title.
    pub reason: String,
    /// The `event/message` log.
    pub message: String,
    /// `source.component`.
    pub source: String,
    /// `action`.
    pub action: String,
    /// `eventTime`, else `lastTimestamp`, microseconds.
    pub time_us: i64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct InvolvedObject {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    uid: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Deserialize, Default)]
struct Source {
    #[serde(default)]
    component: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    #[serde(default)]
    metadata: Meta,
    involved_object: InvolvedObject,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    source: Source,
    #[serde(default)]
    action: String,
    event_time: Option<String>,
    last_timestamp: Option<String>,
}

/// Why an Event cannot be traced.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// Not a decodable Event.
    #[error("invalid Event: {0}")]
    Invalid(String),
    /// Neither `eventTime` nor `lastTimestamp` is set.
    #[error("Event has no eventTime or lastTimestamp")]
    NoTimestamp,
}

impl KubeEventRecord {
    /// Builds the record from an Event's JSON in cluster `cluster`.
    pub fn from_json(cluster: &str, json: &str) -> Result<Self, EventError> {
        let ev: RawEvent =
            serde_json::from_str(json).map_err(|e| EventError::Invalid(e.to_string()))?;
        let time = ev
            .event_time
            .as_deref()
            .or(ev.last_timestamp.as_deref())
            .ok_or(EventError::NoTimestamp)?;
        let time_us = parse_time(time).map_err(|e| EventError::Invalid(e.to_string()))?;
        let io = &ev.involved_object;
        let namespace = if is_cluster_scoped(&io.kind) {
            ""
        } else {
            io.namespace.as_str()
        };
        Ok(Self {
            key: ObjectKey::new(
                cluster,
                group_of_api_version(&io.api_version),
                resource_of_kind(&io.kind),
                namespace,
                io.name.clone(),
            ),
            version: version_of_api_version(&io.api_version).to_string(),
            uid: ev.metadata.uid,
            resource_version: ev.metadata.resource_version,
            reason: ev.reason,
            message: ev.message,
            source: ev.source.component,
            action: ev.action,
            time_us,
        })
    }
}
