//! Moving a group's leadership to another voter without an election fight. openraft
//! 0.9 has no leader transfer, and a follower that campaigns on its own is refused
//! by the other followers (they still hold the leader's lease) while its higher term
//! unseats the leader, over and over. So the leader steps aside instead: it stops
//! starting elections for a moment and asks a voter holding its whole log to
//! campaign, which that voter wins with the leader's vote.

use crate::error::{GroupError, PeerError};
use crate::group::ShardRaft;
use crate::registry::ShardSet;
use crate::types::NodeId;
use kelemetry_proto::kelemetry::cluster::v1::CampaignRequest;
use std::time::Duration;

/// How long a leader handing a group over keeps from starting elections itself, so
/// the handover does not bounce back.
const HANDOVER_HOLD: Duration = Duration::from_secs(3);

/// Longest wait for the node taking over to start its election.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

impl ShardSet {
    /// Hands leadership of `g` (which this node leads) to `to`, a voter holding the
    /// whole log: this replica stops starting elections for [`HANDOVER_HOLD`] and
    /// asks `to` to campaign, which it wins with this node's vote. The shard is
    /// without a leader for one election round instead of a lease and a timeout.
    pub async fn hand_over(&self, g: &ShardRaft, to: NodeId) -> Result<(), PeerError> {
        g.hold_elections(HANDOVER_HOLD);
        tokio::time::timeout(ASK_TIMEOUT, self.ask_to_campaign(to, g.shard()))
            .await
            .map_err(|_| {
                PeerError::Transport(format!("node {to} did not answer the handover in time"))
            })?
    }

    /// Asks `node` to stand for election in `shard` (a leadership handover).
    async fn ask_to_campaign(&self, node: NodeId, shard: u32) -> Result<(), PeerError> {
        let mut client = self.peer_client(node)?;
        let reply = client
            .campaign(CampaignRequest { shard })
            .await
            .map_err(|s| PeerError::Transport(format!("node {node}: {}", s.message())))?
            .into_inner();
        if reply.error.is_empty() {
            Ok(())
        } else {
            Err(PeerError::Refused {
                peer: format!("node {node}"),
                message: reply.error,
            })
        }
    }
}

impl ShardRaft {
    /// Starts an election for this shard on this node: the receiving end of a
    /// leadership handover (see [`ShardSet::hand_over`]).
    pub async fn campaign(&self) -> Result<(), GroupError> {
        self.raft
            .trigger()
            .elect()
            .await
            .map_err(|e| GroupError::Unavailable {
                shard: self.shard,
                message: e.to_string(),
            })
    }

    /// Whether this leader has replicated its whole log to `node`, so leadership can
    /// move there without the new leader lacking an entry.
    pub fn has_caught_up(&self, node: NodeId) -> bool {
        let last = self.raft.metrics().borrow().last_log_index;
        last.is_none_or(|last| self.has_replicated(node, last))
    }

    /// Whether this leader knows `node` holds its log up to `index`.
    pub fn has_replicated(&self, node: NodeId, index: u64) -> bool {
        replicated_to(&self.raft.metrics().borrow(), node, index)
    }

    /// Keeps this replica from starting elections for `hold`: a leader handing
    /// leadership to another node steps aside this way, so the handover does not
    /// bounce back to it.
    pub fn hold_elections(&self, hold: std::time::Duration) {
        self.hold_elections_until(std::time::Instant::now() + hold);
        let group = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            group.apply_election_gate();
        });
    }
}

/// Whether the leader whose metrics are `m` knows `node` holds its log up to `index`
/// (never, on a node that does not lead).
pub(crate) fn replicated_to(
    m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>,
    node: NodeId,
    index: u64,
) -> bool {
    m.replication
        .as_ref()
        .and_then(|r| r.get(&node))
        .is_some_and(|matched| matched.is_some_and(|l| l.index >= index))
}
