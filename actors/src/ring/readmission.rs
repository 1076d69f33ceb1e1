//! Letting a node that lost its data back in (see `kelemetry_raft::lost_data`).
//!
//! The node asks a peer with its Join marked `lost_data`. The metadata leader
//! looks at what the node's id still holds: while it is a voter of the metadata
//! group or placed on any shard, the id is drained like a dead node (its replicas
//! are rebuilt on other nodes, or the shard goes on with fewer) and the answer is
//! "not yet". Once it holds nothing, a member that is not already removed is
//! marked removed; a removed id still in the metadata group is taken out of it
//! here (the controller waits for a removed member to learn of its removal first,
//! which this node, refusing every Raft message, never does); once the group no
//! longer lists it, the answer is yes and the node joins like a new one.

use super::proposer::{propose_here, send_request};
use super::RingError;
use kelemetry_core::ring::{Member, MemberState, RingCommand, RingState};
use kelemetry_raft::{GroupError, NodeId, PeerError, ShardSet};
use std::collections::BTreeSet;

/// What the metadata leader does about a node that lost its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Its id holds nothing, is removed (or unknown) and out of the metadata
    /// group: it may join.
    Readmit,
    /// Its id holds no replica but is still a member: mark it removed first.
    Remove,
    /// Its id is removed but still in the metadata group: take it out.
    LeaveMetadataGroup,
    /// Its id still holds replicas and is not draining yet: drain it.
    Drain,
    /// Its replicas are being moved off, or it is removed and about to leave the
    /// metadata group.
    Wait {
        /// Shards still placed on it.
        held: usize,
        /// Whether the metadata group still lists it (as voter or learner).
        in_metadata_group: bool,
    },
}

/// The next step for node `id`, from the ring and the metadata group's voters and
/// learners.
pub fn next_step(
    ring: &RingState,
    metadata_voters: &BTreeSet<NodeId>,
    metadata_learners: &BTreeSet<NodeId>,
    id: NodeId,
) -> Step {
    let held = ring.shards_of(id).len();
    let voter = metadata_voters.contains(&id);
    let in_metadata_group = voter || metadata_learners.contains(&id);
    let wait = Step::Wait {
        held,
        in_metadata_group,
    };
    match ring.members.get(&id).map(|m| m.state) {
        None | Some(MemberState::Removed) if !in_metadata_group => Step::Readmit,
        None | Some(MemberState::Removed) if held == 0 => Step::LeaveMetadataGroup,
        None | Some(MemberState::Removed) => wait,
        Some(_) if held == 0 && !voter => Step::Remove,
        Some(MemberState::Draining) => wait,
        Some(_) => Step::Drain,
    }
}

/// At the metadata leader (or forwarded once to it): takes the next step for `me`
/// and answers `Ok` only when it may join.
pub async fn handle(shards: &ShardSet, me: &Member, forwarded: bool) -> Result<(), RingError> {
    let meta = shards.meta();
    if !meta.is_leader() {
        let leader = meta
            .leader()
            .filter(|l| *l != shards.node_id() && !forwarded);
        let Some(leader) = leader else {
            return Err(GroupError::NotLeader {
                shard: kelemetry_raft::META_SHARD,
                leader: meta.leader(),
            }
            .into());
        };
        let addr = shards
            .peer_addr(leader)
            .ok_or(PeerError::NoAddress(leader))?;
        let join = RingCommand::Join(me.clone());
        let readmitted = send_request(shards, &addr, &join, true, true).await?;
        return confirmed(readmitted, &addr);
    }
    let id = me.id;
    let state = |state| RingCommand::SetState { id, state };
    match next_step(&shards.ring(), &meta.voters(), &meta.learners(), id) {
        Step::Readmit => Ok(()),
        Step::Remove => {
            tracing::info!(
                node = id,
                "node lost its data and holds no replica; marking it removed so it can join again"
            );
            propose_here(shards, state(MemberState::Removed)).await?;
            Err(RingError::NotYet(format!(
                "node {id} lost its data; it is removed and leaves the metadata group next"
            )))
        }
        Step::LeaveMetadataGroup => {
            tracing::info!(
                node = id,
                "node lost its data and is removed; taking it out of the metadata group"
            );
            meta.membership().remove_nodes(BTreeSet::from([id])).await?;
            Err(RingError::NotYet(format!(
                "node {id} lost its data; it left the metadata group and joins next"
            )))
        }
        Step::Drain => {
            tracing::warn!(
                node = id,
                "node lost its data; moving its replicas off before it joins again"
            );
            propose_here(shards, state(MemberState::Draining)).await?;
            Err(RingError::NotYet(format!(
                "node {id} lost its data; its replicas are being moved off first"
            )))
        }
        Step::Wait {
            held,
            in_metadata_group,
        } => Err(RingError::NotYet(format!(
            "node {id} lost its data; {held} shard(s){} still to leave",
            if in_metadata_group {
                " and the metadata group"
            } else {
                ""
            }
        ))),
    }
}

