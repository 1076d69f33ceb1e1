//! Raft over the peer RPC: every group's messages travel on one shared gRPC
//! connection per peer, tagged with the group id.
//!
//! - [`channels`]: the shared connections (and peer TLS).
//! - [`client`]: openraft's network for one group (the sending side).
//! - [`stream`]: the per-peer Raft stream that carries every group's replication.
//! - [`server`]: decoding an inbound message and handing it to its group.

pub mod channels;
pub mod client;
pub mod server;
mod stream;

pub use channels::{PeerChannels, PeerTls, PEER_CONNECTION_WINDOW, PEER_STREAM_WINDOW};
pub use client::PeerNetwork;
pub use server::{serve_raft_stream, RaftAnswers};
