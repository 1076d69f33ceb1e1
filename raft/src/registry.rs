//! The registry of every Raft group on this node: the metadata group, always open,
//! and the shard replicas, opened when placement (or a first Raft message) puts one
//! here and deleted when it leaves; bootstrapping a new ring; shutdown.

use crate::disk_guard::DiskGuard;
use crate::engine::{Engine, EngineError, Op};
use crate::error::ShardSetError;
use crate::group::{ShardRaft, META_SHARD};
use crate::hints::LeaderHints;
use crate::keys::{self, GroupId};
use crate::log_store::LogStore;
use crate::lost_data::LostData;
use crate::network::{PeerChannels, PeerNetwork};
use crate::peer_health::PeerHealth;
use crate::quiet_heartbeat::FollowerContact;
use crate::settings::{raft_config, RaftSettings};
use crate::state_machine::ShardStateMachine;
use crate::types::NodeId;
use crate::wal_sync::WalSyncer;
use kelemetry_core::ring::{rendezvous, RingState, MAX_METADATA_VOTERS};
use kelemetry_core::state::ShardContext;
use openraft::{BasicNode, Raft};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Every Raft group of this node: the metadata group, always open, and the shard
/// groups this node holds a replica of, opened and removed as placement changes.
pub struct ShardSet {
    /// Shared with the heartbeat driver (see [`crate::quiet_heartbeat`]).
    groups: Arc<RwLock<BTreeMap<u32, ShardRaft>>>,
    meta: ShardRaft,
    engine: Engine,
    syncer: WalSyncer,
    channels: PeerChannels,
    settings: RaftSettings,
    changing: tokio::sync::Mutex<()>,
    meta_cache: Mutex<(Option<u64>, Arc<RingState>)>,
    pub(crate) hints: LeaderHints,
    pub(crate) health: PeerHealth,
    disk: std::sync::OnceLock<Arc<DiskGuard>>,
    lost_data: LostData,
}

const SHARD_COUNT_KEY: &str = "shards";
/// Node-level key of the node id the data directory belongs to: replicas in it are
/// this node's in every group's membership, so another id must not reuse them.
const NODE_ID_KEY: &str = "node_id";

