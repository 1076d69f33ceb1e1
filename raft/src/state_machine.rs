//! openraft state machine of one shard: applies proposals through the core state
//! machine and commits their writes together with the applied log id.

use crate::committed::PendingCommitted;
use crate::engine::{Engine, EngineError, Op, PrefixView};
use crate::keys::{self, GroupId};
use crate::snapshot_file::{self, SnapshotFileError};
use crate::types::{GroupRequest, NodeId, TypeConfig};
use kelemetry_core::ring::{RingCommand, RingState};
use kelemetry_core::state::{apply_proposal, HotKeys, HotView, KvRead, Overlay, ShardContext};
use kelemetry_core::ProposalOutcome;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the state machine has applied, stored atomically with the data it produced.
#[derive(Clone, Default, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

/// The state machine of one shard group.
pub struct ShardStateMachine {
    engine: Engine,
    group: GroupId,
    ctx: ShardContext,
    /// The commit index the log store learned, persisted with each apply.
    committed: PendingCommitted,
    /// The applied state as last written (`None` until read or after a snapshot
    /// install): every apply starts from it, and reading it back from RocksDB each
    /// time was 1.6% of a loaded ring's CPU.
    applied: Mutex<Option<AppliedState>>,
    /// Records every apply reads (see [`HotKeys`]).
    hot: Arc<Mutex<HotKeys>>,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&e).into()
}

impl ShardStateMachine {
    /// The state machine of `ctx.shard`, stored under `group`; it persists the commit
    /// index its log store records in `committed`.
    pub fn new(
        engine: Engine,
        group: GroupId,
        ctx: ShardContext,
        committed: PendingCommitted,
    ) -> Self {
        Self {
            engine,
            group,
            ctx,
            committed,
            applied: Mutex::default(),
            hot: Arc::default(),
        }
    }

    fn view(&self) -> PrefixView {
        self.engine.view(keys::state_prefix(self.group))
    }

    fn applied(&self) -> Result<AppliedState, StorageError<NodeId>> {
        let mut cached = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(applied) = cached.as_ref() {
            return Ok(applied.clone());
        }
        let applied = match self
            .engine
            .get(&keys::applied(self.group))
            .map_err(sm_err)?
        {
            Some(b) => postcard::from_bytes(&b).map_err(sm_err)?,
            None => AppliedState::default(),
        };
        *cached = Some(applied.clone());
        Ok(applied)
    }

    /// Forgets what is cached of the state: a snapshot install replaced it.
    fn state_replaced(&self) {
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.hot.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The identity of a snapshot of the state as applied so far.
    fn snapshot_meta(&self) -> Result<SnapshotMeta<NodeId, BasicNode>, StorageError<NodeId>> {
        let applied = self.applied()?;
        let snapshot_id = match applied.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.group),
            None => format!("empty-{}", self.group),
        };
        Ok(SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
            snapshot_id,
        })
    }

    /// Every record of the shard written to an unlinked file (gone once openraft has
    /// sent it and drops it), on a blocking thread: memory stays bounded whatever the
    /// shard's size.
    async fn snapshot_now(&self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let meta = self.snapshot_meta()?;
        let (view, dir, group, shard) = (
            self.view(),
            self.engine.snapshot_dir().to_path_buf(),
            self.group,
            self.ctx.shard,
        );
        let floor = self.engine.snapshot_floor();
        let file = build_when_it_fits(view, dir, format!("{group}.send"), shard, floor)
            .await
            .map_err(sm_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        })
    }
}

/// How often a snapshot that did not fit on the disk looks for space again.
const SPACE_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);
/// How much more space than the failed attempt found a retry waits for.
const SPACE_GROWTH: u64 = 64 << 20;

