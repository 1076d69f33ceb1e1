//! Multi-raft engine: one openraft group per shard, every group's log and state machine
//! in one RocksDB instance, separated by a group prefix.
//!
//! Layout follows openraft's examples: the storage engine ([`engine`]), the log store,
//! the state machine and the network are separate modules behind openraft's traits,
//! and the type configuration is declared once ([`types`]).

// openraft's storage traits fix `StorageError` (about 200 bytes) as the error type of
// every storage call; our helpers return it unchanged rather than boxing and unboxing.
#![allow(clippy::result_large_err)]

pub mod engine;
mod handover;
mod keys;
mod log_store;
mod network;
mod shards;
mod state_machine;
pub mod types;
mod wal_sync;

pub use engine::{Engine, EngineError};
pub use handover::HandoverPacing;
pub use network::{PeerChannels, PeerTls};
pub use shards::{
    ProposeError, RaftSettings, ShardRaft, ShardSet, ShardSetError, META_SHARD, QUORUM_STALE_MS,
};
pub use types::{GroupRequest, NodeId};
