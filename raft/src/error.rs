//! What can go wrong in the multi-raft engine, as typed errors that keep the facts a
//! caller acts on (a not-leader error names the leader, so the caller can redirect).

use crate::engine::EngineError;
use crate::types::NodeId;

/// Why the shard set could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ShardSetError {
    /// The storage engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `--shards` differs from the count the data directory was created with.
    #[error("--shards {requested} does not match the {stored} shards this data directory was initialised with; start with --shards {stored} or use a new --data-dir")]
    ShardCountMismatch {
        /// Count stored at initialisation.
        stored: u32,
        /// Count asked for now.
        requested: u32,
    },
    /// `--node-id` differs from the node this data directory belongs to.
    #[error("--node-id {requested} does not match node {stored}, whose data this directory holds; start with --node-id {stored}, or give node {requested} a new --data-dir (reusing another node's replicas would corrupt their groups)")]
    NodeIdMismatch {
        /// Id stored at initialisation.
        stored: u64,
        /// Id asked for now.
        requested: u64,
    },
    /// There is no such shard (numbers run from 0 to the shard count).
    #[error("no shard {0}")]
    NoSuchShard(u32),
    /// openraft refused the configuration or failed to start.
    #[error("raft: {0}")]
    Raft(String),
}

/// Why an operation on one group (a proposal, a membership change, a read barrier,
/// a handover) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// This node does not lead the group; retry at the leader it names.
    #[error("not the leader of shard {shard} (leader: {leader:?})")]
    NotLeader {
        /// The shard (`u32::MAX` for the metadata group).
        shard: u32,
        /// The current leader, if known.
        leader: Option<NodeId>,
    },
    /// The group stopped (shutdown or a storage failure) or openraft refused the
    /// operation.
    #[error("shard {shard} is unavailable: {message}")]
    Unavailable {
        /// The shard (`u32::MAX` for the metadata group).
        shard: u32,
        /// What happened.
        message: String,
    },
    /// A peer taking part in the operation could not be reached or refused it.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// Reading the group's applied state failed.
    #[error("reading shard {shard}: {message}")]
    Read {
        /// The shard.
        shard: u32,
        /// What the storage said.
        message: String,
    },
}

/// Why a peer could not be reached, or what it answered instead of a result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// The address cannot be used as a gRPC endpoint.
    #[error("invalid peer address {addr}: {message}")]
    BadAddress {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
    /// The TLS settings do not fit the address.
    #[error("peer TLS for {addr}: {message}")]
    Tls {
        /// The address.
        addr: String,
        /// Why.
        message: String,
    },
    /// Neither the ring state nor `--peers` names an address for the node.
    #[error("node {0} has no known address")]
    NoAddress(NodeId),
    /// The call failed on the way (connection, timeout, undecodable reply).
    #[error("{0}")]
    Transport(String),
    /// The peer answered with an error of its own.
    #[error("{peer}: {message}")]
    Refused {
        /// The peer (`node N` or its address).
        peer: String,
        /// Its answer.
        message: String,
    },
}

/// Why an inbound Raft message was not handled.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The payload is not the openraft message its kind names.
    #[error("undecodable raft message: {0}")]
    Undecodable(String),
    /// The message names a group this node cannot open.
    #[error(transparent)]
    Group(#[from] ShardSetError),
    /// The reply could not be encoded.
    #[error("cannot encode the reply: {0}")]
    Encode(String),
    /// This node is short of disk space and takes no new entries or snapshots.
    #[error("{0}")]
    DiskLow(String),
    /// This node lost its data and is not a replica of any group until readmitted.
    #[error("{0}")]
    LostData(String),
    /// The sending leader answers none of this node's pings; its entries are refused
    /// so the followers it cannot hear can elect another leader.
    #[error("node {0} answers no pings from this node")]
    Unreachable(u64),
    /// This node deleted its replica of the shard and is not placed on it: a blank
    /// replica opened for the message would vote and take entries having forgotten
    /// its log, breaking the majority that committed it.
    #[error("this node deleted its replica of shard {0} and is not placed on it again")]
    RemovedReplica(u32),
}