/// Stores `value` under the node-level key `name` the first time the data directory
/// is opened; afterwards returns the stored value when it differs from `value`.
fn pin(engine: &Engine, name: &str, value: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
    let key = keys::node_meta(name);
    match engine.get(&key)? {
        Some(stored) if stored == value => Ok(None),
        Some(stored) => Ok(Some(stored)),
        None => {
            engine.write([Op::Put(key, value.to_vec())], true)?;
            Ok(None)
        }
    }
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
        if let Some(b) = pin(&engine, SHARD_COUNT_KEY, &settings.shards.to_be_bytes())? {
            return Err(ShardSetError::ShardCountMismatch {
                stored: b.try_into().map(u32::from_be_bytes).unwrap_or(0),
                requested: settings.shards,
            });
        }
        if let Some(b) = pin(&engine, NODE_ID_KEY, &settings.node_id.to_be_bytes())? {
            return Err(ShardSetError::NodeIdMismatch {
                stored: b.try_into().map(u64::from_be_bytes).unwrap_or(0),
                requested: settings.node_id,
            });
        }
        let lost_data = LostData::load(&engine)?;
        let syncer = WalSyncer::start_with_linger(engine.clone(), settings.wal_sync_linger)
            .map_err(|e| ShardSetError::Raft(format!("cannot start the WAL syncer: {e}")))?;
        let channels = PeerChannels::new(settings.tls.clone(), settings.peer_source_ip);
        let meta =
            Self::open_group(&engine, &syncer, &channels, settings, keys::META_GROUP).await?;
        let set = Self {
            groups: Arc::default(),
            meta,
            engine,
            syncer,
            channels,
            settings: settings.clone(),
            changing: tokio::sync::Mutex::new(()),
            meta_cache: Mutex::default(),
            hints: LeaderHints::default(),
            health: PeerHealth::default(),
            disk: std::sync::OnceLock::new(),
            lost_data,
        };
        let fresh = !set.is_initialized(&set.meta).await?;
        if set.lost_data.is_set() {
            tracing::warn!(
                "this node lost its data; it answers for no replica until the cluster readmits it"
            );
        } else if fresh && settings.bootstrap && set.ring_exists(&settings.ring_probe).await {
            tracing::warn!("the data directory is fresh but a ring already exists among the --join peers: this node lost its data and is readmitted instead of starting a new ring");
            set.lost_data.mark(&set.engine)?;
        } else if fresh && settings.bootstrap && set.ran_in_a_fixed_ring().await {
            tracing::warn!("the data directory is fresh but a --peers peer's ring lists this node as having run: this node lost its data and is readmitted instead of initialising its groups again");
            set.lost_data.mark(&set.engine)?;
        } else if fresh && settings.bootstrap {
            set.bootstrap().await?;
        } else if fresh {
            // A joining node: its id may be a member whose replicas were on a data
            // directory that is gone, so it is readmitted before it answers.
            set.lost_data.mark(&set.engine)?;
        }
        let placed = set.meta.ring().shards_of(settings.node_id);
        for shard in 0..settings.shards {
            let has_data = set
                .engine
                .get(&keys::vote(keys::shard_group(shard)))?
                .is_some();
            if has_data || placed.contains(&shard) {
                set.ensure_group(shard).await?;
            }
        }
        crate::quiet_heartbeat::spawn_driver(Arc::downgrade(&set.groups), set.meta.clone());
        Ok(set)
    }

    /// Whether any of `peers` answers a ping as a member of an existing ring. Peers
    /// are pinged in rounds until every one has answered (none in a ring: no) or
    /// [`crate::settings::RING_PROBE_WINDOW`] has passed (counted as no).
    async fn ring_exists(&self, peers: &[String]) -> bool {
        let mut silent: Vec<&String> = peers
            .iter()
            .filter(|a| **a != self.settings.advertise_addr)
            .collect();
        let deadline = tokio::time::Instant::now() + crate::settings::RING_PROBE_WINDOW;
        loop {
            let mut still_silent = Vec::new();
            for addr in silent {
                match self.in_ring(addr).await {
                    Some(true) => return true,
                    Some(false) => {}
                    None => still_silent.push(addr),
                }
            }
            silent = still_silent;
            if silent.is_empty() {
                return false;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(silent = ?silent, "--join peers did not answer whether a ring exists; bootstrapping a new one");
                return false;
            }
            tracing::info!(silent = ?silent, "waiting for --join peers to say whether a ring exists before bootstrapping");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Whether any other `--peers` peer answers that its ring lists this node as a
    /// member that has run (one round, every peer at once, a second each): a fresh
    /// directory under that id is then a lost volume, not a new ring's member. A
    /// node of a new ring that starts late is listed, but has never run.
    async fn ran_in_a_fixed_ring(&self) -> bool {
        let me = self.settings.node_id;
        let mut asks = tokio::task::JoinSet::new();
        for (_, addr) in self.settings.peers.iter().filter(|(id, _)| **id != me) {
            let (channels, addr) = (self.channels.clone(), addr.clone());
            asks.spawn(async move { channels.ping(&addr, Some(me)).await });
        }
        while let Some(answer) = asks.join_next().await {
            if answer.ok().flatten().is_some_and(|r| r.asking_node_ran) {
                return true;
            }
        }
        false
    }

    /// Whether the peer at `addr` holds ring metadata; `None` when it does not
    /// answer.
    async fn in_ring(&self, addr: &str) -> Option<bool> {
        self.channels.ping(addr, None).await.map(|r| r.in_ring)
    }

    async fn is_initialized(&self, g: &ShardRaft) -> Result<bool, ShardSetError> {
        g.raft
            .is_initialized()
            .await
            .map_err(|e| ShardSetError::Raft(e.to_string()))
    }

    /// Initialises this node's part of a new ring: the metadata group (with the
    /// first peers as voters) on the lowest peer, and each shard group (with its
    /// rendezvous replicas) on the lowest of its replicas. openraft initialises a
    /// group only on one of its members, so with more peers than replicas every peer
    /// takes part.
    async fn bootstrap(&self) -> Result<(), ShardSetError> {
        let peers = &self.settings.peers;
        let me = self.settings.node_id;
        let addr = |id: NodeId| peers.get(&id).cloned();
        let ids: Vec<NodeId> = peers.keys().copied().collect();
        tracing::info!(nodes = ?ids, shards = self.settings.shards, "bootstrapping a new cluster");
        if ids.first() == Some(&me) {
            let voters = ids.iter().copied().take(MAX_METADATA_VOTERS);
            self.meta
                .raft
                .initialize(members_of(voters, addr))
                .await
                .map_err(|e| ShardSetError::Raft(e.to_string()))?;
        }
        for shard in 0..self.settings.shards {
            let replicas = rendezvous(shard, &ids, self.settings.replicas as usize);
            if replicas.iter().min() != Some(&me) {
                continue;
            }
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
        let log = LogStore::open(engine.clone(), group, syncer.clone())?
            .keeping_recent(settings.recent_entry_bytes);
        let contact = Arc::<FollowerContact>::default();
        let state = ShardStateMachine::new(engine.clone(), group, ctx, log.pending_committed());
        let raft = Raft::new(
            settings.node_id,
            raft_config(name)?,
            PeerNetwork::new(group, channels.clone(), contact.clone()),
            log,
            state,
        )
        .await
        .map_err(|e| ShardSetError::Raft(e.to_string()))?;
        Ok(ShardRaft {
            shard,
            node_id: settings.node_id,
            raft,
            view: engine.view(keys::state_prefix(group)),
            elections: std::sync::Arc::default(),
            contact,
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
        let group = keys::shard_group(shard);
        let g = Self::open_group(
            &self.engine,
            &self.syncer,
            &self.channels,
            &self.settings,
            group,
        )
        .await?;
        // Opened again, the replica is a member being added back by its leader.
        self.engine
            .write([Op::Delete(keys::removed(group))], false)?;
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
        let vote = self.engine.get(&keys::vote(group))?.unwrap_or_default();
        self.engine.write(
            [
                Op::DeleteRange(keys::group_start(group), keys::group_end(group)),
                Op::DeleteLogRange(keys::group_start(group), keys::group_end(group)),
                Op::Put(keys::removed(group), vote),
            ],
            true,
        )?;
        self.engine.forget_applied(group);
        tracing::info!(shard, "removed shard replica and its data");
        Ok(())
    }

    /// Whether this node deleted its replica of `shard` and has not been placed on
    /// the shard since (see [`keys::removed`]).
    pub fn removed_here(&self, shard: u32) -> Result<bool, EngineError> {
        Ok(self
            .engine
            .get(&keys::removed(keys::shard_group(shard)))?
            .is_some())
    }

    /// Whether the metadata this node holds places `shard` on it.
    pub fn placed_here(&self, shard: u32) -> bool {
        self.ring().shards_of(self.node_id()).contains(&shard)
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

    /// The local replicas this node leads, in shard order (what the periodic
    /// workers act on).
    pub fn led_locals(&self) -> Vec<ShardRaft> {
        let mut locals = self.locals();
        locals.retain(ShardRaft::is_leader);
        locals
    }

    /// The local replicas the placement names for this node (every local replica
    /// while the metadata is empty): a replica outside it is waiting to be deleted and
    /// has no leader to wait for.
    pub fn placed_locals(&self) -> Vec<ShardRaft> {
        let meta = self.ring();
        if meta.members.is_empty() {
            return self.locals();
        }
        let placed = meta.shards_of(self.node_id());
        self.locals()
            .into_iter()
            .filter(|g| placed.contains(&g.shard()))
            .collect()
    }

    /// Sets the free-space guard that writes and replicated entries obey (once).
    pub fn guard_disk(&self, guard: Arc<DiskGuard>) {
        self.engine.set_snapshot_floor(guard.min_free_bytes());
        let _ = self.disk.set(guard);
    }

    /// The free-space guard of the data directory, once set.
    pub fn disk(&self) -> Option<&Arc<DiskGuard>> {
        self.disk.get()
    }

    /// Why this node refuses writes for lack of disk space right now, if it does.
    pub fn disk_refusal(&self) -> Option<String> {
        self.disk.get().and_then(|d| d.refusal())
    }

    /// Whether this node lost its data and waits to be readmitted (see
    /// [`crate::lost_data`]).
    pub fn awaits_readmission(&self) -> bool {
        self.lost_data.is_set()
    }

    /// Why this node answers no Raft message: it lost its data and the cluster has
    /// not readmitted it yet.
    pub fn lost_data_refusal(&self) -> Option<String> {
        self.lost_data.is_set().then(|| {
            "this node lost its data and holds no replica until the cluster readmits it".into()
        })
    }

    /// Records that the metadata leader readmitted this node: it holds no replica
    /// under its id any more, so it may join and receive new ones.
    pub fn readmitted(&self) -> Result<(), EngineError> {
        if self.lost_data.is_set() {
            self.lost_data.clear(&self.engine)?;
            tracing::info!(
                "readmitted after losing its data; joining to receive replicas from peers"
            );
        }
        Ok(())
    }

    /// The metadata group's replica on this node.
    pub fn meta(&self) -> &ShardRaft {
        &self.meta
    }

    /// The cluster metadata as this node has applied it (decoded once per applied
    /// metadata entry).
    pub fn ring(&self) -> Arc<RingState> {
        let applied = self.meta.applied_index();
        let mut cache = self.meta_cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0 != applied || applied.is_none() {
            *cache = (applied, Arc::new(self.meta.ring()));
        }
        cache.1.clone()
    }

    /// The storage engine's table files and compaction debt, for `/metrics`.
    pub fn engine_tables(&self) -> crate::EngineTables {
        self.engine.tables()
    }

    /// Number of shards.
    pub fn count(&self) -> u32 {
        self.settings.shards
    }

    /// What the storage engine holds in memory and its bounds, for `/metrics`.
    pub fn engine_memory(&self) -> (crate::EngineMemory, crate::EngineMemoryUse) {
        (self.engine.memory(), self.engine.memory_use())
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
