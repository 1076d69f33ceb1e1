//! The set of shard groups a node runs, opened over one engine.

use crate::engine::{Engine, EngineError, PrefixView};
use crate::keys::{self, GroupId};
use crate::log_store::LogStore;
use crate::network::{PeerChannels, PeerNetwork, PeerTls};
use crate::state_machine::read_meta;
use crate::state_machine::ShardStateMachine;
use crate::types::{GroupRequest, NodeId, TypeConfig};
use crate::wal_sync::WalSyncer;
use kelemetry_core::cluster::{rendezvous, ClusterMeta, MetaCommand, MAX_METADATA_VOTERS};
use kelemetry_core::state::ShardContext;
use kelemetry_core::{Proposal, ProposalOutcome};
use kelemetry_proto::kelemetry::cluster::v1::RaftKind;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, Config, Raft, ServerState, SnapshotPolicy};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
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
    /// The initial members when bootstrapping (node id to peer address, this node
    /// included); also the fallback address book before the metadata is known.
    pub peers: BTreeMap<NodeId, String>,
    /// Whether this node initialises a new cluster over `peers` when its data
    /// directory is fresh.
    pub bootstrap: bool,
    /// Mutual TLS between peers, if configured.
    pub tls: Option<PeerTls>,
    /// Replicas per shard.
    pub replicas: u32,
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
            replicas: 3,
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

/// One Raft group on this node: a shard, or the metadata group.
#[derive(Clone)]
pub struct ShardRaft {
    shard: u32,
    node_id: NodeId,
    raft: Raft<TypeConfig>,
    view: PrefixView,
}

impl ShardRaft {
    /// The shard number (`u32::MAX` for the metadata group).
    pub fn shard(&self) -> u32 {
        self.shard
    }

    async fn write(&self, req: GroupRequest) -> Result<ProposalOutcome, ProposeError> {
        match self.raft.client_write(req).await {
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

    /// Replicates and applies a proposal; returns once it is committed and applied.
    pub async fn propose(&self, proposal: Proposal) -> Result<ProposalOutcome, ProposeError> {
        self.write(GroupRequest::Shard(proposal)).await
    }

    /// Replicates and applies a metadata command (metadata group only).
    pub async fn propose_meta(&self, cmd: MetaCommand) -> Result<(), ProposeError> {
        self.write(GroupRequest::Meta(cmd)).await.map(|_| ())
    }

    /// The cluster metadata as this replica has applied it (metadata group only).
    pub fn cluster(&self) -> ClusterMeta {
        read_meta(&self.view).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the cluster metadata");
            ClusterMeta::default()
        })
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
        if leader != self.node_id {
            return Some(leader);
        }
        // A leader that removed itself from the group keeps its vote (and openraft's
        // metrics keep naming it) after stepping down; it leads nothing any more.
        let membership = m.membership_config.membership();
        let voters = membership.voter_ids().count();
        let leading =
            m.state == ServerState::Leader && membership.voter_ids().any(|v| v == self.node_id);
        let isolated = voters > 1
            && m.millis_since_quorum_ack
                .is_some_and(|ms| ms > QUORUM_STALE_MS);
        (leading && !isolated).then_some(leader)
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// Voters of the group's current membership.
    pub fn voters(&self) -> BTreeSet<NodeId> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().voter_ids().collect()
    }

