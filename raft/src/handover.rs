//! Moving a group's leadership to another voter without an election fight. openraft
//! 0.9 has no leader transfer, and a follower that campaigns on its own is refused
//! by the other followers (they still hold the leader's lease) while its higher term
//! unseats the leader, over and over. So the leader steps aside instead: it stops
//! starting elections for a moment and asks a voter holding its whole log to
//! campaign, which that voter wins with the leader's vote.

use crate::{NodeId, ShardRaft, ShardSet};
use kelemetry_proto::kelemetry::cluster::v1::CampaignRequest;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a leader handing a group over keeps from starting elections itself, so
/// the handover does not bounce back.
const HANDOVER_HOLD: Duration = Duration::from_secs(3);

/// Longest wait for the node taking over to start its election.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a node must have led a group (in one term) before handing it over: a
/// leader younger than openraft's leader lease refuses the new candidate's vote, and
/// the handover turns into an election round without a winner.
const SETTLED: Duration = Duration::from_secs(2);

impl ShardSet {
    /// Hands leadership of `g` (which this node leads) to `to`, a voter holding the
    /// whole log: this replica stops starting elections for [`HANDOVER_HOLD`] and
    /// asks `to` to campaign, which it wins with this node's vote. The shard is
    /// without a leader for one election round instead of a lease and a timeout.
    pub async fn hand_over(&self, g: &ShardRaft, to: NodeId) -> Result<(), String> {
        g.hold_elections(HANDOVER_HOLD);
        tokio::time::timeout(ASK_TIMEOUT, self.ask_to_campaign(to, g.shard()))
            .await
            .map_err(|_| format!("node {to} did not answer the handover in time"))?
    }

    /// Asks `node` to stand for election in `shard` (a leadership handover).
    async fn ask_to_campaign(&self, node: NodeId, shard: u32) -> Result<(), String> {
        let mut client = self.peer_client(node)?;
        let reply = client
            .campaign(CampaignRequest { shard })
            .await
            .map_err(|s| format!("node {node}: {}", s.message()))?
            .into_inner();
        if reply.error.is_empty() {
            Ok(())
        } else {
            Err(format!("node {node}: {}", reply.error))
        }
    }
}

/// When this node may hand a group over: once it has led the group for [`SETTLED`]
/// in one term, and not within `cooldown` of its last handover of that group (a
/// handover that lost its race to another candidate is not retried at once).
pub struct HandoverPacing {
    led_since: HashMap<u32, (u64, Instant)>,
    handed_over: HashMap<u32, Instant>,
    cooldown: Duration,
}

impl HandoverPacing {
    /// Pacing with `cooldown` between two handovers of one group.
    pub fn new(cooldown: Duration) -> Self {
        Self {
            led_since: HashMap::new(),
            handed_over: HashMap::new(),
            cooldown,
        }
    }

    /// Records which of `groups` this node leads now; a new term restarts the clock.
    pub fn observe<'a>(&mut self, groups: impl IntoIterator<Item = &'a ShardRaft>) {
        let now = Instant::now();
        let led: HashMap<u32, u64> = groups
            .into_iter()
            .filter(|g| g.is_leader())
            .map(|g| (g.shard(), g.term()))
            .collect();
        self.led_since
            .retain(|shard, (term, _)| led.get(shard) == Some(term));
        for (shard, term) in led {
            self.led_since.entry(shard).or_insert((term, now));
        }
        let cooldown = self.cooldown;
        self.handed_over
            .retain(|_, at| now.duration_since(*at) < cooldown);
    }

    /// Whether this node may hand `shard` over now.
    pub fn ready(&self, shard: u32) -> bool {
        let settled = self
            .led_since
            .get(&shard)
            .is_some_and(|(_, since)| since.elapsed() >= SETTLED);
        let cooled = self
            .handed_over
            .get(&shard)
            .is_none_or(|at| at.elapsed() >= self.cooldown);
        settled && cooled
    }

    /// Notes a handover of `shard`, starting its cooldown.
    pub fn record(&mut self, shard: u32) {
        self.handed_over.insert(shard, Instant::now());
    }
}
