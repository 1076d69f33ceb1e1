//! The ring's drivers on a running node: who owns what, and who decides. The
//! decisions themselves are pure functions in `kelemetry_core::ring`; the actors
//! and tasks here carry them out.
//!
//! - [`agent`]: one actor per node: registers the node, runs the controller while the
//!   node leads the metadata group, moves the shards it leads, opens and deletes
//!   local replicas as placement changes.
//! - [`controller`]: the metadata leader's duties (metadata voters, dead nodes, the
//!   placement plan).
//! - [`shard_moves`]: a shard leader's membership steps toward the target.
//! - [`balancer`]: spreads shard leadership by handing shards over.
//! - [`pacing`]: when a leader may hand a group over.
//! - [`proposer`]: proposing ring commands at the metadata leader from any node;
//!   draining a member.
//! - [`readmission`]: letting a node that lost its data back in once its id holds
//!   no replica.

pub mod agent;
pub mod balancer;
pub mod controller;
pub mod pacing;
pub mod proposer;
pub mod readmission;
pub mod shard_moves;

pub use agent::{start, AgentArgs, AgentMsg, RingAgent};
pub use controller::ControlSettings;
pub use proposer::DrainError;

use kelemetry_raft::{GroupError, PeerError};
use std::time::Duration;

/// Why a ring operation (a ring command, a membership step, a handover) did not
/// happen; the next round of the agent retries it.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// The group refused or lost the operation (a not-leader error names the leader).
    #[error(transparent)]
    Group(#[from] GroupError),
    /// A peer could not be reached or refused.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The operation did not finish in time (a change proposed by a leader that then
    /// loses its term may never answer).
    #[error("{what} of shard {shard} not finished within {timeout:?}")]
    Timeout {
        /// What was being done.
        what: String,
        /// The shard (`u32::MAX` for the metadata group).
        shard: u32,
        /// The bound.
        timeout: Duration,
    },
    /// A node that lost its data may not join yet (its old replicas are still
    /// being moved off).
    #[error("{0}")]
    NotYet(String),
}
