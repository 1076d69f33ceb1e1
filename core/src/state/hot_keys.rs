//! The few records every apply of a shard reads, kept in memory between applies.
//!
//! Each proposal reads the outbox counters, the window-layout marker and the cluster
//! marker of its events before writing anything: a handful of keys that exist once
//! per shard, are read by every apply and change rarely. From RocksDB each such read
//! searches the memtables and every level (3 to 4% of a loaded ring's CPU). Served
//! from here they are a hash lookup.
//!
//! The cache holds exactly what the store holds for those keys: it is filled by reads
//! of the store and updated only with writes that were committed to it. Whatever
//! else replaces a shard's records (a snapshot install) clears it.

use super::kv::{KvRead, StateError, WriteOp};
use super::schema;
use std::cell::RefCell;
use std::collections::HashMap;

/// Most keys remembered per shard; a store with more cluster names than this reads
/// the rest from the store as before.
pub const MAX_HOT_KEYS: usize = 256;

/// Whether `key` is one of the per-shard records every apply reads: counters and
/// markers (`m`) and cluster names (`c`).
fn is_hot(key: &[u8]) -> bool {
    matches!(key.first(), Some(&schema::META) | Some(&schema::CLUSTER))
}

/// A shard's hot records as the store holds them (`None`: known to be absent).
#[derive(Default)]
pub struct HotKeys {
    values: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

impl HotKeys {
    /// Forgets everything (the shard's records were replaced).
    pub fn clear(&mut self) {
        self.values.clear();
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn remember(&mut self, key: &[u8], value: Option<Vec<u8>>) {
        if let Some(known) = self.values.get_mut(key) {
            *known = value;
        } else if self.values.len() < MAX_HOT_KEYS {
            self.values.insert(key.to_vec(), value);
        }
    }

    /// The hot keys among `writes`, to pass to [`HotKeys::committed`] once the
    /// batch holding `writes` is in the store.
    pub fn hot_writes(writes: &[WriteOp]) -> Vec<WriteOp> {
        writes.iter().filter(|(k, _)| is_hot(k)).cloned().collect()
    }

    /// Records writes that are now in the store.
    pub fn committed(&mut self, writes: Vec<WriteOp>) {
        for (key, value) in writes {
            self.remember(&key, value);
        }
    }
}

/// Reads of a shard's store with its hot records served from (and remembered in)
/// [`HotKeys`]; every other read goes to the store.
pub struct HotView<'a> {
    base: &'a dyn KvRead,
    hot: RefCell<&'a mut HotKeys>,
}

impl<'a> HotView<'a> {
    /// Reads of `base` through `hot`.
    pub fn new(base: &'a dyn KvRead, hot: &'a mut HotKeys) -> Self {
        Self {
            base,
            hot: RefCell::new(hot),
        }
    }
}

impl KvRead for HotView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if !is_hot(key) {
            return self.base.get(key);
        }
        if let Some(known) = self.hot.borrow().values.get(key) {
            return Ok(known.clone());
        }
        let value = self.base.get(key)?;
        self.hot.borrow_mut().remember(key, value.clone());
        Ok(value)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        self.base.scan(start, end, visit)
    }
}
