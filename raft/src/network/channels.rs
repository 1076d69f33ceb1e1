//! Connections to peers: one lazily connected gRPC channel per peer address, shared
//! by every Raft group and by command forwarding, with mutual TLS when configured.

use super::stream::{RaftStream, StreamEnd, UNARY_FALLBACK};
use crate::error::PeerError;
use crate::types::NodeId;
use kelemetry_proto::kelemetry::cluster::v1::peer_client::PeerClient;
use kelemetry_proto::kelemetry::cluster::v1::{PingReply, PingRequest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
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

/// How long a ping (liveness, or a starting node's questions) may take before the
/// peer counts as not answering.
pub const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// HTTP/2 flow-control windows of peer connections, both directions: every group's
/// replication shares one connection (and its Raft stream), which h2's default
/// 64 KiB windows would hold to a trickle.
pub const PEER_STREAM_WINDOW: u32 = 8 << 20;
/// See [`PEER_STREAM_WINDOW`].
pub const PEER_CONNECTION_WINDOW: u32 = 16 << 20;

/// How Raft messages reach one peer.
enum StreamSlot {
    /// On this stream, while it lasts.
    Open(Arc<RaftStream>),
    /// As unary RPCs, since the peer answered at this instant that it has no stream.
    Unary(Instant),
}

/// One lazily connected gRPC channel per peer address, shared by every Raft group and
/// by command forwarding; mutual TLS when configured.
#[derive(Clone, Default)]
pub struct PeerChannels {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    streams: Arc<Mutex<HashMap<String, StreamSlot>>>,
    tls: Option<Arc<PeerTls>>,
    source_ip: Option<std::net::IpAddr>,
}

impl PeerChannels {
    /// Channels that use mutual TLS when `tls` is given and connect from
    /// `source_ip` when given.
    pub fn new(tls: Option<PeerTls>, source_ip: Option<std::net::IpAddr>) -> Self {
        Self {
            channels: Arc::default(),
            streams: Arc::default(),
            tls: tls.map(Arc::new),
            source_ip,
        }
    }

    /// Pings the peer at `addr`, as `asking_node` when given; `None` when it cannot
    /// be reached or does not answer within [`PING_TIMEOUT`].
    pub async fn ping(&self, addr: &str, asking_node: Option<NodeId>) -> Option<PingReply> {
        let mut client = self.client(addr).ok()?;
        let ping = client.ping(PingRequest { asking_node });
        match tokio::time::timeout(PING_TIMEOUT, ping).await {
            Ok(Ok(reply)) => Some(reply.into_inner()),
            _ => None,
        }
    }

    /// A client for the peer at `addr` (`host:port`).
    pub fn client(&self, addr: &str) -> Result<PeerClient<Channel>, PeerError> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(addr) {
            return Ok(PeerClient::new(c.clone()));
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| PeerError::BadAddress {
                addr: addr.to_string(),
                message: e.to_string(),
            })?
            .connect_timeout(std::time::Duration::from_secs(2))
            .initial_stream_window_size(PEER_STREAM_WINDOW)
            .initial_connection_window_size(PEER_CONNECTION_WINDOW)
            .local_address(self.source_ip)
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            endpoint =
                endpoint
                    .tls_config(tls.client_config(host))
                    .map_err(|e| PeerError::Tls {
                        addr: addr.to_string(),
                        message: e.to_string(),
                    })?;
        }
        let channel = endpoint.connect_lazy();
        map.insert(addr.to_string(), channel.clone());
        Ok(PeerClient::new(channel))
    }
}

impl PeerChannels {
    /// The Raft stream to the peer at `addr`, opened if there is none; `None` while
    /// the peer is sent unary RPCs because it has no stream.
    pub(crate) fn raft_stream(&self, addr: &str) -> Result<Option<Arc<RaftStream>>, PeerError> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        match streams.get(addr) {
            Some(StreamSlot::Open(s)) if !s.is_closed() => return Ok(Some(s.clone())),
            Some(StreamSlot::Unary(since)) if since.elapsed() < UNARY_FALLBACK => return Ok(None),
            _ => {}
        }
        let client = self.client(addr)?;
        let slots = Arc::downgrade(&self.streams);
        let peer = addr.to_string();
        let stream = RaftStream::open(client, move |end| {
            if let (StreamEnd::Unsupported, Some(slots)) = (end, slots.upgrade()) {
                tracing::info!(peer = %peer, "peer has no Raft stream (an older version); sending it unary RPCs");
                let mut slots = slots.lock().unwrap_or_else(|p| p.into_inner());
                slots.insert(peer, StreamSlot::Unary(Instant::now()));
            }
        });
        streams.insert(addr.to_string(), StreamSlot::Open(stream.clone()));
        Ok(Some(stream))
    }
}
