//! Spreads shard leadership over the nodes: when every shard has a leader, this node
//! campaigns for one shard per tick whose preferred leader it is but does not lead.
//! The previous leader steps down on seeing the higher term; in-flight writes there
//! fail and are retried, which the idempotent commands make safe.

use kelemetry_raft::ShardSet;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;

/// Messages of the balancer.
pub enum BalancerMsg {
    /// Time to check.
    Tick,
}

/// The actor.
pub struct LeaderBalancer;

impl Actor for LeaderBalancer {
    type Msg = BalancerMsg;
    type State = Arc<ShardSet>;
    type Arguments = Arc<ShardSet>;

    async fn pre_start(
        &self,
        _myself: ActorRef<BalancerMsg>,
        shards: Arc<ShardSet>,
    ) -> Result<Arc<ShardSet>, ActorProcessingErr> {
        Ok(shards)
    }

    async fn handle(
        &self,
        _myself: ActorRef<BalancerMsg>,
        BalancerMsg::Tick: BalancerMsg,
        shards: &mut Arc<ShardSet>,
    ) -> Result<(), ActorProcessingErr> {
        let locals = shards.placed_locals();
        if !locals.iter().all(|s| s.has_leader()) {
            return Ok(());
        }
        let me = shards.node_id();
        let preferred = shards.cluster().preferred_leaders();
        let candidate = locals
            .iter()
            .find(|s| preferred.get(&s.shard()) == Some(&me) && !s.is_leader());
        if let Some(s) = candidate {
            tracing::info!(shard = s.shard(), leader = ?s.leader(), "campaigning to lead preferred shard");
            if let Err(e) = s.campaign().await {
                tracing::warn!(shard = s.shard(), error = %e, "campaign failed");
            }
        }
        Ok(())
    }
}
