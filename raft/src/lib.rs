//! Multi-raft engine: one openraft group per shard plus the metadata group, every
//! group's log and state machine in one RocksDB instance, separated by a group prefix.
//!
//! Layout, in the shape of openraft's own examples:
//! - [`types`]: the type configuration, declared once for every group.
//! - [`engine`]: the storage engine (the only module that touches RocksDB), and
//!   [`keys`] for the key layout inside it; [`wal_sync`] groups WAL syncs.
//! - [`log_store`] and [`state_machine`]: openraft's storage traits over the engine;
//!   [`committed`]: the commit index they persist together;
//!   [`applied_on_disk`]: how far the applied state, written without the WAL, is on
//!   disk (the log is purged no further);
//!   [`recent_entries`]: the newest log entries in memory, for replication reads.
//! - [`network`]: the Raft network, client side and server side, over the peer RPC.
//! - [`group`]: the handle of one group (propose, leadership, reads);
//!   [`membership`]: its membership changes; [`handover`]: moving its leadership.
//! - [`registry`]: every group of this node, replica lifecycle, bootstrap, shutdown;
//!   [`routing`] and [`hints`]: where to send work for a shard this node does not
//!   lead.
//! - [`quiet_heartbeat`]: heartbeats only for followers replication left quiet.
//! - [`storage_fault`]: the first failure the engine cannot go on from.
//! - [`metrics`]: what the engine does, counted for `/metrics`.
//! - [`settings`] and [`error`]: configuration and typed errors.

// openraft's storage traits fix `StorageError` (about 200 bytes) as the error type of
// every storage call; our helpers return it unchanged rather than boxing and unboxing.
#![allow(clippy::result_large_err)]
#![warn(missing_docs)]

pub mod applied_on_disk;
pub mod committed;
pub mod disk_guard;
pub mod engine;
pub mod error;
pub mod group;
pub mod handover;
pub mod hints;
pub mod keys;
pub mod log_store;
pub mod lost_data;
pub mod membership;
pub mod metrics;
pub mod network;
pub mod peer_health;
pub mod quiet_heartbeat;
pub mod recent_entries;
pub mod registry;
pub mod routing;
pub mod settings;
pub mod snapshot_file;
pub mod state_machine;
pub mod storage_fault;
pub mod types;
pub mod wal_sync;

pub use engine::{Engine, EngineError, EngineMemory, EngineMemoryUse, EngineTables, FamilyTables};
pub use error::{GroupError, InboundError, PeerError, ShardSetError};
pub use group::{ShardRaft, META_SHARD};
pub use network::{
    serve_raft_stream, PeerChannels, PeerTls, RaftAnswers, PEER_CONNECTION_WINDOW,
    PEER_STREAM_WINDOW,
};
pub use recent_entries::DEFAULT_RECENT_ENTRY_BYTES;
pub use registry::ShardSet;
pub use settings::{RaftSettings, DEFAULT_WAL_SYNC_LINGER, QUORUM_STALE_MS};
pub use types::{GroupRequest, NodeId};
