//! Commands proposed to a shard's Raft group, and what applying them yields.

use crate::audit::AuditRecord;
use crate::event::KubeEventRecord;
use crate::key::ObjectKey;
pub use crate::link::LinkCommand;
use crate::outbox::OutboxKind;
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
    /// Most export entries a shard's outbox may hold; 0 when the node exports
    /// nothing (no `--otlp-endpoint`). Past it, new spans are stored but not exported.
    pub export_backlog: u32,
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
        /// The entry's kind (each kind has its own sequence).
        kind: OutboxKind,
        /// Sequence number of the entry within its kind.
        seq: u64,
    },
    /// Stores a rendered search result (which objects, which range) under `key` until
    /// `expires_us`, so any node can render its trace ID later.
    PutResult {
        /// Cache key (the low 64 bits of the rendered trace IDs).
        key: u64,
        /// What the result contains.
        entry: ResultEntry,
        /// Absolute expiry, microseconds.
        expires_us: i64,
    },
    /// Deletes windows and dedupe markers older than `before_us`, at most `limit` records.
    Expire {
        /// Cut-off, microseconds since the epoch.
        before_us: i64,
        /// Upper bound on records deleted by this command.
        limit: u32,
    },
    /// Writes audit events whose wait for a watched change has ended (deadline before
    /// the proposal's time), at most `limit` of them.
    ReleaseWaiting {
        /// Upper bound on events written by this command.
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
            Self::AckOutbox { .. }
            | Self::PutResult { .. }
            | Self::Expire { .. }
            | Self::ReleaseWaiting { .. } => None,
        }
    }
}

/// A search result: the objects it shows and the time range it covers. Which links
/// are followed from them is decided again by the mode each time it is rendered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultEntry {
    /// Objects of the result, in the order they were found.
    pub members: Vec<ObjectKey>,
    /// Range start, microseconds.
    pub start_us: i64,
    /// Range end, microseconds.
    pub end_us: i64,
}

impl ResultEntry {
    /// The cache key: a hash of the content, so the same result always gets the same
    /// trace ID and storing it again changes nothing.
    pub fn cache_key(&self) -> u64 {
        let members: Vec<String> = self.members.iter().map(ToString::to_string).collect();
        let text = format!("{}\0{}\0{}", members.join("\0"), self.start_us, self.end_us);
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    }
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
    /// How many spans were not queued for export because the backlog was full.
    pub export_dropped: u32,
}
