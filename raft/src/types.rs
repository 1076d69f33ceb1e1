//! The openraft type configuration shared by every shard group.

use kelemetry_core::{Proposal, ProposalOutcome};
use std::io::Cursor;

openraft::declare_raft_types!(
    /// Shard groups replicate [`Proposal`]s and answer with [`ProposalOutcome`]s.
    pub TypeConfig:
        D = Proposal,
        R = ProposalOutcome,
);

/// Node identifiers (stable, from `--node-id` or the StatefulSet ordinal).
pub type NodeId = u64;
