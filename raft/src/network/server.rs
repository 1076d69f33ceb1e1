//! The receiving side of Raft: an inbound peer message decoded and handed to its
//! group, opening the replica if this node has none yet (that is how a node added as
//! a learner receives its first entries or snapshot).

use crate::error::InboundError;
use crate::keys::{self, GroupId};
use crate::registry::ShardSet;
use kelemetry_proto::kelemetry::cluster::v1::RaftKind;

impl ShardSet {
    /// Handles a Raft message from a peer and returns the encoded result. A message
    /// for a shard this node has no replica of opens one: that is how a node added
    /// as a learner receives its first entries or snapshot.
    pub async fn handle_raft(
        &self,
        group: GroupId,
        kind: RaftKind,
        payload: &[u8],
    ) -> Result<Vec<u8>, InboundError> {
        // Checked before a group is opened: answering as a replica it forgot is what
        // must not happen.
        if let Some(why) = self.lost_data_refusal() {
            return Err(InboundError::LostData(why));
        }
        let g = match keys::group_shard(group) {
            None => self.meta().clone(),
            Some(shard) => self.ensure_group(shard).await?,
        };
        let raft = &g.raft;
        fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, InboundError> {
            postcard::from_bytes(b).map_err(|e| InboundError::Undecodable(e.to_string()))
        }
        fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, InboundError> {
            postcard::to_stdvec(v).map_err(|e| InboundError::Encode(e.to_string()))
        }
        match kind {
            RaftKind::AppendEntries => {
                let req: openraft::raft::AppendEntriesRequest<crate::types::TypeConfig> =
                    dec(payload)?;
                // Heartbeats still pass, so a short disk does not start elections.
                if !req.entries.is_empty() {
                    self.refuse_if_disk_low()?;
                }
                // A leader that answers none of this node's pings is treated as gone:
                // its messages still arriving over a one-way link would otherwise
                // renew its lease here forever while it hears nothing back, and no
                // election could start.
                if let Some(leader) = req.vote.leader_id().voted_for() {
                    if leader != self.node_id() && self.peer_unreachable(leader) {
                        crate::metrics::UNREACHABLE_LEADER_REFUSALS.inc();
                        return Err(InboundError::Unreachable(leader));
                    }
                }
                enc(&raft.append_entries(req).await)
            }
            RaftKind::Vote => enc(&raft.vote(dec(payload)?).await),
            RaftKind::InstallSnapshot => {
                self.refuse_if_disk_low()?;
                enc(&raft.install_snapshot(dec(payload)?).await)
            }
        }
    }

    fn refuse_if_disk_low(&self) -> Result<(), InboundError> {
        self.disk_refusal()
            .map_or(Ok(()), |m| Err(InboundError::DiskLow(m)))
    }
}
