//! How far each group's applied state is on disk.
//!
//! The state machine writes what it applies without RocksDB's write-ahead log: the
//! Raft log, synced on a quorum before an entry commits, already makes every applied
//! entry durable, and a restart re-applies each committed entry after the
//! `last_applied` it finds. Logging the applied state a second time cost about a
//! tenth of a replicated node's CPU. What a restart finds, though, is only what a
//! memtable flush wrote, so a group's log may be purged only up to the applied index
//! the last flush of the state covered; this module keeps, per group, the applied
//! index written to the memtable and the one the last flush made durable, and the
//! engine flushes before a purge that would otherwise outrun the disk.

use crate::keys::GroupId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often, at most, a background flush of the state runs after a purge (see
/// [`AppliedOnDisk::background_flush_due`]). A purge lags its group's applied index
/// by a thousand entries, so a flush this often has, in practice, covered it before
/// the purge comes and the purge does not wait.
pub const BACKGROUND_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Applied indexes written without the write-ahead log, and those on disk.
#[derive(Default)]
pub struct AppliedOnDisk {
    indexes: Mutex<Indexes>,
    /// Held while a flush of the state runs, so flushes do not pile up.
    flushing: Mutex<()>,
}

#[derive(Default)]
struct Indexes {
    /// Applied index of each group's last write without the log, in this process.
    written: HashMap<GroupId, u64>,
    /// Applied index of each group that the last completed flush covered.
    flushed: HashMap<GroupId, u64>,
    /// When the last flush started.
    last_flush: Option<Instant>,
}

impl AppliedOnDisk {
    /// Records that `group`'s state through log index `applied` was written to the
    /// memtable without the log. Called after the write returns, so a flush started
    /// later covers it.
    pub fn written(&self, group: GroupId, applied: u64) {
        raise(&mut self.lock().written, group, applied);
    }

    /// Forgets `group`: its state was just replaced or deleted by a logged write (a
    /// replica removed, a snapshot installed). A replica opened again applies from
    /// the start of its leader's log, so an index a flush covered before says
    /// nothing about what the new state has on disk.
    pub fn forget(&self, group: GroupId) {
        let mut indexes = self.lock();
        indexes.written.remove(&group);
        indexes.flushed.remove(&group);
    }

    /// Whether `group`'s state through `index` may be missing after a crash: some of
    /// it was written without the log in this process and no flush covered it yet.
    /// A group with nothing written that way has everything it applied on disk.
    pub fn needs_flush(&self, group: GroupId, index: u64) -> bool {
        let indexes = self.lock();
        indexes.written.contains_key(&group) && indexes.uncovered(group, index)
    }

    /// Whether a background flush is worth starting now: something was written
    /// since the last flush covered it, and the last flush started at least
    /// [`BACKGROUND_FLUSH_INTERVAL`] ago.
    pub fn background_flush_due(&self) -> bool {
        let indexes = self.lock();
        let recent = indexes
            .last_flush
            .is_some_and(|t| t.elapsed() < BACKGROUND_FLUSH_INTERVAL);
        let unflushed = indexes
            .written
            .iter()
            .any(|(&g, &w)| indexes.uncovered(g, w));
        unflushed && !recent
    }

    /// Runs `flush` (which writes the state's memtable to disk) as the one flush in
    /// progress, and records what it covered: every index written before it
    /// started. Returns `flush`'s result.
    pub fn flush_with<E>(&self, flush: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        let _one_at_a_time = self.flushing.lock().unwrap_or_else(|p| p.into_inner());
        let covered = {
            let mut indexes = self.lock();
            indexes.last_flush = Some(Instant::now());
            indexes.written.clone()
        };
        flush()?;
        let flushed = &mut self.lock().flushed;
        for (group, index) in covered {
            raise(flushed, group, index);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Indexes> {
        self.indexes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Indexes {
    /// Whether the last flush left `group`'s state through `index` off the disk.
    fn uncovered(&self, group: GroupId, index: u64) -> bool {
        self.flushed.get(&group).is_none_or(|&f| f < index)
    }
}

/// Raises `group`'s index in `map` to `index` (indexes only grow).
fn raise(map: &mut HashMap<GroupId, u64>, group: GroupId, index: u64) {
    let entry = map.entry(group).or_default();
    *entry = (*entry).max(index);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_needs_a_flush_only_for_what_it_wrote_since_the_last_one() {
        let on_disk = AppliedOnDisk::default();
        assert!(
            !on_disk.needs_flush(1, 10),
            "nothing written without the log"
        );
        on_disk.written(1, 10);
        assert!(on_disk.needs_flush(1, 5));
        on_disk.flush_with(|| Ok::<_, ()>(())).unwrap();
        assert!(!on_disk.needs_flush(1, 10));
        on_disk.written(1, 20);
        assert!(!on_disk.needs_flush(1, 10), "index 10 was covered");
        assert!(on_disk.needs_flush(1, 15));
        assert!(!on_disk.needs_flush(2, 15), "another group wrote nothing");
    }

    #[test]
    fn a_replaced_state_is_not_covered_by_a_flush_of_the_one_before() {
        let on_disk = AppliedOnDisk::default();
        on_disk.written(1, 1_100);
        on_disk.flush_with(|| Ok::<_, ()>(())).unwrap();
        on_disk.forget(1);
        on_disk.written(1, 1_007);
        assert!(
            on_disk.needs_flush(1, 7),
            "the new replica applied from index 0 again; nothing of it is on disk"
        );
    }

    #[test]
    fn a_failed_flush_covers_nothing() {
        let on_disk = AppliedOnDisk::default();
        on_disk.written(3, 7);
        assert_eq!(on_disk.flush_with(|| Err("disk full")), Err("disk full"));
        assert!(on_disk.needs_flush(3, 7));
    }

    #[test]
    fn a_background_flush_is_due_once_per_interval_and_only_with_news() {
        let on_disk = AppliedOnDisk::default();
        assert!(!on_disk.background_flush_due(), "nothing written");
        on_disk.written(1, 1);
        assert!(on_disk.background_flush_due());
        on_disk.flush_with(|| Ok::<_, ()>(())).unwrap();
        on_disk.written(1, 2);
        assert!(
            !on_disk.background_flush_due(),
            "the last flush started under an interval ago"
        );
    }

    #[test]
    fn writes_made_during_a_flush_are_not_counted_as_covered() {
        let on_disk = AppliedOnDisk::default();
        on_disk.written(1, 5);
        on_disk
            .flush_with(|| {
                on_disk.written(1, 9);
                Ok::<_, ()>(())
            })
            .unwrap();
        assert!(!on_disk.needs_flush(1, 5));
        assert!(on_disk.needs_flush(1, 9));
    }
}
