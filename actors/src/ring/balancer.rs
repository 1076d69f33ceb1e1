//! Spreads shard leadership over the nodes: a node leading a shard whose preferred
//! leader is another voter holding the whole log hands the shard over to it (see
//! `kelemetry_raft`'s handover), at most once per [`COOLDOWN`] per shard. A node
//! short of disk space hands over every shard it leads.

use super::pacing::HandoverPacing;
use kelemetry_raft::ShardSet;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use std::time::Duration;

/// How long after a handover of a shard before the same shard is handed over again.
const COOLDOWN: Duration = Duration::from_secs(20);

/// Most shards one node hands over per tick: enough that a node leading most of
/// 64 shards after bootstrap is balanced within seconds, few enough that a tick
/// never leaves many shards between leaders at once.
const HANDOVERS_PER_TICK: usize = 8;

/// Messages of the balancer.
pub enum BalancerMsg {
    /// Time to check.
    Tick,
}

/// The actor.
pub struct LeaderBalancer;

/// The node's groups and the pacing of their handovers.
pub struct BalancerState {
    shards: Arc<ShardSet>,
    pacing: HandoverPacing,
}

impl Actor for LeaderBalancer {
    type Msg = BalancerMsg;
    type State = BalancerState;
    type Arguments = Arc<ShardSet>;

    async fn pre_start(
        &self,
        _myself: ActorRef<BalancerMsg>,
        shards: Arc<ShardSet>,
    ) -> Result<BalancerState, ActorProcessingErr> {
        Ok(BalancerState {
            shards,
            pacing: HandoverPacing::new(COOLDOWN),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<BalancerMsg>,
        BalancerMsg::Tick: BalancerMsg,
        state: &mut BalancerState,
    ) -> Result<(), ActorProcessingErr> {
        let shards = state.shards.clone();
        let locals = shards.placed_locals();
        if !locals.iter().all(|s| s.has_leader()) {
            return Ok(());
        }
        if shards.disk_refusal().is_some() {
            hand_over_everything(&shards).await;
            return Ok(());
        }
        let me = shards.node_id();
        let preferred = shards.ring().preferred_leaders();
        state.pacing.observe(&locals);
        let handovers: Vec<_> = locals
            .iter()
            .filter_map(|s| {
                let to = *preferred.get(&s.shard())?;
                (to != me
                    && s.is_leader()
                    && state.pacing.ready(s.shard())
                    && s.voters().contains(&to)
                    && s.has_caught_up(to))
                .then_some((s, to))
            })
            .take(HANDOVERS_PER_TICK)
            .collect();
        for (s, to) in handovers {
            let shard = s.shard();
            state.pacing.record(shard);
            tracing::info!(shard, to, "handing shard leadership to its preferred node");
            if let Err(e) = shards.hand_over(s, to).await {
                tracing::warn!(shard, to, error = %e, "leadership handover failed");
            }
        }
        Ok(())
    }
}

/// Hands every shard this node leads to another voter holding its whole log: a
/// node short of disk space refuses writes, so the shards it leads would refuse them
/// all until it had room again.
async fn hand_over_everything(shards: &ShardSet) {
    let me = shards.node_id();
    for s in shards.led_locals() {
        let to = s
            .voters()
            .into_iter()
            .find(|v| *v != me && !shards.peer_unreachable(*v) && s.has_caught_up(*v));
        let Some(to) = to else { continue };
        tracing::warn!(
            shard = s.shard(),
            to,
            "short of disk space: handing shard leadership over"
        );
        if let Err(e) = shards.hand_over(&s, to).await {
            tracing::warn!(shard = s.shard(), to, error = %e, "leadership handover failed");
        }
    }
}
