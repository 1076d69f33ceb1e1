//! The last entries a group appended to its log, kept in memory as they were appended.
//!
//! A leader reads every entry back from the log to send it to its followers, usually
//! right after appending it. From RocksDB that read is an iterator seek across the
//! memtables and every level (7% of a 3-node ring's CPU under load); decoding a copy
//! kept encoded was still 2% of it. Entries share their proposal (an `Arc`), so here
//! a read is a reference count per entry. The cache holds a contiguous run of the
//! newest entries within a budget of their encoded bytes, so it is always either
//! exactly what the log holds for an index or absent.

use crate::metrics::RECENT_ENTRY_BYTES_HELD;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// The default budget of one group's run, in encoded bytes (`--raft-recent-entries-kib`).
/// Entries are held decoded, about four times their encoded size, and every replica
/// keeps its run (a follower may lead next), so 64 groups hold up to about 16 MiB.
/// Followers read what their leader just appended, so a short run serves nearly
/// every read: on a loaded 3-node ring 64 KiB served all but 0.1-0.3% of them from
/// memory, and cost 60 MiB less resident memory on one node than 256 KiB.
pub const DEFAULT_RECENT_ENTRY_BYTES: usize = 64 << 10;

/// A group's newest log entries (`T`: an entry, cheap to clone); shared by its log
/// store and log readers.
#[derive(Clone)]
pub struct RecentEntries<T> {
    run: Arc<Mutex<Run<T>>>,
}

impl<T> RecentEntries<T> {
    /// An empty run that keeps at most `capacity` encoded bytes of entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            run: Arc::new(Mutex::new(Run {
                entries: VecDeque::new(),
                bytes: 0,
                capacity,
            })),
        }
    }
}

impl<T> Default for RecentEntries<T> {
    fn default() -> Self {
        Self::new(DEFAULT_RECENT_ENTRY_BYTES)
    }
}

/// One kept entry: its index, the entry and its encoded size.
type Kept<T> = (u64, T, usize);

struct Run<T> {
    /// Consecutive indexes, oldest first.
    entries: VecDeque<Kept<T>>,
    /// Encoded bytes of `entries`.
    bytes: usize,
    /// Most encoded bytes `entries` may hold.
    capacity: usize,
}

impl<T> Run<T> {
    fn push_back(&mut self, kept: Kept<T>) {
        self.bytes += kept.2;
        RECENT_ENTRY_BYTES_HELD.add(kept.2 as i64);
        self.entries.push_back(kept);
    }

    fn forget(&mut self, kept: Option<Kept<T>>) {
        if let Some((_, _, len)) = kept {
            self.bytes -= len;
            RECENT_ENTRY_BYTES_HELD.sub(len as i64);
        }
    }

    fn pop_back_from(&mut self, index: u64) {
        while self.entries.back().is_some_and(|(i, _, _)| *i >= index) {
            let kept = self.entries.pop_back();
            self.forget(kept);
        }
    }

    fn pop_front(&mut self) {
        let kept = self.entries.pop_front();
        self.forget(kept);
    }

    fn clear(&mut self) {
        RECENT_ENTRY_BYTES_HELD.sub(self.bytes as i64);
        self.entries.clear();
        self.bytes = 0;
    }
}

impl<T> Drop for Run<T> {
    /// A removed replica's run leaves the node-wide gauge with it.
    fn drop(&mut self) {
        self.clear();
    }
}

impl<T: Clone> RecentEntries<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Run<T>> {
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records entries just written to the log (`(index, entry, encoded size)`,
    /// ascending). Entries at or after the first one replace what the run held
    /// there; a run that would not be consecutive starts over.
    pub fn appended(&self, entries: impl IntoIterator<Item = Kept<T>>) {
        let mut run = self.lock();
        for (index, entry, len) in entries {
            run.pop_back_from(index);
            let gap = run.entries.back().is_some_and(|(i, _, _)| *i + 1 != index);
            // An entry too big to keep is left out, and the run restarts after it.
            let too_big = len > run.capacity;
            if gap || too_big {
                run.clear();
            }
            if too_big {
                continue;
            }
            run.push_back((index, entry, len));
            while run.bytes > run.capacity {
                run.pop_front();
            }
        }
    }

    /// Forgets entries from `index` on (the log is being truncated there).
    pub fn truncated(&self, index: u64) {
        self.lock().pop_back_from(index);
    }

    /// Forgets entries up to and including `index` (the log is being purged).
    pub fn purged(&self, index: u64) {
        let mut run = self.lock();
        while run.entries.front().is_some_and(|(i, _, _)| *i <= index) {
            run.pop_front();
        }
    }

    /// The entries `start..end` if the run holds every one of them; `None` when it
    /// does not (the caller reads the log).
    pub fn get(&self, start: u64, end: u64) -> Option<Vec<T>> {
        let run = self.lock();
        let first = run.entries.front()?.0;
        let last = run.entries.back()?.0;
        if start >= end || start < first || end - 1 > last {
            return None;
        }
        let skip = (start - first) as usize;
        let take = (end - start) as usize;
        Some(
            run.entries
                .iter()
                .skip(skip)
                .take(take)
                .map(|(_, e, _)| e.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entry `i` of `len` encoded bytes; the entry is its own index.
    fn entry(i: u64, len: usize) -> Kept<u64> {
        (i, i, len)
    }

    #[test]
    fn serves_only_ranges_it_holds_whole() {
        let r = RecentEntries::default();
        r.appended((5..10).map(|i| entry(i, 16)));
        assert_eq!(r.get(5, 10), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(r.get(7, 9), Some(vec![7, 8]));
        assert_eq!(r.get(4, 9), None);
        assert_eq!(r.get(8, 11), None);
        assert_eq!(r.get(8, 8), None);
    }

    #[test]
    fn truncation_and_overwrites_replace_the_tail() {
        let r = RecentEntries::default();
        r.appended((1..=6).map(|i| entry(i, 16)));
        r.truncated(4);
        assert_eq!(r.get(1, 4), Some(vec![1, 2, 3]));
        assert_eq!(r.get(1, 5), None);
        // An append over existing indexes replaces them.
        r.appended([entry(3, 16), entry(4, 16)]);
        assert_eq!(r.get(1, 5), Some(vec![1, 2, 3, 4]));
        // A gap starts the run over.
        r.appended([entry(9, 16)]);
        assert_eq!(r.get(1, 5), None);
        assert_eq!(r.get(9, 10), Some(vec![9]));
    }

    #[test]
    fn purging_and_the_byte_budget_drop_the_oldest() {
        let r = RecentEntries::default();
        r.appended((1..=4).map(|i| entry(i, 16)));
        r.purged(2);
        assert_eq!(r.get(2, 4), None);
        assert_eq!(r.get(3, 5), Some(vec![3, 4]));
        let big = DEFAULT_RECENT_ENTRY_BYTES / 3;
        r.appended((5..=8).map(|i| entry(i, big)));
        assert_eq!(r.get(6, 9), Some(vec![6, 7, 8]));
        assert_eq!(r.get(5, 9), None);
        // An entry larger than the budget is not kept, and the run restarts after it.
        r.appended([entry(9, DEFAULT_RECENT_ENTRY_BYTES + 1), entry(10, 16)]);
        assert_eq!(r.get(9, 11), None);
        assert_eq!(r.get(10, 11), Some(vec![10]));
    }
}
