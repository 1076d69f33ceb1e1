//! Starts and stops every actor of a node's write path.

use crate::export::client::OtlpClient;
use crate::outbox::{OutboxActor, OutboxArgs, OutboxMsg};
use crate::retention::Retention;
use crate::ring::balancer::{BalancerMsg, LeaderBalancer};
use crate::router::IngestRouter;
use crate::shard::{Forwarder, ShardActor, ShardArgs, ShardLimits};
use crate::sweep::{Sweep, SweepActor, SweepMsg};
use crate::waits::WaitRelease;
use kelemetry_raft::ShardSet;
use ractor::{Actor, ActorRef, SpawnErr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Tunables of the write path.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// Window length (span TTL).
    pub span_ttl: Duration,
    /// How long data is kept.
    pub retention: Duration,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// How often every outbox is swept.
    pub outbox_interval: Duration,
    /// Commands a shard may queue before refusing more.
    pub max_queued_commands: usize,
    /// Commands per proposal.
    pub max_batch_commands: usize,
    /// Proposals per shard being committed at once.
    pub max_in_flight: usize,
    /// How long a submission may wait for its commit.
    pub submit_timeout: Duration,
    /// How long one proposal (or forwarded batch) may take before its submitters are
    /// told to retry.
    pub commit_timeout: Duration,
    /// How often leadership balance is checked.
    pub balance_interval: Duration,
    /// The OTLP client, when spans are exported (`--otlp-endpoint`).
    pub exporter: Option<Arc<OtlpClient>>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            span_ttl: Duration::from_secs(30 * 60),
            retention: Duration::from_secs(7 * 24 * 3600),
            retention_interval: Duration::from_secs(60),
            outbox_interval: Duration::from_secs(1),
            max_queued_commands: 20_000,
            max_batch_commands: 2_000,
            max_in_flight: 1,
            submit_timeout: Duration::from_secs(30),
            commit_timeout: Duration::from_secs(5),
            balance_interval: Duration::from_secs(2),
            exporter: None,
        }
    }
}

/// How often the leader looks for audit events whose diff wait has ended.
const WAIT_RELEASE_INTERVAL: Duration = Duration::from_millis(500);

/// The running actors.
pub struct Pipeline {
    router: IngestRouter,
    shard_actors: Vec<(ActorRef<crate::shard::ShardMsg>, JoinHandle<()>)>,
    outbox: (ActorRef<OutboxMsg>, JoinHandle<()>),
    retention: (ActorRef<SweepMsg>, JoinHandle<()>),
    wait_release: (ActorRef<SweepMsg>, JoinHandle<()>),
    balancer: (ActorRef<BalancerMsg>, JoinHandle<()>),
}

impl Pipeline {
    /// Spawns one actor per shard, the outbox worker and the retention worker.
    /// `forwarder` sends batches of shards this node does not lead to their leader.
    pub async fn start(
        shards: Arc<ShardSet>,
        settings: &PipelineSettings,
        forwarder: Option<Arc<dyn Forwarder>>,
    ) -> Result<Self, SpawnErr> {
        let limits = ShardLimits {
            max_queued_commands: settings.max_queued_commands,
            max_batch_commands: settings.max_batch_commands,
            max_in_flight: settings.max_in_flight.max(1),
            span_ttl_us: settings.span_ttl.as_micros() as i64,
            export_backlog: settings
                .exporter
                .as_ref()
                .map_or(0, |e| e.settings().backlog.max(1)),
            commit_timeout: settings.commit_timeout,
        };
        crate::metrics::QUEUE_CAPACITY.set(limits.max_queued_commands as i64);
        let outbox_ref: Arc<OnceLock<ActorRef<OutboxMsg>>> = Arc::new(OnceLock::new());
        let mut shard_actors = Vec::new();
        for shard in 0..shards.count() {
            let kick = outbox_ref.clone();
            let args = ShardArgs {
                shards: shards.clone(),
                shard,
                limits,
                on_outbox: Box::new(move |shard| {
                    if let Some(o) = kick.get() {
                        let _ = o.cast(OutboxMsg::Kick(shard));
                    }
                }),
                forwarder: forwarder.clone(),
            };
            shard_actors.push(Actor::spawn(None, ShardActor, args).await?);
        }
        let router = IngestRouter::new(
            shard_actors.iter().map(|(a, _)| a.clone()).collect(),
            shards.clone(),
            forwarder,
            settings.submit_timeout,
        );
        let outbox = Actor::spawn(
            None,
            OutboxActor,
            OutboxArgs {
                shards: shards.clone(),
                router: router.clone(),
                exporter: settings.exporter.clone(),
            },
        )
        .await?;
        let _ = outbox_ref.set(outbox.0.clone());
        outbox
            .0
            .send_interval(settings.outbox_interval, || OutboxMsg::Tick);
        let retention: Arc<dyn Sweep> = Arc::new(Retention {
            shards: shards.clone(),
            router: router.clone(),
            retention: settings.retention,
        });
        let retention = Actor::spawn(None, SweepActor, retention).await?;
        retention
            .0
            .send_interval(settings.retention_interval, || SweepMsg::Tick);
        let wait_release: Arc<dyn Sweep> = Arc::new(WaitRelease {
            shards: shards.clone(),
            router: router.clone(),
        });
        let wait_release = Actor::spawn(None, SweepActor, wait_release).await?;
        wait_release
            .0
            .send_interval(WAIT_RELEASE_INTERVAL, || SweepMsg::Tick);
        let balancer = Actor::spawn(None, LeaderBalancer, shards).await?;
        balancer
            .0
            .send_interval(settings.balance_interval, || BalancerMsg::Tick);
        Ok(Self {
            router,
            shard_actors,
            outbox,
            retention,
            wait_release,
            balancer,
        })
    }

    /// The router that submits commands to the shard actors.
    pub fn router(&self) -> IngestRouter {
        self.router.clone()
    }

    /// Stops the workers, then the shard actors after their queued work is handled.
    pub async fn stop(self) {
        let (outbox, outbox_done) = self.outbox;
        let workers = [self.retention, self.wait_release];
        let (balancer, balancer_done) = self.balancer;
        outbox.stop(None);
        balancer.stop(None);
        for (worker, _) in &workers {
            worker.stop(None);
        }
        let _ = outbox_done.await;
        let _ = balancer_done.await;
        for (_, done) in workers {
            let _ = done.await;
        }
        for (actor, handle) in self.shard_actors {
            actor.drain().ok();
            let _ = handle.await;
        }
    }
}