/// Writes the shard's snapshot to an unlinked file in `dir`, leaving at least `floor`
/// bytes free. A snapshot that does not fit is dropped (its space returns at once)
/// and tried again once more space is free: openraft 0.9 stops a group for good when
/// building a snapshot fails, so the build waits instead (logged), holding up only
/// this shard's applies and no storage thread.
async fn build_when_it_fits(
    view: PrefixView,
    dir: PathBuf,
    name: String,
    shard: u32,
    floor: u64,
) -> Result<std::fs::File, SnapshotFileError> {
    let free = |dir: &Path| crate::disk_guard::free_space(dir).unwrap_or(u64::MAX);
    loop {
        let free_at_start = free(&dir);
        let attempt = {
            let (view, dir, name) = (view.clone(), dir.clone(), name.clone());
            tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let room = || floor == 0 || free(&dir) >= floor;
                let built = snapshot_file::write(&view, unlinked_file(&dir, &name)?, shard, &room);
                built.map(|(file, contents)| (file, contents, started.elapsed()))
            })
            .await
            .map_err(|e| SnapshotFileError::Engine(e.to_string()))?
        };
        match attempt {
            Ok((file, contents, took)) => {
                tracing::info!(
                    shard,
                    records = contents.records,
                    mib = contents.bytes >> 20,
                    took_ms = took.as_millis() as u64,
                    "snapshot built for a replica"
                );
                return Ok(file);
            }
            Err(SnapshotFileError::Io(e)) if e.kind() == std::io::ErrorKind::StorageFull => {
                tracing::error!(
                    shard,
                    free_mib = free_at_start >> 20,
                    reserve_mib = floor >> 20,
                    "no room on the disk for a replica's snapshot of this shard; its applies wait until more space is free"
                );
                while free(&dir) < free_at_start.saturating_add(SPACE_GROWTH) {
                    tokio::time::sleep(SPACE_RECHECK).await;
                }
                tracing::info!(
                    shard,
                    free_mib = free(&dir) >> 20,
                    "more space is free: building the snapshot again"
                );
            }
            Err(e) => return Err(e),
        }
    }
}

/// A new file in `dir`, already unlinked: its space returns when it is closed, even
/// after a crash.
fn unlinked_file(dir: &Path, name: &str) -> std::io::Result<std::fs::File> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{name}.{}.{n}", std::process::id()));
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

/// The file a snapshot for `group` is received into, and the one it is installed
/// from (kept until the install is complete, so a crash mid-install is redone).
fn receiving_path(dir: &Path, group: GroupId) -> PathBuf {
    dir.join(format!("{group}.receiving"))
}

fn installing_path(dir: &Path, group: GroupId) -> PathBuf {
    dir.join(format!("{group}.installing"))
}

/// Makes the received snapshot `file` durable at `path` for the install: renamed
/// there when it is the file this node received into (`receiving`), copied there
/// when it is another (openraft's storage suite hands over the sender's file).
fn keep_for_install(mut file: std::fs::File, receiving: &Path, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let handed = file.metadata()?;
    let same = std::fs::metadata(receiving)
        .is_ok_and(|r| r.dev() == handed.dev() && r.ino() == handed.ino());
    if same {
        file.sync_all()?;
        return std::fs::rename(receiving, path);
    }
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))?;
    let mut copy = std::fs::File::create(path)?;
    std::io::copy(&mut file, &mut copy)?;
    copy.sync_all()
}

