//! How RocksDB is set up for this workload: the memory it may use, its tables,
//! compression, memtables and recovery, for the state and for the Raft log.

use rocksdb::{BlockBasedIndexType, BlockBasedOptions, Cache, DBRecoveryMode, Options};

/// The memory RocksDB may use: one block cache of a fixed capacity, and memtables of a
/// fixed total. With `cache_index_and_filter_blocks` (the default) the tables' index
/// and filter blocks are partitioned and charged to the block cache too, so memory
/// stays flat as data grows; off, every open table keeps them in memory beside it.
#[derive(Clone, Copy, Debug)]
pub struct EngineMemory {
    /// Capacity of the block cache, bytes.
    pub block_cache_bytes: usize,
    /// Size of one memtable, bytes; at most two are kept (one being flushed).
    pub write_buffer_bytes: usize,
    /// Whether index and filter blocks are held in (and bounded by) the block cache.
    pub cache_index_and_filter_blocks: bool,
}

impl Default for EngineMemory {
    fn default() -> Self {
        Self {
            block_cache_bytes: 32 << 20,
            write_buffer_bytes: 32 << 20,
            cache_index_and_filter_blocks: true,
        }
    }
}

/// The options of the state's column family (the database's own) and of the log's,
/// within `memory`, both caching their tables in `cache`.
pub(super) fn database_options(memory: EngineMemory, cache: &Cache) -> (Options, Options) {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    if memory.cache_index_and_filter_blocks {
        // Partitioned: only each table's small top-level index stays pinned; the
        // 4 KiB index and filter partitions come and go through the cache, so a
        // lookup never loads a whole table's filter into a full cache.
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_top_level_index_and_filter(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
        table.set_partition_filters(true);
        table.set_metadata_block_size(4096);
        table.set_format_version(5);
    }
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.increase_parallelism(2);
    opts.set_max_background_jobs(2);
    opts.set_block_based_table_factory(&table);
    // Most bytes written are Raft log entries and fresh state that the first
    // compactions rewrite or drop; compressing them with snappy at every level
    // was 8% of the CPU of a node holding 4 million events. The top two levels
    // stay uncompressed, and LZ4 (cheaper than snappy) compresses the rest.
    opts.set_compression_per_level(&[
        rocksdb::DBCompressionType::None,
        rocksdb::DBCompressionType::None,
        rocksdb::DBCompressionType::Lz4,
        rocksdb::DBCompressionType::Lz4,
        rocksdb::DBCompressionType::Lz4,
        rocksdb::DBCompressionType::Lz4,
        rocksdb::DBCompressionType::Lz4,
    ]);
    opts.set_write_buffer_size(memory.write_buffer_bytes);
    opts.set_max_write_buffer_number(2);
    opts.set_db_write_buffer_size(memory.write_buffer_bytes * 2);
    // A bloom filter over the memtable's keys: most point reads of the write path
    // look for keys that do not exist yet (dedupe markers, first spans of a
    // window) and would otherwise walk the whole skiplist.
    opts.set_memtable_prefix_bloom_ratio(0.05);
    opts.set_memtable_whole_key_filtering(true);
    // A torn last record is what a crash leaves of a write that was never synced,
    // and nothing acknowledged depends on it. A damaged record before the tail is
    // a damaged disk: opening fails with a corruption error instead of silently
    // dropping every synced write after it (RocksDB's default, point-in-time).
    opts.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
    opts.set_paranoid_checks(true);
    // RocksDB's own text log (LOG) lives on the data disk. On a disk full to
    // the last byte, Debian's build aborts the process on the second write to
    // a log file that already failed once, before a refused write reaches the
    // node; kept to fatal messages (and the options header at open), the LOG is
    // not written while the node runs. The node logs RocksDB's errors itself.
    opts.set_log_level(rocksdb::LogLevel::Fatal);
    opts.set_keep_log_file_num(4);
    let log_opts = log_family_options(&opts, cache);
    (opts, log_opts)
}

/// Options of the log column family: the database's, but never compressed and without
/// bloom filters (the log is only read by ranges), its tables cached in the same block
/// cache.
fn log_family_options(base: &Options, cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table.set_format_version(5);
    let mut opts = base.clone();
    opts.set_block_based_table_factory(&table);
    opts.set_compression_type(rocksdb::DBCompressionType::None);
    opts.set_compression_per_level(&[]);
    opts.set_memtable_prefix_bloom_ratio(0.0);
    opts.set_memtable_whole_key_filtering(false);
    opts
}
