//! The split-brain watch: polls every running node's `/cluster/status` through the
//! run and records, per Raft group and term, which nodes held the leader role. Two
//! nodes leading one group in one term is a split brain, whatever the network did.

use kelemetry_testkit::Client;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A Raft group as the status names it: the metadata group or a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// The ring's metadata group.
    Metadata,
    /// A data shard.
    Shard(u64),
}

/// What the watch saw.
#[derive(Debug, Default)]
pub struct Observed {
    /// Status samples taken (one per node per round).
    pub samples: u64,
    /// Distinct (group, term) leaderships seen.
    pub leaderships: usize,
    /// Every (group, term) that more than one node led.
    pub split_brains: Vec<String>,
}

/// The running watch; `stop` ends it and returns what it saw.
pub struct Watch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Observed>,
}

/// Webhook addresses of the nodes to poll, kept current by the harness.
pub type Addresses = Arc<Mutex<BTreeMap<u64, String>>>;

impl Watch {
    /// Starts polling the nodes in `addrs` every `every`.
    pub fn start(client: Client, addrs: Addresses, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut leaders: BTreeMap<(Group, u64), BTreeSet<u64>> = BTreeMap::new();
            let mut samples = 0;
            while !flag.load(Ordering::SeqCst) {
                let now: Vec<(u64, String)> = addrs
                    .lock()
                    .map(|a| a.iter().map(|(id, h)| (*id, h.clone())).collect())
                    .unwrap_or_default();
                for (id, http) in now {
                    let Ok((200, s)) = client.get_json(&format!("http://{http}/cluster/status"))
                    else {
                        continue;
                    };
                    samples += 1;
                    for (group, term) in leader_roles(&s) {
                        leaders.entry((group, term)).or_default().insert(id);
                    }
                }
                std::thread::sleep(every);
            }
            Observed {
                samples,
                leaderships: leaders.len(),
                split_brains: leaders
                    .iter()
                    .filter(|(_, nodes)| nodes.len() > 1)
                    .map(|((g, t), nodes)| format!("{g:?} term {t} led by nodes {nodes:?}"))
                    .collect(),
            }
        });
        Self { stop, handle }
    }

    /// Stops polling; what was seen.
    pub fn stop(self) -> Observed {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap_or_default()
    }
}

/// The groups a status says its node holds the leader role of, with the term.
fn leader_roles(status: &Value) -> Vec<(Group, u64)> {
    let mut out: Vec<(Group, u64)> = status["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                Group::Shard(s["shard"].as_u64()?),
                s["leader_role_term"].as_u64()?,
            ))
        })
        .collect();
    if let Some(t) = status["metadata_leader_role_term"].as_u64() {
        out.push((Group::Metadata, t));
    }
    out
}
