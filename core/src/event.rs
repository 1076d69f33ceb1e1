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

/// How a `(group, kind)` maps to its plural resource and scope, as API discovery
/// says (`None`: not known, the built-in table and the regular plural apply).
pub type KindLookup<'a> = &'a dyn Fn(&str, &str) -> Option<(String, bool)>;

impl KubeEventRecord {
    /// Builds the record from an Event's JSON in cluster `cluster`, mapping the
    /// involved object's kind with the built-in table.
    pub fn from_json(cluster: &str, json: &str) -> Result<Self, EventError> {
        Self::from_json_with(cluster, json, &|_, _| None)
    }

    /// Builds the record, mapping the involved object's kind to its resource with
    /// `lookup` first (discovery knows custom resources' irregular plurals).
    pub fn from_json_with(
        cluster: &str,
        json: &str,
        lookup: KindLookup<'_>,
    ) -> Result<Self, EventError> {
        let ev: RawEvent =
            serde_json::from_str(json).map_err(|e| EventError::Invalid(e.to_string()))?;
        let time = ev
            .event_time
            .as_deref()
            .or(ev.last_timestamp.as_deref())
            .ok_or(EventError::NoTimestamp)?;
        let time_us = parse_time(time).map_err(|e| EventError::Invalid(e.to_string()))?;
        let io = &ev.involved_object;
        let group = group_of_api_version(&io.api_version);
        let (resource, namespaced) = lookup(group, &io.kind)
            .unwrap_or_else(|| (resource_of_kind(&io.kind), !is_cluster_scoped(&io.kind)));
        let namespace = if namespaced {
            io.namespace.as_str()
        } else {
            ""
        };
        Ok(Self {
            key: ObjectKey::new(cluster, group, resource, namespace, io.name.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_maps_irregular_plurals_and_scope() {
        let json = r#"{"involvedObject": {"apiVersion": "zoo.example.com/v1", "kind": "Mouse",
            "namespace": "default", "name": "jerry"}, "reason": "Squeaked",
            "lastTimestamp": "2026-01-01T00:00:00Z"}"#;
        let table = KubeEventRecord::from_json("c", json).unwrap();
        assert_eq!(
            table.key.resource, "mouses",
            "the regular plural is only a guess"
        );
        let discovered = |g: &str, k: &str| {
            (g == "zoo.example.com" && k == "Mouse").then(|| ("mice".to_string(), true))
        };
        let found = KubeEventRecord::from_json_with("c", json, &discovered).unwrap();
        assert_eq!(
            found.key.to_string(),
            "c/zoo.example.com/mice/default/jerry"
        );
        let cluster_scoped = |_: &str, _: &str| Some(("mice".to_string(), false));
        let found = KubeEventRecord::from_json_with("c", json, &cluster_scoped).unwrap();
        assert_eq!(found.key.namespace, "");
    }
}
