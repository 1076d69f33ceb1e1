//! Placement decisions, pure functions of the ring state: which replicas each shard
//! should have (rendezvous hashing over active members), who should lead it, who
//! votes in the metadata group, and which moves the controller starts next.

use super::command::RingCommand;
use super::members::{MemberState, NodeId};
use super::state::{same_set, RingState};
use std::collections::{BTreeMap, BTreeSet};

impl RingState {
    /// The replicas `shard` should have: the `replicas` active members with the
    /// highest rendezvous score.
    pub fn desired(&self, shard: u32) -> Vec<NodeId> {
        rendezvous(
            shard,
            &self.ids_in(MemberState::Active),
            self.replicas as usize,
        )
    }

    /// Which node should lead each shard: for every shard in order, the target
    /// replica that has been given the fewest shards so far, so leadership (and its
    /// write load) spreads evenly.
    pub fn preferred_leaders(&self) -> BTreeMap<u32, NodeId> {
        let mut given: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for (shard, nodes) in &self.target {
            let live: Vec<NodeId> = nodes
                .iter()
                .copied()
                .filter(|n| self.voters.get(shard).is_some_and(|v| v.contains(n)))
                .collect();
            if let Some(best) = live
                .iter()
                .min_by_key(|n| given.get(n).copied().unwrap_or(0))
            {
                *given.entry(*best).or_default() += 1;
                out.insert(*shard, *best);
            }
        }
        out
    }

    /// The members that should vote in the metadata group: the first five active
    /// members by id (every other member follows as a learner).
    pub fn metadata_voters(&self) -> BTreeSet<NodeId> {
        self.ids_in(MemberState::Active)
            .into_iter()
            .take(MAX_METADATA_VOTERS)
            .collect()
    }

    /// The controller's next decisions: new targets for shards whose desired
    /// replicas changed (at most `max_moving` shards in motion at once; a moving
    /// shard is retargeted at once if its target went stale), and state changes of
    /// members (joining to active; draining to removed once they hold nothing).
    pub fn plan(&self, max_moving: usize) -> Vec<RingCommand> {
        let mut out = Vec::new();
        for id in self.ids_in(MemberState::Joining) {
            out.push(RingCommand::SetState {
                id,
                state: MemberState::Active,
            });
        }
        let mut moving = self.moving().len();
        for shard in 0..self.shards {
            let desired = self.desired(shard);
            let target = self.target.get(&shard);
            if desired.is_empty() || same_set(Some(&desired), target) {
                continue;
            }
            let in_motion = !same_set(target, self.voters.get(&shard));
            if in_motion || moving < max_moving {
                moving += usize::from(!in_motion);
                out.push(RingCommand::SetTarget {
                    shard,
                    nodes: desired,
                });
            }
        }
        for id in self.ids_in(MemberState::Draining) {
            if self.shards_of(id).is_empty() {
                out.push(RingCommand::SetState {
                    id,
                    state: MemberState::Removed,
                });
            }
        }
        out
    }
}

/// Most voters of the metadata group.
pub const MAX_METADATA_VOTERS: usize = 5;

/// The `n` candidates with the highest hash of (shard, node), best first: adding or
/// removing a node only moves the shards whose top `n` it enters or leaves.
pub fn rendezvous(shard: u32, candidates: &[NodeId], n: usize) -> Vec<NodeId> {
    rendezvous_of(&shard.to_be_bytes(), candidates, n)
}

