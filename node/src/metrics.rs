//! Node-level Prometheus metrics and the `/metrics` endpoint.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use kelemetry_raft::ShardSet;
use prometheus::{
    register_int_counter_vec, register_int_gauge, Encoder, IntCounterVec, IntGauge, TextEncoder,
};
use std::sync::{Arc, LazyLock};

/// RocksDB memory by part (`block_cache`, `memtables`, `table_readers`: index and
/// filter blocks outside the cache) and kind (`capacity`: the
/// bound set by the flags, `used`: now).
pub static ROCKSDB_MEMORY: LazyLock<prometheus::IntGaugeVec> = LazyLock::new(|| {
    prometheus::register_int_gauge_vec!(
        "kelemetry_rocksdb_memory_bytes",
        "RocksDB memory by part and kind (capacity: the bound from the flags; used: now).",
        &["part", "kind"]
    )
    .expect("metric names are unique")
});

/// RocksDB's table files by column family (`state`, `log`) and kind (`live`: bytes
/// of the live files; `pending_compaction`: bytes compactions must still rewrite, the
/// debt that slows ingest on a grown store).
pub static ROCKSDB_TABLES: LazyLock<prometheus::IntGaugeVec> = LazyLock::new(|| {
    prometheus::register_int_gauge_vec!(
        "kelemetry_rocksdb_table_bytes",
        "RocksDB table files by column family (state, log) and kind (live; pending_compaction: bytes compactions must still rewrite).",
        &["family", "kind"]
    )
    .expect("metric names are unique")
});

/// RocksDB background jobs running now, by job (`compaction`, `flush`).
pub static ROCKSDB_BACKGROUND: LazyLock<prometheus::IntGaugeVec> = LazyLock::new(|| {
    prometheus::register_int_gauge_vec!(
        "kelemetry_rocksdb_background_jobs",
        "RocksDB background jobs running now, by job (compaction, flush).",
        &["job"]
    )
    .expect("metric names are unique")
});

/// Whether this node's watcher of a resource has finished its initial list and is
/// following changes (1), by cluster and `group/resource` (`events` for Events).
pub static WATCH_SYNCED: LazyLock<prometheus::IntGaugeVec> = LazyLock::new(|| {
    prometheus::register_int_gauge_vec!(
        "kelemetry_watch_synced",
        "1 while this node's watcher of a resource has listed it and follows its changes.",
        &["cluster", "resource"]
    )
    .expect("metric names are unique")
});

/// Event watches that resumed from the cursor a previous duty holder committed.
pub static WATCH_RESUMED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kelemetry_watch_resumed_total",
        "Event watches this node resumed from the committed cursor instead of listing again.",
        &["cluster"]
    )
    .expect("metric names are unique")
});

/// Audit events by cluster, source and result.
pub static INGEST_EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kelemetry_ingest_events_total",
        "Ingested items by cluster, source and result (accepted, duplicate, filtered_<reason>, rejected, failed).",
        &["cluster", "source", "result"]
    )
    .expect("metric names are unique")
});

/// Requests refused by authentication, by surface and status.
pub static AUTH_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kelemetry_auth_refused_total",
        "Requests refused by authentication, by surface (webhook, query, admin) and status.",
        &["realm", "code"]
    )
    .expect("metric names are unique")
});

/// Webhook requests by cluster and HTTP status.
pub static WEBHOOK_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kelemetry_webhook_requests_total",
        "Audit webhook requests by cluster and HTTP status code.",
        &["cluster", "code"]
    )
    .expect("metric names are unique")
});

/// Shards this node leads.
pub static SHARD_LEADERS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "kelemetry_shard_leaders",
        "Shards whose Raft leader is this node."
    )
    .expect("metric names are unique")
});

/// Shards without a known leader.
pub static SHARDS_WITHOUT_LEADER: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "kelemetry_shards_without_leader",
        "Shards for which this node knows no Raft leader (writes to them fail)."
    )
    .expect("metric names are unique")
});

