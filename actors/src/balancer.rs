//! Spreads shard leadership over the nodes. A node that leads a shard whose
//! preferred leader is another voter hands leadership over once that voter holds
//! the whole log: it stops starting elections for a moment and asks the voter to
//! campaign. The voter wins with this node's vote, so the shard is without a leader
//! for one election round, once. (Followers never campaign on their own to take a
//! shard: with openraft's leader lease the other followers refuse them, and the
//! failed attempts only unseat the leader, over and over.)

use kelemetry_raft::ShardSet;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long after a handover of a shard before the same shard is handed over again
/// (a handover that lost the race to another candidate is not retried at once).
const COOLDOWN: Duration = Duration::from_secs(20);

/// How long this node must have led a shard (in one term) before handing it over:
/// a leader younger than openraft's leader lease refuses the new candidate's vote
/// and the handover turns into an election round without a winner.
const SETTLED: Duration = Duration::from_secs(2);

/// Messages of the balancer.
pub enum BalancerMsg {
    /// Time to check.
    Tick,
}

/// The actor.
pub struct LeaderBalancer;

/// The node's groups, since when (and in which term) this node leads each shard,
/// and when each shard was last handed over.
pub struct BalancerState {
    shards: Arc<ShardSet>,
    leading_since: HashMap<u32, (u64, Instant)>,
    handed_over: HashMap<u32, Instant>,
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
            leading_since: HashMap::new(),
            handed_over: HashMap::new(),
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
        let me = shards.node_id();
        let preferred = shards.cluster().preferred_leaders();
        let now = Instant::now();
        state
            .handed_over
            .retain(|_, at| now.duration_since(*at) < COOLDOWN);
        let led: HashMap<u32, u64> = locals
            .iter()
            .filter(|s| s.is_leader())
            .map(|s| (s.shard(), s.term()))
            .collect();
        state
            .leading_since
            .retain(|shard, (term, _)| led.get(shard) == Some(term));
        for (shard, term) in &led {
            state.leading_since.entry(*shard).or_insert((*term, now));
        }
        let settled = |shard: u32| {
            state
                .leading_since
                .get(&shard)
                .is_some_and(|(_, since)| now.duration_since(*since) >= SETTLED)
        };
        let handover = locals.iter().find_map(|s| {
            let to = *preferred.get(&s.shard())?;
            (to != me
                && s.is_leader()
                && settled(s.shard())
                && s.voters().contains(&to)
                && s.has_caught_up(to)
                && !state.handed_over.contains_key(&s.shard()))
            .then_some((s, to))
        });
        if let Some((s, to)) = handover {
            let shard = s.shard();
            state.handed_over.insert(shard, now);
            tracing::info!(shard, to, "handing shard leadership to its preferred node");
            if let Err(e) = shards.hand_over(s, to).await {
                tracing::warn!(shard, to, error = %e, "leadership handover failed");
            }
        }
        Ok(())
    }
}
