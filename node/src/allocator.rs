//! The process-wide allocator of every binary that hosts a node.
//!
//! jemalloc replaces `malloc` for the whole process (Rust code and RocksDB's C++
//! alike), so one allocator serves every thread and returns freed memory to the
//! system on a schedule instead of keeping it per thread or per arena. Measured
//! against mimalloc (Rust only, glibc's malloc under RocksDB) at the same ingest rate
//! (about 12,000 events/s on one node): about 50 MiB less resident memory at every
//! point of a run, and 265-276 MiB instead of 307-389 MiB under the overload bench.

pub use tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once when it initialises: a background thread purges
/// freed pages, dirty pages are returned after one second instead of ten, and no
/// pages linger in the lazily-freed ("muzzy") state, so resident memory follows the
/// live heap within about a second after a burst (an overload, a compaction).
pub const MALLOC_CONF: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Installs jemalloc as the global allocator of the binary that expands it, with
/// [`MALLOC_CONF`] as its options. One expansion per binary, at its crate root.
#[macro_export]
macro_rules! node_allocator {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::allocator::Jemalloc = $crate::allocator::Jemalloc;

        /// jemalloc looks this symbol up at start-up for its options.
        #[allow(non_upper_case_globals)]
        #[export_name = "malloc_conf"]
        static malloc_conf: $crate::allocator::ConfPointer =
            $crate::allocator::ConfPointer($crate::allocator::MALLOC_CONF.as_ptr());
    };
}

/// A pointer to a NUL-terminated C string that may live in a `static`: jemalloc reads
/// `malloc_conf` as a `const char *`.
#[repr(transparent)]
pub struct ConfPointer(pub *const u8);

// SAFETY: the pointer is to a constant byte string that is never written.
unsafe impl Sync for ConfPointer {}
