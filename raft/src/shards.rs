//! The set of shard groups a node runs, opened over one engine.

use crate::engine::{Engine, EngineError, PrefixView};
use crate::keys::{self, GroupId};
use crate::log_store::LogStore;
use crate::network::{PeerChannels, PeerNetwork, PeerTls};
use crate::state_machine::ShardStateMachine;
use crate::types::{NodeId, TypeConfig};
use crate::wal_sync::WalSyncer;
use kelemetry_core::state::ShardContext;
use kelemetry_core::{Proposal, ProposalOutcome};
use kelemetry_proto::kelemetry::cluster::v1::RaftKind;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the node's Raft groups.
#[derive(Clone, Debug)]
pub struct RaftSettings {
    /// This node's id.
    pub node_id: NodeId,
    /// Address peers use to reach this node.
    pub advertise_addr: String,
    /// Number of shards; fixed when the data directory is first initialised.
    pub shards: u32,
    /// Every voter of every shard group: node id to peer address (this node included).
    pub peers: BTreeMap<NodeId, String>,
    /// Whether this node initialises groups that have never been initialised.
    pub bootstrap: bool,
    /// Mutual TLS between peers, if configured.
    pub tls: Option<PeerTls>,
}

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
        }
    }
}

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
    /// openraft refused the configuration or failed to start.
    #[error("raft: {0}")]
    Raft(String),
}

/// Why a proposal was not committed.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    /// This node does not lead the shard; retry at the leader.
    #[error("not the leader of shard {shard} (leader: {leader:?})")]
    NotLeader {
        /// The shard.
        shard: u32,
        /// The current leader, if known.
        leader: Option<NodeId>,
    },
    /// The group stopped (shutdown or a storage failure).
    #[error("shard {shard} is unavailable: {message}")]
    Unavailable {
        /// The shard.
        shard: u32,
        /// What happened.
        message: String,
    },
}

/// One shard's Raft group on this node.
#[derive(Clone)]
pub struct ShardRaft {
    shard: u32,
    node_id: NodeId,
    raft: Raft<TypeConfig>,
    view: PrefixView,
}

impl ShardRaft {
    /// The shard number.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// Replicates and applies a proposal; returns once it is committed and applied.
    pub async fn propose(&self, proposal: Proposal) -> Result<ProposalOutcome, ProposeError> {
        match self.raft.client_write(proposal).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader {
                    shard: self.shard,
                    leader: f.leader_id,
                })
            }
            Err(e) => Err(ProposeError::Unavailable {
                shard: self.shard,
                message: e.to_string(),
            }),
        }
    }

    /// Whether this node currently leads the shard (with a quorum behind it).
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.node_id)
    }

    /// Whether the shard has a known, effective leader.
    pub fn has_leader(&self) -> bool {
        self.leader().is_some()
    }

    /// The current leader, if known. A leader of a multi-voter group that no quorum
    /// has acknowledged for [`QUORUM_STALE_MS`] is isolated (openraft 0.9 keeps its
    /// role until it sees a higher term) and is reported as no leader.
    pub fn leader(&self) -> Option<NodeId> {
        let m = self.raft.metrics().borrow().clone();
        let leader = m.current_leader?;
        let voters = m.membership_config.membership().voter_ids().count();
        let isolated = leader == self.node_id
            && voters > 1
            && m.millis_since_quorum_ack
                .is_some_and(|ms| ms > QUORUM_STALE_MS);
        (!isolated).then_some(leader)
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// Starts an election for this shard on this node (used to move leadership to
    /// its preferred node; it fails harmlessly if this node's log is behind).
    pub async fn campaign(&self) -> Result<(), String> {
        self.raft.trigger().elect().await.map_err(|e| e.to_string())
    }

    /// Index of the last applied log entry.
    pub fn applied_index(&self) -> Option<u64> {
        self.raft.metrics().borrow().last_applied.map(|l| l.index)
    }

    /// A hash of every state record with the applied index it was read at (read
    /// twice around the scan, `None` if apply moved meanwhile): replicas at the same
    /// index must hash the same.
    pub fn state_checksum(&self) -> Result<Option<(u64, u64)>, String> {
        let before = self.applied_index();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        kelemetry_core::state::KvRead::scan(&self.view, &[], &[0xff; 8], &mut |k, v| {
            hasher.update(&(k.len() as u64).to_be_bytes());
            hasher.update(k);
            hasher.update(&(v.len() as u64).to_be_bytes());
            hasher.update(v);
            true
        })
        .map_err(|e| e.to_string())?;
        let after = self.applied_index();
        Ok((before == after).then(|| (after.unwrap_or(0), hasher.digest())))
    }

    /// Reads of the shard's applied state.
    pub fn reader(&self) -> &PrefixView {
        &self.view
    }
}

/// Every shard group of this node.
pub struct ShardSet {
    shards: Vec<ShardRaft>,
    engine: Engine,
    channels: PeerChannels,
    peers: BTreeMap<NodeId, String>,
    node_id: NodeId,
}

const SHARD_COUNT_KEY: &str = "shards";

/// How long a leader may go without a quorum's acknowledgement before it is treated
/// as isolated: a little more than the longest election timeout.
pub const QUORUM_STALE_MS: u64 = 1_500;

