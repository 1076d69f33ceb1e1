//! The openraft type configuration shared by every group (shards and metadata).

use kelemetry_core::ring::RingCommand;
use kelemetry_core::{Proposal, ProposalOutcome};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a group's log carries: shard groups replicate [`Proposal`]s, the metadata
/// group replicates [`RingCommand`]s. One type keeps one openraft configuration (and
/// one network and storage implementation) for every group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum GroupRequest {
    /// A batch of shard commands, shared: an entry is cloned for every follower it
    /// is sent to and for the log's in-memory run, and a clone is a reference count.
    /// Encoded as the proposal itself.
    Shard(Arc<Proposal>),
    /// A change to the ring state (metadata group only).
    Ring(RingCommand),
}

impl std::fmt::Display for GroupRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shard(p) => write!(f, "proposal of {} commands", p.commands.len()),
            Self::Ring(c) => write!(f, "ring {c:?}"),
        }
    }
}

openraft::declare_raft_types!(
    /// Groups replicate [`GroupRequest`]s and answer with [`ProposalOutcome`]s
    /// (empty for metadata commands).
    pub TypeConfig:
        D = GroupRequest,
        R = ProposalOutcome,
        SnapshotData = tokio::fs::File,
);

/// Node identifiers (stable, from `--node-id` or the StatefulSet ordinal).
pub type NodeId = u64;
