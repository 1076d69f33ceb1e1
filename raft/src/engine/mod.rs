//! The storage engine: the only module that talks to RocksDB.
//!
//! Everything above sees ordered keys, atomic batches and prefix views, so the RocksDB
//! binding (Debian's 7.8 through `rocksdb 0.20`, chosen for build time) can change here
//! alone.

use crate::applied_on_disk::AppliedOnDisk;
use crate::keys::GroupId;
use crate::storage_fault::{StorageFailure, StorageFault};
use kelemetry_core::state::{KvRead, StateError};
use rocksdb::{
    Cache, ColumnFamily, ColumnFamilyDescriptor, ReadOptions, WriteBatch, WriteOptions, DB,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod options;
mod usage;

pub use options::EngineMemory;
pub use usage::{EngineMemoryUse, EngineTables, FamilyTables};

/// A failure of the storage engine.
#[derive(Debug, thiserror::Error)]
#[error("rocksdb: {message}")]
pub struct EngineError {
    message: String,
    corruption: bool,
}

impl EngineError {
    /// An engine error that did not come from RocksDB itself.
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            corruption: false,
        }
    }

    /// Whether the files on disk are damaged (a checksum mismatch, a truncated or
    /// unreadable table, a corrupt log record before the tail): the data cannot be
    /// trusted and the replica has to be rebuilt from its peers.
    pub fn is_corruption(&self) -> bool {
        self.corruption
    }
}

impl From<rocksdb::Error> for EngineError {
    fn from(e: rocksdb::Error) -> Self {
        let corruption = e.kind() == rocksdb::ErrorKind::Corruption;
        Self {
            message: e.into_string(),
            corruption,
        }
    }
}

/// What a verification pass over the whole database read.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifiedData {
    /// Records read.
    pub records: u64,
    /// Bytes of keys and values read.
    pub bytes: u64,
}

/// A key and its value.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// One operation of an atomic batch.
#[derive(Debug, Clone)]
pub enum Op {
    /// Set a key.
    Put(Vec<u8>, Vec<u8>),
    /// Remove a key.
    Delete(Vec<u8>),
    /// Remove every key in `[start, end)`.
    DeleteRange(Vec<u8>, Vec<u8>),
    /// Set a key of the Raft log space.
    PutLog(Vec<u8>, Vec<u8>),
    /// Remove every key in `[start, end)` of the Raft log space.
    DeleteLogRange(Vec<u8>, Vec<u8>),
}

/// The column family of the Raft logs. Log entries are written once and purged a few
/// thousand entries later; in a column family of their own they are flushed and
/// compacted apart from the state, which the log's churn no longer drags through every
/// compaction (the cost that grew with the data), and they are never compressed.
const LOG_FAMILY: &str = "raft-log";

/// A handle to the node's database; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    db: Arc<DB>,
    cache: Cache,
    memory: EngineMemory,
    snapshot_dir: Arc<PathBuf>,
    snapshot_floor: Arc<std::sync::atomic::AtomicU64>,
    fault: Arc<StorageFault>,
    applied_on_disk: Arc<AppliedOnDisk>,
}

impl Engine {
    /// Where snapshot files being sent or received are kept: a directory inside the
    /// database's, which RocksDB leaves alone.
    pub fn snapshot_dir(&self) -> &Path {
        &self.snapshot_dir
    }

