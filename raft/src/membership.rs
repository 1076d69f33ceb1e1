//! Changing who is in a group: learners, voters, and finishing a change left in joint
//! consensus. Apart from the group handle, so that reading and proposing never need
//! the operations that move replicas.

use crate::error::GroupError;
use crate::group::ShardRaft;
use crate::handover::replicated_to;
use crate::types::NodeId;
use openraft::{BasicNode, ChangeMembers};
use std::collections::BTreeSet;
use std::time::Duration;

/// The membership operations of one group (see [`ShardRaft::membership`]).
pub struct Membership<'a> {
    group: &'a ShardRaft,
}

impl ShardRaft {
    /// The membership operations of this group.
    pub fn membership(&self) -> Membership<'_> {
        Membership { group: self }
    }
}

impl Membership<'_> {
    /// Whether a membership change is still in joint consensus.
    pub fn in_joint_config(&self) -> bool {
        let m = self.group.raft.metrics().borrow().membership_config.clone();
        m.membership().get_joint_config().len() > 1
    }

    /// Completes a membership change left in joint consensus: openraft leaves the
    /// second step to the caller, so a leader that lost its term between the steps
    /// leaves the group joint until a later leader finishes it. Returns whether there
    /// was one to finish.
    pub async fn finish_joint_config(&self, keep_as_learners: bool) -> Result<bool, GroupError> {
        let m = self.group.raft.metrics().borrow().membership_config.clone();
        let configs = m.membership().get_joint_config();
        let goal = match configs.as_slice() {
            [_, .., last] => last.clone(),
            _ => return Ok(false),
        };
        self.set_voters(goal, keep_as_learners).await?;
        Ok(true)
    }

    /// Adds `node` as a learner (unless it is one already) and returns the index of
    /// the membership entry that lists it. openraft's own wait for a new learner
    /// passes one that lags by up to thousands of entries, or whose leader lost its
    /// term; [`Membership::add_caught_up_learner`] waits for what matters.
    async fn add_learner(&self, node: NodeId, addr: &str) -> Result<u64, GroupError> {
        if self.group.learners().contains(&node) {
            let m = self.group.raft.metrics().borrow().membership_config.clone();
            return Ok(m.log_id().map_or(0, |l| l.index));
        }
        self.group
            .raft
            .add_learner(node, BasicNode::new(addr), false)
            .await
            .map(|r| r.log_id.index)
            .map_err(|e| self.group.api_error(e))
    }

    /// Adds `node` as a learner and waits until it holds the log up to the entry
    /// that added it, `timeout` for both (a change proposed by a leader that then
    /// loses its term may never commit).
    pub async fn add_caught_up_learner(
        &self,
        node: NodeId,
        addr: &str,
        timeout: Duration,
    ) -> Result<(), GroupError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let added_at = tokio::time::timeout(timeout, self.add_learner(node, addr))
            .await
            .map_err(|_| GroupError::Unavailable {
                shard: self.group.shard(),
                message: format!(
                    "adding node {node} as a learner did not commit within {timeout:?}"
                ),
            })??;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if self.wait_replicated(node, added_at, left).await {
            return Ok(());
        }
        if !self.group.is_leader() {
            return Err(GroupError::NotLeader {
                shard: self.group.shard(),
                leader: self.group.leader(),
            });
        }
        Err(GroupError::Unavailable {
            shard: self.group.shard(),
            message: format!(
                "node {node} did not replicate the log up to its addition (index {added_at}) within {timeout:?}"
            ),
        })
    }

    /// Waits up to `timeout` until this leader knows `node` holds its log up to
    /// `index`; returns whether it does. A learner is promoted only past the entry
    /// that added it: before that it acts on the older configuration in its log,
    /// where it may be a voter of the group as it once was.
    async fn wait_replicated(&self, node: NodeId, index: u64, timeout: Duration) -> bool {
        let waited = self
            .group
            .raft
            .wait(Some(timeout))
            .metrics(
                |m| m.replication.is_none() || replicated_to(m, node, index),
                "learner replicated up to its own addition",
            )
            .await;
        waited.is_ok() && self.group.has_replicated(node, index)
    }

    /// Makes exactly `voters` the voters; with `keep_as_learners`, removed voters
    /// stay as learners, otherwise they leave the group.
    pub async fn set_voters(
        &self,
        voters: BTreeSet<NodeId>,
        keep_as_learners: bool,
    ) -> Result<(), GroupError> {
        self.group
            .raft
            .change_membership(voters, keep_as_learners)
            .await
            .map(|_| ())
            .map_err(|e| self.group.api_error(e))
    }

    /// Removes learners (or voters) from the group altogether.
    pub async fn remove_nodes(&self, nodes: BTreeSet<NodeId>) -> Result<(), GroupError> {
        self.group
            .raft
            .change_membership(ChangeMembers::RemoveNodes(nodes), false)
            .await
            .map(|_| ())
            .map_err(|e| self.group.api_error(e))
    }
}