/// On the node that lost its data: asks the peer at `addr` whether it may join;
/// on yes, records that it was readmitted.
pub async fn ask(shards: &ShardSet, addr: &str, me: &Member) -> Result<(), RingError> {
    let readmitted =
        send_request(shards, addr, &RingCommand::Join(me.clone()), false, true).await?;
    confirmed(readmitted, addr)?;
    shards
        .readmitted()
        .map_err(|e| RingError::NotYet(format!("cannot record the readmission: {e}")))
}

/// An answer without an error that does not say "readmitted" comes from a peer
/// that predates readmission: it committed (or forwarded) the Join as an ordinary
/// one, which readmits nothing.
fn confirmed(readmitted: bool, addr: &str) -> Result<(), RingError> {
    if readmitted {
        Ok(())
    } else {
        Err(RingError::NotYet(format!(
            "{addr} accepted the Join without readmitting this node (a version that \
             predates readmission); waiting for an upgraded metadata leader"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    fn ring(state: MemberState, placed_on_1: bool) -> RingState {
        let mut r = RingState {
            shards: 2,
            replicas: 2,
            ..Default::default()
        };
        for id in [0, 1] {
            let s = if id == 1 { state } else { MemberState::Active };
            r.members.insert(
                id,
                Member {
                    id,
                    peer_addr: String::new(),
                    http_addr: String::new(),
                    state: s,
                },
            );
        }
        let nodes = if placed_on_1 { vec![0, 1] } else { vec![0] };
        r.target = BTreeMap::from([(0, nodes.clone()), (1, vec![0])]);
        r.voters = BTreeMap::from([(0, nodes), (1, vec![0])]);
        r
    }

    #[test]
    fn an_id_holding_replicas_is_drained_before_it_may_join() {
        let none = set(&[]);
        assert_eq!(
            next_step(&ring(MemberState::Active, true), &set(&[0]), &none, 1),
            Step::Drain
        );
        assert_eq!(
            next_step(&ring(MemberState::Draining, true), &set(&[0, 1]), &none, 1),
            Step::Wait {
                held: 1,
                in_metadata_group: true
            }
        );
        // A metadata voter holds the metadata group even without shards.
        assert_eq!(
            next_step(&ring(MemberState::Active, false), &set(&[0, 1]), &none, 1),
            Step::Drain
        );
    }

    #[test]
    fn an_id_holding_nothing_is_removed_and_readmitted_once_out_of_the_metadata_group() {
        let (voters, none) = (set(&[0]), set(&[]));
        for from in [MemberState::Draining, MemberState::Active] {
            assert_eq!(
                next_step(&ring(from, false), &voters, &set(&[1]), 1),
                Step::Remove
            );
        }
        assert_eq!(
            next_step(&ring(MemberState::Removed, false), &voters, &set(&[1]), 1),
            Step::LeaveMetadataGroup
        );
        assert_eq!(
            next_step(&ring(MemberState::Removed, false), &voters, &none, 1),
            Step::Readmit
        );
        assert_eq!(
            next_step(&ring(MemberState::Active, false), &voters, &none, 7),
            Step::Readmit
        );
    }
}
