//! Raft over the peer RPC: every group's messages travel on one shared gRPC
//! connection per peer, tagged with the group id.
//!
//! - [`channels`]: the shared connections (and peer TLS).
//! - [`client`]: openraft's network for one group (the sending side).
//! - [`server`]: decoding an inbound message and handing it to its group.

pub mod channels;
pub mod client;
pub mod server;

pub use channels::{PeerChannels, PeerTls};
pub use client::PeerNetwork;