/// Installs the checked snapshot file `path` into `group`'s state: clears the state
/// and sets the installing marker in one synced batch, writes the records in bounded
/// batches, then records `meta` as applied and drops the marker in a last synced
/// batch. A crash before that last batch leaves the marker, and start-up redoes the
/// install from the same file.
fn install_file(
    engine: &Engine,
    group: GroupId,
    shard: u32,
    path: &Path,
    meta: &SnapshotMeta<NodeId, BasicNode>,
) -> Result<(), SnapshotFileError> {
    let started = std::time::Instant::now();
    let mut file = std::fs::File::open(path)?;
    let checked = snapshot_file::read(&mut file, &mut |_| Ok(()))?;
    let prefix = keys::state_prefix(group);
    engine.write(
        [
            Op::DeleteRange(
                prefix.clone(),
                kelemetry_core::state::schema::prefix_end(&prefix),
            ),
            Op::Put(keys::snapshot_installing(group), encode(meta)?),
        ],
        true,
    )?;
    engine.forget_applied(group);
    let view = engine.view(prefix);
    let mut written = 0u64;
    let mut next_progress = 256u64 << 20;
    snapshot_file::read(&mut file, &mut |batch| {
        written += batch
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum::<u64>();
        engine.write(batch.into_iter().map(|(k, v)| view.op(k, Some(v))), false)?;
        if written >= next_progress {
            next_progress += 256 << 20;
            tracing::info!(
                shard,
                mib = written >> 20,
                of_mib = checked.bytes >> 20,
                "installing a snapshot"
            );
        }
        Ok(())
    })?;
    let applied = AppliedState {
        last_applied: meta.last_log_id,
        membership: meta.last_membership.clone(),
    };
    engine.write(
        [
            Op::Put(keys::applied(group), encode(&applied)?),
            Op::Delete(keys::snapshot_installing(group)),
        ],
        true,
    )?;
    std::fs::remove_file(path)?;
    snapshot_file::SNAPSHOT_BYTES
        .with_label_values(&["installed"])
        .inc_by(checked.bytes);
    tracing::info!(
        shard,
        records = checked.records,
        mib = checked.bytes >> 20,
        took_ms = started.elapsed().as_millis() as u64,
        "snapshot installed"
    );
    Ok(())
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, SnapshotFileError> {
    postcard::to_stdvec(v).map_err(|e| SnapshotFileError::Engine(e.to_string()))
}

/// Most commands an apply runs inline on the group's state machine task. A small
/// batch's reads and unsynced writes take tens of microseconds, less than the
/// hand-off to a blocking thread and back (one per apply on every replica); a larger
/// one would hold a runtime worker long enough to delay other groups' messages.
const INLINE_APPLY_COMMANDS: usize = 32;

/// Commands in `entries`: a proposal's own, one for any other entry.
fn commands_in(entries: &[Entry<TypeConfig>]) -> usize {
    entries
        .iter()
        .map(|e| match &e.payload {
            EntryPayload::Normal(GroupRequest::Shard(p)) => p.commands.len(),
            _ => 1,
        })
        .sum()
}

/// Applies entries and commits their writes plus the new applied state (and the
/// newest commit index, `committed`) in one batch; returns the outcomes and the new
/// applied state. Runs on a blocking thread, or inline for small batches (see
/// [`INLINE_APPLY_COMMANDS`]): it reads and writes RocksDB.
fn apply_entries(
    engine: &Engine,
    group: GroupId,
    ctx: &ShardContext,
    mut applied: AppliedState,
    committed: Option<LogId<NodeId>>,
    hot: &Mutex<HotKeys>,
    entries: Vec<Entry<TypeConfig>>,
) -> Result<(Vec<ProposalOutcome>, AppliedState), EngineError> {
    let view = engine.view(keys::state_prefix(group));
    let mut hot = hot.lock().unwrap_or_else(|p| p.into_inner());
    let base = HotView::new(&view, &mut hot);
    let mut overlay = Overlay::new(&base);
    let mut responses = Vec::with_capacity(entries.len());
    for entry in entries {
        applied.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => responses.push(ProposalOutcome::default()),
            EntryPayload::Normal(GroupRequest::Shard(proposal)) => responses.push(
                apply_proposal(&mut overlay, ctx, &proposal)
                    .map_err(|e| EngineError::other(e.to_string()))?,
            ),
            EntryPayload::Normal(GroupRequest::Ring(cmd)) => {
                apply_ring(&mut overlay, &cmd)?;
                responses.push(ProposalOutcome::default());
            }
            EntryPayload::Membership(m) => {
                applied.membership = StoredMembership::new(Some(entry.log_id), m);
                responses.push(ProposalOutcome::default());
            }
        }
    }
    let writes = overlay.into_writes();
    let hot_writes = HotKeys::hot_writes(&writes);
    let mut ops: Vec<Op> = writes.into_iter().map(|(k, v)| view.op(k, v)).collect();
    let applied_bytes =
        postcard::to_stdvec(&applied).map_err(|e| EngineError::other(e.to_string()))?;
    ops.push(Op::Put(keys::applied(group), applied_bytes));
    if committed.is_some() {
        let committed_bytes =
            postcard::to_stdvec(&committed).map_err(|e| EngineError::other(e.to_string()))?;
        ops.push(Op::Put(keys::committed(group), committed_bytes));
    }
    // Not synced: the log is durable, and on restart openraft re-applies every committed
    // entry after `last_applied`, which is written in the same atomic batch. A shard's
    // state skips the write-ahead log altogether (its log is purged only once a flush
    // has it on disk); the metadata group's keeps it, as start-up reads the ring
    // record to choose the replicas to open before any entry is re-applied.
    match applied.last_applied {
        Some(last) if group != keys::META_GROUP => engine.write_applied(group, last.index, ops)?,
        _ => engine.write(ops, false)?,
    }
    hot.committed(hot_writes);
    Ok((responses, applied))
}

/// Reads the cluster metadata record of the metadata group's state.
pub(crate) fn read_ring(kv: &dyn KvRead) -> Result<RingState, EngineError> {
    match kv
        .get(keys::META_RECORD)
        .map_err(|e| EngineError::other(e.to_string()))?
    {
        Some(b) => postcard::from_bytes(&b).map_err(|e| EngineError::other(e.to_string())),
        None => Ok(RingState::default()),
    }
}

fn apply_ring(overlay: &mut Overlay<'_>, cmd: &RingCommand) -> Result<(), EngineError> {
    let mut meta = read_ring(overlay)?;
    meta.apply(cmd);
    let bytes = postcard::to_stdvec(&meta).map_err(|e| EngineError::other(e.to_string()))?;
    overlay.put(keys::META_RECORD.to_vec(), bytes);
    Ok(())
}

