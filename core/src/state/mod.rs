//! The shard state machine: how commands change a shard's records, and how those
//! records are read back.
//!
//! Apply is deterministic: it reads only the shard's own records and the proposal,
//! derives every ID by hashing, and takes time from the events or the proposal. The
//! storage behind it is abstract ([`KvRead`]) so the Raft crate can put it on RocksDB
//! and tests can put it on a map.

mod apply;
mod apply_audit;
mod expire;
pub mod hot_keys;
mod join;
mod kv;
mod outbox;
mod read;
pub mod schema;
mod window_index;

pub use apply::{apply_proposal, ShardContext};
pub use hot_keys::{HotKeys, HotView};
pub use kv::{KvRead, MemKv, Overlay, StateError, WriteOp};
pub use read::{
    clusters, find_trace_by_id, find_traces, first_wait_deadline, list_outbox, load_export,
    load_result, load_trace, object_windows, outbox_len, ShardRead, ShardReadResult, StoredTrace,
    TraceQuery,
};

#[cfg(test)]
mod tests;