    /// Learners of the group's current membership.
    pub fn learners(&self) -> BTreeSet<NodeId> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().learner_ids().collect()
    }

    /// Whether a membership change is still in joint consensus.
    pub fn in_joint_config(&self) -> bool {
        let m = self.raft.metrics().borrow().membership_config.clone();
        m.membership().get_joint_config().len() > 1
    }

    /// Completes a membership change left in joint consensus: openraft leaves the
    /// second step to the caller, so a leader that lost its term between the steps
    /// leaves the group joint until a later leader finishes it. Returns whether there
    /// was one to finish.
    pub async fn finish_joint_config(&self, keep_as_learners: bool) -> Result<bool, String> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        let configs = m.membership().get_joint_config();
        let goal = match configs.as_slice() {
            [_, .., last] => last.clone(),
            _ => return Ok(false),
        };
        self.set_voters(goal, keep_as_learners).await?;
        Ok(true)
    }

    /// Adds `node` as a learner and waits until it has caught up with the log.
    pub async fn add_learner(&self, node: NodeId, addr: &str) -> Result<(), String> {
        self.raft
            .add_learner(node, BasicNode::new(addr), true)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Makes exactly `voters` the voters; with `keep_as_learners`, removed voters
    /// stay as learners, otherwise they leave the group.
    pub async fn set_voters(
        &self,
        voters: BTreeSet<NodeId>,
        keep_as_learners: bool,
    ) -> Result<(), String> {
        self.raft
            .change_membership(voters, keep_as_learners)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Removes learners (or voters) from the group altogether.
    pub async fn remove_nodes(&self, nodes: BTreeSet<NodeId>) -> Result<(), String> {
        self.raft
            .change_membership(ChangeMembers::RemoveNodes(nodes), false)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Confirms with a quorum that this node still leads and waits until everything
    /// committed before the call is applied: a read after it is linearizable.
    pub async fn ensure_linearizable(&self) -> Result<(), String> {
        self.raft
            .ensure_linearizable()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Starts an election for this shard on this node: the receiving end of a
    /// leadership handover (see [`ShardSet::hand_over`]).
    pub async fn campaign(&self) -> Result<(), String> {
        self.raft.trigger().elect().await.map_err(|e| e.to_string())
    }

    /// Whether this leader has replicated its whole log to `node`, so leadership can
    /// move there without the new leader lacking an entry.
    pub fn has_caught_up(&self, node: NodeId) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let Some(last) = m.last_log_index else {
            return true;
        };
        m.replication
            .as_ref()
            .and_then(|r| r.get(&node))
            .is_some_and(|matched| matched.is_some_and(|m| m.index >= last))
    }

    /// Keeps this replica from starting elections for `hold`: a leader handing
    /// leadership to another node steps aside this way, so the handover does not
    /// bounce back to it.
    pub fn hold_elections(&self, hold: std::time::Duration) {
        self.raft.runtime_config().elect(false);
        let raft = self.raft.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            raft.runtime_config().elect(true);
        });
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

/// Every Raft group of this node: the metadata group, always open, and the shard
/// groups this node holds a replica of, opened and removed as placement changes.
pub struct ShardSet {
    groups: RwLock<BTreeMap<u32, ShardRaft>>,
    meta: ShardRaft,
    engine: Engine,
    syncer: WalSyncer,
    channels: PeerChannels,
    settings: RaftSettings,
    changing: tokio::sync::Mutex<()>,
    meta_cache: Mutex<(Option<u64>, Arc<ClusterMeta>)>,
    hints: Mutex<HashMap<u32, NodeId>>,
}

const SHARD_COUNT_KEY: &str = "shards";

/// How long a leader may go without a quorum's acknowledgement before it is treated
/// as isolated: a little more than the longest election timeout.
pub const QUORUM_STALE_MS: u64 = 1_500;

/// Shard number reported by the metadata group's handle.
pub const META_SHARD: u32 = u32::MAX;

fn raft_config(name: String) -> Result<Arc<Config>, ShardSetError> {
    let config = Config {
        cluster_name: name,
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

fn members_of(
    ids: impl IntoIterator<Item = NodeId>,
    addr: impl Fn(NodeId) -> Option<String>,
) -> BTreeMap<NodeId, BasicNode> {
    ids.into_iter()
        .filter_map(|id| addr(id).map(|a| (id, BasicNode::new(a))))
        .collect()
}

impl ShardSet {
    /// Opens the metadata group and every shard group this node has data for or is
    /// placed on. With `settings.bootstrap` and a data directory that was never
    /// initialised, it initialises the metadata group and every shard group with
    /// the initial placement over `settings.peers`.
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
        let meta =
            Self::open_group(&engine, &syncer, &channels, settings, keys::META_GROUP).await?;
        let set = Self {
            groups: RwLock::default(),
            meta,
            engine,
            syncer,
            channels,
            settings: settings.clone(),
            changing: tokio::sync::Mutex::new(()),
            meta_cache: Mutex::default(),
            hints: Mutex::default(),
        };
        let fresh = !set.is_initialized(&set.meta).await?;
        if fresh && settings.bootstrap {
            set.bootstrap().await?;
        }
        let placed = set.meta.cluster().shards_of(settings.node_id);
        for shard in 0..settings.shards {
            let has_data = set
                .engine
                .get(&keys::vote(keys::shard_group(shard)))?
                .is_some();
            if has_data || placed.contains(&shard) {
                set.ensure_group(shard).await?;
            }
        }
        Ok(set)
    }

    async fn is_initialized(&self, g: &ShardRaft) -> Result<bool, ShardSetError> {
        g.raft
            .is_initialized()
            .await
            .map_err(|e| ShardSetError::Raft(e.to_string()))
    }

    /// Initialises the metadata group with the peers as voters and each shard group
    /// with its rendezvous replicas among them.
    async fn bootstrap(&self) -> Result<(), ShardSetError> {
        let peers = &self.settings.peers;
        let addr = |id: NodeId| peers.get(&id).cloned();
        let ids: Vec<NodeId> = peers.keys().copied().collect();
        tracing::info!(nodes = ?ids, shards = self.settings.shards, "bootstrapping a new cluster");
        let voters = ids.iter().copied().take(MAX_METADATA_VOTERS);
        self.meta
            .raft
            .initialize(members_of(voters, addr))
            .await
            .map_err(|e| ShardSetError::Raft(e.to_string()))?;
        for shard in 0..self.settings.shards {
            let replicas = rendezvous(shard, &ids, self.settings.replicas as usize);
            let g = self.ensure_group(shard).await?;
            g.raft
                .initialize(members_of(replicas, addr))
                .await
                .map_err(|e| ShardSetError::Raft(e.to_string()))?;
        }
        Ok(())
    }

    async fn open_group(
        engine: &Engine,
        syncer: &WalSyncer,
        channels: &PeerChannels,
        settings: &RaftSettings,
        group: GroupId,
    ) -> Result<ShardRaft, ShardSetError> {
        let shard = keys::group_shard(group).unwrap_or(META_SHARD);
        let ctx = ShardContext {
            shard: keys::group_shard(group).unwrap_or(0),
            shards: settings.shards,
        };
        let name = match keys::group_shard(group) {
            Some(s) => format!("kelemetry-shard-{s}"),
            None => "kelemetry-metadata".to_string(),
        };
        let raft = Raft::new(
            settings.node_id,
            raft_config(name)?,
            PeerNetwork::new(group, channels.clone()),
            LogStore::new(engine.clone(), group, syncer.clone()),
            ShardStateMachine::new(engine.clone(), group, ctx),
        )
        .await
        .map_err(|e| ShardSetError::Raft(e.to_string()))?;
        Ok(ShardRaft {
            shard,
            node_id: settings.node_id,
            raft,
            view: engine.view(keys::state_prefix(group)),
        })
    }

    /// This node's replica of `shard`, opening it (empty, waiting for its leader) if
    /// it is not open yet.
    pub async fn ensure_group(&self, shard: u32) -> Result<ShardRaft, ShardSetError> {
        if shard >= self.settings.shards {
            return Err(ShardSetError::Raft(format!("no shard {shard}")));
        }
        if let Some(g) = self.local(shard) {
            return Ok(g);
        }
        let _guard = self.changing.lock().await;
        if let Some(g) = self.local(shard) {
            return Ok(g);
        }
        let g = Self::open_group(
            &self.engine,
            &self.syncer,
            &self.channels,
            &self.settings,
            keys::shard_group(shard),
        )
        .await?;
        tracing::info!(shard, "opened shard replica");
        self.groups_mut().insert(shard, g.clone());
        Ok(g)
    }

    /// Stops this node's replica of `shard` and deletes its log and state (after the
    /// shard's leader removed this node from the group).
    pub async fn remove_group(&self, shard: u32) -> Result<(), ShardSetError> {
        let _guard = self.changing.lock().await;
        let Some(g) = self.groups_mut().remove(&shard) else {
            return Ok(());
        };
        if let Err(e) = g.raft.shutdown().await {
            tracing::warn!(shard, error = %e, "raft shutdown failed");
        }
        let group = keys::shard_group(shard);
        self.engine.write(
            [crate::engine::Op::DeleteRange(
                keys::group_start(group),
                keys::group_end(group),
            )],
            true,
        )?;
        tracing::info!(shard, "removed shard replica and its data");
        Ok(())
    }

    fn groups_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u32, ShardRaft>> {
        self.groups.write().unwrap_or_else(|p| p.into_inner())
    }

    /// This node's replica of `shard`, if it holds one.
    pub fn local(&self, shard: u32) -> Option<ShardRaft> {
        let groups = self.groups.read().unwrap_or_else(|p| p.into_inner());
        groups.get(&shard).cloned()
    }

    /// Every shard replica on this node, in shard order.
    pub fn locals(&self) -> Vec<ShardRaft> {
        let groups = self.groups.read().unwrap_or_else(|p| p.into_inner());
        groups.values().cloned().collect()
    }

    /// The local replicas the placement names for this node (every local replica
    /// while the metadata is empty): a replica outside it is waiting to be deleted and
    /// has no leader to wait for.
    pub fn placed_locals(&self) -> Vec<ShardRaft> {
        let meta = self.cluster();
        if meta.members.is_empty() {
            return self.locals();
        }
        let placed = meta.shards_of(self.node_id());
        self.locals()
            .into_iter()
            .filter(|g| placed.contains(&g.shard()))
            .collect()
    }

    /// The metadata group.
    pub fn meta(&self) -> &ShardRaft {
        &self.meta
    }

    /// The cluster metadata as this node has applied it (decoded once per applied
    /// metadata entry).
    pub fn cluster(&self) -> Arc<ClusterMeta> {
        let applied = self.meta.applied_index();
        let mut cache = self.meta_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0 != applied || applied.is_none() {
            *cache = (applied, Arc::new(self.meta.cluster()));
        }
        cache.1.clone()
    }

    /// Remembers who leads `shard`, learned from a redirect.
    pub fn note_leader(&self, shard: u32, leader: NodeId) {
        let mut hints = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        hints.insert(shard, leader);
    }

    /// Drops a leader hint that proved wrong (its node did not answer).
    pub fn forget_leader(&self, shard: u32) {
        let mut hints = self.hints.lock().unwrap_or_else(|p| p.into_inner());
        hints.remove(&shard);
    }

    /// Where to send work for `shard` when this node has no replica of it: the last
    /// leader learned from a redirect, else its preferred leader, else a voter.
    pub fn leader_hint(&self, shard: u32) -> Option<NodeId> {
        let hinted = {
            let hints = self.hints.lock().unwrap_or_else(|p| p.into_inner());
            hints.get(&shard).copied()
        };
        hinted.or_else(|| {
            let meta = self.cluster();
            meta.preferred_leaders()
                .get(&shard)
                .copied()
                .or_else(|| meta.voters.get(&shard).and_then(|v| v.first().copied()))
        })
    }

    /// Every node worth asking who leads `shard`, best guess first: the leader hint,
    /// then the shard's recorded voters and its target replicas (each of them hears
    /// from the leader, so a wrong guess answers with a redirect).
    pub fn leader_candidates(&self, shard: u32) -> Vec<NodeId> {
        let meta = self.cluster();
        let recorded = meta.voters.get(&shard).into_iter().flatten();
        let target = meta.target.get(&shard).into_iter().flatten();
        let mut out: Vec<NodeId> = self.leader_hint(shard).into_iter().collect();
        for n in recorded.chain(target) {
            if !out.contains(n) {
                out.push(*n);
            }
        }
        out
    }

    /// Number of shards.
    pub fn count(&self) -> u32 {
        self.settings.shards
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.settings.node_id
    }

    /// The settings the groups were opened with.
    pub fn settings(&self) -> &RaftSettings {
        &self.settings
    }

    /// Connections to peers, shared with command forwarding.
    pub fn channels(&self) -> &PeerChannels {
        &self.channels
    }

    /// The peer address of a node: from the cluster metadata, or the static peers.
    pub fn peer_addr(&self, node: NodeId) -> Option<String> {
        self.cluster()
            .peer_addr(node)
            .map(str::to_string)
            .or_else(|| self.settings.peers.get(&node).cloned())
    }

    /// A peer RPC client for node `node` over the shared channels.
    pub fn peer_client(
        &self,
        node: NodeId,
    ) -> Result<
        kelemetry_proto::kelemetry::cluster::v1::peer_client::PeerClient<tonic::transport::Channel>,
        String,
    > {
        let addr = self
            .peer_addr(node)
            .ok_or_else(|| format!("node {node} has no known address"))?;
        self.channels.client(&addr)
    }

    /// Handles a Raft message from a peer and returns the encoded result. A message
    /// for a shard this node has no replica of opens one: that is how a node added
    /// as a learner receives its first entries or snapshot.
    pub async fn handle_raft(
        &self,
        group: GroupId,
        kind: RaftKind,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        let g = match keys::group_shard(group) {
            None => self.meta.clone(),
            Some(shard) => self.ensure_group(shard).await.map_err(|e| e.to_string())?,
        };
        let raft = &g.raft;
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

    /// Waits until the metadata group and every placed local shard have a leader, or
    /// `timeout` passes; returns whether they do.
    pub async fn wait_for_leaders(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.meta.has_leader() && self.placed_locals().iter().all(ShardRaft::has_leader) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every group, flushes the engine and stops the WAL syncer.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        for s in self.locals().iter().chain([&self.meta]) {
            if let Err(e) = s.raft.shutdown().await {
                tracing::warn!(shard = s.shard, error = %e, "raft shutdown failed");
            }
        }
        self.syncer.stop();
        self.engine.flush()
    }
}
