//! Cluster metadata: members, shard placement and the decisions of the placement
//! controller, as a deterministic state replicated by the metadata Raft group.
//!
//! The metadata group applies [`MetaCommand`]s to one [`ClusterMeta`] record. Which
//! replicas each shard should have is a pure function of the active members
//! (rendezvous hashing), so every node computes the same target; the controller on
//! the metadata leader only decides *when* a shard starts moving toward it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Node identifiers (stable: `--node-id` or the StatefulSet ordinal).
pub type NodeId = u64;

/// Where a member is in its life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberState {
    /// Admitted to the metadata group, not yet eligible for replicas.
    Joining,
    /// Holds replicas and may lead shards.
    Active,
    /// Replicas and leadership are being moved off (drain, or down too long).
    Draining,
    /// Holds nothing and takes no part in the cluster.
    Removed,
}

impl MemberState {
    /// Lower-case name used in JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joining => "joining",
            Self::Active => "active",
            Self::Draining => "draining",
            Self::Removed => "removed",
        }
    }
}

/// One node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Node id.
    pub id: NodeId,
    /// Peer RPC address (`host:port`).
    pub peer_addr: String,
    /// Webhook and admin HTTP address (`host:port`), for the CLI and status.
    pub http_addr: String,
    /// Life-cycle state.
    pub state: MemberState,
}

/// A change to the cluster metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// First command of a new cluster: shard count, replication factor and the
    /// initial members (all active); every shard's target and voters are set from
    /// them. Ignored once the cluster has members.
    Init {
        /// Shard count.
        shards: u32,
        /// Replicas per shard.
        replicas: u32,
        /// Initial members.
        members: Vec<Member>,
    },
    /// A node asks to join (or rejoin after removal); it enters as joining.
    Join(Member),
    /// A member changes state.
    SetState {
        /// The member.
        id: NodeId,
        /// Its new state.
        state: MemberState,
    },
    /// The controller starts moving a shard toward these replicas.
    SetTarget {
        /// The shard.
        shard: u32,
        /// Wanted voters.
        nodes: Vec<NodeId>,
    },
    /// A shard's leader reports the voters its group has now.
    ReportVoters {
        /// The shard.
        shard: u32,
        /// Current voters.
        nodes: Vec<NodeId>,
    },
}

/// The replicated cluster metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMeta {
    /// Shard count.
    pub shards: u32,
    /// Replicas per shard.
    pub replicas: u32,
    /// Every member ever admitted, removed ones included.
    pub members: BTreeMap<NodeId, Member>,
    /// Voters each shard is moving toward, in rendezvous order.
    pub target: BTreeMap<u32, Vec<NodeId>>,
    /// Voters each shard's leader last reported.
    pub voters: BTreeMap<u32, Vec<NodeId>>,
}

impl ClusterMeta {
    /// Applies one command. Pure and deterministic: every replica of the metadata
    /// group computes the same state from the same log.
    pub fn apply(&mut self, cmd: &MetaCommand) {
        match cmd {
            MetaCommand::Init {
                shards,
                replicas,
                members,
            } => {
                if !self.members.is_empty() {
                    return;
                }
                self.shards = *shards;
                self.replicas = *replicas;
                for m in members {
                    let mut m = m.clone();
                    m.state = MemberState::Active;
                    self.members.insert(m.id, m);
                }
                for shard in 0..*shards {
                    let nodes = self.desired(shard);
                    self.target.insert(shard, nodes.clone());
                    self.voters.insert(shard, nodes);
                }
            }
            MetaCommand::Join(m) => {
                let state = match self.members.get(&m.id).map(|old| old.state) {
                    None | Some(MemberState::Removed) => MemberState::Joining,
                    Some(s) => s,
                };
                let mut m = m.clone();
                m.state = state;
                self.members.insert(m.id, m);
            }
            MetaCommand::SetState { id, state } => {
                if let Some(m) = self.members.get_mut(id) {
                    m.state = *state;
                }
            }
            MetaCommand::SetTarget { shard, nodes } => {
                self.target.insert(*shard, nodes.clone());
            }
            MetaCommand::ReportVoters { shard, nodes } => {
                let mut nodes = nodes.clone();
                nodes.sort_unstable();
                self.voters.insert(*shard, nodes);
            }
        }
    }

    /// Ids of members in `state`.
    pub fn ids_in(&self, state: MemberState) -> Vec<NodeId> {
        self.members
            .values()
            .filter(|m| m.state == state)
            .map(|m| m.id)
            .collect()
    }

    /// The replicas `shard` should have: the `replicas` active members with the
    /// highest rendezvous score.
    pub fn desired(&self, shard: u32) -> Vec<NodeId> {
        rendezvous(
            shard,
            &self.ids_in(MemberState::Active),
            self.replicas as usize,
        )
    }

