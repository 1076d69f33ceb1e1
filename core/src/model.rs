//! Records kept in shard state: the stored form of spans, links and object history.

use crate::key::ObjectKey;
use crate::window::Window;
use serde::{Deserialize, Serialize};

/// Where an event span came from; also its Jaeger service name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventSource {
    /// A kube-apiserver audit event.
    Audit,
    /// A Kubernetes `core/v1` Event.
    Event,
}

impl EventSource {
    /// The service / `zzz-traceSource` name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Audit => "audit",
            Self::Event => "event",
        }
    }
}

/// Log type of an audit creation or deletion snapshot.
pub const LOG_SNAPSHOT: &str = "audit/objectSnapshot";
/// Log type of an audit diff.
pub const LOG_DIFF: &str = "audit/objectDiff";
/// Log type of a failed request's status.
pub const LOG_REAL_ERROR: &str = "realError";
/// Log type of informational notes such as `No-op update`.
pub const LOG_REAL_VERBOSE: &str = "realVerbose";
/// Log type of a problem Kelemetry had with a span (such as a diff that never came).
pub const LOG_KELEMETRY_ERROR: &str = "kelemetryError";
/// Log type of a Kubernetes Event's message.
pub const LOG_EVENT_MESSAGE: &str = "event/message";

/// One span log: a message with its `zzz-logType`, timestamped at the span start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Value of `zzz-logType` (see the `LOG_*` constants).
    pub log_type: String,
    /// The log's `event` field.
    pub message: String,
}

/// The pseudo span that roots an object's trace for one window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectSpanRecord {
    /// The object.
    pub key: ObjectKey,
    /// API version last seen for it (`v1`).
    pub version: String,
    /// The window this trace covers.
    pub window: Window,
    /// Trace ID, derived from key and window.
    pub trace_id: u128,
    /// Span ID of the object span.
    pub span_id: u64,
}

/// A real event (audit request or Kubernetes Event) under an object span.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSpanRecord {
    /// Span ID, derived from the audit ID or the Event uid and resourceVersion.
    pub span_id: u64,
    /// Audit or Event.
    pub source: EventSource,
    /// Operation name, e.g. `kwok-admin update status` or `ScalingReplicaSet`.
    pub title: String,
    /// Start, microseconds since the epoch.
    pub start_us: i64,
    /// End, microseconds since the epoch.
    pub end_us: i64,
    /// API version of the object at that event.
    pub version: String,
    /// Event tags, in order.
    pub tags: Vec<(String, String)>,
    /// Logs, in order.
    pub logs: Vec<LogRecord>,
}

/// Orientation of a link, seen from the trace that stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LinkRole {
    /// The linked object owns this one.
    Parent,
    /// The linked object is owned by this one.
    Child,
}

impl LinkRole {
    /// The `linkRole` tag value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Parent => "parent",
            Self::Child => "child",
        }
    }

    /// The role the other side records.
    pub fn reversed(&self) -> Self {
        match self {
            Self::Parent => Self::Child,
            Self::Child => Self::Parent,
        }
    }
}

/// Owner-reference links carry this class.
pub const LINK_CLASS_CHILDREN: &str = "children";

/// A link pseudo span: an edge from this object's trace to another object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// Span ID, derived from both keys and the window.
    pub span_id: u64,
    /// The other object.
    pub linked: ObjectKey,
    /// Role of the linked object relative to this one.
    pub role: LinkRole,
    /// Link class (`children` for owner references).
    pub class: String,
}

/// The last known version of an object, the base of the next diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// `metadata.resourceVersion` of the stored object.
    pub resource_version: String,
    /// `kind` of the stored object, to recognise responses that are not the object.
    pub kind: String,
    /// The object as JSON text.
    pub object_json: String,
    /// Whether the object has been deleted.
    pub deleted: bool,
}

/// A diff between two versions, keyed in state by the newer resourceVersion, so an audit
/// event naming that version can pick up a diff a watcher computed first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchRecord {
    /// Rendered diff lines.
    pub lines: String,
    /// When the newer version was observed, microseconds since the epoch.
    pub observed_us: i64,
}

/// What a watched change did to its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    /// The first version seen of the object (or of a re-created one).
    Created,
    /// A version that replaced an earlier one.
    Updated,
    /// The object's final state.
    Deleted,
}

/// One watched change of an object, indexed by observation time so that an audit
/// event without resourceVersions can find the change it caused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// resourceVersion after the change.
    pub resource_version: String,
    /// resourceVersion before the change (empty for a creation).
    pub from_resource_version: String,
    /// What happened.
    pub kind: ChangeKind,
}

/// An audit event parked until the watched change that carries its diff or snapshot
/// arrives, or until `deadline_us`, whichever is first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitRecord {
    /// The audit event, as accepted.
    pub audit: crate::audit::AuditRecord,
    /// When it is written without the diff, microseconds (leader's clock).
    pub deadline_us: i64,
}
