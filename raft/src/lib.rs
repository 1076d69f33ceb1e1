//! Multi-raft engine: one openraft group per shard, every group's log and state machine
//! in one RocksDB instance, separated by a group prefix.
//!
//! Layout follows openraft's examples: the storage engine ([`engine`]), the log store,
//! the state machine and the network are separate modules behind openraft's traits,
//! and the type configuration is declared once ([`types`]).

pub mod engine;
mod keys;
mod log_store;
mod network;
mod shards;
mod state_machine;
pub mod types;

pub use engine::{Engine, EngineError};
pub use shards::{ProposeError, RaftSettings, ShardRaft, ShardSet, ShardSetError};