impl RaftStateMachine<TypeConfig> for ShardStateMachine {
    type SnapshotBuilder = BuiltSnapshot;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        self.finish_interrupted_install().await?;
        let a = self.applied()?;
        Ok((a.last_applied, a.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ProposalOutcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let (applied, committed) = (self.applied()?, self.committed.get());
        let applied = if commands_in(&entries) <= INLINE_APPLY_COMMANDS {
            apply_entries(
                &self.engine,
                self.group,
                &self.ctx,
                applied,
                committed,
                &self.hot,
                entries,
            )
        } else {
            let (engine, group, ctx, hot) =
                (self.engine.clone(), self.group, self.ctx, self.hot.clone());
            tokio::task::spawn_blocking(move || {
                apply_entries(&engine, group, &ctx, applied, committed, &hot, entries)
            })
            .await
            .map_err(sm_err)?
        };
        let mut cached = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        match applied {
            Ok((responses, applied)) => {
                *cached = Some(applied);
                Ok(responses)
            }
            Err(e) => {
                *cached = None;
                Err(sm_err(e))
            }
        }
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // openraft builds snapshots only to learn up to where the log may be purged: the
        // applied state already lives in RocksDB, written before this call (apply and
        // this call both take `&mut self`) and made durable before the purge (see
        // `applied_on_disk`).
        // So a built snapshot is its identity alone; the records are read when a
        // follower needs them (`get_current_snapshot`). Copying every record of the
        // shard into memory every 5,000 entries made RSS jump by hundreds of MiB as
        // the data grew, and stalled apply while the copy ran.
        BuiltSnapshot {
            meta: self.snapshot_meta(),
            dir: self.engine.snapshot_dir().to_path_buf(),
            group: self.group,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        let path = receiving_path(self.engine.snapshot_dir(), self.group);
        let file = tokio::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(sm_err)?;
        tracing::info!(
            shard = self.ctx.shard,
            "receiving a snapshot from the leader"
        );
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        let received = snapshot.into_std().await;
        let dir = self.engine.snapshot_dir().to_path_buf();
        let (engine, group, shard, meta) = (
            self.engine.clone(),
            self.group,
            self.ctx.shard,
            meta.clone(),
        );
        let installed = tokio::task::spawn_blocking(move || {
            let path = installing_path(&dir, group);
            keep_for_install(received, &receiving_path(&dir, group), &path)?;
            std::fs::File::open(&dir)?.sync_all()?;
            install_file(&engine, group, shard, &path, &meta)
        })
        .await
        .map_err(sm_err)?;
        self.state_replaced();
        installed.map_err(sm_err)
    }

    /// The state as applied so far, as a snapshot (a snapshot is the applied state
    /// itself, taken when asked); none while nothing has been applied, so a fresh
    /// replica reports no snapshot (openraft's storage contract, checked by its
    /// storage suite in `tests/storage_suite.rs`).
    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        if self.applied()?.last_applied.is_none() {
            return Ok(None);
        }
        self.snapshot_now().await.map(Some)
    }
}

impl ShardStateMachine {
    /// Redoes a snapshot install that a crash interrupted (its marker is still
    /// there) from the file it kept, before anything reads the state.
    async fn finish_interrupted_install(&mut self) -> Result<(), StorageError<NodeId>> {
        let Some(marker) = self
            .engine
            .get(&keys::snapshot_installing(self.group))
            .map_err(sm_err)?
        else {
            return Ok(());
        };
        let meta: SnapshotMeta<NodeId, BasicNode> =
            postcard::from_bytes(&marker).map_err(sm_err)?;
        let path = installing_path(self.engine.snapshot_dir(), self.group);
        tracing::warn!(shard = self.ctx.shard, file = %path.display(),
            "a snapshot install was interrupted; installing it again");
        let (engine, group, shard) = (self.engine.clone(), self.group, self.ctx.shard);
        let installed =
            tokio::task::spawn_blocking(move || install_file(&engine, group, shard, &path, &meta))
                .await
                .map_err(sm_err)?;
        self.state_replaced();
        installed.map_err(sm_err)
    }
}

/// The identity of the state when the builder was requested (see
/// `get_snapshot_builder`), with an empty file as its data.
pub struct BuiltSnapshot {
    meta: Result<SnapshotMeta<NodeId, BasicNode>, StorageError<NodeId>>,
    dir: PathBuf,
    group: GroupId,
}

impl RaftSnapshotBuilder<TypeConfig> for BuiltSnapshot {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let meta = self.meta.clone()?;
        let file = unlinked_file(&self.dir, &format!("{}.built", self.group)).map_err(sm_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        })
    }
}
