//! The storage interface the state machine needs, and a write overlay that lets later
//! commands of a batch see the writes of earlier ones before anything is committed.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

/// A failure of the storage under the state machine, or a record that cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The storage engine failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A stored record does not decode.
    #[error("corrupt record at {key}: {message}")]
    Corrupt {
        /// The key, printed lossily.
        key: String,
        /// Decoder message.
        message: String,
    },
}

/// Ordered reads of one shard's key space.
pub trait KvRead {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError>;

    /// Visits entries with `start <= key < end` in key order until `visit` returns false.
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError>;
}

/// One change to commit: a put (`Some`) or a delete (`None`).
pub type WriteOp = (Vec<u8>, Option<Vec<u8>>);

/// Most bytes of keys and values one overlay remembers of the base's answers; reads
/// past it go to the base every time.
const REMEMBERED_READ_BYTES: usize = 4 << 20;

/// Pending writes in front of a read-only base, which also remembers what the base
/// answered: the base does not change under a batch, and the commands of one batch
/// often read the same record (every link to one owner reads the owner's span).
pub struct Overlay<'a> {
    base: &'a dyn KvRead,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    read: RefCell<RememberedReads>,
}

/// The base's answers to an overlay's reads, within [`REMEMBERED_READ_BYTES`].
#[derive(Default)]
struct RememberedReads {
    values: HashMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
}

impl<'a> Overlay<'a> {
    /// An overlay with no writes yet.
    pub fn new(base: &'a dyn KvRead) -> Self {
        Self {
            base,
            writes: BTreeMap::new(),
            read: RefCell::default(),
        }
    }

    /// The base's value at `key`, whatever this batch wrote there.
    fn stored_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(known) = self.read.borrow().values.get(key) {
            return Ok(known.clone());
        }
        let value = self.base.get(key)?;
        let mut read = self.read.borrow_mut();
        let size = key.len() + value.as_ref().map_or(0, Vec::len);
        if read.bytes + size <= REMEMBERED_READ_BYTES {
            read.bytes += size;
            read.values.insert(key.to_vec(), value.clone());
        }
        Ok(value)
    }

    /// Whether the base holds `key`, whatever this batch wrote there.
    pub fn stored(&self, key: &[u8]) -> Result<bool, StateError> {
        self.stored_value(key).map(|v| v.is_some())
    }

    /// Whether this batch has put `key` (and not deleted it since).
    pub fn written(&self, key: &[u8]) -> bool {
        matches!(self.writes.get(key), Some(Some(_)))
    }

    /// Records a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Records a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// The accumulated writes in key order.
    pub fn into_writes(self) -> Vec<WriteOp> {
        self.writes.into_iter().collect()
    }
}

impl KvRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.stored_value(key),
        }
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        let mut pending = self
            .writes
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .peekable();
        let mut go = true;
        self.base.scan(start, end, &mut |k, v| {
            while let Some((wk, wv)) = pending.next_if(|(wk, _)| wk.as_slice() < k) {
                if let Some(wv) = wv {
                    if !visit(wk, wv) {
                        go = false;
                        return false;
                    }
                }
            }
            let value = match pending.next_if(|(wk, _)| wk.as_slice() == k) {
                Some((_, w)) => w.as_deref(),
                None => Some(v),
            };
            if let Some(value) = value {
                if !visit(k, value) {
                    go = false;
                    return false;
                }
            }
            true
        })?;
        if go {
            for (wk, wv) in pending {
                if let Some(wv) = wv {
                    if !visit(wk, wv) {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// An in-memory store, for tests and for building expected states.
#[derive(Default, Debug, Clone)]
pub struct MemKv(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl MemKv {
    /// Applies committed writes.
    pub fn commit(&mut self, writes: Vec<WriteOp>) {
        for (k, v) in writes {
            match v {
                Some(v) => self.0.insert(k, v),
                None => self.0.remove(&k),
            };
        }
    }
}

impl KvRead for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        for (k, v) in self
            .0
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
        {
            if !visit(k, v) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_scan_merges_puts_and_hides_deletes() {
        let mut base = MemKv::default();
        for k in ["a", "c", "e"] {
            base.0.insert(k.into(), b"base".to_vec());
        }
        let mut o = Overlay::new(&base);
        o.put(b"b".to_vec(), b"new".to_vec());
        o.delete(b"c".to_vec());
        o.put(b"e".to_vec(), b"new".to_vec());
        o.put(b"f".to_vec(), b"new".to_vec());
        let mut seen = Vec::new();
        o.scan(b"a", b"z", &mut |k, v| {
            seen.push(format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            ));
            true
        })
        .unwrap();
        assert_eq!(seen, ["a=base", "b=new", "e=new", "f=new"]);
        let mut first_two = 0;
        o.scan(b"a", b"z", &mut |_, _| {
            first_two += 1;
            first_two < 2
        })
        .unwrap();
        assert_eq!(first_two, 2);
    }
}
