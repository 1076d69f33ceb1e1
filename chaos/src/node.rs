//! A member of the ring under test: a test-kit node process and its node id.

use kelemetry_testkit::NodeProcess;
use std::ops::{Deref, DerefMut};
use std::path::Path;

/// A `kelemetry serve` process that can be killed, paused and restarted on its data
/// dir, known by the node id it was started with.
pub struct NodeProc {
    /// Node id.
    pub id: u64,
    process: NodeProcess,
}

impl NodeProc {
    /// A node that is not started yet; it logs warnings only, so a long run's logs
    /// stay small.
    pub fn new(id: u64, binary: &Path, dir: &Path, args: Vec<String>) -> Self {
        Self {
            id,
            process: NodeProcess::new(binary, dir, &args).log_filter("warn,openraft=error"),
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
