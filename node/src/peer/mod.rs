//! The peer RPC: the service other nodes call ([`server`]) and the forwarding of
//! batches to shard leaders ([`forwarder`]).

pub mod forwarder;
pub mod server;

pub use forwarder::PeerForwarder;
pub use server::PeerService;
