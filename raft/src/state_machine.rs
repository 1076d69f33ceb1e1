//! openraft state machine of one shard: applies proposals through the core state
//! machine and commits their writes together with the applied log id.

use crate::engine::{Engine, EngineError, Op, PrefixView};
use crate::keys::{self, GroupId};
use crate::types::{GroupRequest, NodeId, TypeConfig};
use kelemetry_core::ring::{RingCommand, RingState};
use kelemetry_core::state::{apply_proposal, KvRead, Overlay, ShardContext};
use kelemetry_core::ProposalOutcome;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// What the state machine has applied, stored atomically with the data it produced.
#[derive(Clone, Default, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
}

/// Snapshot payload: every state record of the shard.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    records: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The state machine of one shard group.
pub struct ShardStateMachine {
    engine: Engine,
    group: GroupId,
    ctx: ShardContext,
}

fn sm_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&e).into()
}

impl ShardStateMachine {
    /// The state machine of `ctx.shard`, stored under `group`.
    pub fn new(engine: Engine, group: GroupId, ctx: ShardContext) -> Self {
        Self { engine, group, ctx }
    }

    fn view(&self) -> PrefixView {
        self.engine.view(keys::state_prefix(self.group))
    }

    fn applied(&self) -> Result<AppliedState, StorageError<NodeId>> {
        match self
            .engine
            .get(&keys::applied(self.group))
            .map_err(sm_err)?
        {
            Some(b) => postcard::from_bytes(&b).map_err(sm_err),
            None => Ok(AppliedState::default()),
        }
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

    fn snapshot_now(&self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let meta = self.snapshot_meta()?;
        let mut records = Vec::new();
        self.view()
            .scan(&[], &[0xff; 8], &mut |k, v| {
                records.push((k.to_vec(), v.to_vec()));
                true
            })
            .map_err(sm_err)?;
        let data = postcard::to_stdvec(&SnapshotData { records }).map_err(sm_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

/// Applies entries and commits their writes plus the new applied state in one batch.
/// Runs on a blocking thread: it reads and writes RocksDB.
fn apply_entries(
    engine: &Engine,
    group: GroupId,
    ctx: &ShardContext,
    mut applied: AppliedState,
    entries: Vec<Entry<TypeConfig>>,
) -> Result<Vec<ProposalOutcome>, EngineError> {
    let view = engine.view(keys::state_prefix(group));
    let mut overlay = Overlay::new(&view);
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
    let mut ops: Vec<Op> = overlay
        .into_writes()
        .into_iter()
        .map(|(k, v)| view.op(k, v))
        .collect();
    let applied_bytes =
        postcard::to_stdvec(&applied).map_err(|e| EngineError::other(e.to_string()))?;
    ops.push(Op::Put(keys::applied(group), applied_bytes));
    // Not synced: the log is durable, and on restart openraft re-applies every committed
    // entry after `last_applied`, which is written in the same atomic batch.
    engine.write(ops, false)?;
    Ok(responses)
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
        let a = self.applied()?;
        Ok((a.last_applied, a.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ProposalOutcome>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let applied = self.applied()?;
        let (engine, group, ctx) = (self.engine.clone(), self.group, self.ctx);
        tokio::task::spawn_blocking(move || apply_entries(&engine, group, &ctx, applied, entries))
            .await
            .map_err(sm_err)?
            .map_err(sm_err)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // openraft builds snapshots only to learn up to where the log may be purged: the
        // applied state already lives in RocksDB, written before this call (apply and
        // this call both take `&mut self`) and made durable by the purge's synced write.
        // So a built snapshot is its identity alone; the records are read when a
        // follower needs them (`get_current_snapshot`). Copying every record of the
        // shard into memory every 5,000 entries made RSS jump by hundreds of MiB as
        // the data grew, and stalled apply while the copy ran.
        BuiltSnapshot(self.snapshot_meta())
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data: SnapshotData = postcard::from_bytes(snapshot.get_ref()).map_err(sm_err)?;
        let prefix = keys::state_prefix(self.group);
        let view = self.view();
        let mut ops = vec![Op::DeleteRange(
            prefix.clone(),
            kelemetry_core::state::schema::prefix_end(&prefix),
        )];
        ops.extend(data.records.into_iter().map(|(k, v)| view.op(k, Some(v))));
        let applied = AppliedState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        ops.push(Op::Put(
            keys::applied(self.group),
            postcard::to_stdvec(&applied).map_err(sm_err)?,
        ));
        self.engine.write(ops, true).map_err(sm_err)
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
        self.snapshot_now().map(Some)
    }
}

/// The identity of the state when the builder was requested (see
/// `get_snapshot_builder`).
pub struct BuiltSnapshot(Result<SnapshotMeta<NodeId, BasicNode>, StorageError<NodeId>>);

impl RaftSnapshotBuilder<TypeConfig> for BuiltSnapshot {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        match &self.0 {
            Ok(meta) => Ok(Snapshot {
                meta: meta.clone(),
                snapshot: Box::new(Cursor::new(Vec::new())),
            }),
            Err(e) => Err(e.clone()),
        }
    }
}
