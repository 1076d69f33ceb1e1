//! Deletes windows older than the retention on every shard this node leads.
//!
//! Deletion is a replicated command (`Expire`) carrying the cut-off the leader chose,
//! bounded in size so one proposal never grows large; the worker repeats it until a
//! shard reports nothing left.

use crate::metrics;
use crate::router::IngestRouter;
use crate::shard::now_us;
use kelemetry_core::{Command, CommandOutcome};
use kelemetry_raft::ShardSet;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use std::time::Duration;

/// Records one `Expire` command may delete.
const EXPIRE_STEP: u32 = 5_000;

/// Messages of the retention worker.
pub enum RetentionMsg {
    /// Time to sweep.
    Tick,
    /// A sweep finished (internal).
    Done,
}

/// Start-up arguments.
pub struct RetentionArgs {
    /// The node's shard groups.
    pub shards: Arc<ShardSet>,
    /// Where expire commands are submitted.
    pub router: IngestRouter,
    /// How long data is kept.
    pub retention: Duration,
}

/// The actor.
pub struct RetentionActor;

/// State of the retention worker.
pub struct RetentionState {
    args: Arc<RetentionArgs>,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Actor for RetentionActor {
    type Msg = RetentionMsg;
    type State = RetentionState;
    type Arguments = RetentionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<RetentionMsg>,
        args: RetentionArgs,
    ) -> Result<RetentionState, ActorProcessingErr> {
        Ok(RetentionState {
            args: Arc::new(args),
            running: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RetentionMsg>,
        message: RetentionMsg,
        state: &mut RetentionState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RetentionMsg::Done => state.running = None,
            RetentionMsg::Tick if state.running.is_none() => {
                let args = state.args.clone();
                state.running = Some(tokio::spawn(async move {
                    sweep(&args).await;
                    let _ = myself.cast(RetentionMsg::Done);
                }));
            }
            RetentionMsg::Tick => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RetentionMsg>,
        state: &mut RetentionState,
    ) -> Result<(), ActorProcessingErr> {
        // An interrupted sweep is harmless: expiry is idempotent and resumes next time.
        if let Some(task) = state.running.take() {
            task.abort();
        }
        Ok(())
    }
}

async fn sweep(args: &RetentionArgs) {
    let before_us = now_us() - args.retention.as_micros() as i64;
    for shard in args
        .shards
        .locals()
        .iter()
        .filter(|s| s.is_leader())
        .map(|s| s.shard())
    {
        loop {
            let expire = Command::Expire {
                before_us,
                limit: EXPIRE_STEP,
            };
            match args
                .router
                .submit_to_shard(shard, vec![expire])
                .await
                .as_deref()
            {
                Ok([CommandOutcome::Removed(0)]) => break,
                Ok([CommandOutcome::Removed(n)]) => {
                    metrics::RETENTION_REMOVED
                        .with_label_values(&[&shard.to_string()])
                        .inc_by(*n);
                    tracing::info!(shard, removed = n, "retention removed expired records");
                }
                Ok(other) => {
                    tracing::error!(shard, ?other, "unexpected expire outcome");
                    break;
                }
                Err(e) => {
                    tracing::warn!(shard, error = %e, "retention sweep failed; will retry");
                    break;
                }
            }
        }
    }
}
