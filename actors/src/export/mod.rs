//! OTLP export through the replicated outbox (`--otlp-endpoint`): apply queues every
//! newly stored span (object, event and link spans) as an export entry of its shard;
//! the shard's leader sends them in the stored shape and acknowledges them once the
//! endpoint accepted them. Entries live in shard state, so leader changes and
//! restarts lose none (at least once), and a span sent again carries the same trace
//! and span IDs. While the endpoint is down the backlog grows up to
//! `--otlp-max-backlog` spans per shard; beyond it new spans are stored but not
//! exported, and counted.
//!
//! - [`client`]: the OTLP client (opentelemetry-otlp).
//! - [`spans`]: stored spans as `SpanData`.

pub mod client;
pub mod spans;

use crate::metrics;
use crate::relay_heads::RelayHeads;
use crate::router::IngestRouter;
use client::OtlpClient;
use kelemetry_core::display::tree::{from_stored, tags};
use kelemetry_core::outbox::{ExportItem, OutboxKind, OutboxPayload};
use kelemetry_core::state::{list_outbox, load_export, outbox_len};
use kelemetry_core::Command;
use kelemetry_raft::ShardSet;
use std::sync::atomic::{AtomicBool, Ordering};

/// Export entries sent per request.
const ROUND: usize = 512;

/// Whether the endpoint failed last time, so its outage and recovery are each logged
/// once instead of on every retry.
static ENDPOINT_DOWN: AtomicBool = AtomicBool::new(false);

/// Sends one round of `shard`'s export entries if this node leads it; returns whether
/// more are waiting.
pub async fn deliver_round(
    shards: &ShardSet,
    router: &IngestRouter,
    client: &OtlpClient,
    heads: &RelayHeads,
    shard: u32,
) -> bool {
    let Some(source) = shards.local(shard) else {
        return false;
    };
    let label = shard.to_string();
    if !source.is_leader() {
        return false;
    }
    let backlog = outbox_len(source.reader(), OutboxKind::Export).unwrap_or(0);
    metrics::EXPORT_BACKLOG
        .with_label_values(&[&label])
        .set(backlog as i64);
    let from = heads.start(shard, OutboxKind::Export);
    let entries = match list_outbox(source.reader(), OutboxKind::Export, from, ROUND) {
        Ok(e) if e.is_empty() => return false,
        Ok(e) => e,
        Err(e) => {
            tracing::error!(shard, error = %e, "cannot read the export outbox");
            return false;
        }
    };
    let now_us = crate::shard::now_us();
    let mut batch = Vec::with_capacity(entries.len());
    let mut lags = Vec::new();
    for (_, entry) in &entries {
        let OutboxPayload::Export(r) = &entry.payload else {
            continue;
        };
        // Retention may have deleted the span before it was sent: nothing to send.
        let Ok(Some(stored)) = load_export(source.reader(), r) else {
            continue;
        };
        let root = from_stored(&stored);
        let (span, parent) = match r.item {
            ExportItem::Object => (root.clone(), 0),
            _ => match root.children.first() {
                Some(child) => (child.clone(), root.span_id),
                None => continue,
            },
        };
        if span.tag(tags::NOT_PSEUDO).is_some() {
            lags.push((now_us - span.end_us()).max(0) as f64 / 1e6);
        }
        batch.push((span.service.clone(), spans::span_data(&span, parent)));
    }
    let n = batch.len() as u64;
    if let Err(e) = client.send(batch).await {
        metrics::EXPORT_FAILURES.inc();
        if !ENDPOINT_DOWN.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                endpoint = %client.settings().endpoint,
                error = %e,
                backlog,
                max_backlog = client.settings().backlog,
                "the OTLP endpoint is down; spans wait in the outbox and are sent when it is back"
            );
        }
        return false;
    }
    if ENDPOINT_DOWN.swap(false, Ordering::Relaxed) {
        tracing::info!(endpoint = %client.settings().endpoint, "the OTLP endpoint is back; exporting the backlog");
    }
    let acks = entries
        .iter()
        .map(|(seq, _)| Command::AckOutbox {
            kind: OutboxKind::Export,
            seq: *seq,
        })
        .collect();
    if let Err(e) = router.submit_to_shard(shard, acks).await {
        // Sent but not acknowledged: the next round sends them again, with the
        // same IDs.
        tracing::warn!(shard, error = %e, "export acknowledgement failed; will resend");
        return false;
    }
    if let Some((last, _)) = entries.last() {
        heads.acknowledged(shard, OutboxKind::Export, *last);
    }
    metrics::EXPORTED.inc_by(n);
    for lag in lags {
        metrics::EXPORT_LAG.observe(lag);
    }
    let remaining = outbox_len(source.reader(), OutboxKind::Export).unwrap_or(0);
    metrics::EXPORT_BACKLOG
        .with_label_values(&[&label])
        .set(remaining as i64);
    remaining > 0
}
