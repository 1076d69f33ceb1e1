//! Which peers answer right now. Every node pings every other member of the ring
//! twice a second over the peer channels, so a read or a forwarded write can pass
//! over a peer that stopped answering (a partition, a paused process) at once,
//! instead of each waiting out its own timeout against it.
//!
//! The same pings free followers from a leader they can no longer reach. When the
//! link towards a leader is cut but the leader's own messages still arrive (a
//! one-way partition), its heartbeats keep renewing its lease on the followers
//! while their answers never reach it: the group could not commit and would never
//! elect. So a follower refuses entries and heartbeats from a leader that has
//! answered no ping for [`UNREACHABLE_AFTER`] (see the inbound Raft handler), its
//! election timer runs out, and the followers elect among themselves as after a
//! crash. (Making the followers campaign at once instead made them campaign
//! together, and two candidates that each just voted for themselves refuse each
//! other for as long as openraft's lease lasts, round after round.)
//!
//! And they keep a replica that cannot reach a quorum of its group from campaigning
//! (what Raft's pre-vote does): a node whose answers are cut off would otherwise
//! start election after election, and every vote request it can still send raises
//! the others' term and wins their vote, which it never hears, so the reachable
//! majority could not elect for as long as the cut lasted.

use crate::group::ShardRaft;
use crate::registry::ShardSet;
use crate::types::NodeId;
use kelemetry_core::ring::MemberState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often every member is pinged.
const PING_EVERY: Duration = Duration::from_millis(500);
/// A peer that answered no ping for this long is unreachable.
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(2);

/// When each peer last answered a ping. A member enters the table as if it had just
/// answered, so a peer is judged only after it had the time to answer.
#[derive(Default)]
pub struct PeerHealth {
    last_answer: Mutex<HashMap<NodeId, Instant>>,
}

impl PeerHealth {
    /// Whether `node` is a member that has answered no ping for
    /// [`UNREACHABLE_AFTER`]; `false` for a node not pinged yet.
    pub fn unreachable(&self, node: NodeId) -> bool {
        let last = self.last_answer.lock().unwrap_or_else(|p| p.into_inner());
        last.get(&node)
            .is_some_and(|t| t.elapsed() >= UNREACHABLE_AFTER)
    }

    fn note(&self, node: NodeId, answered: bool) {
        let mut last = self.last_answer.lock().unwrap_or_else(|p| p.into_inner());
        let seen = last.entry(node).or_insert_with(Instant::now);
        if answered {
            *seen = Instant::now();
        }
    }

    fn retain(&self, members: &[NodeId]) {
        let mut last = self.last_answer.lock().unwrap_or_else(|p| p.into_inner());
        last.retain(|n, _| members.contains(n));
    }
}

impl ShardSet {
    /// Whether peer `node` has stopped answering pings (see [`PeerHealth`]).
    pub fn peer_unreachable(&self, node: NodeId) -> bool {
        self.health.unreachable(node)
    }

    /// Resolves once peer `node` is unreachable; a call to it raced against this
    /// ends as soon as the pings give up on the peer rather than at its own timeout.
    pub async fn until_unreachable(&self, node: NodeId) {
        while !self.peer_unreachable(node) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether some node other than this one that could lead `shard` answers pings
    /// (or this node is the only candidate): only then is an election worth waiting
    /// for.
    pub fn leader_reachable(&self, shard: u32) -> bool {
        let me = self.node_id();
        let others: Vec<NodeId> = self
            .leader_candidates(shard)
            .into_iter()
            .filter(|n| *n != me)
            .collect();
        others.is_empty() || others.iter().any(|n| !self.peer_unreachable(*n))
    }

    /// Whether this node reaches (by ping) a quorum of `g`'s voters, itself included.
    fn reaches_quorum(&self, g: &ShardRaft) -> bool {
        let me = self.node_id();
        let voters = g.voters();
        let reached = voters
            .iter()
            .filter(|v| **v == me || !self.peer_unreachable(**v))
            .count();
        reached * 2 > voters.len()
    }

    /// In every group (the metadata group included): elections only while a quorum
    /// is reachable and the disk has room.
    fn gate_elections(&self) {
        let mut groups = self.locals();
        groups.push(self.meta().clone());
        let disk_ok = self.disk_refusal().is_none();
        for g in groups {
            g.set_may_campaign(disk_ok && self.reaches_quorum(&g));
        }
    }

    /// Pings every other member every [`PING_EVERY`] until the set is dropped.
    pub fn spawn_peer_pings(self: &Arc<Self>) {
        let set = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PING_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(set) = set.upgrade() else { return };
                let me = set.node_id();
                let members: Vec<NodeId> = set
                    .ring()
                    .members
                    .values()
                    .filter(|m| m.state != MemberState::Removed)
                    .map(|m| m.id)
                    .collect();
                set.health.retain(&members);
                set.gate_elections();
                for node in members.into_iter().filter(|n| *n != me) {
                    let set = set.clone();
                    tokio::spawn(async move {
                        let answered = match set.peer_addr(node) {
                            Some(addr) => set.channels().ping(&addr, None).await.is_some(),
                            None => false,
                        };
                        set.health.note(node, answered);
                    });
                }
            }
        });
    }
}
