//! The first storage failure the node cannot go on from, recorded by the engine.
//!
//! A write RocksDB refuses (its disk full to the last byte before the free-space
//! check noticed, an I/O error) leaves it refusing every later write until it is
//! reopened, and openraft stops a group for good on a failed log write or apply.
//! A read that finds a damaged block means the files cannot be trusted. In either
//! case the process cannot heal in place: the node installs a handler that stops
//! it, called on the thread that met the failure before the error goes further,
//! so its supervisor restarts it and the start-up path (which reopens RocksDB,
//! and rebuilds a damaged replica from its peers) takes over. Nothing
//! acknowledged is at risk: an acknowledgement follows a synced write.

use std::sync::OnceLock;

/// A storage failure that stops the node.
#[derive(Clone, Debug)]
pub struct StorageFailure {
    /// What failed, as RocksDB said it.
    pub message: String,
    /// Whether the files are damaged (their data cannot be trusted), rather than
    /// the disk refusing a write.
    pub corruption: bool,
}

/// What the node does on the first failure.
pub type FailureHandler = Box<dyn Fn(&StorageFailure) + Send + Sync>;

/// Where the engine records its first fatal failure.
#[derive(Default)]
pub struct StorageFault {
    first: OnceLock<StorageFailure>,
    handler: OnceLock<FailureHandler>,
}

impl std::fmt::Debug for StorageFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageFault")
            .field("first", &self.first.get())
            .finish_non_exhaustive()
    }
}

impl StorageFault {
    /// Sets what runs, on the failing thread, when the first failure is recorded
    /// (once; later calls are ignored); at once when one already is.
    pub fn on_failure(&self, handler: FailureHandler) {
        if self.handler.set(handler).is_ok() {
            if let (Some(failure), Some(handler)) = (self.first.get(), self.handler.get()) {
                handler(failure);
            }
        }
    }

    /// Records `failure` unless an earlier one is recorded, and runs the handler.
    pub fn record(&self, failure: StorageFailure) {
        if self.first.set(failure).is_ok() {
            let failure = self.first.get().expect("just set");
            tracing::error!(error = %failure.message, corruption = failure.corruption, "storage failure: this node cannot go on without reopening its database");
            if let Some(handler) = self.handler.get() {
                handler(failure);
            }
        }
    }

    /// The recorded failure, if any.
    pub fn failure(&self) -> Option<&StorageFailure> {
        self.first.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_handler_set_after_a_failure_runs_at_once() {
        let fault = StorageFault::default();
        fault.record(StorageFailure {
            message: "Input/output error".into(),
            corruption: false,
        });
        let handled = Arc::new(AtomicUsize::new(0));
        let count = handled.clone();
        fault.on_failure(Box::new(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(handled.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_first_failure_is_kept_and_handled_once() {
        let fault = StorageFault::default();
        let handled = Arc::new(AtomicUsize::new(0));
        let count = handled.clone();
        fault.on_failure(Box::new(move |f| {
            assert_eq!(f.message, "No space left on device");
            count.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(fault.failure().is_none());
        let failure = |m: &str, corruption| StorageFailure {
            message: m.into(),
            corruption,
        };
        fault.record(failure("No space left on device", false));
        fault.record(failure("block checksum mismatch", true));
        assert_eq!(handled.load(Ordering::SeqCst), 1);
        assert_eq!(fault.failure().unwrap().message, "No space left on device");
        assert!(!fault.failure().unwrap().corruption);
    }
}
