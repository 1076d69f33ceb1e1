//! The ring: the Kelemetry nodes that together hold every shard, and the decisions
//! about who holds and leads what. (A *cluster* is always a Kubernetes cluster we
//! watch; the set of Kelemetry nodes is the ring.)
//!
//! The metadata Raft group applies [`RingCommand`]s to one [`RingState`] record.
//! Everything here is pure and deterministic: which replicas each shard should have
//! is a function of the active members (rendezvous hashing), so every node computes
//! the same target; the controller on the metadata leader only decides *when* a
//! shard starts moving toward it, and the shard's leader takes the steps.
//!
//! - [`members`]: node ids, members and their life cycle.
//! - [`command`]: the changes the metadata group replicates.
//! - [`state`]: the replicated state and how a command changes it.
//! - [`placement`]: targets, preferred leaders, metadata voters, the controller's plan.
//! - [`moves`]: the next membership change of a shard moving toward its target.
//! - [`duties`]: the roster of live nodes and which of them holds each watch duty.

pub mod command;
pub mod duties;
pub mod members;
pub mod moves;
pub mod placement;
pub mod state;

pub use command::RingCommand;
pub use duties::DutyRoster;
pub use members::{Member, MemberState, NodeId};
pub use moves::{next_step, Step};
pub use placement::{rendezvous, MAX_METADATA_VOTERS};
pub use state::RingState;
