//! Raft network over the peer RPC: every group's messages travel on one shared gRPC
//! connection per peer, tagged with the group id, as postcard-encoded openraft types.

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
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tonic::transport::{Channel, Endpoint};

/// PEM material for mutual TLS between peers: every node presents its certificate
/// and accepts only peers whose certificate the CA signed.
#[derive(Clone, Debug)]
pub struct PeerTls {
    /// This node's certificate chain.
    pub cert_pem: Vec<u8>,
    /// This node's private key.
    pub key_pem: Vec<u8>,
    /// The CA that signs every node's certificate.
    pub ca_pem: Vec<u8>,
}

impl PeerTls {
    /// Server-side TLS settings (client certificates required).
    pub fn server_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(
                &self.cert_pem,
                &self.key_pem,
            ))
            .client_ca_root(tonic::transport::Certificate::from_pem(&self.ca_pem))
    }

    fn client_config(&self, host: &str) -> tonic::transport::ClientTlsConfig {
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&self.ca_pem))
            .identity(tonic::transport::Identity::from_pem(
                &self.cert_pem,
                &self.key_pem,
            ))
            .domain_name(host)
    }
}

/// One lazily connected gRPC channel per peer address, shared by every Raft group and
/// by command forwarding; mutual TLS when configured.
#[derive(Clone, Default)]
pub struct PeerChannels {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    tls: Option<Arc<PeerTls>>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PeerError(String);

impl PeerChannels {
    /// Channels that use mutual TLS when `tls` is given.
    pub fn new(tls: Option<PeerTls>) -> Self {
        Self {
            channels: Arc::default(),
            tls: tls.map(Arc::new),
        }
    }

    /// A client for the peer at `addr` (`host:port`).
    pub fn client(&self, addr: &str) -> Result<PeerClient<Channel>, String> {
        let mut map = self
            .channels
            .lock()
            .map_err(|_| "peer channel map poisoned".to_string())?;
        if let Some(c) = map.get(addr) {
            return Ok(PeerClient::new(c.clone()));
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("invalid peer address {addr}: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(2))
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            endpoint = endpoint
                .tls_config(tls.client_config(host))
                .map_err(|e| format!("peer TLS for {addr}: {e}"))?;
        }
        let channel = endpoint.connect_lazy();
        map.insert(addr.to_string(), channel.clone());
        Ok(PeerClient::new(channel))
    }
}

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
    client: Result<PeerClient<Channel>, String>,
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
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&PeerError(e.clone()))))?;
        let payload = postcard::to_stdvec(req)
            .map_err(|e| RPCError::Network(NetworkError::new(&PeerError(e.to_string()))))?;
        let msg = RaftMessage {
            group: self.group,
            kind: kind as i32,
            payload,
        };
        let reply = match tokio::time::timeout(option.hard_ttl(), client.raft(msg)).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) if status.code() == tonic::Code::Unavailable => {
                return Err(RPCError::Unreachable(Unreachable::new(&PeerError(
                    status.to_string(),
                ))))
            }
            Ok(Err(status)) => {
                return Err(RPCError::Network(NetworkError::new(&PeerError(
                    status.to_string(),
                ))))
            }
            Err(_) => {
                return Err(RPCError::Network(NetworkError::new(&PeerError(format!(
                    "no reply from node {} within {:?}",
                    self.target,
                    option.hard_ttl()
                )))))
            }
        };
        let result: Result<Resp, E> = postcard::from_bytes(&reply.payload).map_err(|e| {
            RPCError::Network(NetworkError::new(&PeerError(format!(
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
