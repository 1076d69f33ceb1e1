//! What a shard's leader does to move its group toward the placement target, one
//! membership change at a time: add a missing replica as a learner and wait until it
//! has caught up, promote it, then remove a replica the target no longer names. It
//! reports the resulting voters to the metadata group.

use super::meta_client;
use kelemetry_core::cluster::{ClusterMeta, MetaCommand, NodeId};
use kelemetry_raft::{ShardRaft, ShardSet};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long a new replica may take to catch up before the move is retried.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// How long one membership change may take to commit before it is retried (a
/// change proposed by a leader that then loses its term may never answer).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);

async fn bounded<T>(
    shard: u32,
    what: &str,
    change: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(CHANGE_TIMEOUT, change)
        .await
        .map_err(|_| format!("{what} of shard {shard} not committed within {CHANGE_TIMEOUT:?}"))?
}

/// The next membership change `shard` needs, if any.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Add this node (as a learner, then a voter).
    Add(NodeId),
    /// Remove this voter.
    Remove(NodeId),
    /// Drop learners the target does not name.
    DropLearners(BTreeSet<NodeId>),
}

/// The next step from `voters`/`learners` toward `target`: additions first, so the
/// group never has fewer replicas than it had while it moves.
pub fn next_step(
    target: &[NodeId],
    voters: &BTreeSet<NodeId>,
    learners: &BTreeSet<NodeId>,
) -> Option<Step> {
    if target.is_empty() {
        return None;
    }
    if let Some(add) = target.iter().find(|n| !voters.contains(n)) {
        return Some(Step::Add(*add));
    }
    if let Some(rm) = voters.iter().find(|n| !target.contains(n)) {
        return Some(Step::Remove(*rm));
    }
    let stray: BTreeSet<NodeId> = learners
        .iter()
        .filter(|n| !target.contains(n))
        .copied()
        .collect();
    (!stray.is_empty()).then_some(Step::DropLearners(stray))
}

/// Whether the metadata's record of `shard`'s voters differs from the group's.
pub fn needs_report(meta: &ClusterMeta, g: &ShardRaft) -> bool {
    let recorded: BTreeSet<NodeId> = meta
        .voters
        .get(&g.shard())
        .map(|v| v.iter().copied().collect())
        .unwrap_or_default();
    !g.in_joint_config() && recorded != g.voters()
}

/// Makes one membership change of `g` toward the target and reports the voters.
pub async fn advance(shards: &ShardSet, g: &ShardRaft) -> Result<(), String> {
    let meta = shards.cluster();
    let shard = g.shard();
    if bounded(
        shard,
        "finishing a joint change",
        g.finish_joint_config(false),
    )
    .await?
    {
        tracing::info!(
            shard,
            "finished a membership change its previous leader left joint"
        );
        return Ok(());
    }
    let target = meta.target.get(&shard).cloned().unwrap_or_default();
    let voters = g.voters();
    match next_step(&target, &voters, &g.learners()) {
        Some(Step::Add(node)) => {
            let addr = shards
                .peer_addr(node)
                .ok_or_else(|| format!("node {node} has no known address"))?;
            tracing::info!(shard, node, "adding replica; waiting for it to catch up");
            tokio::time::timeout(CATCH_UP_TIMEOUT, g.add_learner(node, &addr))
                .await
                .map_err(|_| {
                    format!("node {node} did not catch up with shard {shard} in time")
                })??;
            let mut next = voters;
            next.insert(node);
            bounded(shard, "promotion", g.set_voters(next, false)).await?;
            tracing::info!(shard, node, "replica promoted to voter");
        }
        Some(Step::Remove(node)) if node == shards.node_id() => {
            // Leaving the group as its leader would leave the shard leaderless until
            // the others' leases run out; a caught-up successor takes over first and
            // removes this node. Only without one does the leader remove itself.
            let preferred = meta.preferred_leaders().get(&shard).copied();
            let successor = preferred
                .into_iter()
                .chain(target.iter().copied())
                .find(|n| *n != node && g.has_caught_up(*n));
            match successor {
                Some(to) => {
                    tracing::info!(
                        shard,
                        to,
                        "handing leadership over before leaving the group"
                    );
                    return shards.hand_over(g, to).await;
                }
                None => remove_voter(shard, g, voters, node).await?,
            }
        }
        Some(Step::Remove(node)) => remove_voter(shard, g, voters, node).await?,
        Some(Step::DropLearners(nodes)) => {
            bounded(shard, "learner removal", g.remove_nodes(nodes.clone())).await?;
            tracing::info!(shard, ?nodes, "dropped stray learners");
        }
        None => {}
    }
    if g.is_leader() && needs_report(&shards.cluster(), g) {
        let nodes = g.voters().into_iter().collect();
        meta_client::submit(shards, MetaCommand::ReportVoters { shard, nodes }).await?;
    }
    Ok(())
}

async fn remove_voter(
    shard: u32,
    g: &ShardRaft,
    mut voters: BTreeSet<NodeId>,
    node: NodeId,
) -> Result<(), String> {
    voters.remove(&node);
    bounded(shard, "removal", g.set_voters(voters, false)).await?;
    tracing::info!(shard, node, "replica removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[NodeId]) -> BTreeSet<NodeId> {
        v.iter().copied().collect()
    }

    #[test]
    fn adds_before_removing_and_drops_stray_learners_last() {
        let none = BTreeSet::new();
        assert_eq!(
            next_step(&[1, 2, 4], &set(&[1, 2, 3]), &none),
            Some(Step::Add(4))
        );
        assert_eq!(
            next_step(&[1, 2, 4], &set(&[1, 2, 3, 4]), &none),
            Some(Step::Remove(3))
        );
        assert_eq!(
            next_step(&[1, 2, 4], &set(&[1, 2, 4]), &set(&[5])),
            Some(Step::DropLearners(set(&[5])))
        );
        assert_eq!(next_step(&[1, 2, 4], &set(&[1, 2, 4]), &none), None);
        assert_eq!(next_step(&[], &set(&[1]), &none), None);
    }
}
