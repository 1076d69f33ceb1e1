//! The actors of a node: one shard actor per shard (group commit into Raft), the
//! outbox worker that delivers cross-shard links, and the periodic sweeps (retention,
//! release of audit events whose diff wait ended); the
//! ingest router that sends each command to its shard's actor; and the ring's
//! drivers ([`ring`]: agent, controller, shard moves, leadership balancer).

#![warn(missing_docs)]

mod error;
pub mod export;
pub mod metrics;
mod outbox;
mod pipeline;
mod relay_heads;
mod retention;
pub mod ring;
mod router;
mod shard;
mod sweep;
mod waits;

pub use error::SubmitError;
pub use pipeline::{Pipeline, PipelineSettings};
pub use router::IngestRouter;
pub use shard::{BatchFate, ForwardFuture, ForwardManyFuture, Forwarder};
