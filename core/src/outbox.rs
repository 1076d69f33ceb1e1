//! The outbox: side effects that leave a shard (a link for another shard's object,
//! a span for the OTLP endpoint) written into replicated shard state by
//! apply, and delivered by a worker on the shard's leader until acknowledged, so a
//! leader change loses none of them.
//!
//! Each entry has a kind and a destination. Each kind has its own sequence and is
//! read and acknowledged on its own, so one slow destination never holds up the
//! entries of another kind.

use crate::key::ObjectKey;
use crate::link::LinkCommand;
use serde::{Deserialize, Serialize};

/// Which worker delivers an entry. Each kind numbers its entries separately and is
/// listed separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OutboxKind {
    /// The far side of an owner link, for the shard of the other object.
    Link,
    /// A stored span, for the OTLP endpoint (`--otlp-endpoint`).
    Export,
}

impl OutboxKind {
    /// Every kind, in key order.
    pub const ALL: [OutboxKind; 2] = [OutboxKind::Export, OutboxKind::Link];

    /// The byte that separates this kind's entries in the shard's key space.
    pub fn tag(self) -> u8 {
        match self {
            Self::Link => b'l',
            Self::Export => b'e',
        }
    }

    /// Lower-case name, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Export => "export",
        }
    }
}

/// Where an entry is delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    /// Another shard of this ring.
    Shard(u32),
    /// The OTLP endpoint the node exports to.
    Otlp,
}

/// What an entry carries; one variant per kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxPayload {
    /// A link command for the destination shard to apply.
    Link(LinkCommand),
    /// A stored span to export, by reference: the exporter reads it from the shard
    /// when it sends it, so the outbox stays small.
    Export(ExportRef),
}

/// Which stored span an export entry names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRef {
    /// The object whose trace holds the span.
    pub key: ObjectKey,
    /// Start of the window (trace) the span is in, microseconds.
    pub window_start_us: i64,
    /// The span.
    pub item: ExportItem,
}

/// A span of one object's window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportItem {
    /// The object span itself.
    Object,
    /// An event span, by span ID.
    Event(u64),
    /// The link span to this object.
    Link(ObjectKey),
}

/// One undelivered side effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Where it goes.
    pub destination: Destination,
    /// What it carries.
    pub payload: OutboxPayload,
}

impl OutboxEntry {
    /// The kind of the entry, from its payload.
    pub fn kind(&self) -> OutboxKind {
        match self.payload {
            OutboxPayload::Link(_) => OutboxKind::Link,
            OutboxPayload::Export(_) => OutboxKind::Export,
        }
    }
}
