//! Leader hints: the last leader each shard was learned to have.

use crate::types::NodeId;
use std::collections::HashMap;
use std::sync::Mutex;

/// The last leader each shard was learned to have, from redirects and successful
/// forwards. A hint can be wrong; whoever follows one drops it when it fails.
#[derive(Default)]
pub struct LeaderHints(Mutex<HashMap<u32, NodeId>>);

impl LeaderHints {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u32, NodeId>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, shard: u32) -> Option<NodeId> {
        self.map().get(&shard).copied()
    }

    pub(crate) fn set(&self, shard: u32, leader: NodeId) {
        self.map().insert(shard, leader);
    }

    pub(crate) fn clear(&self, shard: u32) {
        self.map().remove(&shard);
    }
}
