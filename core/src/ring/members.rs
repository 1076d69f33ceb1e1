//! Who is in the ring: the Kelemetry nodes, each with its addresses and where it is in
//! its life cycle.

use serde::{Deserialize, Serialize};

/// Node identifiers (stable: `--node-id` or the StatefulSet ordinal).
pub type NodeId = u64;

/// Where a member is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberState {
    /// Admitted to the metadata group, not yet eligible for replicas.
    Joining,
    /// Holds replicas and may lead shards.
    Active,
    /// Replicas and leadership are being moved off (drain, or down too long).
    Draining,
    /// Holds nothing and takes no part in the ring.
    Removed,
}

impl MemberState {
    /// Lower-case name used in JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joining => "joining",
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Removed => "removed",
        }
    }
}

/// One node of the ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Node id.
    pub id: NodeId,
    /// Peer RPC address (`host:port`).
    pub peer_addr: String,
    /// Webhook and admin HTTP address (`host:port`), for the CLI and status.
    pub http_addr: String,
    /// Life-cycle state.
    pub state: MemberState,
}