    /// Peer address of a member.
    pub fn peer_addr(&self, id: NodeId) -> Option<&str> {
        self.members.get(&id).map(|m| m.peer_addr.as_str())
    }

    /// Shards whose voters differ from their target.
    pub fn moving(&self) -> Vec<u32> {
        (0..self.shards)
            .filter(|s| !same_set(self.target.get(s), self.voters.get(s)))
            .collect()
    }

    /// The shards (target or voters) a node holds a replica of.
    pub fn shards_of(&self, id: NodeId) -> BTreeSet<u32> {
        self.target
            .iter()
            .chain(self.voters.iter())
            .filter(|(_, nodes)| nodes.contains(&id))
            .map(|(s, _)| *s)
            .collect()
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
    pub fn plan(&self, max_moving: usize) -> Vec<MetaCommand> {
        let mut out = Vec::new();
        for id in self.ids_in(MemberState::Joining) {
            out.push(MetaCommand::SetState {
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
                out.push(MetaCommand::SetTarget {
                    shard,
                    nodes: desired,
                });
            }
        }
        for id in self.ids_in(MemberState::Draining) {
            if self.shards_of(id).is_empty() {
                out.push(MetaCommand::SetState {
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

fn same_set(a: Option<&Vec<NodeId>>, b: Option<&Vec<NodeId>>) -> bool {
    let set = |v: Option<&Vec<NodeId>>| -> BTreeSet<NodeId> {
        v.map(|v| v.iter().copied().collect()).unwrap_or_default()
    };
    set(a) == set(b)
}

/// The `n` candidates with the highest hash of (shard, node), best first: adding or
/// removing a node only moves the shards whose top `n` it enters or leaves.
pub fn rendezvous(shard: u32, candidates: &[NodeId], n: usize) -> Vec<NodeId> {
    let mut scored: Vec<(u64, NodeId)> = candidates
        .iter()
        .map(|id| {
            let mut bytes = [0u8; 12];
            bytes[..4].copy_from_slice(&shard.to_be_bytes());
            bytes[4..].copy_from_slice(&id.to_be_bytes());
            (xxhash_rust::xxh3::xxh3_64(&bytes), *id)
        })
        .collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    scored.into_iter().take(n).map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: NodeId) -> Member {
        Member {
            id,
            peer_addr: format!("10.0.0.{id}:7070"),
            http_addr: format!("10.0.0.{id}:8080"),
            state: MemberState::Joining,
        }
    }

    fn cluster(nodes: u64, shards: u32) -> ClusterMeta {
        let mut m = ClusterMeta::default();
        m.apply(&MetaCommand::Init {
            shards,
            replicas: 3,
            members: (1..=nodes).map(member).collect(),
        });
        m
    }

    /// Applies the plan and pretends every shard leader finished its moves.
    fn settle(m: &mut ClusterMeta, max_moving: usize) -> usize {
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
                m.apply(&MetaCommand::ReportVoters { shard, nodes });
            }
            assert!(rounds < 100, "placement does not converge");
        }
    }

    #[test]
    fn init_places_every_shard_on_three_distinct_active_members() {
        let m = cluster(5, 64);
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
        let mut m = cluster(3, 64);
        m.apply(&MetaCommand::Join(member(4)));
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
        let mut m = cluster(3, 64);
        m.apply(&MetaCommand::Join(member(4)));
        m.apply(&MetaCommand::SetState {
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
        let mut m = cluster(5, 32);
        m.apply(&MetaCommand::SetState {
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
        let m = cluster(3, 64);
        let mut count: BTreeMap<NodeId, usize> = BTreeMap::new();
        for l in m.preferred_leaders().values() {
            *count.entry(*l).or_default() += 1;
        }
        let (lo, hi) = (count.values().min(), count.values().max());
        assert!(hi.unwrap() - lo.unwrap() <= 1, "{count:?}");
    }

    #[test]
    fn init_is_ignored_once_members_exist_and_rejoin_after_removal_is_joining() {
        let mut m = cluster(3, 8);
        let snapshot = m.clone();
        m.apply(&MetaCommand::Init {
            shards: 99,
            replicas: 1,
            members: vec![member(9)],
        });
        assert_eq!(m, snapshot);
        m.apply(&MetaCommand::SetState {
            id: 3,
            state: MemberState::Removed,
        });
        m.apply(&MetaCommand::Join(member(3)));
        assert_eq!(m.members[&3].state, MemberState::Joining);
        m.apply(&MetaCommand::Join(member(1)));
        assert_eq!(m.members[&1].state, MemberState::Active);
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
