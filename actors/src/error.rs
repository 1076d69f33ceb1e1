//! Why a submission to the shard actors was not committed.

/// Why a submission was not (wholly) committed. Every variant is retryable: a retry of
/// the same commands is deduplicated by the state machine.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    /// A shard queue is full; back off and retry.
    #[error("shard {shard} is overloaded ({queued} commands queued)")]
    Overloaded {
        /// The shard.
        shard: u32,
        /// Its queue depth.
        queued: usize,
    },
    /// A shard cannot commit right now (no leader, shutting down, storage failure).
    #[error("shard {shard} is unavailable: {message}")]
    Unavailable {
        /// The shard.
        shard: u32,
        /// Why.
        message: String,
    },
    /// This node does not lead the shard and the submission may not be forwarded.
    #[error("this node does not lead shard {shard} (leader: {leader:?})")]
    NotLeader {
        /// The shard.
        shard: u32,
        /// The leader, if known.
        leader: Option<u64>,
    },
    /// The commit did not finish within the deadline; it may still complete.
    #[error("timed out waiting for shard {shard} to commit")]
    Timeout {
        /// The shard.
        shard: u32,
    },
}
