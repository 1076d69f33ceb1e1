//! How the node's Raft groups are configured: identity, initial peers, replication
//! and openraft's timing.

use crate::error::ShardSetError;
use crate::network::PeerTls;
use crate::types::NodeId;
use openraft::{Config, SnapshotPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Settings of the node's Raft groups.
#[derive(Clone, Debug)]
pub struct RaftSettings {
    /// This node's id.
    pub node_id: NodeId,
    /// Address peers use to reach this node.
    pub advertise_addr: String,
    /// Number of shards; fixed when the data directory is first initialised.
    pub shards: u32,
    /// The initial members when bootstrapping (node id to peer address, this node
    /// included); also the fallback address book before the metadata is known.
    pub peers: BTreeMap<NodeId, String>,
    /// Whether this node initialises its part of a new cluster over `peers` when its
    /// data directory is fresh (the metadata group if it is the lowest peer, each
    /// shard whose lowest rendezvous replica it is).
    pub bootstrap: bool,
    /// Mutual TLS between peers, if configured.
    pub tls: Option<PeerTls>,
    /// Replicas per shard.
    pub replicas: u32,
    /// The local address outgoing peer connections come from; the system's choice
    /// when `None`. Lets firewall rules (or a fault-injecting proxy) tell nodes apart
    /// on a host where they share one network.
    pub peer_source_ip: Option<std::net::IpAddr>,
    /// Peers asked, before this node bootstraps a fresh data directory on its own
    /// judgement (a StatefulSet's first pod), whether a ring already exists: if one
    /// does, the directory is a lost volume, and the node is readmitted instead of
    /// starting a second ring. The peers are asked in rounds until every one has
    /// answered or [`RING_PROBE_WINDOW`] has passed.
    pub ring_probe: Vec<String>,
    /// How long a busy node's WAL sync waits for more log appends to cover (see
    /// [`crate::wal_sync`]); zero syncs at once.
    pub wal_sync_linger: std::time::Duration,
    /// Encoded bytes of its newest log entries each local replica keeps in memory for
    /// replication reads (see [`crate::recent_entries`]).
    pub recent_entry_bytes: usize,
}

/// The default [`RaftSettings::wal_sync_linger`]: 1 ms halved the syncs of a loaded
/// 3-node ring on one machine.
pub const DEFAULT_WAL_SYNC_LINGER: std::time::Duration = std::time::Duration::from_millis(1);

impl RaftSettings {
    /// A single node that is the only voter of every group.
    pub fn single(node_id: NodeId, advertise_addr: String, shards: u32) -> Self {
        Self {
            node_id,
            peers: BTreeMap::from([(node_id, advertise_addr.clone())]),
            advertise_addr,
            shards,
            bootstrap: true,
            tls: None,
            replicas: 3,
            peer_source_ip: None,
            ring_probe: Vec::new(),
            wal_sync_linger: DEFAULT_WAL_SYNC_LINGER,
            recent_entry_bytes: crate::recent_entries::DEFAULT_RECENT_ENTRY_BYTES,
        }
    }
}

/// How long a first pod on a fresh directory keeps asking its `--join` peers whether
/// a ring exists while some of them do not answer (they may be restarting with it,
/// as a StatefulSet's pods do together); then it bootstraps.
pub const RING_PROBE_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a leader may go without a quorum's acknowledgement before it is treated
/// as isolated: a little more than the longest election timeout.
pub const QUORUM_STALE_MS: u64 = 1_500;

/// How often a leader lets each follower hear from it, in milliseconds: openraft's
/// heartbeat interval, kept by [`crate::quiet_heartbeat`] instead of openraft's timer.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;

/// Most log entries in one AppendEntries request (see [`raft_config`]).
pub const MAX_PAYLOAD_ENTRIES: u64 = 16;

pub(crate) fn raft_config(name: String) -> Result<Arc<Config>, ShardSetError> {
    let config = Config {
        cluster_name: name,
        // Fast failover on a LAN: a dead leader is replaced within about a second.
        heartbeat_interval: HEARTBEAT_INTERVAL_MS,
        // Heartbeats go only to followers that replication has left without news
        // for an interval (see `quiet_heartbeat`); the interval still sets
        // openraft's AppendEntries deadline and its tick.
        enable_heartbeat: false,
        election_timeout_min: 400,
        election_timeout_max: 800,
        // A "snapshot" here is only the applied log id (see the state machine's
        // builder), taken to learn how far the log may be purged. Every 1,000 entries
        // keeps between 1,000 and 2,000 entries per group instead of up to 6,000, so
        // less of the log is flushed and compacted before it is purged; a lagging
        // follower is covered by the same 1,000 as before right after a purge.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(1_000),
        max_in_snapshot_log_to_keep: 1_000,
        // The last chunk of a snapshot is answered only once the receiver has
        // installed it (21.6 s for 2.5 GiB here); openraft's default of 200 ms made
        // the leader give up on every big snapshot and build and send it again.
        install_snapshot_timeout: 300_000,
        // openraft 0.9 gives every AppendEntries one heartbeat interval (100 ms) to be
        // sent, written and synced by the follower. With its default of 300 entries,
        // each a proposal of up to a few MiB, a learner catching up on a log of large
        // proposals had every request time out and never caught up. Sixteen keep a
        // round trip well inside the deadline, and a lagging follower still catches
        // up at thousands of entries per second.
        max_payload_entries: MAX_PAYLOAD_ENTRIES,
        ..Default::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| ShardSetError::Raft(e.to_string()))
}