fn raft_config(shard: u32) -> Result<Arc<Config>, ShardSetError> {
    let config = Config {
        cluster_name: format!("kelemetry-shard-{shard}"),
        // Fast failover on a LAN: a dead leader is replaced within about a second.
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5_000),
        max_in_snapshot_log_to_keep: 1_000,
        ..Default::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| ShardSetError::Raft(e.to_string()))
}

impl ShardSet {
    /// Opens every shard group, initialising a fresh data directory with this node as
    /// the single voter of each group.
    pub async fn open(engine: Engine, settings: &RaftSettings) -> Result<Self, ShardSetError> {
        let count_key = keys::node_meta(SHARD_COUNT_KEY);
        match engine.get(&count_key)? {
            Some(b) if b.len() == 4 => {
                let stored = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                if stored != settings.shards {
                    return Err(ShardSetError::ShardCountMismatch {
                        stored,
                        requested: settings.shards,
                    });
                }
            }
            _ => engine.write(
                [crate::engine::Op::Put(
                    count_key,
                    settings.shards.to_be_bytes().to_vec(),
                )],
                true,
            )?,
        }
        let syncer = WalSyncer::start(engine.clone())
            .map_err(|e| ShardSetError::Raft(format!("cannot start the WAL syncer: {e}")))?;
        let channels = PeerChannels::new(settings.tls.clone());
        let mut shards = Vec::with_capacity(settings.shards as usize);
        for shard in 0..settings.shards {
            shards.push(Self::open_shard(&engine, &syncer, &channels, settings, shard).await?);
        }
        Ok(Self {
            shards,
            engine,
            channels,
            peers: settings.peers.clone(),
            node_id: settings.node_id,
        })
    }

    async fn open_shard(
        engine: &Engine,
        syncer: &WalSyncer,
        channels: &PeerChannels,
        settings: &RaftSettings,
        shard: u32,
    ) -> Result<ShardRaft, ShardSetError> {
        let group: GroupId = keys::shard_group(shard);
        let ctx = ShardContext {
            shard,
            shards: settings.shards,
        };
        let raft = Raft::new(
            settings.node_id,
            raft_config(shard)?,
            PeerNetwork::new(group, channels.clone()),
            LogStore::new(engine.clone(), group, syncer.clone()),
            ShardStateMachine::new(engine.clone(), group, ctx),
        )
        .await
        .map_err(|e| ShardSetError::Raft(e.to_string()))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ShardSetError::Raft(e.to_string()))?;
        if !initialized && settings.bootstrap {
            let members: BTreeMap<NodeId, BasicNode> = settings
                .peers
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr.clone())))
                .collect();
            raft.initialize(members)
                .await
                .map_err(|e| ShardSetError::Raft(e.to_string()))?;
        }
        Ok(ShardRaft {
            shard,
            node_id: settings.node_id,
            raft,
            view: engine.view(keys::state_prefix(group)),
        })
    }

    /// The group of shard `shard`.
    pub fn shard(&self, shard: u32) -> &ShardRaft {
        &self.shards[shard as usize]
    }

    /// All groups, in shard order.
    pub fn iter(&self) -> impl Iterator<Item = &ShardRaft> {
        self.shards.iter()
    }

    /// Number of shards.
    pub fn count(&self) -> u32 {
        self.shards.len() as u32
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Connections to peers, shared with command forwarding.
    pub fn channels(&self) -> &PeerChannels {
        &self.channels
    }

    /// The node that should lead `shard` when all are healthy: shards are spread over
    /// the sorted node ids round-robin, so leadership (and its write load) is even.
    pub fn preferred_leader(&self, shard: u32) -> NodeId {
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        ids[shard as usize % ids.len()]
    }

    /// The peer address of a node.
    pub fn peer_addr(&self, node: NodeId) -> Option<&str> {
        self.peers.get(&node).map(String::as_str)
    }

    /// Handles a Raft message from a peer for one of this node's groups and returns
    /// the encoded result.
    pub async fn handle_raft(
        &self,
        group: GroupId,
        kind: RaftKind,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        let shard = group
            .checked_sub(1)
            .and_then(|s| self.shards.get(s as usize))
            .ok_or_else(|| format!("no raft group {group} on node {}", self.node_id))?;
        let raft = &shard.raft;
        fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, String> {
            postcard::from_bytes(b).map_err(|e| format!("undecodable raft message: {e}"))
        }
        fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, String> {
            postcard::to_stdvec(v).map_err(|e| e.to_string())
        }
        match kind {
            RaftKind::AppendEntries => enc(&raft.append_entries(dec(payload)?).await),
            RaftKind::Vote => enc(&raft.vote(dec(payload)?).await),
            RaftKind::InstallSnapshot => enc(&raft.install_snapshot(dec(payload)?).await),
        }
    }

    /// Waits until every shard has a leader or `timeout` passes; returns whether all do.
    pub async fn wait_for_leaders(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.shards.iter().all(ShardRaft::has_leader) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every group and flushes the engine.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        for s in &self.shards {
            if let Err(e) = s.raft.shutdown().await {
                tracing::warn!(shard = s.shard, error = %e, "raft shutdown failed");
            }
        }
        self.engine.flush()
    }
}
