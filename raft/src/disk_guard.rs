//! Free space on the data directory's filesystem, watched. RocksDB that runs out of
//! space mid-write stops taking writes until it is reopened, and an openraft log
//! write that fails stops its group for good (the node then stops, see
//! [`crate::storage_fault`]); so a node refuses new work well before that point. Below `--min-free-disk` it refuses writes (503), and its
//! replicas refuse entries and snapshots from their leaders (which go on with the
//! rest of the quorum and catch this replica up later); reads are served
//! throughout. Once a tenth more than the minimum is free again, it takes writes
//! again by itself.

use prometheus::{register_int_gauge, IntGauge};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// How often free space is measured.
const CHECK_EVERY: Duration = Duration::from_secs(1);

static FREE_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "kelemetry_disk_free_bytes",
        "Bytes free for this node on the data directory's filesystem."
    )
    .expect("metric names are unique")
});

static LOW: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "kelemetry_disk_low",
        "1 while free space is below --min-free-disk and writes are refused."
    )
    .expect("metric names are unique")
});

/// The free-space watch of one data directory.
pub struct DiskGuard {
    dir: PathBuf,
    min_free: u64,
    free: AtomicU64,
    low: AtomicBool,
}

impl DiskGuard {
    /// A guard over `dir` that reports low space below `min_free` bytes (0: never),
    /// measured once now.
    pub fn new(dir: &Path, min_free: u64) -> Arc<Self> {
        let guard = Arc::new(Self {
            dir: dir.to_path_buf(),
            min_free,
            free: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
        });
        guard.check();
        guard
    }

    /// Whether free space is below the minimum (writes are refused).
    pub fn low(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    /// Bytes free at the last measurement.
    pub fn free_bytes(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// The minimum free space, in bytes.
    pub fn min_free_bytes(&self) -> u64 {
        self.min_free
    }

    /// Why writes are refused right now, if they are.
    pub fn refusal(&self) -> Option<String> {
        self.low().then(|| {
            format!(
                "the data directory's disk is almost full ({} MiB free, --min-free-disk {} MiB); writes resume when space is freed",
                self.free_bytes() >> 20,
                self.min_free >> 20
            )
        })
    }

    /// Measures every [`CHECK_EVERY`] while the guard is alive.
    pub fn spawn_watch(self: &Arc<Self>) {
        let guard = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                let Some(g) = guard.upgrade() else { return };
                g.check();
            }
        });
    }

    fn check(&self) {
        let free = match free_space(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot measure free disk space");
                return;
            }
        };
        self.free.store(free, Ordering::Relaxed);
        FREE_BYTES.set(i64::try_from(free).unwrap_or(i64::MAX));
        let was_low = self.low();
        let low = if was_low {
            free < self.min_free + self.min_free / 10
        } else {
            free < self.min_free
        };
        LOW.set(i64::from(low));
        if low != was_low {
            self.low.store(low, Ordering::Relaxed);
            if low {
                tracing::error!(free_mib = free >> 20, min_free_mib = self.min_free >> 20, dir = %self.dir.display(),
                    "disk almost full: refusing writes and replicated entries until space is freed");
            } else {
                tracing::info!(
                    free_mib = free >> 20,
                    "disk space is back: taking writes again"
                );
            }
        }
    }
}

/// Bytes available to this (unprivileged) process on the filesystem of `dir`.
pub(crate) fn free_space(dir: &Path) -> std::io::Result<u64> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `st` a writable statvfs that
    // outlives the call.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimum_above_the_free_space_is_low_and_zero_never_is() {
        let dir = tempfile::tempdir().unwrap();
        let never = DiskGuard::new(dir.path(), 0);
        assert!(!never.low());
        assert!(never.free_bytes() > 0 && never.free_bytes() < u64::MAX);
        let always = DiskGuard::new(dir.path(), u64::MAX / 2);
        assert!(always.low());
        assert!(always.refusal().unwrap().contains("--min-free-disk"));
    }
}
