//! openraft log storage for one group, in the shared RocksDB, with its newest
//! entries also in memory for replication reads.

use crate::committed::PendingCommitted;
use crate::engine::{Engine, EngineError, Op};
use crate::keys::{self, GroupId};
use crate::metrics::RECENT_ENTRY_READS;
use crate::recent_entries::RecentEntries;
use crate::types::{NodeId, TypeConfig};
use crate::wal_sync::WalSyncer;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

/// The Raft log, vote and commit index of one group.
#[derive(Clone)]
pub struct LogStore {
    engine: Engine,
    group: GroupId,
    syncer: WalSyncer,
    recent: RecentEntries<Entry<TypeConfig>>,
    committed: PendingCommitted,
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    // Raft's own types are plain serde data; postcard only fails on unsupported serde
    // features, which they do not use.
    kelemetry_core::codec::to_sized_vec(v).expect("openraft types are postcard-serialisable")
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, StorageError<NodeId>> {
    postcard::from_bytes(b).map_err(|e| StorageIOError::read_logs(&e).into())
}

fn read_err(e: EngineError) -> StorageError<NodeId> {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: EngineError) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

impl LogStore {
    /// The log store of `group`; appends become durable through `syncer`.
    pub fn new(engine: Engine, group: GroupId, syncer: WalSyncer) -> Self {
        Self {
            engine,
            group,
            syncer,
            recent: RecentEntries::default(),
            committed: PendingCommitted::default(),
        }
    }

    /// Keeps at most `bytes` (encoded) of the newest entries in memory instead of
    /// the default [`crate::DEFAULT_RECENT_ENTRY_BYTES`].
    pub fn keeping_recent(mut self, bytes: usize) -> Self {
        self.recent = RecentEntries::new(bytes);
        self
    }

    /// Where this store records the newest committed log id for the group's state
    /// machine to persist (see [`PendingCommitted`]).
    pub fn pending_committed(&self) -> PendingCommitted {
        self.committed.clone()
    }

    /// The log store of `group`, after moving any entries a version before the log's
    /// own column family left among the state (once per data directory; a crash in
    /// between is harmless, as each batch moves entries atomically).
    pub fn open(engine: Engine, group: GroupId, syncer: WalSyncer) -> Result<Self, EngineError> {
        let moved = move_entries_from_state_space(&engine, group)?;
        if moved > 0 {
            tracing::info!(
                group,
                entries = moved,
                "moved Raft log entries to the log column family"
            );
        }
        Ok(Self::new(engine, group, syncer))
    }

    fn read<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError<NodeId>> {
        self.engine
            .get(key)
            .map_err(read_err)?
            .map(|b| dec(&b))
            .transpose()
    }

    /// Writes synchronously on a blocking thread, so that an fsync never stalls the
    /// async runtime.
    async fn write_sync(&self, ops: Vec<Op>) -> Result<(), EngineError> {
        self.on_blocking_thread(move |engine| engine.write(ops, true))
            .await
    }

    /// Runs `work` (engine calls that may wait for the disk) on a blocking thread.
    async fn on_blocking_thread(
        &self,
        work: impl FnOnce(&Engine) -> Result<(), EngineError> + Send + 'static,
    ) -> Result<(), EngineError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || work(&engine))
            .await
            .map_err(|e| EngineError::from_join(&e))?
    }
}

/// Entries moved per batch by [`move_entries_from_state_space`].
const MOVE_BATCH: usize = 1_024;

/// Moves `group`'s log entries found in the state space into the log space, in
/// batches that each put a run of entries there and delete it here atomically.
fn move_entries_from_state_space(engine: &Engine, group: GroupId) -> Result<u64, EngineError> {
    let (start, end) = (keys::log(group, 0), keys::log(group, u64::MAX));
    let mut moved = 0u64;
    loop {
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        engine.scan(&start, &end, &mut |k, v| {
            batch.push((k.to_vec(), v.to_vec()));
            batch.len() < MOVE_BATCH
        })?;
        let Some((last, _)) = batch.last() else {
            return Ok(moved);
        };
        let mut after_last = last.clone();
        after_last.push(0);
        moved += batch.len() as u64;
        let mut ops: Vec<Op> = vec![Op::DeleteRange(start.clone(), after_last)];
        ops.extend(batch.into_iter().map(|(k, v)| Op::PutLog(k, v)));
        engine.write(ops, true)?;
    }
}

impl EngineError {
    fn from_join(e: &tokio::task::JoinError) -> Self {
        Self::other(format!("write task failed: {e}"))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end_index = match range.end_bound() {
            Bound::Included(&e) => e.saturating_add(1),
            Bound::Excluded(&e) => e,
            Bound::Unbounded => u64::MAX,
        };
        if let Some(entries) = self.recent.get(start, end_index) {
            RECENT_ENTRY_READS.hits.inc();
            return Ok(entries);
        }
        RECENT_ENTRY_READS.misses.inc();
        let end = keys::log(self.group, end_index);
        let mut out = Vec::new();
        let mut err = None;
        self.engine
            .scan_log(
                &keys::log(self.group, start),
                &end,
                &mut |_, v| match dec(v) {
                    Ok(e) => {
                        out.push(e);
                        true
                    }
                    Err(e) => {
                        err = Some(e);
                        false
                    }
                },
            )
            .map_err(read_err)?;
        err.map_or(Ok(out), Err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged: Option<LogId<NodeId>> = self.read(&keys::purged(self.group))?;
        let last = self
            .engine
            .last_log_key(&keys::log(self.group, 0), &keys::log(self.group, u64::MAX))
            .map_err(read_err)?;
        let last_log_id = match last {
            Some((_, v)) => Some(dec::<Entry<TypeConfig>>(&v)?.log_id),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.write_sync(vec![Op::Put(keys::vote(self.group), enc(vote))])
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.read(&keys::vote(self.group))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.committed.set(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        if let Some(latest) = self.committed.get() {
            return Ok(Some(latest));
        }
        Ok(self
            .read::<Option<LogId<NodeId>>>(&keys::committed(self.group))?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut ops = Vec::new();
        let mut kept = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            let bytes = enc(&entry);
            kept.push((index, entry, bytes.len()));
            ops.push(Op::PutLog(keys::log(self.group, index), bytes));
        }
        // Readable now (memtable), durable when the shared WAL sync completes.
        self.engine.write(ops, false).map_err(write_err)?;
        self.recent.appended(kept);
        self.syncer
            .after_next_sync(Box::new(move |result| callback.log_io_completed(result)));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.recent.truncated(log_id.index);
        self.write_sync(vec![Op::DeleteLogRange(
            keys::log(self.group, log_id.index),
            keys::log(self.group, u64::MAX),
        )])
        .await
        .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.recent.purged(log_id.index);
        let group = self.group;
        // The state these entries built is written without the WAL: it goes to disk
        // before they go (a flush, unless the last one covered it).
        self.on_blocking_thread(move |engine| {
            engine.persist_applied_through(group, log_id.index)?;
            engine.write(
                [
                    Op::Put(keys::purged(group), enc(&log_id)),
                    Op::DeleteLogRange(keys::log(group, 0), keys::log(group, log_id.index + 1)),
                ],
                true,
            )
        })
        .await
        .map_err(write_err)?;
        // Then a flush off the Raft path (openraft waits for the purge) covers the
        // next purge before it comes, so that one does not wait for a flush.
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = engine.flush_applied_if_due() {
                tracing::warn!(group, error = %e, "flushing the applied state failed");
            }
        });
        Ok(())
    }
}
