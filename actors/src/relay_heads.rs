//! Where each shard's outbox relay resumes reading: past the entries this node saw
//! acknowledged.
//!
//! An acknowledged entry is deleted, but its deletion stays in RocksDB's memtables and
//! upper levels until a compaction drops it, so a relay that read each outbox from its
//! start stepped over every entry acknowledged since: under steady load that was most
//! of the relay's CPU. Sequence numbers only grow (every replica assigns them alike in
//! apply) and an acknowledged entry never comes back, so the first sequence number
//! after the last acknowledged one stays a valid place to start, whichever node leads
//! the shard later. A node that never relayed a shard starts from the beginning.

use kelemetry_core::outbox::OutboxKind;
use std::collections::HashMap;
use std::sync::Mutex;

/// The first sequence number per shard and outbox kind that this node has not seen
/// acknowledged.
#[derive(Default)]
pub struct RelayHeads {
    heads: Mutex<HashMap<(u32, OutboxKind), u64>>,
}

impl RelayHeads {
    /// Where a round of `shard`'s `kind` entries starts reading.
    pub fn start(&self, shard: u32, kind: OutboxKind) -> u64 {
        self.heads
            .lock()
            .map_or(0, |h| h.get(&(shard, kind)).copied().unwrap_or(0))
    }

    /// Records that every entry of `shard`'s `kind` up to `seq` is acknowledged (a
    /// round acknowledges a prefix of what is waiting: everything it read).
    pub fn acknowledged(&self, shard: u32, kind: OutboxKind, seq: u64) {
        if let Ok(mut h) = self.heads.lock() {
            let head = h.entry((shard, kind)).or_default();
            *head = (*head).max(seq.saturating_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_only_move_forward_and_apart_per_shard_and_kind() {
        let heads = RelayHeads::default();
        assert_eq!(heads.start(3, OutboxKind::Link), 0);
        heads.acknowledged(3, OutboxKind::Link, 9);
        heads.acknowledged(3, OutboxKind::Link, 4);
        assert_eq!(heads.start(3, OutboxKind::Link), 10);
        assert_eq!(heads.start(3, OutboxKind::Export), 0);
        assert_eq!(heads.start(4, OutboxKind::Link), 0);
    }
}
