//! The ring state the metadata group replicates, and how a command changes it.

use super::command::RingCommand;
use super::duties::DutyRoster;
use super::members::{Member, MemberState, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The replicated ring state: members, and each shard's target and current voters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingState {
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
    /// The live nodes watch duties are spread over.
    #[serde(default)]
    pub roster: DutyRoster,
    /// Committed watch positions (resourceVersions) by duty.
    #[serde(default)]
    pub cursors: BTreeMap<String, String>,
}

impl RingState {
    /// Applies one command. Pure and deterministic: every replica of the metadata
    /// group computes the same state from the same log.
    pub fn apply(&mut self, cmd: &RingCommand) {
        match cmd {
            RingCommand::Init {
                shards,
                replicas,
                members,
            } => {
                // Once only. A Join committed before it (a node that asked to join
                // the ring its metadata leader was about to create) is kept.
                if self.shards != 0 {
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
            RingCommand::Join(m) => {
                let state = match self.members.get(&m.id).map(|old| old.state) {
                    None | Some(MemberState::Removed) => MemberState::Joining,
                    Some(s) => s,
                };
                let mut m = m.clone();
                m.state = state;
                self.members.insert(m.id, m);
            }
            RingCommand::SetState { id, state } => {
                if let Some(m) = self.members.get_mut(id) {
                    m.state = *state;
                }
            }
            RingCommand::SetTarget { shard, nodes } => {
                self.target.insert(*shard, nodes.clone());
            }
            RingCommand::ReportVoters { shard, nodes } => {
                let mut nodes = nodes.clone();
                nodes.sort_unstable();
                self.voters.insert(*shard, nodes);
            }
            RingCommand::SetCursor {
                duty,
                resource_version,
                node,
                epoch,
            } => {
                if *epoch == self.roster.epoch && self.roster.holds(*node, duty) {
                    self.cursors.insert(duty.clone(), resource_version.clone());
                }
            }
            RingCommand::SetRoster { nodes } => {
                let mut nodes = nodes.clone();
                nodes.sort_unstable();
                nodes.dedup();
                if nodes != self.roster.nodes {
                    self.roster.nodes = nodes;
                    self.roster.epoch += 1;
                }
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
}

/// Whether two optional node lists hold the same nodes, in any order.
pub(crate) fn same_set(a: Option<&Vec<NodeId>>, b: Option<&Vec<NodeId>>) -> bool {
    let set = |v: Option<&Vec<NodeId>>| -> BTreeSet<NodeId> {
        v.map(|v| v.iter().copied().collect()).unwrap_or_default()
    };
    set(a) == set(b)
}
