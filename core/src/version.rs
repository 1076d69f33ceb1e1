//! Watched object versions as commands: the input of watch-based diffs.

use crate::key::ObjectKey;
use crate::kinds::{group_of_api_version, resource_of_kind, version_of_api_version};
use serde::{Deserialize, Serialize};

/// One version of an object as a watcher saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersionRecord {
    /// The object.
    pub key: ObjectKey,
    /// API version.
    pub version: String,
    /// `metadata.resourceVersion`; the dedupe key.
    pub resource_version: String,
    /// The object as JSON text, redacted ([`crate::redact`]).
    pub object_json: String,
    /// Whether this is the final (deleted) state.
    pub deleted: bool,
    /// When the watcher saw it, microseconds.
    pub observed_us: i64,
}

impl ObjectVersionRecord {
    /// Builds the record of an object whose resource the watcher knows from discovery
    /// (list items need not carry `apiVersion` and `kind`). Redacts the object.
    pub fn new(
        key: ObjectKey,
        version: impl Into<String>,
        resource_version: impl Into<String>,
        object_json: &str,
        deleted: bool,
        observed_us: i64,
    ) -> Self {
        let version = version.into();
        // A watched object always parses (the client decoded it); if one ever did not,
        // nothing of it is kept rather than content redaction could not inspect.
        let object_json =
            crate::redact::redact_json(object_json, &key, &version).unwrap_or_else(|_| "{}".into());
        Self {
            key,
            version,
            resource_version: resource_version.into(),
            object_json,
            deleted,
            observed_us,
        }
    }

    /// Builds the record from an object's JSON (which must carry `apiVersion`, `kind`,
    /// `metadata.name` and `metadata.resourceVersion`).
    pub fn from_json(cluster: &str, json: &str, deleted: bool, observed_us: i64) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let api_version = v.get("apiVersion")?.as_str()?;
        let kind = v.get("kind")?.as_str()?;
        let meta = v.get("metadata")?;
        let name = meta.get("name")?.as_str()?;
        let namespace = meta.get("namespace").and_then(|n| n.as_str()).unwrap_or("");
        let key = ObjectKey::new(
            cluster,
            group_of_api_version(api_version),
            resource_of_kind(kind),
            namespace,
            name,
        );
        let rv = meta.get("resourceVersion")?.as_str()?;
        Some(Self::new(
            key,
            version_of_api_version(api_version),
            rv,
            json,
            deleted,
            observed_us,
        ))
    }
}
