//! The sending side of Raft: openraft's network factory for one group, sending its
//! messages as postcard-encoded openraft types tagged with the group id, as frames on
//! the peer's shared Raft stream (snapshots as RPCs of their own).

use super::channels::PeerChannels;
use super::stream::{RaftStream, StreamCallError};
use crate::error::PeerError;
use crate::keys::GroupId;
use crate::metrics::RAFT_TRANSPORT;
use crate::quiet_heartbeat::FollowerContact;
use crate::types::{NodeId, TypeConfig};
use kelemetry_proto::kelemetry::cluster::v1::{RaftKind, RaftMessage};
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

/// Network factory of one group.
#[derive(Clone)]
pub struct PeerNetwork {
    group: GroupId,
    channels: PeerChannels,
    contact: std::sync::Arc<FollowerContact>,
}

impl PeerNetwork {
    /// The network of `group` over shared `channels`, noting followers' answers to
    /// AppendEntries in `contact`.
    pub fn new(
        group: GroupId,
        channels: PeerChannels,
        contact: std::sync::Arc<FollowerContact>,
    ) -> Self {
        Self {
            group,
            channels,
            contact,
        }
    }
}

/// A connection from one group to one peer.
pub struct PeerConnection {
    group: GroupId,
    target: NodeId,
    addr: String,
    channels: PeerChannels,
    contact: std::sync::Arc<FollowerContact>,
    /// The peer's Raft stream as last found, so a message takes no shared lock
    /// while the stream lasts.
    stream: Option<std::sync::Arc<RaftStream>>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        PeerConnection {
            group: self.group,
            target,
            addr: node.addr.clone(),
            channels: self.channels.clone(),
            contact: self.contact.clone(),
            stream: None,
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
        let payload = kelemetry_core::codec::to_sized_vec(req).map_err(|e| {
            RPCError::Network(NetworkError::new(&PeerError::Transport(e.to_string())))
        })?;
        let ttl = option.hard_ttl();
        let unreachable = |e: &PeerError| RPCError::Unreachable(Unreachable::new(e));
        let network = |m: String| RPCError::Network(NetworkError::new(&PeerError::Transport(m)));
        let no_reply = || network(format!("no reply from node {} within {ttl:?}", self.target));
        // Snapshots keep an RPC of their own: their chunks are large and answered
        // only once installed, and would hold every group's frames behind them.
        let stream = match kind {
            RaftKind::InstallSnapshot => None,
            _ => match self.stream.as_ref().filter(|s| !s.is_closed()) {
                Some(s) => Some(s.clone()),
                None => {
                    self.stream = self
                        .channels
                        .raft_stream(&self.addr)
                        .map_err(|e| unreachable(&e))?;
                    self.stream.clone()
                }
            },
        };
        let reply = match stream {
            Some(stream) => match stream.call(self.group, kind, payload, ttl).await {
                Ok(reply) => reply,
                Err(StreamCallError::Closed) => {
                    return Err(unreachable(&PeerError::Transport(format!(
                        "the Raft stream to node {} ended",
                        self.target
                    ))))
                }
                Err(StreamCallError::Timeout) => return Err(no_reply()),
                Err(StreamCallError::Remote(message)) => return Err(network(message)),
            },
            None => {
                RAFT_TRANSPORT.unary_messages.inc();
                let mut client = self
                    .channels
                    .client(&self.addr)
                    .map_err(|e| unreachable(&e))?;
                let msg = RaftMessage {
                    group: self.group,
                    kind: kind as i32,
                    payload,
                };
                match tokio::time::timeout(ttl, client.raft(msg)).await {
                    Ok(Ok(r)) => r.into_inner().payload,
                    Ok(Err(status)) if status.code() == tonic::Code::Unavailable => {
                        return Err(unreachable(&PeerError::Transport(status.to_string())))
                    }
                    Ok(Err(status)) => return Err(network(status.to_string())),
                    Err(_) => return Err(no_reply()),
                }
            }
        };
        let result: Result<Resp, E> = postcard::from_bytes(&reply).map_err(|e| {
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
        let sent = std::time::Instant::now();
        let answer = self.call(RaftKind::AppendEntries, &rpc, &option).await;
        if let Ok(response) = &answer {
            self.contact.answered(self.target, sent, response);
        }
        answer
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
