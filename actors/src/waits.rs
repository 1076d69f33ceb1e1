//! Releases audit events whose wait for a watched change has ended, on every shard
//! this node leads: the events wait in shard state (they survive restarts and leader
//! changes), so whichever node leads a shard now writes them, without their diff and
//! with a log saying why.

use crate::metrics;
use crate::router::IngestRouter;
use crate::shard::now_us;
use crate::sweep::{repeat_on_shard, Sweep};
use kelemetry_core::state::first_wait_deadline;
use kelemetry_core::Command;
use kelemetry_raft::ShardSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Events one `ReleaseWaiting` command may write.
const RELEASE_STEP: u32 = 500;

/// The release sweep.
pub struct WaitRelease {
    /// The node's shard groups.
    pub shards: Arc<ShardSet>,
    /// Where release commands are submitted.
    pub router: IngestRouter,
}

impl Sweep for WaitRelease {
    fn run(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let now = now_us();
            let due: Vec<u32> = self
                .shards
                .led_locals()
                .iter()
                .filter(|s| {
                    first_wait_deadline(s.reader())
                        .ok()
                        .flatten()
                        .is_some_and(|deadline| deadline <= now)
                })
                .map(|s| s.shard())
                .collect();
            for shard in due {
                let release = Command::ReleaseWaiting {
                    limit: RELEASE_STEP,
                };
                let n = repeat_on_shard(&self.router, shard, release, "diff wait").await;
                if n > 0 {
                    metrics::DIFF_WAIT_EXPIRED.inc_by(n);
                    tracing::info!(
                        shard,
                        events = n,
                        "audit events written without a diff: no watched change matched them within --diff-wait"
                    );
                }
            }
        })
    }
}
