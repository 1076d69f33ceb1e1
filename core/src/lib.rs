//! Pure domain logic of Kelemetry, free of I/O.
//!
//! Everything that decides *what* is stored lives here so that it can be unit-tested
//! without RocksDB or Raft, and so that every replica that applies the same command log
//! computes the same bytes (see `state`).

#![warn(missing_docs)]

pub mod audit;
pub mod codec;
pub mod command;
pub mod diff;
pub mod display;
pub mod event;
pub mod filter;
pub mod ids;
pub mod key;
pub mod kinds;
pub mod link;
pub mod model;
pub mod outbox;
pub mod owner;
pub mod redact;
pub mod ring;
pub mod state;
pub mod version;
pub mod window;

pub use command::{Command, CommandOutcome, Proposal, ProposalOutcome};
pub use key::ObjectKey;
