//! What a shard's leader does to move its group toward the placement target, one
//! membership change at a time: add a missing replica as a learner and wait until it
//! has caught up, promote it, then remove a replica the target no longer names. It
//! reports the resulting voters to the metadata group.

use super::{proposer, RingError};
use kelemetry_core::ring::{next_step, NodeId, RingCommand, RingState, Step};
use kelemetry_raft::{GroupError, PeerError, ShardRaft, ShardSet};
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
    change: impl std::future::Future<Output = Result<T, GroupError>>,
) -> Result<T, RingError> {
    Ok(tokio::time::timeout(CHANGE_TIMEOUT, change)
        .await
        .map_err(|_| RingError::Timeout {
            what: what.to_string(),
            shard,
            timeout: CHANGE_TIMEOUT,
        })??)
}

/// Whether the metadata's record of `shard`'s voters differs from the group's.
pub fn needs_report(meta: &RingState, g: &ShardRaft) -> bool {
    let recorded: BTreeSet<NodeId> = meta
        .voters
        .get(&g.shard())
        .map(|v| v.iter().copied().collect())
        .unwrap_or_default();
    !g.membership().in_joint_config() && recorded != g.voters()
}

/// Makes one membership change of `g` toward the target and reports the voters.
pub async fn advance(shards: &ShardSet, g: &ShardRaft) -> Result<(), RingError> {
    let meta = shards.ring();
    let shard = g.shard();
    if bounded(
        shard,
        "finishing a joint change",
        g.membership().finish_joint_config(false),
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
            let addr = shards.peer_addr(node).ok_or(PeerError::NoAddress(node))?;
            tracing::info!(shard, node, "adding replica; waiting for it to catch up");
            g.membership()
                .add_caught_up_learner(node, &addr, CATCH_UP_TIMEOUT)
                .await?;
            let mut next = voters;
            next.insert(node);
            bounded(shard, "promotion", g.membership().set_voters(next, false)).await?;
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
                    return Ok(shards.hand_over(g, to).await?);
                }
                None => remove_voter(shard, g, voters, node).await?,
            }
        }
        Some(Step::Remove(node)) => remove_voter(shard, g, voters, node).await?,
        Some(Step::DropLearners(nodes)) => {
            bounded(
                shard,
                "learner removal",
                g.membership().remove_nodes(nodes.clone()),
            )
            .await?;
            tracing::info!(shard, ?nodes, "dropped stray learners");
        }
        None => {}
    }
    if g.is_leader() && needs_report(&shards.ring(), g) {
        let nodes = g.voters().into_iter().collect();
        proposer::submit(shards, RingCommand::ReportVoters { shard, nodes }).await?;
    }
    Ok(())
}

async fn remove_voter(
    shard: u32,
    g: &ShardRaft,
    mut voters: BTreeSet<NodeId>,
    node: NodeId,
) -> Result<(), RingError> {
    voters.remove(&node);
    bounded(shard, "removal", g.membership().set_voters(voters, false)).await?;
    tracing::info!(shard, node, "replica removed");
    Ok(())
}