/// Shard replicas this node holds.
pub static LOCAL_REPLICAS: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "kelemetry_local_replicas",
        "Shard replicas held by this node."
    )
    .expect("metric names are unique")
});

/// Shards whose replicas are moving.
pub static SHARDS_MOVING: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "kelemetry_shards_moving",
        "Shards whose voters differ from their placement target (moves in progress)."
    )
    .expect("metric names are unique")
});

/// The webhook body budget (`capacity`, `--max-inflight-body-bytes`) and the bytes
/// of bodies being processed now (`in_flight`).
pub static WEBHOOK_BODY_BYTES: LazyLock<prometheus::IntGaugeVec> = LazyLock::new(|| {
    prometheus::register_int_gauge_vec!(
        "kelemetry_webhook_body_bytes",
        "Webhook bodies: the node-wide bound (capacity, --max-inflight-body-bytes) and the bytes being processed now (in_flight).",
        &["kind"]
    )
    .expect("metric names are unique")
});

/// Damaged databases this process found at start-up and moved aside.
pub static DATA_REBUILDS: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "kelemetry_damaged_databases_moved_total",
        "Damaged databases found at start-up and moved aside (the node's replicas are then rebuilt from its peers)."
    )
    .expect("metric names are unique")
});

/// 1 while this node, having lost its data, waits to be readmitted.
pub static AWAITING_READMISSION: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "kelemetry_awaiting_readmission",
        "1 while this node lost its data and waits until its old replicas are moved off and it may join again."
    )
    .expect("metric names are unique")
});

/// Renders every registered metric, refreshing the leadership gauges first.
pub async fn render(shards: Arc<ShardSet>) -> impl IntoResponse {
    let locals = shards.locals();
    SHARD_LEADERS.set(locals.iter().filter(|s| s.is_leader()).count() as i64);
    let placed = shards.placed_locals();
    SHARDS_WITHOUT_LEADER.set(placed.iter().filter(|s| !s.has_leader()).count() as i64);
    LOCAL_REPLICAS.set(locals.len() as i64);
    let recent_capacity = shards.settings().recent_entry_bytes * locals.len();
    kelemetry_raft::metrics::RECENT_ENTRY_BYTES
        .with_label_values(&["capacity"])
        .set(recent_capacity as i64);
    // Registered here so the series shows (at 0) before any entry is kept.
    kelemetry_raft::metrics::RECENT_ENTRY_BYTES_HELD.add(0);
    SHARDS_MOVING.set(shards.ring().moving().len() as i64);
    AWAITING_READMISSION.set(i64::from(shards.awaits_readmission()));
    // Registered here so the counter shows (at 0) on a node that never moved one.
    DATA_REBUILDS.inc_by(0);
    let (bounds, used) = shards.engine_memory();
    for (part, kind, bytes) in [
        ("block_cache", "capacity", bounds.block_cache_bytes),
        ("block_cache", "used", used.block_cache_bytes),
        ("memtables", "capacity", bounds.write_buffer_bytes * 2),
        ("memtables", "used", used.memtable_bytes),
        ("table_readers", "used", used.table_reader_bytes),
    ] {
        ROCKSDB_MEMORY
            .with_label_values(&[part, kind])
            .set(bytes as i64);
    }
    let tables = shards.engine_tables();
    for (family, t) in [("state", tables.state), ("log", tables.log)] {
        for (kind, bytes) in [
            ("live", t.live_bytes),
            ("pending_compaction", t.pending_compaction_bytes),
        ] {
            ROCKSDB_TABLES
                .with_label_values(&[family, kind])
                .set(bytes as i64);
        }
    }
    for (job, running) in [
        ("compaction", tables.running_compactions),
        ("flush", tables.running_flushes),
    ] {
        ROCKSDB_BACKGROUND
            .with_label_values(&[job])
            .set(running as i64);
    }
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&prometheus::gather(), &mut buf) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    ([(CONTENT_TYPE, encoder.format_type().to_string())], buf)
}