/// The `n` candidates with the highest hash of (`key`, node), best first: rendezvous
/// hashing of anything named by bytes (a shard number, a watch duty's name).
pub fn rendezvous_of(key: &[u8], candidates: &[NodeId], n: usize) -> Vec<NodeId> {
    let mut scored: Vec<(u64, NodeId)> = candidates
        .iter()
        .map(|id| {
            let mut bytes = key.to_vec();
            bytes.extend_from_slice(&id.to_be_bytes());
            (xxhash_rust::xxh3::xxh3_64(&bytes), *id)
        })
        .collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    scored.into_iter().take(n).map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{Member, MemberState, NodeId, RingCommand, RingState};

    fn member(id: NodeId) -> Member {
        Member {
            id,
            peer_addr: format!("10.0.0.{id}:7070"),
            http_addr: format!("10.0.0.{id}:8080"),
            state: MemberState::Joining,
        }
    }

    fn ring(nodes: u64, shards: u32) -> RingState {
        let mut m = RingState::default();
        m.apply(&RingCommand::Init {
            shards,
            replicas: 3,
            members: (1..=nodes).map(member).collect(),
        });
        m
    }

    /// Applies the plan and pretends every shard leader finished its moves.
    fn settle(m: &mut RingState, max_moving: usize) -> usize {
        let mut rounds = 0;
        loop {
            let plan = m.plan(max_moving);
            if plan.is_empty() {
                return rounds;
            }
            rounds += 1;
            for c in &plan {
                m.apply(c);
            }
            for (shard, nodes) in m.target.clone() {
                m.apply(&RingCommand::ReportVoters { shard, nodes });
            }
            assert!(rounds < 100, "placement does not converge");
        }
    }

    #[test]
    fn init_places_every_shard_on_three_distinct_active_members() {
        let m = ring(5, 64);
        for shard in 0..64 {
            let t = &m.target[&shard];
            assert_eq!(t.len(), 3);
            assert_eq!(t.iter().collect::<BTreeSet<_>>().len(), 3);
            assert_eq!(m.voters[&shard].len(), 3);
        }
        assert!(m.moving().is_empty());
        assert_eq!(m.metadata_voters().len(), 5);
    }

    #[test]
    fn a_joining_node_gets_its_share_and_only_shards_it_enters_move() {
        let mut m = ring(3, 64);
        m.apply(&RingCommand::Join(member(4)));
        assert_eq!(m.members[&4].state, MemberState::Joining);
        let before = m.target.clone();
        settle(&mut m, 4);
        assert_eq!(m.members[&4].state, MemberState::Active);
        let held = m.shards_of(4).len();
        // 64 shards x 3 replicas over 4 nodes is 48 each; rendezvous is close to it.
        assert!((36..=60).contains(&held), "node 4 holds {held}");
        for (shard, nodes) in &m.target {
            let old: BTreeSet<_> = before[shard].iter().collect();
            let new: BTreeSet<_> = nodes.iter().collect();
            assert!(old.symmetric_difference(&new).count() <= 2, "shard {shard}");
        }
    }

    #[test]
    fn moves_are_rate_limited() {
        let mut m = ring(3, 64);
        m.apply(&RingCommand::Join(member(4)));
        m.apply(&RingCommand::SetState {
            id: 4,
            state: MemberState::Active,
        });
        let first = m.plan(2);
        assert_eq!(first.len(), 2);
        for c in &first {
            m.apply(c);
        }
        assert!(m.plan(2).is_empty(), "two shards already moving");
    }

    #[test]
    fn draining_moves_everything_off_then_removes() {
        let mut m = ring(5, 32);
        m.apply(&RingCommand::SetState {
            id: 2,
            state: MemberState::Draining,
        });
        settle(&mut m, 8);
        assert_eq!(m.members[&2].state, MemberState::Removed);
        assert!(m.shards_of(2).is_empty());
        assert!(!m.metadata_voters().contains(&2));
        let leaders = m.preferred_leaders();
        assert!(leaders.values().all(|l| *l != 2));
    }

    #[test]
    fn preferred_leaders_spread_evenly() {
        let m = ring(3, 64);
        let mut count: BTreeMap<NodeId, usize> = BTreeMap::new();
        for l in m.preferred_leaders().values() {
            *count.entry(*l).or_default() += 1;
        }
        let (lo, hi) = (count.values().min(), count.values().max());
        assert!(hi.unwrap() - lo.unwrap() <= 1, "{count:?}");
    }

    #[test]
    fn init_is_ignored_once_applied_and_rejoin_after_removal_is_joining() {
        let mut m = ring(3, 8);
        let snapshot = m.clone();
        m.apply(&RingCommand::Init {
            shards: 99,
            replicas: 1,
            members: vec![member(9)],
        });
        assert_eq!(m, snapshot);
        m.apply(&RingCommand::SetState {
            id: 3,
            state: MemberState::Removed,
        });
        m.apply(&RingCommand::Join(member(3)));
        assert_eq!(m.members[&3].state, MemberState::Joining);
        m.apply(&RingCommand::Join(member(1)));
        assert_eq!(m.members[&1].state, MemberState::Active);
    }

    #[test]
    fn init_after_an_early_join_still_creates_the_ring() {
        // The bootstrapping node's own Join, or a peer's, may commit before Init.
        let mut m = RingState::default();
        m.apply(&RingCommand::Join(member(0)));
        m.apply(&RingCommand::Join(member(1)));
        m.apply(&RingCommand::Init {
            shards: 8,
            replicas: 3,
            members: vec![member(0)],
        });
        assert_eq!((m.shards, m.replicas), (8, 3));
        assert_eq!(m.members[&0].state, MemberState::Active);
        assert_eq!(m.members[&1].state, MemberState::Joining);
        assert!(m.target.values().all(|t| t == &vec![0]), "{:?}", m.target);
    }

    #[test]
    fn rendezvous_is_stable_under_unrelated_changes() {
        let a = rendezvous(7, &[1, 2, 3, 4, 5], 3);
        let b = rendezvous(7, &[5, 4, 3, 2, 1], 3);
        assert_eq!(a, b);
        let without: Vec<NodeId> = [1, 2, 3, 4, 5]
            .into_iter()
            .filter(|n| !a.contains(n))
            .take(1)
            .collect();
        let c = rendezvous(7, &[a[0], a[1], a[2], without[0]], 3);
        assert_eq!(a, c);
    }
}
