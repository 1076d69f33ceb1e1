//! One actor per shard: queues submissions and proposes them to the shard's Raft group
//! in batches (group commit), so throughput does not depend on one fsync per event.
//!
//! While `max_in_flight` proposals are being committed, new submissions wait in a
//! bounded queue; when a proposal finishes, everything queued (up to
//! `max_batch_commands`) goes out as the next one. A full queue is refused at once
//! with [`SubmitError::Overloaded`] instead of growing.

use crate::error::SubmitError;
use crate::metrics;
use kelemetry_core::{Command, CommandOutcome, Proposal};
use kelemetry_raft::{GroupError, ShardRaft, ShardSet};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// Limits of one shard actor.
#[derive(Clone, Copy, Debug)]
pub struct ShardLimits {
    /// Most commands queued before submissions are refused.
    pub max_queued_commands: usize,
    /// Most commands in one proposal.
    pub max_batch_commands: usize,
    /// Most proposals being committed at once.
    pub max_in_flight: usize,
    /// Window length put into every proposal.
    pub span_ttl_us: i64,
    /// Export backlog bound put into every proposal (0: no export).
    pub export_backlog: u32,
    /// How long one proposal may wait for its commit before its submitters are told
    /// to retry (a leader that was paused and lost its term may never answer).
    pub commit_timeout: std::time::Duration,
}

/// Messages of a shard actor.
pub enum ShardMsg {
    /// Commit these commands and reply with their outcomes.
    Submit {
        /// Commands, all owned by this shard.
        commands: Vec<Command>,
        /// Where the outcomes go.
        reply: RpcReplyPort<Result<Vec<CommandOutcome>, SubmitError>>,
        /// Whether a follower may forward them to the leader (false for submissions
        /// that a peer already forwarded here).
        forwardable: bool,
    },
    /// A proposal finished (internal).
    Finished,
}

/// Something to notify when a commit added outbox entries.
pub type OutboxKick = Box<dyn Fn(u32) + Send + Sync>;

/// What forwarding a batch to a leader yields.
pub type ForwardFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Vec<CommandOutcome>, SubmitError>> + Send>,
>;

/// The fate of one shard's batch sent to a leader together with other shards'.
pub enum BatchFate {
    /// The leader answered for it: committed, or refused for a reason that sending it
    /// elsewhere would not fix.
    Answered(Result<Vec<CommandOutcome>, SubmitError>),
    /// Not taken (the receiver does not lead the shard, or cannot take batches
    /// together): the commands come back to go through the shard's actor.
    Returned(Vec<Command>),
}

/// What forwarding several shards' batches to one leader yields: one fate per batch,
/// in order.
pub type ForwardManyFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Vec<BatchFate>> + Send>>;

/// Sends a shard's commands to the node that leads it (peer RPC, provided by the node).
pub trait Forwarder: Send + Sync {
    /// Commits `commands` on `shard` at node `leader`.
    fn forward(&self, leader: u64, shard: u32, commands: Vec<Command>) -> ForwardFuture;

    /// Commits several shards' batches at node `leader`, which leads them all, in one
    /// exchange. By default every batch is returned, to go through its shard's actor.
    fn forward_many(&self, _leader: u64, batches: Vec<(u32, Vec<Command>)>) -> ForwardManyFuture {
        Box::pin(async move {
            batches
                .into_iter()
                .map(|(_, commands)| BatchFate::Returned(commands))
                .collect()
        })
    }
}

/// Start-up arguments.
pub struct ShardArgs {
    /// The node's groups; the actor proposes when this node leads the shard and
    /// forwards otherwise (also when this node holds no replica of it).
    pub shards: Arc<ShardSet>,
    /// The shard.
    pub shard: u32,
    /// Limits.
    pub limits: ShardLimits,
    /// Called with the shard number after a commit that added outbox entries.
    pub on_outbox: OutboxKick,
    /// Forwards batches to the leader when this node is a follower.
    pub forwarder: Option<std::sync::Arc<dyn Forwarder>>,
}

/// The actor.
pub struct ShardActor;

struct Waiting {
    commands: Vec<Command>,
    reply: RpcReplyPort<Result<Vec<CommandOutcome>, SubmitError>>,
    forwardable: bool,
}

