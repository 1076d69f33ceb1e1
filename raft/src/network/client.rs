//! The sending side of Raft: openraft's network factory for one group, sending its
//! messages as postcard-encoded openraft types tagged with the group id over the
//! shared peer channels.

use super::channels::PeerChannels;
use crate::error::PeerError;
use crate::keys::GroupId;
use crate::types::{NodeId, TypeConfig};
use kelemetry_proto::kelemetry::cluster::v1::{peer_client::PeerClient, RaftKind, RaftMessage};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{de::DeserializeOwned, Serialize};
use tonic::transport::Channel;

/// Network factory of one group.
#[derive(Clone)]
pub struct PeerNetwork {
    group: GroupId,
    channels: PeerChannels,
}

impl PeerNetwork {
    /// The network of `group` over shared `channels`.
    pub fn new(group: GroupId, channels: PeerChannels) -> Self {
        Self { group, channels }
    }
}

/// A connection from one group to one peer.
pub struct PeerConnection {
    group: GroupId,
    target: NodeId,
    client: Result<PeerClient<Channel>, PeerError>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        PeerConnection {
            group: self.group,
            target,
            client: self.channels.client(&node.addr),
        }
    }
}

// Every call keeps openraft's own deadline (`hard_ttl`). A longer one here would
// not help AppendEntries: openraft 0.9 wraps the whole call in a timeout of one
// heartbeat interval (100 ms) itself, so a batch that takes longer to reach a
// peer's disk is given up and resent whatever this layer waits.

impl PeerConnection {
    async fn call<Req, Resp, E>(
        &mut self,
        kind: RaftKind,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = self
            .client
            .as_mut()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&*e)))?;
        let payload = postcard::to_stdvec(req).map_err(|e| {
            RPCError::Network(NetworkError::new(&PeerError::Transport(e.to_string())))
        })?;
        let msg = RaftMessage {
            group: self.group,
            kind: kind as i32,
            payload,
        };
        let ttl = option.hard_ttl();
        let reply = match tokio::time::timeout(ttl, client.raft(msg)).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) if status.code() == tonic::Code::Unavailable => {
                return Err(RPCError::Unreachable(Unreachable::new(
                    &PeerError::Transport(status.to_string()),
                )))
            }
            Ok(Err(status)) => {
                return Err(RPCError::Network(NetworkError::new(&PeerError::Transport(
                    status.to_string(),
                ))))
            }
            Err(_) => {
                return Err(RPCError::Network(NetworkError::new(&PeerError::Transport(
                    format!("no reply from node {} within {ttl:?}", self.target),
                ))))
            }
        };
        let result: Result<Resp, E> = postcard::from_bytes(&reply.payload).map_err(|e| {
            RPCError::Network(NetworkError::new(&PeerError::Transport(format!(
                "undecodable reply: {e}"
            ))))
        })?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(RaftKind::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(RaftKind::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(RaftKind::Vote, &rpc, &option).await
    }
}
