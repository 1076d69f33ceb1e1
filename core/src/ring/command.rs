//! Changes to the ring state, as the metadata group's log carries them.

use super::members::{Member, MemberState, NodeId};
use serde::{Deserialize, Serialize};

/// A change to the ring state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RingCommand {
    /// First command of a new ring: shard count, replication factor and the
    /// initial members (all active); every shard's target and voters are set from
    /// them. Ignored once the ring has members.
    Init {
        /// Shard count.
        shards: u32,
        /// Replicas per shard.
        replicas: u32,
        /// Initial members.
        members: Vec<Member>,
    },
    /// A node asks to join (or rejoin after removal); it enters as joining.
    Join(Member),
    /// A member changes state.
    SetState {
        /// The member.
        id: NodeId,
        /// Its new state.
        state: MemberState,
    },
    /// The controller starts moving a shard toward these replicas.
    SetTarget {
        /// The shard.
        shard: u32,
        /// Wanted voters.
        nodes: Vec<NodeId>,
    },
    /// A shard's leader reports the voters its group has now.
    ReportVoters {
        /// The shard.
        shard: u32,
        /// Current voters.
        nodes: Vec<NodeId>,
    },
    /// The metadata leader names the live members watch duties are spread over (a
    /// change bumps the roster's epoch).
    SetRoster {
        /// Live active members.
        nodes: Vec<NodeId>,
    },
    /// A duty holder records how far its watch has committed, so the next holder
    /// resumes there. Ignored unless `node` holds `duty` under the current roster
    /// and `epoch` is the roster's epoch: a node that lost the duty cannot move it.
    SetCursor {
        /// The duty (`events/<cluster>`).
        duty: String,
        /// resourceVersion up to which everything is committed.
        resource_version: String,
        /// The holder writing it.
        node: NodeId,
        /// The roster epoch under which it holds the duty.
        epoch: u64,
    },
}
