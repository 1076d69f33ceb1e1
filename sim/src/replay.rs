//! Replay of a recorded watch stream: kspan's `--capture-to` format, YAML documents
//! each preceded by a `# {"time": ..., "style": ..., "kind": ...}` comment with the time
//! it was received. Each document is written to the store in order (created, or
//! replacing the stored object of that name), so watchers see the cluster make the
//! recorded changes; no request is audited. Times move to the present: the recording
//! starts when the replay starts, and the Events' timestamps shift with it.

use crate::apiserver::ApiServer;
use crate::status::ApiError;
use crate::store::ResourceId;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// One recorded document and when it was received.
#[derive(Clone, Debug)]
pub struct RecordedChange {
    /// Receive time.
    pub time: DateTime<Utc>,
    /// The object as received.
    pub object: Value,
}

/// A whole recording, in receive order.
#[derive(Clone, Debug)]
pub struct Recording {
    /// The documents.
    pub changes: Vec<RecordedChange>,
}

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// A document is not valid YAML or has no receive-time comment.
    #[error("document {index}: {message}")]
    Document {
        /// 1-based position in the file.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// The file has no documents.
    #[error("no documents")]
    Empty,
}

#[derive(Deserialize)]
struct Received {
    time: DateTime<Utc>,
}

impl Recording {
    /// Reads the capture format.
    pub fn parse(text: &str) -> Result<Self, RecordingError> {
        let mut changes = Vec::new();
        let docs = text
            .split("\n---")
            .map(str::trim)
            .filter(|d| !d.is_empty() && *d != "---");
        for (i, doc) in docs.enumerate() {
            let err = |message: String| RecordingError::Document {
                index: i + 1,
                message,
            };
            let comment = doc
                .lines()
                .find_map(|l| l.trim().strip_prefix("# "))
                .ok_or_else(|| err("no `# {\"time\": ...}` comment".into()))?;
            let received: Received =
                serde_json::from_str(comment).map_err(|e| err(format!("comment: {e}")))?;
            let object: Value =
                serde_yaml_ng::from_str(doc).map_err(|e| err(format!("YAML: {e}")))?;
            changes.push(RecordedChange {
                time: received.time,
                object,
            });
        }
        if changes.is_empty() {
            return Err(RecordingError::Empty);
        }
        Ok(Self { changes })
    }

    /// Writes every change to `api`'s store, paced like the recording divided by
    /// `speed`; returns how many were written.
    pub async fn replay(&self, api: &ApiServer, speed: f64) -> Result<usize, ApiError> {
        let start = self.changes[0].time;
        let shift = Utc::now() - start;
        let mut previous = start;
        for change in &self.changes {
            let gap = (change.time - previous).to_std().unwrap_or_default();
            previous = change.time;
            if speed > 0.0 && !gap.is_zero() {
                tokio::time::sleep(Duration::from_secs_f64(gap.as_secs_f64() / speed)).await;
            }
            let mut object = change.object.clone();
            if object["kind"] == "Event" {
                shift_event_times(&mut object, shift);
            }
            write(api, object)?;
        }
        Ok(self.changes.len())
    }
}

/// Moves an Event's timestamps by `shift`.
fn shift_event_times(event: &mut Value, shift: chrono::TimeDelta) {
    let fields = ["eventTime", "firstTimestamp", "lastTimestamp"];
    for field in fields {
        if let Some(t) = event[field]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            let moved = t.with_timezone(&Utc) + shift;
            event[field] = Value::String(moved.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
    }
}

/// Creates `object`, or replaces the stored object of that name.
fn write(api: &ApiServer, object: Value) -> Result<(), ApiError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind_name = object["kind"].as_str().unwrap_or_default();
    let kind = api.kind_named(group, kind_name).ok_or_else(|| {
        ApiError::bad_request(format!("kind {api_version} {kind_name} is not served"))
    })?;
    let r = ResourceId::new(&kind.group, &kind.plural);
    let ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let store = api.store();
    if store.get(&r, &ns, &name).is_some() {
        store.replace(&r, &ns, &name, object, None)?;
    } else {
        store.create(&r, &ns, object)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_recorded_deployment_rollout() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/testdata/real/watch-streams/kspan_deployment-2-pods.yaml"
        );
        let rec = Recording::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        let kinds: Vec<&str> = rec
            .changes
            .iter()
            .map(|c| c.object["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.len(), 26);
        assert_eq!(kinds.iter().filter(|k| **k == "Event").count(), 19);
        assert_eq!(kinds.iter().filter(|k| **k == "Pod").count(), 4);
        assert!(rec.changes.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn events_move_to_the_present() {
        let mut e = serde_json::json!({"lastTimestamp": "2021-05-19T09:42:58Z", "eventTime": null});
        shift_event_times(&mut e, chrono::TimeDelta::seconds(60));
        assert_eq!(e["lastTimestamp"], "2021-05-19T09:43:58Z");
        assert!(e["eventTime"].is_null());
    }

    #[test]
    fn a_document_without_its_time_is_named() {
        let err = Recording::parse("---\nkind: Pod\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1: no `# {\"time\": ...}` comment"
        );
    }
}
