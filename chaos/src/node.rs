//! A member of the ring under test: a test-kit node process and its node id.

use kelemetry_testkit::NodeProcess;
use std::ops::{Deref, DerefMut};
use std::path::Path;

/// The environment variable that overrides the nodes' log filter.
const NODE_LOG_ENV: &str = "KELEMETRY_CHAOS_NODE_LOG";

/// The nodes' log filter by default.
const DEFAULT_NODE_LOG: &str = "warn,openraft=error";

/// A `kelemetry serve` process that can be killed, paused and restarted on its data
/// dir, known by the node id it was started with.
pub struct NodeProc {
    /// Node id.
    pub id: u64,
    process: NodeProcess,
}

impl NodeProc {
    /// A node that is not started yet; it logs warnings only, so a long run's logs
    /// stay small, unless `KELEMETRY_CHAOS_NODE_LOG` names another filter (to look
    /// into a run: `info` shows every replica opened, moved and promoted).
    pub fn new(id: u64, binary: &Path, dir: &Path, args: Vec<String>) -> Self {
        let filter = std::env::var(NODE_LOG_ENV).unwrap_or_else(|_| DEFAULT_NODE_LOG.into());
        Self {
            id,
            process: NodeProcess::new(binary, dir, &args).log_filter(&filter),
        }
    }
}

impl Deref for NodeProc {
    type Target = NodeProcess;
    fn deref(&self) -> &NodeProcess {
        &self.process
    }
}

impl DerefMut for NodeProc {
    fn deref_mut(&mut self) -> &mut NodeProcess {
        &mut self.process
    }
}
