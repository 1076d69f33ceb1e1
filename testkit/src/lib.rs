//! The test kit: everything a test, the chaos harness or a benchmark needs to run
//! Kelemetry the way an operator does, as real processes, and to feed it traffic.
//!
//! Layout:
//! - [`process`]: one `kelemetry serve` process (start, wait for health or
//!   readiness, SIGTERM, SIGKILL, SIGSTOP/SIGCONT, restart on the same data).
//! - [`client`]: HTTP calls against a node's webhook, query and metrics servers.
//! - [`ring`]: what the nodes report about the ring (who leads which shard).
//! - [`ports`]: peer ports picked before the nodes that use them start.
//! - [`parent_death`]: children that end with the thread that started them.
//! - [`sim`]: a `kelemetry-sim` process and `kubectl` against it.
//! - [`scenario`]: the demo's scripted Deployment rollout.
//! - [`workload`]: synthetic audit traffic with known content.
//!
//! It depends on no Kelemetry crate: it drives the binary through its flags and
//! public endpoints only, so what it proves is what a user sees.

#![warn(missing_docs)]

pub mod client;
pub mod parent_death;
pub mod ports;
pub mod process;
pub mod ring;
pub mod scenario;
pub mod sim;
pub mod small_disk;
pub mod workload;

pub use client::{Client, Reply};
pub use process::{Addresses, NodeProcess};

/// What can go wrong while driving a node process.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The process could not be started, signalled or waited for.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The process exited while it was expected to run.
    #[error("node exited ({status}); its log:\n{log}")]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The node's log so far.
        log: String,
    },
    /// A wait ran out of time.
    #[error("{what} within {timeout:?}; the node's log:\n{log}")]
    Timeout {
        /// What did not happen.
        what: String,
        /// How long was waited.
        timeout: std::time::Duration,
        /// The node's log so far (empty when there is no single node).
        log: String,
    },
    /// The node is not running.
    #[error("the node is not running")]
    NotRunning,
    /// An HTTP call failed before a response arrived.
    #[error("HTTP {url}: {message}")]
    Http {
        /// The URL called.
        url: String,
        /// The transport error.
        message: String,
    },
}

impl TestkitError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
