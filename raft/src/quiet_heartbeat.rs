//! Heartbeats only for followers that replication has left without news.
//!
//! openraft sends each group's heartbeat on its own timer, whether or not the group
//! has just replicated. A node leads dozens of groups, each with two followers, so an
//! idle ring spent a third of a core on heartbeats. An AppendEntries that carries
//! entries (or a new commit index) renews the follower's election timer and counts
//! as the leader's quorum acknowledgement just as a heartbeat does, so a group that
//! replicates more often than the interval needs none.
//!
//! So openraft's heartbeat timer is off (see [`crate::settings`]), and one task per
//! node asks a group it leads for a heartbeat only when some follower has not
//! answered any AppendEntries sent to it in the last [`HEARTBEAT_INTERVAL`]. A
//! follower that refuses the leader (see [`crate::peer_health`]) answers with an error, which is no
//! answer here, so it keeps being sent heartbeats as before.

use crate::group::ShardRaft;
use crate::metrics::HEARTBEATS;
use crate::settings::HEARTBEAT_INTERVAL_MS;
use crate::types::NodeId;
use openraft::raft::AppendEntriesResponse;
use openraft::ServerState;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

/// Longest time a follower may go without an answered AppendEntries before its
/// leader sends it a heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(HEARTBEAT_INTERVAL_MS);

/// How often the driver looks at the groups: half the interval, so a follower hears
/// from its leader at least every one and a half intervals (openraft's own timer
/// ticked at that pace too).
const CHECK_EVERY: Duration = Duration::from_millis(HEARTBEAT_INTERVAL_MS / 2);

/// For each follower of one group, when this node, as the group's leader, sent the
/// newest AppendEntries the follower answered. The send time, not the answer's: a
/// slow round trip must not stretch the gap between two messages the follower
/// receives, which is what its election timer measures.
#[derive(Default)]
pub struct FollowerContact {
    last_answered_send: Mutex<HashMap<NodeId, Instant>>,
}

impl FollowerContact {
    /// Notes that `follower` answered the AppendEntries sent at `sent`. A higher
    /// vote is no contact: the follower did not take this node as its leader.
    pub(crate) fn answered(
        &self,
        follower: NodeId,
        sent: Instant,
        response: &AppendEntriesResponse<NodeId>,
    ) {
        if matches!(response, AppendEntriesResponse::HigherVote(_)) {
            return;
        }
        let mut last = self
            .last_answered_send
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let newest = last.entry(follower).or_insert(sent);
        *newest = (*newest).max(sent);
    }

    /// Whether some of `followers` has not answered for `within` (or never has).
    /// Forgets nodes that are no longer followers.
    fn any_quiet(&self, followers: &[NodeId], within: Duration) -> bool {
        let mut last = self
            .last_answered_send
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        last.retain(|n, _| followers.contains(n));
        followers
            .iter()
            .any(|f| last.get(f).is_none_or(|t| t.elapsed() >= within))
    }
}

impl ShardRaft {
    /// Whether this replica holds the leader role (isolated or not: an isolated
    /// leader keeps trying to reach its followers) and some follower has not
    /// answered it for [`HEARTBEAT_INTERVAL`].
    fn needs_heartbeat(&self) -> bool {
        let followers: Vec<NodeId> = {
            let m = self.raft.metrics();
            let m = m.borrow();
            if m.state != ServerState::Leader {
                return false;
            }
            m.replication
                .as_ref()
                .map(|r| r.keys().copied().filter(|n| *n != self.node_id).collect())
                .unwrap_or_default()
        };
        self.contact.any_quiet(&followers, HEARTBEAT_INTERVAL)
    }
}

/// Starts the node's heartbeat driver over the shard groups in `groups` and the
/// metadata group `meta`; it ends once `groups` is dropped.
pub(crate) fn spawn_driver(groups: Weak<RwLock<BTreeMap<u32, ShardRaft>>>, meta: ShardRaft) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(groups) = groups.upgrade() else {
                return;
            };
            let quiet: Vec<ShardRaft> = {
                let groups = groups.read().unwrap_or_else(|p| p.into_inner());
                groups
                    .values()
                    .chain([&meta])
                    .filter(|g| g.needs_heartbeat())
                    .cloned()
                    .collect()
            };
            drop(groups);
            for g in quiet {
                HEARTBEATS.inc();
                // Fails only once the group has shut down; the next round skips it.
                let _ = g.raft.trigger().heartbeat().await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::Vote;

    #[test]
    fn a_follower_is_quiet_until_it_answers_and_again_once_the_interval_passes() {
        let contact = FollowerContact::default();
        let within = Duration::from_millis(30);
        assert!(contact.any_quiet(&[2, 3], within), "never answered");
        contact.answered(2, Instant::now(), &AppendEntriesResponse::Success);
        assert!(contact.any_quiet(&[2, 3], within), "3 has not answered");
        contact.answered(3, Instant::now(), &AppendEntriesResponse::Conflict);
        assert!(!contact.any_quiet(&[2, 3], within));
        std::thread::sleep(within);
        assert!(
            contact.any_quiet(&[2, 3], within),
            "the answers are too old"
        );
    }

    #[test]
    fn a_higher_vote_is_not_an_answer_and_former_followers_are_forgotten() {
        let contact = FollowerContact::default();
        let within = Duration::from_secs(60);
        contact.answered(
            3,
            Instant::now(),
            &AppendEntriesResponse::HigherVote(Vote::new(2, 3)),
        );
        assert!(contact.any_quiet(&[3], within));
        contact.answered(4, Instant::now(), &AppendEntriesResponse::Success);
        assert!(!contact.any_quiet(&[4], within));
        assert!(!contact.any_quiet(&[], within));
        assert!(
            contact.any_quiet(&[4], within),
            "4 stopped being a follower in the call before, so its answer was forgotten"
        );
    }
}
