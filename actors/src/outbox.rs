//! Delivers each led shard's outbox entries to their destinations, kind by kind,
//! and acknowledges them on the source shard once the destination took them. Link
//! entries go to the shard of the linked object, which applies them as commands;
//! export entries go to the OTLP endpoint ([`crate::export`]).
//!
//! Entries live in replicated shard state, so a crash or leader change loses none:
//! the next leader finds them and delivers again, and every delivery is idempotent.

use crate::export::client::OtlpClient;
use crate::metrics;
use crate::relay_heads::RelayHeads;
use crate::router::IngestRouter;
use futures::StreamExt;
use kelemetry_core::outbox::{Destination, OutboxKind, OutboxPayload};
use kelemetry_core::state::{list_outbox, outbox_len};
use kelemetry_core::Command;
use kelemetry_raft::ShardSet;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Entries read from an outbox per round.
const ROUND: usize = 256;

/// Shards whose outboxes are delivered at once, one round each; a shard with more
/// waiting goes to the back of the queue. Each round waits for two commits (the
/// links on their shards, then the acknowledgement on the source). One shard at a
/// time, each until its outbox was empty, a node leading 20 shards under load
/// delivered to the first while the others waited until the load stopped.
const SHARDS_AT_ONCE: usize = 32;

/// Messages of the outbox worker.
pub enum OutboxMsg {
    /// A commit on this shard added outbox entries.
    Kick(u32),
    /// Periodic sweep of every led shard (catches entries left by a previous leader).
    Tick,
    /// A delivery round finished (internal), naming the shards that have more
    /// entries waiting.
    Done(BTreeSet<u32>),
}

/// Start-up arguments.
pub struct OutboxArgs {
    /// The node's shard groups.
    pub shards: Arc<ShardSet>,
    /// Where link commands are submitted.
    pub router: IngestRouter,
    /// The OTLP client, when the node exports (`--otlp-endpoint`).
    pub exporter: Option<Arc<OtlpClient>>,
}

/// The actor.
pub struct OutboxActor;

/// State of the outbox worker.
pub struct OutboxState {
    shards: Arc<ShardSet>,
    router: IngestRouter,
    exporter: Option<Arc<OtlpClient>>,
    dirty: BTreeSet<u32>,
    running: Option<tokio::task::JoinHandle<()>>,
    heads: Arc<RelayHeads>,
}

impl Actor for OutboxActor {
    type Msg = OutboxMsg;
    type State = OutboxState;
    type Arguments = OutboxArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<OutboxMsg>,
        args: OutboxArgs,
    ) -> Result<OutboxState, ActorProcessingErr> {
        Ok(OutboxState {
            shards: args.shards,
            router: args.router,
            exporter: args.exporter,
            dirty: BTreeSet::new(),
            running: None,
            heads: Arc::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<OutboxMsg>,
        message: OutboxMsg,
        state: &mut OutboxState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            OutboxMsg::Kick(shard) => {
                state.dirty.insert(shard);
            }
            OutboxMsg::Tick => state
                .dirty
                .extend(state.shards.led_locals().iter().map(|s| s.shard())),
            OutboxMsg::Done(more) => {
                state.running = None;
                state.dirty.extend(more);
            }
        }
        if state.running.is_none() && !state.dirty.is_empty() {
            let work = std::mem::take(&mut state.dirty);
            let (shards, router) = (state.shards.clone(), state.router.clone());
            let (exporter, heads) = (state.exporter.clone(), state.heads.clone());
            state.running = Some(tokio::spawn(async move {
                let (shards, router, exporter, heads) = (&shards, &router, &exporter, &heads);
                let more: BTreeSet<u32> = futures::stream::iter(work)
                    .map(|shard| async move {
                        let mut more = deliver_round(shards, router, heads, shard).await;
                        if let Some(client) = exporter {
                            more |=
                                crate::export::deliver_round(shards, router, client, heads, shard)
                                    .await;
                        }
                        more.then_some(shard)
                    })
                    .buffer_unordered(SHARDS_AT_ONCE)
                    .filter_map(std::future::ready)
                    .collect()
                    .await;
                let _ = myself.cast(OutboxMsg::Done(more));
            }));
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<OutboxMsg>,
        state: &mut OutboxState,
    ) -> Result<(), ActorProcessingErr> {
        // Undelivered entries stay in shard state; the next start delivers them.
        if let Some(task) = state.running.take() {
            task.abort();
        }
        Ok(())
    }
}

/// Delivers one round of `shard`'s link entries if this node leads it; returns whether
/// more are waiting.
async fn deliver_round(
    shards: &ShardSet,
    router: &IngestRouter,
    heads: &RelayHeads,
    shard: u32,
) -> bool {
    let kind = OutboxKind::Link;
    let Some(source) = shards.local(shard) else {
        return false;
    };
    let backlog = metrics::OUTBOX_BACKLOG.with_label_values(&[&shard.to_string(), kind.as_str()]);
    if !source.is_leader() {
        // Another node delivers (and reports) this shard's entries now.
        backlog.set(0);
        return false;
    }
    match outbox_len(source.reader(), kind) {
        Ok(n) => backlog.set(i64::try_from(n).unwrap_or(i64::MAX)),
        Err(e) => tracing::warn!(shard, error = %e, "cannot count the outbox"),
    }
    let entries = match list_outbox(source.reader(), kind, heads.start(shard, kind), ROUND) {
        Ok(e) if e.is_empty() => return false,
        Ok(e) => e,
        Err(e) => {
            tracing::error!(shard, kind = kind.as_str(), error = %e, "cannot read outbox");
            return false;
        }
    };
    let seqs: Vec<u64> = entries.iter().map(|(seq, _)| *seq).collect();
    let mut by_shard: BTreeMap<u32, Vec<Command>> = BTreeMap::new();
    for (_, entry) in entries {
        if let (Destination::Shard(to), OutboxPayload::Link(l)) = (entry.destination, entry.payload)
        {
            by_shard.entry(to).or_default().push(Command::Link(l));
        }
    }
    let n = seqs.len() as u64;
    for (to, commands) in by_shard {
        if let Err(e) = router.submit_to_shard(to, commands).await {
            metrics::OUTBOX_DELIVERED
                .with_label_values(&["retry"])
                .inc_by(n);
            tracing::warn!(shard, to, error = %e, "outbox delivery failed; will retry");
            return false;
        }
    }
    let last = seqs.last().copied();
    let acks = seqs
        .into_iter()
        .map(|seq| Command::AckOutbox { kind, seq })
        .collect();
    if let Err(e) = router.submit_to_shard(shard, acks).await {
        tracing::warn!(shard, error = %e, "outbox acknowledgement failed; will redeliver");
        return false;
    }
    if let Some(last) = last {
        heads.acknowledged(shard, kind, last);
    }
    metrics::OUTBOX_DELIVERED
        .with_label_values(&["delivered"])
        .inc_by(n);
    let remaining = outbox_len(source.reader(), kind).unwrap_or(0);
    backlog.set(i64::try_from(remaining).unwrap_or(i64::MAX));
    remaining > 0
}
