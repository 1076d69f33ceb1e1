//! Node-level group commit of Raft log appends.
//!
//! Every group writes its log entries without syncing (so they are readable at once, as
//! openraft requires) and queues its flush callback here. One thread repeatedly takes
//! everything queued, syncs the write-ahead log once, and completes all of it: one
//! fsync covers the appends of every shard made in the meantime. The WAL is sequential,
//! so a sync never makes a later append durable without the earlier ones.
//!
//! While syncs run back to back (the node is busy), the thread first waits up to a
//! short linger for more appends: on a 3-node ring sharing a 2-core machine, one sync
//! covered about two appends, and the disk's queue of small fsyncs left the cores
//! idle at times. A linger of 1 ms halved the syncs. An append that finds the
//! syncer idle is synced at once, so a quiet node's writes wait no longer than before.

use crate::engine::Engine;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// A syncer counts as busy while its last sync ended less than this many lingers ago.
const BUSY_WITHIN_LINGERS: u32 = 10;

/// How long a sync whose first request came at `now` waits for more: `linger` when
/// the previous sync ended less than [`BUSY_WITHIN_LINGERS`] lingers before (syncs
/// are running about back to back), nothing when the syncer was idle.
fn linger_for(now: Instant, last_sync_end: Option<Instant>, linger: Duration) -> Duration {
    match last_sync_end {
        Some(end) if now.saturating_duration_since(end) < linger * BUSY_WITHIN_LINGERS => linger,
        _ => Duration::ZERO,
    }
}

/// The flush callbacks of one sync: `first`, what is already queued, and what arrives
/// within `wait`; and whether the thread was asked to stop (which ends the wait).
fn collect(rx: &Receiver<Msg>, first: Msg, wait: Duration) -> (Vec<FlushDone>, bool) {
    let deadline = Instant::now() + wait;
    let (mut batch, mut stop) = (Vec::new(), false);
    let mut next = Some(first);
    while let Some(msg) = next.take() {
        match msg {
            Msg::Flush(done) => batch.push(done),
            Msg::Stop => stop = true,
        }
        next = if stop {
            rx.try_recv().ok()
        } else {
            rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()
        };
    }
    (batch, stop)
}

impl WalSyncer {
    /// Starts the syncer thread for `engine`, syncing as soon as anything is queued.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        Self::start_with_linger(engine, Duration::ZERO)
    }

    /// Starts the syncer thread for `engine`; while busy, each sync waits up to
    /// `linger` for more appends to cover.
    pub fn start_with_linger(engine: Engine, linger: Duration) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("kelemetry-wal-sync".into())
            .spawn(move || {
                let mut last_sync_end: Option<Instant> = None;
                while let Ok(first) = rx.recv() {
                    let wait = linger_for(Instant::now(), last_sync_end, linger);
                    let (batch, stop) = collect(&rx, first, wait);
                    let result = engine.sync_wal();
                    last_sync_end = Some(Instant::now());
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn only_a_syncer_that_just_synced_lingers() {
        let linger = Duration::from_millis(1);
        let now = Instant::now() + Duration::from_secs(1);
        assert_eq!(linger_for(now, None, linger), Duration::ZERO, "first sync");
        let just = now - Duration::from_millis(5);
        assert_eq!(linger_for(now, Some(just), linger), linger, "busy");
        let long_ago = now - Duration::from_millis(15);
        assert_eq!(
            linger_for(now, Some(long_ago), linger),
            Duration::ZERO,
            "idle"
        );
        assert_eq!(linger_for(now, Some(just), Duration::ZERO), Duration::ZERO);
    }

    /// Queues a flush and returns where its completion time arrives.
    fn flush(syncer: &WalSyncer) -> std::sync::mpsc::Receiver<(Instant, bool)> {
        let (tx, rx) = channel();
        syncer.after_next_sync(Box::new(move |r| {
            let _ = tx.send((Instant::now(), r.is_ok()));
        }));
        rx
    }

    #[test]
    fn an_idle_syncer_syncs_at_once_and_a_busy_one_covers_later_appends_too() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let linger = Duration::from_millis(400);
        let syncer = WalSyncer::start_with_linger(engine, linger).unwrap();

        let queued = Instant::now();
        let (done, ok) = flush(&syncer).recv().unwrap();
        assert!(ok);
        assert!(done - queued < linger / 2, "idle: {:?}", done - queued);

        // Right after a sync the syncer counts as busy: the next sync waits for more.
        let first = flush(&syncer);
        std::thread::sleep(Duration::from_millis(50));
        let second_queued = Instant::now();
        let second = flush(&syncer);
        let (first_done, first_ok) = first.recv().unwrap();
        let (second_done, second_ok) = second.recv().unwrap();
        assert!(first_ok && second_ok);
        assert!(
            first_done >= second_queued,
            "the lingering sync also covered the append queued 50 ms later"
        );
        assert!(second_done >= first_done);
        syncer.stop();
    }
}