    /// Free bytes a snapshot file being built must leave on the disk: the free-space
    /// guard's minimum, so a replica's snapshot never takes the room kept for the
    /// store's own writes.
    pub fn snapshot_floor(&self) -> u64 {
        self.snapshot_floor
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets [`Engine::snapshot_floor`].
    pub fn set_snapshot_floor(&self, bytes: u64) {
        self.snapshot_floor
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Opens (creating if needed) the database in `path` with the default memory bounds.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        Self::open_with(path, EngineMemory::default())
    }

    /// Opens (creating if needed) the database in `path` within `memory`.
    pub fn open_with(path: &Path, memory: EngineMemory) -> Result<Self, EngineError> {
        let cache = Cache::new_lru_cache(memory.block_cache_bytes)?;
        let (opts, log_opts) = options::database_options(memory, &cache);
        let db = DB::open_cf_descriptors(
            &opts,
            path,
            [
                ColumnFamilyDescriptor::new(rocksdb::DEFAULT_COLUMN_FAMILY_NAME, opts.clone()),
                ColumnFamilyDescriptor::new(LOG_FAMILY, log_opts),
            ],
        )?;
        let snapshot_dir = path.join("kelemetry-snapshots");
        std::fs::create_dir_all(&snapshot_dir)
            .map_err(|e| EngineError::other(format!("{}: {e}", snapshot_dir.display())))?;
        Ok(Self {
            db: Arc::new(db),
            cache,
            memory,
            snapshot_dir: Arc::new(snapshot_dir),
            snapshot_floor: Arc::default(),
            fault: Arc::default(),
            applied_on_disk: Arc::default(),
        })
    }

    /// Where the first failure the node cannot go on from is recorded: any read or
    /// write that fails on the disk.
    pub fn fault(&self) -> &Arc<StorageFault> {
        &self.fault
    }

    /// Refuses any write once one failed: RocksDB's log writer takes no further
    /// call after a failure (Debian's build asserts and aborts on one), and the
    /// node is stopping by then.
    fn refuse_after_failure(&self) -> Result<(), EngineError> {
        match self.fault.failure() {
            Some(failed) => Err(EngineError::other(format!(
                "not writing after a storage failure: {}",
                failed.message
            ))),
            None => Ok(()),
        }
    }

    /// Records a read or write that failed on the disk (an I/O error, a full disk,
    /// damaged files): RocksDB takes no more writes until reopened, an apply that
    /// cannot read stops its Raft group for good, and damaged data cannot be
    /// trusted.
    fn failed_on_disk<T>(&self, result: Result<T, rocksdb::Error>) -> Result<T, EngineError> {
        result.map_err(|e| {
            let on_disk = matches!(
                e.kind(),
                rocksdb::ErrorKind::IOError | rocksdb::ErrorKind::Corruption
            );
            let e = EngineError::from(e);
            if on_disk {
                self.fault.record(StorageFailure {
                    message: e.message.clone(),
                    corruption: e.corruption,
                });
            }
            e
        })
    }

    /// The bounds it was opened with.
    pub fn memory(&self) -> EngineMemory {
        self.memory
    }

    fn log_family(&self) -> &ColumnFamily {
        self.db
            .cf_handle(LOG_FAMILY)
            .expect("the log column family is created at open")
    }

    /// Reads one key.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        crate::metrics::ENGINE_OPS.reads.inc();
        self.failed_on_disk(self.db.get(key))
    }

