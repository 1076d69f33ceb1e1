//! The handle of one Raft group on this node (a shard, or the metadata group):
//! proposals, leadership, and reads of its applied state. Membership changes are on
//! [`crate::membership::Membership`], leadership handover in [`crate::handover`],
//! and opening or deleting replicas in [`crate::registry`].

use crate::engine::PrefixView;
use crate::error::GroupError;
use crate::settings::QUORUM_STALE_MS;
use crate::state_machine::read_ring;
use crate::types::{GroupRequest, NodeId, TypeConfig};
use kelemetry_core::ring::{RingCommand, RingState};
use kelemetry_core::{Proposal, ProposalOutcome};
use openraft::error::{ForwardToLeader, RaftError};
use openraft::TryAsRef;
use openraft::{BasicNode, Raft, ServerState};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Shard number reported by the metadata group's handle.
pub const META_SHARD: u32 = u32::MAX;

/// One Raft group on this node: a shard, or the metadata group.
#[derive(Clone)]
pub struct ShardRaft {
    pub(crate) shard: u32,
    pub(crate) node_id: NodeId,
    pub(crate) raft: Raft<TypeConfig>,
    pub(crate) view: PrefixView,
    pub(crate) elections: Arc<ElectionGate>,
    /// When its followers last answered this replica's AppendEntries as leader.
    pub(crate) contact: Arc<crate::quiet_heartbeat::FollowerContact>,
}

/// Why a replica may not start elections on its own: a handover it is stepping
/// aside for (until a deadline), or being barred (no quorum of its group reachable,
/// see the peer pings, or a disk too full to lead). Elections run only when
/// neither holds.
#[derive(Default)]
pub struct ElectionGate {
    held_until: std::sync::Mutex<Option<std::time::Instant>>,
    barred: std::sync::atomic::AtomicBool,
}

impl ElectionGate {
    fn allowed(&self) -> bool {
        let held = self
            .held_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| std::time::Instant::now() < t);
        !held && !self.barred.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl ShardRaft {
    /// Our error for an openraft API error of this group, keeping the leader a
    /// forward-to-leader answer names.
    pub(crate) fn api_error<E>(&self, e: RaftError<NodeId, E>) -> GroupError
    where
        E: std::error::Error + TryAsRef<ForwardToLeader<NodeId, BasicNode>>,
    {
        match e.forward_to_leader::<BasicNode>() {
            Some(f) => GroupError::NotLeader {
                shard: self.shard,
                leader: f.leader_id,
            },
            None => GroupError::Unavailable {
                shard: self.shard,
                message: e.to_string(),
            },
        }
    }

    /// The shard number (`u32::MAX` for the metadata group).
    pub fn shard(&self) -> u32 {
        self.shard
    }

    async fn write(&self, req: GroupRequest) -> Result<ProposalOutcome, GroupError> {
        self.raft
            .client_write(req)
            .await
            .map(|resp| resp.data)
            .map_err(|e| self.api_error(e))
    }

    /// Replicates and applies a proposal; returns once it is committed and applied.
    pub async fn propose(&self, proposal: Proposal) -> Result<ProposalOutcome, GroupError> {
        self.write(GroupRequest::Shard(std::sync::Arc::new(proposal)))
            .await
    }

    /// Replicates and applies a metadata command (metadata group only).
    pub async fn propose_ring(&self, cmd: RingCommand) -> Result<(), GroupError> {
        self.write(GroupRequest::Ring(cmd)).await.map(|_| ())
    }

    /// The ring state as this replica has applied it (metadata group only).
    pub fn ring(&self) -> RingState {
        read_ring(&self.view).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the ring state");
            RingState::default()
        })
    }

    /// Whether this node currently leads the shard (with a quorum behind it).
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.node_id)
    }

    /// Whether the shard has a known, effective leader.
    pub fn has_leader(&self) -> bool {
        self.leader().is_some()
    }

    /// The current leader, if known. A leader of a multi-voter group that no quorum
    /// has acknowledged for [`QUORUM_STALE_MS`] is isolated (openraft 0.9 keeps its
    /// role until it sees a higher term) and is reported as no leader.
    pub fn leader(&self) -> Option<NodeId> {
        let m = self.raft.metrics().borrow().clone();
        let leader = m.current_leader?;
        if leader != self.node_id {
            return Some(leader);
        }
        // A leader that removed itself from the group keeps its vote (and openraft's
        // metrics keep naming it) after stepping down; it leads nothing any more.
        let membership = m.membership_config.membership();
        let voters = membership.voter_ids().count();
        let leading =
            m.state == ServerState::Leader && membership.voter_ids().any(|v| v == self.node_id);
        let isolated = voters > 1
            && m.millis_since_quorum_ack
                .is_some_and(|ms| ms > QUORUM_STALE_MS);
        (leading && !isolated).then_some(leader)
    }

    /// The term in which openraft holds this node in the leader role (isolated or
    /// not), read in one step; `None` in any other role. Two nodes leading one group
    /// in the same term would be a split brain: the chaos harness compares this.
    pub fn leader_role_term(&self) -> Option<u64> {
        let m = self.raft.metrics().borrow().clone();
        (m.state == ServerState::Leader).then_some(m.current_term)
    }

    /// Records whether this replica may stand for election (it reaches a quorum of
    /// its group and has the disk space to lead); if not, it starts none on its own.
    pub fn set_may_campaign(&self, may: bool) {
        self.elections
            .barred
            .store(!may, std::sync::atomic::Ordering::Relaxed);
        self.apply_election_gate();
    }

    /// Turns openraft's election timer on or off as the gate says.
    pub(crate) fn apply_election_gate(&self) {
        self.raft.runtime_config().elect(self.elections.allowed());
    }

    /// Keeps this replica from starting elections until `until`.
    pub(crate) fn hold_elections_until(&self, until: std::time::Instant) {
        *self
            .elections
            .held_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(until);
        self.apply_election_gate();
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// Voters of the group's current membership.
    pub fn voters(&self) -> BTreeSet<NodeId> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().voter_ids().collect()
    }

    /// Learners of the group's current membership.
    pub fn learners(&self) -> BTreeSet<NodeId> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().learner_ids().collect()
    }

    /// Confirms with a quorum that this node still leads and waits until everything
    /// committed before the call is applied: a read after it is linearizable.
    pub async fn ensure_linearizable(&self) -> Result<(), GroupError> {
        self.raft
            .ensure_linearizable()
            .await
            .map(|_| ())
            .map_err(|e| self.api_error(e))
    }

    /// Index of the last applied log entry.
    pub fn applied_index(&self) -> Option<u64> {
        self.raft.metrics().borrow().last_applied.map(|l| l.index)
    }

    /// A hash of every state record with the applied index it was read at (read
    /// twice around the scan, `None` if apply moved meanwhile): replicas at the same
    /// index must hash the same.
    pub fn state_checksum(&self) -> Result<Option<(u64, u64)>, GroupError> {
        let before = self.applied_index();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        kelemetry_core::state::KvRead::scan(&self.view, &[], &[0xff; 8], &mut |k, v| {
            hasher.update(&(k.len() as u64).to_be_bytes());
            hasher.update(k);
            hasher.update(&(v.len() as u64).to_be_bytes());
            hasher.update(v);
            true
        })
        .map_err(|e| GroupError::Read {
            shard: self.shard,
            message: e.to_string(),
        })?;
        let after = self.applied_index();
        Ok((before == after).then(|| (after.unwrap_or(0), hasher.digest())))
    }

    /// Reads of the shard's applied state.
    pub fn reader(&self) -> &PrefixView {
        &self.view
    }
}
