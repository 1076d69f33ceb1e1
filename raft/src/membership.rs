//! Changing who is in a group: learners, voters, and finishing a change left in joint
//! consensus. Apart from the group handle, so that reading and proposing never need
//! the operations that move replicas.

use crate::error::GroupError;
use crate::group::ShardRaft;
use crate::types::NodeId;
use openraft::{BasicNode, ChangeMembers};
use std::collections::BTreeSet;

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

    /// Adds `node` as a learner and waits until it has caught up with the log.
    pub async fn add_learner(&self, node: NodeId, addr: &str) -> Result<(), GroupError> {
        self.group
            .raft
            .add_learner(node, BasicNode::new(addr), true)
            .await
            .map(|_| ())
            .map_err(|e| self.group.api_error(e))
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