    /// Applies `ops` atomically; with `sync` the call returns only after the WAL is on disk.
    pub fn write(&self, ops: impl IntoIterator<Item = Op>, sync: bool) -> Result<(), EngineError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.write_with(ops, &wo)
    }

    /// Applies `ops`, `group`'s state as applied through log index `applied`,
    /// atomically and without the write-ahead log: a crash loses them unless a flush
    /// wrote them first, and the Raft log rebuilds them (see
    /// [`crate::applied_on_disk`]).
    pub fn write_applied(
        &self,
        group: GroupId,
        applied: u64,
        ops: impl IntoIterator<Item = Op>,
    ) -> Result<(), EngineError> {
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        self.write_with(ops, &wo)?;
        self.applied_on_disk.written(group, applied);
        Ok(())
    }

    /// Makes sure `group`'s state applied through log index `index` is on disk,
    /// flushing the state's memtable if the last flush did not cover it: called
    /// before the log entries that would rebuild it are purged.
    pub fn persist_applied_through(&self, group: GroupId, index: u64) -> Result<(), EngineError> {
        if self.applied_on_disk.needs_flush(group, index) {
            self.flush_applied()?;
        }
        Ok(())
    }

    /// Forgets what was written of `group`'s state without the log, once a logged
    /// write deleted or replaced it (see [`AppliedOnDisk::forget`]).
    pub fn forget_applied(&self, group: GroupId) {
        self.applied_on_disk.forget(group);
    }

    /// Flushes the state's memtable if a flush is due (see
    /// [`AppliedOnDisk::background_flush_due`]), so that later purges find their
    /// state on disk already; run off the Raft path, after a purge.
    pub fn flush_applied_if_due(&self) -> Result<(), EngineError> {
        if self.applied_on_disk.background_flush_due() {
            self.flush_applied()?;
        }
        Ok(())
    }

    fn flush_applied(&self) -> Result<(), EngineError> {
        self.refuse_after_failure()?;
        self.applied_on_disk.flush_with(|| {
            crate::metrics::ENGINE_OPS.state_flushes.inc();
            self.failed_on_disk(self.db.flush())
        })
    }

    fn write_with(
        &self,
        ops: impl IntoIterator<Item = Op>,
        options: &WriteOptions,
    ) -> Result<(), EngineError> {
        self.refuse_after_failure()?;
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                Op::Put(k, v) => batch.put(k, v),
                Op::Delete(k) => batch.delete(k),
                Op::DeleteRange(s, e) => batch.delete_range(s, e),
                Op::PutLog(k, v) => batch.put_cf(self.log_family(), k, v),
                Op::DeleteLogRange(s, e) => batch.delete_range_cf(self.log_family(), s, e),
            }
        }
        crate::metrics::ENGINE_OPS.record_write(&batch);
        self.failed_on_disk(self.db.write_opt(batch, options))
    }

    /// Visits keys in `[start, end)` in order until `visit` returns false.
    pub fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        self.scan_in(None, start, end, visit)
    }

    /// [`Engine::scan`] of the Raft log space.
    pub fn scan_log(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        self.scan_in(Some(self.log_family()), start, end, visit)
    }

    fn scan_in(
        &self,
        family: Option<&ColumnFamily>,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end.to_vec());
        crate::metrics::ENGINE_OPS.scans.inc();
        let mut it = match family {
            Some(f) => self.db.raw_iterator_cf_opt(f, ro),
            None => self.db.raw_iterator_opt(ro),
        };
        it.seek(start);
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if !visit(k, v) {
                return Ok(());
            }
            it.next();
        }
        self.failed_on_disk(it.status())
    }

    /// The last key in `[start, end)` of the Raft log space.
    pub fn last_log_key(&self, start: &[u8], end: &[u8]) -> Result<Option<KvPair>, EngineError> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(start.to_vec());
        ro.set_iterate_upper_bound(end.to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.log_family(), ro);
        it.seek_to_last();
        let found = match (it.key(), it.value()) {
            (Some(k), Some(v)) if it.valid() => Some((k.to_vec(), v.to_vec())),
            _ => None,
        };
        self.failed_on_disk(it.status())?;
        Ok(found)
    }

    /// Reads every record once with block checksums checked and without filling the
    /// cache, so a damaged table is found before the node serves from it; `progress`
    /// is called every 256 MiB read.
    pub fn verify(
        &self,
        progress: &mut dyn FnMut(VerifiedData),
    ) -> Result<VerifiedData, EngineError> {
        const PROGRESS_EVERY: u64 = 256 << 20;
        let mut seen = VerifiedData::default();
        let mut next_report = PROGRESS_EVERY;
        for family in [None, Some(self.log_family())] {
            let mut ro = ReadOptions::default();
            ro.set_verify_checksums(true);
            ro.fill_cache(false);
            let mut it = match family {
                Some(f) => self.db.raw_iterator_cf_opt(f, ro),
                None => self.db.raw_iterator_opt(ro),
            };
            it.seek_to_first();
            while it.valid() {
                let (Some(k), Some(v)) = (it.key(), it.value()) else {
                    break;
                };
                seen.records += 1;
                seen.bytes += (k.len() + v.len()) as u64;
                if seen.bytes >= next_report {
                    progress(seen);
                    next_report += PROGRESS_EVERY;
                }
                it.next();
            }
            it.status()?;
        }
        Ok(seen)
    }

    /// Makes every write made so far durable by syncing the write-ahead log.
    pub fn sync_wal(&self) -> Result<(), EngineError> {
        self.refuse_after_failure()?;
        crate::metrics::ENGINE_OPS.wal_syncs.inc();
        self.failed_on_disk(self.db.flush_wal(true))
    }

    /// Flushes memtables to SST files and stops RocksDB's background jobs (graceful
    /// shutdown): a process that exits while a flush or compaction thread still runs
    /// is aborted by the C++ runtime.
    pub fn flush(&self) -> Result<(), EngineError> {
        self.db.flush()?;
        self.db.flush_cf(self.log_family())?;
        self.db.cancel_all_background_work(true);
        Ok(())
    }

    /// A read view of the keys under `prefix`, with the prefix stripped.
    pub fn view(&self, prefix: Vec<u8>) -> PrefixView {
        PrefixView {
            engine: self.clone(),
            prefix,
        }
    }
}

/// Reads of one key space (a shard's state machine) inside the database.
#[derive(Clone)]
pub struct PrefixView {
    engine: Engine,
    prefix: Vec<u8>,
}

impl PrefixView {
    fn full(&self, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + key.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(key);
        k
    }

    /// The batch operation that writes `key` (relative to the prefix).
    pub fn op(&self, key: Vec<u8>, value: Option<Vec<u8>>) -> Op {
        match value {
            Some(v) => Op::Put(self.full(&key), v),
            None => Op::Delete(self.full(&key)),
        }
    }
}

fn storage(e: EngineError) -> StateError {
    StateError::Storage(e.message)
}

impl KvRead for PrefixView {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.engine.get(&self.full(key)).map_err(storage)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        let n = self.prefix.len();
        self.engine
            .scan(&self.full(start), &self.full(end), &mut |k, v| {
                visit(&k[n..], v)
            })
            .map_err(storage)
    }
}
