//! Deletes windows older than the retention on every shard this node leads.
//!
//! Deletion is a replicated command (`Expire`) carrying the cut-off the leader chose,
//! bounded in size so one proposal never grows large; the sweep repeats it until a
//! shard reports nothing left.

use crate::metrics;
use crate::router::IngestRouter;
use crate::shard::now_us;
use crate::sweep::{repeat_on_shard, Sweep};
use kelemetry_core::Command;
use kelemetry_raft::ShardSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Records one `Expire` command may delete.
const EXPIRE_STEP: u32 = 5_000;

/// The retention sweep.
pub struct Retention {
    /// The node's shard groups.
    pub shards: Arc<ShardSet>,
    /// Where expire commands are submitted.
    pub router: IngestRouter,
    /// How long data is kept.
    pub retention: Duration,
}

impl Sweep for Retention {
    fn run(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let before_us = now_us() - self.retention.as_micros() as i64;
            let led: Vec<u32> = self.shards.led_locals().iter().map(|s| s.shard()).collect();
            for shard in led {
                let expire = Command::Expire {
                    before_us,
                    limit: EXPIRE_STEP,
                };
                let removed = repeat_on_shard(&self.router, shard, expire, "retention").await;
                if removed > 0 {
                    metrics::RETENTION_REMOVED
                        .with_label_values(&[&shard.to_string()])
                        .inc_by(removed);
                    tracing::info!(shard, removed, "retention removed expired records");
                }
            }
        })
    }
}
