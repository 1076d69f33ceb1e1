//! What the storage engine and Raft do, counted: how many atomic writes, keys and bytes each
//! event costs is the first thing to look at when ingest slows down.

use prometheus::{
    register_int_counter, register_int_counter_vec, register_int_gauge_vec, IntCounter, IntGauge,
    IntGaugeVec,
};
use rocksdb::WriteBatch;
use std::sync::LazyLock;

/// Counters of engine operations, one series per `op` of
/// `kelemetry_rocksdb_operations_total`.
pub struct EngineOps {
    /// Atomic write batches.
    pub writes: IntCounter,
    /// Keys put or deleted in those batches.
    pub keys: IntCounter,
    /// Bytes of those batches.
    pub bytes: IntCounter,
    /// Point reads.
    pub reads: IntCounter,
    /// Range scans started.
    pub scans: IntCounter,
    /// Syncs of the write-ahead log (each covers every append made before it).
    pub wal_syncs: IntCounter,
    /// Flushes of the applied state's memtable, which is written without the
    /// write-ahead log (see [`crate::applied_on_disk`]).
    pub state_flushes: IntCounter,
}

impl EngineOps {
    /// Counts one write batch.
    pub fn record_write(&self, batch: &WriteBatch) {
        self.writes.inc();
        self.keys.inc_by(batch.len() as u64);
        self.bytes.inc_by(batch.size_in_bytes() as u64);
    }
}

/// The engine's counters.
pub static ENGINE_OPS: LazyLock<EngineOps> = LazyLock::new(|| {
    let v = register_int_counter_vec!(
        "kelemetry_rocksdb_operations_total",
        "Storage engine operations: write batches, keys and bytes written, point reads, scans, WAL syncs, flushes of the applied state (written without the WAL).",
        &["op"]
    )
    .expect("metric names are unique");
    EngineOps {
        writes: v.with_label_values(&["write_batches"]),
        keys: v.with_label_values(&["keys_written"]),
        bytes: v.with_label_values(&["bytes_written"]),
        reads: v.with_label_values(&["point_reads"]),
        scans: v.with_label_values(&["scans"]),
        wal_syncs: v.with_label_values(&["wal_syncs"]),
        state_flushes: v.with_label_values(&["state_flushes"]),
    }
});

/// Messages refused from a leader that answers none of this node's pings.
pub static UNREACHABLE_LEADER_REFUSALS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kelemetry_raft_unreachable_leader_refusals_total",
        "Raft entries and heartbeats refused from a leader that answered no ping from this node for 2 s (a one-way partition)."
    )
    .expect("metric names are unique")
});

/// Messages refused for a shard whose replica this node deleted (see
/// [`crate::keys::removed`]).
pub static REMOVED_REPLICA_REFUSALS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kelemetry_raft_removed_replica_refusals_total",
        "Raft votes and entries refused for a shard whose replica this node deleted and is not placed on again (a candidate or leader acting on an old configuration)."
    )
    .expect("metric names are unique")
});

/// Heartbeat rounds this node's leaders triggered because a follower heard nothing
/// else (see [`crate::quiet_heartbeat`]).
pub static HEARTBEATS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kelemetry_raft_heartbeats_total",
        "Heartbeat rounds triggered by the groups this node leads, each because some follower had answered none of the AppendEntries sent to it in the last heartbeat interval (openraft skips a round while an AppendEntries to that follower is still in flight)."
    )
    .expect("metric names are unique")
});

/// How Raft messages leave this node, for `kelemetry_raft_messages_sent_total` and
/// `kelemetry_raft_streams_opened_total`.
pub struct RaftTransport {
    /// Messages sent as frames on a peer's Raft stream.
    pub stream_messages: IntCounter,
    /// Messages sent as unary RPCs (snapshots, and peers without the stream).
    pub unary_messages: IntCounter,
    /// Raft streams opened (one per peer, again after each one ends).
    pub streams_opened: IntCounter,
}

/// The Raft transport's counters.
pub static RAFT_TRANSPORT: LazyLock<RaftTransport> = LazyLock::new(|| {
    let sent = register_int_counter_vec!(
        "kelemetry_raft_messages_sent_total",
        "Raft messages sent to peers, by path: frames on the shared per-peer stream, or unary RPCs (snapshots, and peers that predate the stream).",
        &["path"]
    )
    .expect("metric names are unique");
    RaftTransport {
        stream_messages: sent.with_label_values(&["stream"]),
        unary_messages: sent.with_label_values(&["unary"]),
        streams_opened: register_int_counter!(
            "kelemetry_raft_streams_opened_total",
            "Raft streams opened to peers: one per peer, and one more each time a stream ends (a peer restarted, a connection broke)."
        )
        .expect("metric names are unique"),
    }
});

/// Where log reads for replication were served from, for
/// `kelemetry_raft_log_reads_total`.
pub struct RecentEntryReads {
    /// From the in-memory run of recent entries.
    pub hits: IntCounter,
    /// From RocksDB.
    pub misses: IntCounter,
}

/// The log readers' counters.
pub static RECENT_ENTRY_READS: LazyLock<RecentEntryReads> = LazyLock::new(|| {
    let v = register_int_counter_vec!(
        "kelemetry_raft_log_reads_total",
        "Raft log reads (a leader reading entries to send to followers), by source: recent entries kept in memory, or RocksDB.",
        &["source"]
    )
    .expect("metric names are unique");
    RecentEntryReads {
        hits: v.with_label_values(&["memory"]),
        misses: v.with_label_values(&["rocksdb"]),
    }
});

/// `kelemetry_raft_recent_entries_bytes`: the encoded bytes of log entries every local
/// replica keeps in memory for replication reads (`used`), and the bound on them
/// (`capacity`: `--raft-recent-entries-kib` times the replicas this node hosts).
pub static RECENT_ENTRY_BYTES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "kelemetry_raft_recent_entries_bytes",
        "Encoded bytes of recent Raft log entries kept in memory for replication reads, node-wide (used), and their bound (capacity: --raft-recent-entries-kib per local replica). Held decoded, they take about four times as much memory.",
        &["kind"]
    )
    .expect("metric names are unique")
});

/// The `used` series of [`RECENT_ENTRY_BYTES`], moved by every change to a run.
pub static RECENT_ENTRY_BYTES_HELD: LazyLock<IntGauge> =
    LazyLock::new(|| RECENT_ENTRY_BYTES.with_label_values(&["used"]));
