//! Node-level group commit of Raft log appends.
//!
//! Every group writes its log entries without syncing (so they are readable at once, as
//! openraft requires) and queues its flush callback here. One thread repeatedly takes
//! everything queued, syncs the write-ahead log once, and completes all of it: one
//! fsync covers the appends of every shard made in the meantime. The WAL is sequential,
//! so a sync never makes a later append durable without the earlier ones.

use crate::engine::Engine;
use std::sync::mpsc::{channel, Sender};

/// A flush callback: called with the outcome of the sync that covered the append.
pub type FlushDone = Box<dyn FnOnce(std::io::Result<()>) + Send>;

/// Handle to the syncer thread; cloned into every log store. The thread stops when
/// the last handle is dropped.
#[derive(Clone)]
pub struct WalSyncer {
    tx: Sender<FlushDone>,
}

impl WalSyncer {
    /// Starts the syncer thread for `engine`.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let (tx, rx) = channel::<FlushDone>();
        std::thread::Builder::new()
            .name("kelemetry-wal-sync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let result = engine.sync_wal();
                    for done in batch {
                        done(
                            result
                                .as_ref()
                                .map(|_| ())
                                .map_err(|e| std::io::Error::other(e.to_string())),
                        );
                    }
                }
            })?;
        Ok(Self { tx })
    }

    /// Queues `done` to run after the next WAL sync, which covers every write that
    /// completed before this call.
    pub fn after_next_sync(&self, done: FlushDone) {
        if let Err(e) = self.tx.send(done) {
            (e.0)(Err(std::io::Error::other("WAL syncer stopped")));
        }
    }
}
