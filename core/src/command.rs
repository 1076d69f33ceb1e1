//! Commands proposed to a shard's Raft group, and what applying them yields.

use crate::audit::AuditRecord;
use crate::event::KubeEventRecord;
use crate::key::ObjectKey;
use crate::model::LinkRole;
use crate::version::ObjectVersionRecord;
use serde::{Deserialize, Serialize};

/// One Raft log entry's payload: a batch of commands plus the facts the leader fixed
/// when proposing, so that apply never reads a clock or a local flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Window length (span TTL) in microseconds.
    pub span_ttl_us: i64,
    /// Leader's wall clock at proposal time, microseconds since the epoch.
    pub now_us: i64,
    /// The commands, applied in order.
    pub commands: Vec<Command>,
}

/// A state change of one shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// An audit event that passed the filter.
    Audit(AuditRecord),
    /// A Kubernetes Event.
    KubeEvent(KubeEventRecord),
    /// A watched object version.
    ObjectVersion(ObjectVersionRecord),
    /// The far side of a link, delivered from another shard's outbox.
    Link(LinkCommand),
    /// Removes a delivered outbox entry.
    AckOutbox {
        /// Sequence number of the entry.
        seq: u64,
    },
    /// Deletes windows and dedupe markers older than `before_us`, at most `limit` records.
    Expire {
        /// Cut-off, microseconds since the epoch.
        before_us: i64,
        /// Upper bound on records deleted by this command.
        limit: u32,
    },
}

impl Command {
    /// The object whose shard must apply this command, if it is object-scoped.
    pub fn routing_key(&self) -> Option<&ObjectKey> {
        match self {
            Self::Audit(a) => Some(&a.key),
            Self::KubeEvent(e) => Some(&e.key),
            Self::ObjectVersion(v) => Some(&v.key),
            Self::Link(l) => Some(&l.target),
            Self::AckOutbox { .. } | Self::Expire { .. } => None,
        }
    }
}

/// Asks the target object's shard to record a link to `linked` in the target's trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCommand {
    /// The object whose trace receives the link span.
    pub target: ObjectKey,
    /// API version to use if the target's object span must be created.
    pub target_version: String,
    /// The other end of the link.
    pub linked: ObjectKey,
    /// Role of `linked` relative to `target`.
    pub role: LinkRole,
    /// Link class.
    pub class: String,
    /// Event time that caused the link; picks the window.
    pub time_us: i64,
}

/// What one command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// New state was written.
    Applied,
    /// The command was seen before; nothing changed.
    Duplicate,
    /// A maintenance command touched this many records.
    Removed(u64),
}

/// What one proposal did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalOutcome {
    /// One outcome per command, in order.
    pub outcomes: Vec<CommandOutcome>,
    /// How many outbox entries the proposal added (the outbox worker has work).
    pub outbox_added: u32,
}
