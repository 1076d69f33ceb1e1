//! Node-level group commit of Raft log appends.
//!
//! Every group writes its log entries without syncing (so they are readable at once, as
//! openraft requires) and queues its flush callback here. One thread repeatedly takes
//! everything queued, syncs the write-ahead log once, and completes all of it: one
//! fsync covers the appends of every shard made in the meantime. The WAL is sequential,
//! so a sync never makes a later append durable without the earlier ones.

use crate::engine::Engine;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A flush callback: called with the outcome of the sync that covered the append.
pub type FlushDone = Box<dyn FnOnce(std::io::Result<()>) + Send>;

enum Msg {
    Flush(FlushDone),
    Stop,
}

/// Handle to the syncer thread; cloned into every log store. The thread stops when
/// [`WalSyncer::stop`] is called or the last handle is dropped.
#[derive(Clone)]
pub struct WalSyncer {
    tx: Sender<Msg>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl WalSyncer {
    /// Starts the syncer thread for `engine`.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("kelemetry-wal-sync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = Vec::new();
                    let mut stop = false;
                    for msg in std::iter::once(first).chain(rx.try_iter()) {
                        match msg {
                            Msg::Flush(done) => batch.push(done),
                            Msg::Stop => stop = true,
                        }
                    }
                    let result = engine.sync_wal();
                    for done in batch {
                        done(
                            result
                                .as_ref()
                                .map(|_| ())
                                .map_err(|e| std::io::Error::other(e.to_string())),
                        );
                    }
                    if stop {
                        return;
                    }
                }
            })?;
        Ok(Self {
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Queues `done` to run after the next WAL sync, which covers every write that
    /// completed before this call.
    pub fn after_next_sync(&self, done: FlushDone) {
        if let Err(e) = self.tx.send(Msg::Flush(done)) {
            if let Msg::Flush(done) = e.0 {
                done(Err(std::io::Error::other("WAL syncer stopped")));
            }
        }
    }

    /// Syncs what is queued, stops the thread and waits for it: no RocksDB call may
    /// still be running when the process exits (the C++ runtime would crash).
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
        let handle = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}