/// State of a shard actor.
pub struct ShardState {
    shards: Arc<ShardSet>,
    shard: u32,
    limits: ShardLimits,
    on_outbox: std::sync::Arc<OutboxKick>,
    forwarder: Option<std::sync::Arc<dyn Forwarder>>,
    queue: VecDeque<Waiting>,
    queued_commands: usize,
    in_flight: usize,
    depth: prometheus::IntGauge,
}

impl Actor for ShardActor {
    type Msg = ShardMsg;
    type State = ShardState;
    type Arguments = ShardArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ShardMsg>,
        args: ShardArgs,
    ) -> Result<ShardState, ActorProcessingErr> {
        let depth = metrics::QUEUE_DEPTH.with_label_values(&[&args.shard.to_string()]);
        depth.set(0);
        Ok(ShardState {
            shards: args.shards,
            shard: args.shard,
            limits: args.limits,
            on_outbox: std::sync::Arc::new(args.on_outbox),
            forwarder: args.forwarder,
            queue: VecDeque::new(),
            queued_commands: 0,
            in_flight: 0,
            depth,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ShardMsg>,
        message: ShardMsg,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ShardMsg::Submit {
                commands,
                reply,
                forwardable,
            } => {
                if let Some(message) = state.shards.disk_refusal() {
                    metrics::REJECTED.with_label_values(&["disk_low"]).inc();
                    let _ = reply.send(Err(SubmitError::Unavailable {
                        shard: state.shard,
                        message,
                    }));
                    return Ok(());
                }
                if state.queued_commands + commands.len() > state.limits.max_queued_commands {
                    metrics::REJECTED.with_label_values(&["overloaded"]).inc();
                    let _ = reply.send(Err(SubmitError::Overloaded {
                        shard: state.shard,
                        queued: state.queued_commands,
                    }));
                    return Ok(());
                }
                state.queued_commands += commands.len();
                state.queue.push_back(Waiting {
                    commands,
                    reply,
                    forwardable,
                });
            }
            ShardMsg::Finished => state.in_flight -= 1,
        }
        flush(&myself, state);
        state.depth.set(state.queued_commands as i64);
        Ok(())
    }
}

/// Batches forwarded to a shard's leader at once by a node that does not lead it. The
/// leader batches them again into its proposals, so one forward waiting for the
/// previous one's commit would only add that commit to every forwarded event's wait.
const FORWARDS_IN_FLIGHT: usize = 4;

/// Starts proposals (or forwards) while there is queued work and room in flight.
fn flush(myself: &ActorRef<ShardMsg>, state: &mut ShardState) {
    while !state.queue.is_empty() {
        let route = route(&state.shards, state.shard);
        let room = match route {
            Route::Forward(_) => FORWARDS_IN_FLIGHT.max(state.limits.max_in_flight),
            _ => state.limits.max_in_flight,
        };
        if state.in_flight >= room {
            break;
        }
        let mut batch = Vec::new();
        let mut commands = Vec::new();
        while let Some(w) = state.queue.front() {
            if !commands.is_empty()
                && commands.len() + w.commands.len() > state.limits.max_batch_commands
            {
                break;
            }
            let Some(w) = state.queue.pop_front() else {
                break;
            };
            batch.push((w.commands.len(), w.reply, w.forwardable));
            commands.extend(w.commands);
        }
        state.queued_commands -= commands.len();
        state.in_flight += 1;
        metrics::BATCH_COMMANDS.observe(commands.len() as f64);
        let proposal = Proposal {
            span_ttl_us: state.limits.span_ttl_us,
            now_us: now_us(),
            export_backlog: state.limits.export_backlog,
            commands,
        };
        let shard = state.shard;
        let commit_timeout = state.limits.commit_timeout;
        let me = myself.clone();
        let on_outbox = state.on_outbox.clone();
        let forwarder = state.forwarder.clone();
        tokio::spawn(async move {
            let raft = match route {
                Route::Propose(raft) => raft,
                Route::Forward(leader) => {
                    match forwarder {
                        Some(f) => forward(f, leader, shard, proposal.commands, batch).await,
                        None => refuse(
                            batch,
                            SubmitError::Unavailable {
                                shard,
                                message: "this node is not the leader and cannot forward".into(),
                            },
                        ),
                    }
                    let _ = me.cast(ShardMsg::Finished);
                    return;
                }
                Route::Refuse(err) => {
                    refuse(batch, err);
                    let _ = me.cast(ShardMsg::Finished);
                    return;
                }
            };
            let started = Instant::now();
            let result = match tokio::time::timeout(commit_timeout, raft.propose(proposal)).await
            {
                Ok(r) => r,
                Err(_) => Err(GroupError::Unavailable {
                    shard,
                    message: format!(
                        "not committed within {commit_timeout:?}; it may still commit, a retry is deduplicated"
                    ),
                }),
            };
            metrics::COMMIT_SECONDS.observe(started.elapsed().as_secs_f64());
            match result {
                Ok(outcome) => {
                    if outcome.outbox_added > 0 {
                        on_outbox(shard);
                    }
                    if outcome.export_dropped > 0 {
                        metrics::EXPORT_DROPPED.inc_by(u64::from(outcome.export_dropped));
                        tracing::warn!(
                            shard,
                            spans = outcome.export_dropped,
                            "export backlog full (--otlp-max-backlog): spans stored but not exported"
                        );
                    }
                    let mut outcomes = outcome.outcomes.into_iter();
                    for (n, reply, _) in batch {
                        let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
                    }
                }
                Err(e) => {
                    // A leader that lost its term mid-proposal names its successor,
                    // so a forwarding node can redirect there.
                    let err = match e {
                        GroupError::NotLeader { shard, leader } => {
                            SubmitError::NotLeader { shard, leader }
                        }
                        GroupError::Unavailable { message, .. } => {
                            SubmitError::Unavailable { shard, message }
                        }
                        other => SubmitError::Unavailable {
                            shard,
                            message: other.to_string(),
                        },
                    };
                    metrics::REJECTED.with_label_values(&["unavailable"]).inc();
                    for (_, reply, _) in batch {
                        let _ = reply.send(Err(err.clone()));
                    }
                }
            }
            let _ = me.cast(ShardMsg::Finished);
        });
    }
}

