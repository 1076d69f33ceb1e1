//! Where to send work for a shard this node does not lead: leader hints learned from
//! redirects, the placement's preferred leaders and voters, and the address book of
//! peers (the ring state, else `--peers`).

use crate::error::PeerError;
use crate::registry::ShardSet;
use crate::types::NodeId;
use kelemetry_proto::kelemetry::cluster::v1::peer_client::PeerClient;
use tonic::transport::Channel;

impl ShardSet {
    /// Remembers who leads `shard`, learned from a redirect.
    pub fn note_leader(&self, shard: u32, leader: NodeId) {
        self.hints.set(shard, leader);
    }

    /// Drops a leader hint that proved wrong (its node did not answer).
    pub fn forget_leader(&self, shard: u32) {
        self.hints.clear(shard);
    }

    /// Where to send work for `shard` when this node has no replica of it: the last
    /// leader learned from a redirect, else its preferred leader, else a voter.
    pub fn leader_hint(&self, shard: u32) -> Option<NodeId> {
        self.hints.get(shard).or_else(|| {
            let meta = self.ring();
            meta.preferred_leaders()
                .get(&shard)
                .copied()
                .or_else(|| meta.voters.get(&shard).and_then(|v| v.first().copied()))
        })
    }

    /// Every node worth asking who leads `shard`, best guess first: the leader hint,
    /// then the shard's recorded voters and its target replicas (each of them hears
    /// from the leader, so a wrong guess answers with a redirect).
    pub fn leader_candidates(&self, shard: u32) -> Vec<NodeId> {
        let meta = self.ring();
        let recorded = meta.voters.get(&shard).into_iter().flatten();
        let target = meta.target.get(&shard).into_iter().flatten();
        let mut out: Vec<NodeId> = self.leader_hint(shard).into_iter().collect();
        for n in recorded.chain(target) {
            if !out.contains(n) {
                out.push(*n);
            }
        }
        out
    }

    /// The peer address of a node: from the cluster metadata, or the static peers.
    pub fn peer_addr(&self, node: NodeId) -> Option<String> {
        self.ring()
            .peer_addr(node)
            .map(str::to_string)
            .or_else(|| self.settings().peers.get(&node).cloned())
    }

    /// A peer RPC client for node `node` over the shared channels.
    pub fn peer_client(&self, node: NodeId) -> Result<PeerClient<Channel>, PeerError> {
        let addr = self.peer_addr(node).ok_or(PeerError::NoAddress(node))?;
        self.channels().client(&addr)
    }
}
