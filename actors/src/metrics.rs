//! Prometheus metrics of the write path (registered in the default registry).

use prometheus::{
    register_histogram, register_int_counter, register_int_counter_vec, register_int_gauge_vec,
    Histogram, IntCounter, IntCounterVec, IntGaugeVec,
};
use std::sync::LazyLock;

/// Time from proposing a batch to its commit and apply.
pub static COMMIT_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "kelemetry_commit_duration_seconds",
        "Time from proposing a batch to a shard's Raft group until it is committed and applied.",
        vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
    )
    .expect("metric names are unique")
});

/// Commands per proposed batch.
pub static BATCH_COMMANDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "kelemetry_proposal_batch_commands",
        "Commands carried by one Raft proposal (group commit batch size).",
        vec![1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0]
    )
    .expect("metric names are unique")
});

/// Commands waiting in each shard actor.
pub static QUEUE_DEPTH: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "kelemetry_shard_queue_depth",
        "Commands waiting in a shard actor to be proposed.",
        &["shard"]
    )
    .expect("metric names are unique")
});

/// The bound on each shard actor's queue (`--shard-queue-commands`), beside
/// [`QUEUE_DEPTH`]: a depth near it means 429s are coming.
pub static QUEUE_CAPACITY: LazyLock<prometheus::IntGauge> = LazyLock::new(|| {
    prometheus::register_int_gauge!(
        "kelemetry_shard_queue_capacity",
        "Commands one shard actor may queue before submissions are refused (--shard-queue-commands)."
    )
    .expect("metric names are unique")
});

/// Submissions refused because a shard queue was full.
pub static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kelemetry_shard_rejected_total",
        "Submissions a shard actor refused, by reason.",
        &["reason"]
    )
    .expect("metric names are unique")
});

/// Outbox entries delivered to their target shard.
pub static OUTBOX_DELIVERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kelemetry_outbox_delivered_total",
        "Cross-shard link commands delivered from an outbox, by result.",
        &["result"]
    )
    .expect("metric names are unique")
});

/// Outbox entries waiting on a shard this node leads, by shard and kind: a growing
/// value means cross-shard links (or exports) lag behind ingest.
pub static OUTBOX_BACKLOG: LazyLock<prometheus::IntGaugeVec> = LazyLock::new(|| {
    prometheus::register_int_gauge_vec!(
        "kelemetry_outbox_backlog",
        "Outbox entries waiting for delivery on shards this node leads, by shard and kind.",
        &["shard", "kind"]
    )
    .expect("metric names are unique")
});

/// Records removed by retention.
pub static RETENTION_REMOVED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kelemetry_retention_removed_total",
        "Records deleted because they are older than the retention.",
        &["shard"]
    )
    .expect("metric names are unique")
});

/// Audit events written without the diff they waited for.
pub static DIFF_WAIT_EXPIRED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "kelemetry_diff_wait_expired_total",
        "Audit events written without a diff because no watched change matched them within --diff-wait."
    )
    .expect("metric names are unique")
});

/// Spans the OTLP endpoint accepted.
pub static EXPORTED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "kelemetry_export_spans_total",
        "Spans the OTLP endpoint accepted (a span resent after a failure counts again)."
    )
    .expect("metric names are unique")
});

/// Export requests the endpoint did not accept.
pub static EXPORT_FAILURES: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "kelemetry_export_failures_total",
        "Export requests that failed (the spans stay in the outbox and are sent again)."
    )
    .expect("metric names are unique")
});

/// Spans waiting for export per led shard.
pub static EXPORT_BACKLOG: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "kelemetry_export_backlog",
        "Spans waiting in a shard's outbox for the OTLP endpoint (bounded by --otlp-max-backlog).",
        &["shard"]
    )
    .expect("metric names are unique")
});

/// Spans stored but not queued for export because the backlog was full.
pub static EXPORT_DROPPED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!(
        "kelemetry_export_dropped_total",
        "Spans stored but not exported because the shard's export backlog was full."
    )
    .expect("metric names are unique")
});

/// Time from an event span's end until the endpoint accepted it.
pub static EXPORT_LAG: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "kelemetry_export_lag_seconds",
        "Time from an event span's end until the OTLP endpoint accepted it.",
        vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]
    )
    .expect("metric names are unique")
});

/// Shard batches of requests sent to their leader node together with the request's
/// other batches for that node.
pub static FORWARDED_TOGETHER: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "kelemetry_forwarded_together_batches_total",
        "Shard batches of webhook requests sent to the node that leads their shard in one exchange with the request's other batches for that node."
    )
    .expect("metric names are unique")
});
