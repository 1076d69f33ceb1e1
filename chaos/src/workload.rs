//! The audit workload: Deployment lifecycles with known audit IDs, posted by several
//! clients to random live nodes and retried until acknowledged, as API servers do.

use crate::node::NodeProc;
use kelemetry_testkit::workload::deployment_lifecycle;
use kelemetry_testkit::Client;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The cluster name the harness posts audit batches under (the workload's and the
/// minority probes').
pub const CLUSTER: &str = "chaos";

/// Webhook addresses of the nodes and whether each is down.
#[derive(Clone)]
pub struct Targets(Arc<Mutex<Vec<(String, bool)>>>);

impl Targets {
    /// The current addresses of `nodes`.
    pub fn new(nodes: &[NodeProc]) -> Self {
        Self(Arc::new(Mutex::new(
            nodes
                .iter()
                .map(|n| (n.addrs.http.clone(), false))
                .collect(),
        )))
    }

    /// Marks node `i` down or up.
    pub fn set_down(&self, i: usize, down: bool) {
        if let Ok(mut t) = self.0.lock() {
            t[i].1 = down;
        }
    }

    /// Records node `i`'s address after a restart.
    pub fn update(&self, i: usize, node: &NodeProc) {
        if let Ok(mut t) = self.0.lock() {
            t[i].0 = node.addrs.http.clone();
        }
    }

    /// Adds a new node's address; returns its index.
    pub fn push(&self, node: &NodeProc) -> usize {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        t.push((node.addrs.http.clone(), false));
        t.len() - 1
    }

    fn pick(&self, k: u64) -> Option<String> {
        let t = self.0.lock().ok()?;
        let live: Vec<&String> = t.iter().filter(|(_, down)| !down).map(|(a, _)| a).collect();
        (!live.is_empty()).then(|| live[(k % live.len() as u64) as usize].clone())
    }
}

/// What the workload achieved.
#[derive(Default)]
pub struct LoadResult {
    /// Audit IDs of every acknowledged batch.
    pub acked_ids: Vec<String>,
    /// Acknowledged batches.
    pub acked_batches: u64,
    /// Attempts answered with an error or not answered.
    pub failed_attempts: u64,
}

/// The running workload.
pub struct Load {
    clients: Vec<JoinHandle<LoadResult>>,
    acked: Arc<AtomicU64>,
}

impl Load {
    /// Events acknowledged so far.
    pub fn acked_events(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Waits for the clients (after `stop`) and merges their results.
    pub fn join(self) -> LoadResult {
        let mut all = LoadResult::default();
        for c in self.clients {
            if let Ok(r) = c.join() {
                all.acked_ids.extend(r.acked_ids);
                all.acked_batches += r.acked_batches;
                all.failed_attempts += r.failed_attempts;
            }
        }
        all
    }
}

/// Starts `clients` clients; each finishes its current batch after `stop` is set.
pub fn start(targets: Targets, stop: Arc<AtomicBool>, clients: u64) -> Load {
    let acked = Arc::new(AtomicU64::new(0));
    let t0 = chrono::Utc::now().timestamp_micros() - 600_000_000;
    let clients = (0..clients)
        .map(|c| {
            let (targets, stop, acked) = (targets.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || client(c, &targets, &stop, &acked, t0))
        })
        .collect();
    Load { clients, acked }
}

fn client(c: u64, targets: &Targets, stop: &AtomicBool, acked: &AtomicU64, t0: i64) -> LoadResult {
    let client = Client::new(Duration::from_secs(30));
    let mut out = LoadResult::default();
    let mut attempt = c;
    for d in 0u64.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (batches, _) = deployment_lifecycle(
            &format!("ns{c}"),
            &format!("app{d}"),
            t0 + (d as i64) * 1_000_000,
        );
        for batch in batches {
            let body = batch.to_string();
            loop {
                attempt += 1;
                let ok = targets.pick(attempt).is_some_and(|addr| {
                    client
                        .post(&format!("http://{addr}/audit/{CLUSTER}"), body.as_bytes())
                        .is_ok_and(|(status, _)| status == 200)
                });
                if ok {
                    break;
                }
                out.failed_attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            let ids = audit_ids(&batch);
            acked.fetch_add(ids.len() as u64, Ordering::Relaxed);
            out.acked_ids.extend(ids);
            out.acked_batches += 1;
        }
    }
    out
}

fn audit_ids(batch: &Value) -> Vec<String> {
    batch["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["auditID"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
