//! Cluster state probes and the end-of-run invariants.

use crate::node::NodeProc;
use crate::workload::LoadResult;
use anyhow::bail;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn get(agent: &ureq::Agent, node: &NodeProc, path: &str) -> Option<Value> {
    let mut r = agent
        .get(format!("http://{}{path}", node.http))
        .call()
        .ok()?;
    serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()
}

fn leaders(agent: &ureq::Agent, node: &NodeProc) -> Option<Vec<Option<u64>>> {
    let v = get(agent, node, "/cluster/status")?;
    Some(
        v["shards"]
            .as_array()?
            .iter()
            .map(|s| s["leader"].as_u64())
            .collect(),
    )
}

/// The leader of `shard` as `node` sees it.
pub fn leader_of(agent: &ureq::Agent, node: &NodeProc, shard: u32) -> Option<u64> {
    leaders(agent, node)?.get(shard as usize).copied().flatten()
}

/// Waits until every survivor sees every shard led by a node other than `dead`.
pub fn wait_leaders_alive(
    agent: &ureq::Agent,
    survivors: &[&NodeProc],
    dead: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let ok = survivors.iter().all(|n| {
            leaders(agent, n).is_some_and(|l| l.iter().all(|x| x.is_some_and(|id| id != dead)))
        });
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("shards still without a live leader {timeout:?} after killing node {dead}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until every running node sees every shard with a leader.
pub fn wait_all_led(
    agent: &ureq::Agent,
    nodes: &[NodeProc],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let ok = nodes
            .iter()
            .filter(|n| n.running())
            .all(|n| leaders(agent, n).is_some_and(|l| l.iter().all(Option::is_some)));
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("some shard has no leader after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Violations found at the end of a run.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Acknowledged audit IDs missing on some node (counted once per node).
    pub lost: usize,
    /// Audit IDs stored more than once on some node.
    pub duplicated: usize,
    /// Object spans beyond one per (object, window), summed over nodes.
    pub span_violations: u64,
    /// Shards whose replicas differ at the same applied index.
    pub replica_mismatches: usize,
}

impl Verdict {
    /// Whether no invariant was violated.
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.span_violations == 0
            && self.replica_mismatches == 0
    }
}

/// Checks every invariant, giving replication up to a minute to converge.
pub fn verify(
    agent: &ureq::Agent,
    nodes: &[NodeProc],
    load: &LoadResult,
    shards: u32,
) -> anyhow::Result<Verdict> {
    let acked: BTreeSet<&str> = load.acked_ids.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut verdict;
    loop {
        verdict = Verdict::default();
        for n in nodes {
            let Some(v) = get(agent, n, "/cluster/audit-ids") else {
                bail!("node {} does not answer", n.id)
            };
            let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
            for id in v["audit_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                *counts.entry(id).or_default() += 1;
            }
            verdict.lost += acked.iter().filter(|id| !counts.contains_key(*id)).count();
            verdict.duplicated += counts.values().filter(|c| **c > 1).count();
            verdict.span_violations += v["object_spans"].as_u64().unwrap_or(0)
                - v["distinct_object_windows"].as_u64().unwrap_or(0);
        }
        verdict.replica_mismatches = replica_mismatches(agent, nodes, shards);
        if verdict.ok() || Instant::now() > deadline {
            return Ok(verdict);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Shards whose checksums differ between nodes reporting the same applied index, or
/// whose replicas have not converged to one index.
fn replica_mismatches(agent: &ureq::Agent, nodes: &[NodeProc], shards: u32) -> usize {
    let views: Vec<Value> = nodes
        .iter()
        .filter_map(|n| get(agent, n, "/cluster/checksums"))
        .collect();
    if views.len() != nodes.len() {
        return shards as usize;
    }
    (0..shards as usize)
        .filter(|s| {
            let pairs: BTreeSet<(Option<u64>, Option<String>)> = views
                .iter()
                .map(|v| {
                    let e = &v["shards"][s];
                    (
                        e["applied"].as_u64(),
                        e["checksum"].as_str().map(str::to_string),
                    )
                })
                .collect();
            pairs.len() != 1 || pairs.iter().any(|(a, _)| a.is_none())
        })
        .count()
}
