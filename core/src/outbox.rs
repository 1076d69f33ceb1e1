//! The outbox: side effects that leave a shard (a link for another shard's object,
//! later an export to a tracing backend) written into replicated shard state by
//! apply, and delivered by a worker on the shard's leader until acknowledged, so a
//! leader change loses none of them.
//!
//! Each entry has a kind and a destination. Each kind has its own sequence and is
//! read and acknowledged on its own, so one slow destination never holds up the
//! entries of another kind.

use crate::link::LinkCommand;
use serde::{Deserialize, Serialize};

/// Which worker delivers an entry. Each kind numbers its entries separately and is
/// listed separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OutboxKind {
    /// The far side of an owner link, for the shard of the other object.
    Link,
}

impl OutboxKind {
    /// Every kind, in key order.
    pub const ALL: [OutboxKind; 1] = [OutboxKind::Link];

    /// The byte that separates this kind's entries in the shard's key space.
    pub fn tag(self) -> u8 {
        match self {
            Self::Link => b'l',
        }
    }

    /// Lower-case name, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
        }
    }
}

/// Where an entry is delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Destination {
    /// Another shard of this ring.
    Shard(u32),
}

/// What an entry carries; one variant per kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxPayload {
    /// A link command for the destination shard to apply.
    Link(LinkCommand),
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
        }
    }
}
