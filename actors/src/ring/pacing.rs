//! When a leader may hand a group over: the pacing that keeps handovers from
//! fighting the leader lease or each other. Used by the balancer for shards and by
//! the controller for the metadata group.

use kelemetry_raft::ShardRaft;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a node must have led a group (in one term) before handing it over: a
/// leader younger than openraft's leader lease refuses the new candidate's vote, and
/// the handover turns into an election round without a winner.
const SETTLED: Duration = Duration::from_secs(2);

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
