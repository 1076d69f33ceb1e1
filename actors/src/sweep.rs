//! A periodic worker over the shards this node leads: on every tick it runs one sweep
//! unless the previous one is still running. Retention and the release of audit
//! events whose diff never came are sweeps.

use crate::router::IngestRouter;
use kelemetry_core::{Command, CommandOutcome};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// One kind of periodic work.
pub trait Sweep: Send + Sync + 'static {
    /// Runs one pass; interrupting it must be harmless (the next pass resumes).
    fn run(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Messages of a sweep worker.
pub enum SweepMsg {
    /// Time to sweep.
    Tick,
    /// A sweep finished (internal).
    Done,
}

/// The actor.
pub struct SweepActor;

/// State of a sweep worker.
pub struct SweepState {
    sweep: Arc<dyn Sweep>,
    running: Option<tokio::task::JoinHandle<()>>,
}

impl Actor for SweepActor {
    type Msg = SweepMsg;
    type State = SweepState;
    type Arguments = Arc<dyn Sweep>;

    async fn pre_start(
        &self,
        _myself: ActorRef<SweepMsg>,
        sweep: Arc<dyn Sweep>,
    ) -> Result<SweepState, ActorProcessingErr> {
        Ok(SweepState {
            sweep,
            running: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SweepMsg>,
        message: SweepMsg,
        state: &mut SweepState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SweepMsg::Done => state.running = None,
            SweepMsg::Tick if state.running.is_none() => {
                let sweep = state.sweep.clone();
                state.running = Some(tokio::spawn(async move {
                    sweep.run().await;
                    let _ = myself.cast(SweepMsg::Done);
                }));
            }
            SweepMsg::Tick => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SweepMsg>,
        state: &mut SweepState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(task) = state.running.take() {
            task.abort();
        }
        Ok(())
    }
}

/// Submits `command` to `shard` until it reports that it removed nothing, returning
/// how many records it removed in all (logging, not returning, a failure: the next
/// sweep retries).
pub(crate) async fn repeat_on_shard(
    router: &IngestRouter,
    shard: u32,
    command: Command,
    what: &str,
) -> u64 {
    let mut total = 0;
    loop {
        match router
            .submit_to_shard(shard, vec![command.clone()])
            .await
            .as_deref()
        {
            Ok([CommandOutcome::Removed(0)]) => return total,
            Ok([CommandOutcome::Removed(n)]) => total += n,
            Ok(other) => {
                tracing::error!(shard, ?other, what, "unexpected sweep outcome");
                return total;
            }
            Err(e) => {
                tracing::warn!(shard, error = %e, what, "sweep failed; will retry");
                return total;
            }
        }
    }
}
