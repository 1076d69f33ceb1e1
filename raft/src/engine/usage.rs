//! What the database holds and owes now, for `/metrics`: its memory by part, its table
//! files and compaction debt by column family, and the background jobs running.

use super::Engine;
use rocksdb::ColumnFamily;

/// What RocksDB holds in memory now, for `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineMemoryUse {
    /// Bytes in the block cache.
    pub block_cache_bytes: usize,
    /// Bytes in memtables: active, being flushed, and flushed ones still pinned by
    /// open iterators.
    pub memtable_bytes: usize,
    /// Bytes of open tables' index and filter blocks held outside the block cache
    /// (zero when they are charged to the cache).
    pub table_reader_bytes: usize,
}

/// The table files of one column family and the compaction work still owed on them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FamilyTables {
    /// Bytes of the live table files.
    pub live_bytes: u64,
    /// RocksDB's estimate of the bytes compactions must still rewrite to bring every
    /// level within its target: the debt a grown store pays off while it ingests, and
    /// what makes one minute of ingest on it slower than the next.
    pub pending_compaction_bytes: u64,
}

/// Table files and background work of the whole database, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineTables {
    /// The applied state's column family.
    pub state: FamilyTables,
    /// The Raft log's column family.
    pub log: FamilyTables,
    /// Compactions running now.
    pub running_compactions: u64,
    /// Memtable flushes running now.
    pub running_flushes: u64,
}

impl Engine {
    /// RocksDB's integer property `name` of one column family (`None`: the state's),
    /// 0 when it is not known.
    fn int_property(&self, family: Option<&ColumnFamily>, name: &str) -> u64 {
        let value = match family {
            None => self.db.property_int_value(name),
            Some(cf) => self.db.property_int_value_cf(cf, name),
        };
        value.ok().flatten().unwrap_or(0)
    }

    /// What RocksDB holds in memory now.
    pub fn memory_use(&self) -> EngineMemoryUse {
        let both = |name: &str| {
            (self.int_property(None, name) + self.int_property(Some(self.log_family()), name))
                as usize
        };
        EngineMemoryUse {
            block_cache_bytes: self.cache.get_usage(),
            memtable_bytes: both("rocksdb.size-all-mem-tables"),
            table_reader_bytes: both("rocksdb.estimate-table-readers-mem"),
        }
    }

    /// The table files of each column family, the compaction debt on them and the
    /// background jobs running now.
    pub fn tables(&self) -> EngineTables {
        let family = |cf: Option<&ColumnFamily>| FamilyTables {
            live_bytes: self.int_property(cf, "rocksdb.live-sst-files-size"),
            pending_compaction_bytes: self
                .int_property(cf, "rocksdb.estimate-pending-compaction-bytes"),
        };
        EngineTables {
            state: family(None),
            log: family(Some(self.log_family())),
            running_compactions: self.int_property(None, "rocksdb.num-running-compactions"),
            running_flushes: self.int_property(None, "rocksdb.num-running-flushes"),
        }
    }
}