/// Where a batch goes.
pub(crate) enum Route {
    /// This node leads the shard.
    Propose(ShardRaft),
    /// Another node leads it (or may know who does).
    Forward(u64),
    /// Nobody can take it now; the client retries.
    Refuse(SubmitError),
}

pub(crate) fn route(shards: &ShardSet, shard: u32) -> Route {
    let local = shards.local(shard);
    if let Some(raft) = local.as_ref().filter(|r| r.is_leader()) {
        return Route::Propose(raft.clone());
    }
    // A replica that knows no leader (a new learner, or one about to be deleted) may
    // still be behind the placement: its preferred leader is the next best guess.
    let known = local.as_ref().and_then(|r| r.leader());
    match known.or_else(|| shards.leader_hint(shard)) {
        Some(leader) if leader != shards.node_id() => Route::Forward(leader),
        _ if local.is_some() => Route::Refuse(SubmitError::NotLeader {
            shard,
            leader: None,
        }),
        _ => Route::Refuse(SubmitError::Unavailable {
            shard,
            message: "no replica of this shard is known yet".into(),
        }),
    }
}

fn refuse(batch: Batch, err: SubmitError) {
    for (_, reply, _) in batch {
        let _ = reply.send(Err(err.clone()));
    }
}

/// Waiting submissions of one batch: command count, reply port, forwardable.
type Batch = Vec<(
    usize,
    RpcReplyPort<Result<Vec<CommandOutcome>, SubmitError>>,
    bool,
)>;

/// Sends the forwardable part of a batch to the leader and answers every waiter;
/// submissions that arrived forwarded already are refused (one hop at most).
async fn forward(
    f: std::sync::Arc<dyn Forwarder>,
    leader: u64,
    shard: u32,
    commands: Vec<Command>,
    batch: Batch,
) {
    let mut commands = commands.into_iter();
    let mut sent = Vec::new();
    let mut replies = Vec::new();
    for (n, reply, forwardable) in batch {
        let mine: Vec<Command> = commands.by_ref().take(n).collect();
        if forwardable {
            sent.extend(mine);
            replies.push((n, reply));
        } else {
            let _ = reply.send(Err(SubmitError::NotLeader {
                shard,
                leader: Some(leader),
            }));
        }
    }
    if replies.is_empty() {
        return;
    }
    match f.forward(leader, shard, sent).await {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for (n, reply) in replies {
                let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
            }
        }
        Err(e) => {
            metrics::REJECTED
                .with_label_values(&["forward_failed"])
                .inc();
            for (_, reply) in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// Wall clock in microseconds; read by the proposer, never by apply.
pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
