//! Cluster state probes and the end-of-run invariants.

use crate::node::NodeProc;
use crate::workload::LoadResult;
use anyhow::bail;
use kelemetry_testkit::{ring, Client};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

fn get(client: &Client, node: &NodeProc, path: &str) -> Option<Value> {
    match client.get_json(&format!("http://{}{path}", node.addrs.http)) {
        Ok((200, v)) => Some(v),
        _ => None,
    }
}

fn local_leaders(client: &Client, node: &NodeProc) -> Option<BTreeMap<u32, Option<u64>>> {
    ring::local_leaders(client, &node.addrs.http)
}

/// The leader of `shard` as the first node holding it sees it.
pub fn leader_of(client: &Client, nodes: &[&NodeProc], shard: u32) -> Option<u64> {
    let https: Vec<&str> = nodes.iter().map(|n| n.addrs.http.as_str()).collect();
    ring::leader_of(client, &https, shard)
}

/// Whether every shard that keeps a majority of its voters outside `excluded` has a
/// replica on some node of `nodes`, and every such replica sees a leader that is not
/// one of `excluded`. A shard with most of its voters excluded cannot elect (it
/// waits for the fault to heal) and is not expected to.
fn all_led(client: &Client, nodes: &[&NodeProc], excluded: &[u64], shards: u32) -> bool {
    let expected: BTreeSet<u32> = if excluded.is_empty() {
        (0..shards).collect()
    } else {
        let Some(placement) = placement(client, nodes) else {
            return false;
        };
        placement
            .into_iter()
            .filter(|(_, voters)| {
                let left = voters.iter().filter(|v| !excluded.contains(v)).count();
                left * 2 > voters.len()
            })
            .map(|(shard, _)| shard)
            .collect()
    };
    let mut covered = BTreeSet::new();
    for n in nodes {
        let Some(view) = local_leaders(client, n) else {
            return false;
        };
        for (shard, leader) in view.into_iter().filter(|(s, _)| expected.contains(s)) {
            match leader {
                Some(l) if !excluded.contains(&l) => {
                    covered.insert(shard);
                }
                _ => return false,
            }
        }
    }
    covered == expected
}

/// Waits until every shard is led by a node other than `excluded` (killed, paused
/// or cut off), as the survivors see it, and the survivors' metadata group too.
pub fn wait_leaders_alive(
    client: &Client,
    survivors: &[&NodeProc],
    excluded: &[u64],
    shards: u32,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !all_led(client, survivors, excluded, shards) || !meta_led(client, survivors, excluded) {
        if Instant::now() > deadline {
            let views: Vec<String> = survivors
                .iter()
                .map(|n| {
                    let meta = status(client, n).map(|s| s["metadata_leader"].clone());
                    format!(
                        "node {} sees metadata leader {meta:?}, shard leaders {:?}",
                        n.id,
                        local_leaders(client, n)
                    )
                })
                .collect();
            bail!("shards or the metadata group still without a leader outside {excluded:?} {timeout:?} after the fault; {}", views.join("; "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Whether every node of `nodes` sees a metadata leader that is not one of
/// `excluded`.
fn meta_led(client: &Client, nodes: &[&NodeProc], excluded: &[u64]) -> bool {
    nodes.iter().all(|n| {
        status(client, n)
            .and_then(|s| s["metadata_leader"].as_u64())
            .is_some_and(|l| !excluded.contains(&l))
    })
}

/// The node that leads the metadata group, as the first answering node sees it.
pub fn meta_leader(client: &Client, nodes: &[&NodeProc]) -> Option<u64> {
    nodes
        .iter()
        .find_map(|n| status(client, n)?["metadata_leader"].as_u64())
}

/// Waits until every shard has a leader, as the running nodes see it.
pub fn wait_all_led(
    client: &Client,
    nodes: &[&NodeProc],
    shards: u32,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !all_led(client, nodes, &[], shards) {
        if Instant::now() > deadline {
            bail!("some shard has no leader after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The cluster status as `node` reports it.
pub fn status(client: &Client, node: &NodeProc) -> Option<Value> {
    get(client, node, "/cluster/status")
}

/// Violations found at the end of a run.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Acknowledged audit IDs stored nowhere, plus IDs one replica of a shard has
    /// and another lacks.
    pub lost: usize,
    /// Audit IDs stored more than once in a replica or in more than one shard.
    pub duplicated: usize,
    /// Object spans beyond one per (object, window), summed over replicas.
    pub span_violations: u64,
    /// Shards whose replicas differ at the same applied index, or that lack a
    /// replica the placement names, each with what was seen.
    pub replica_mismatches: Vec<String>,
}

impl Verdict {
    /// Whether no invariant was violated.
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.span_violations == 0
            && self.replica_mismatches.is_empty()
    }
}

/// One replica's audit IDs and span counts.
struct Replica {
    ids: BTreeMap<String, u32>,
    object_spans: u64,
    distinct_windows: u64,
}

/// Every shard replica the nodes report: (shard, node) -> replica.
fn replicas(client: &Client, nodes: &[&NodeProc]) -> anyhow::Result<BTreeMap<(u32, u64), Replica>> {
    let mut out = BTreeMap::new();
    for n in nodes {
        let Some(v) = get(client, n, "/cluster/audit-ids") else {
            bail!("node {} does not answer", n.id)
        };
        for s in v["shards"].as_array().into_iter().flatten() {
            let mut ids = BTreeMap::new();
            for id in s["audit_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                *ids.entry(id.to_string()).or_default() += 1;
            }
            let shard = s["shard"].as_u64().unwrap_or(u64::MAX) as u32;
            out.insert(
                (shard, n.id),
                Replica {
                    ids,
                    object_spans: s["object_spans"].as_u64().unwrap_or(0),
                    distinct_windows: s["distinct_object_windows"].as_u64().unwrap_or(0),
                },
            );
        }
    }
    Ok(out)
}

/// The voters of each shard as the placement records them.
pub fn placement(client: &Client, nodes: &[&NodeProc]) -> Option<BTreeMap<u32, Vec<u64>>> {
    let v = nodes
        .iter()
        .find_map(|n| get(client, n, "/cluster/status"))?;
    Some(
        v["shards"]
            .as_array()?
            .iter()
            .filter_map(|s| {
                let voters = s["replicas"]
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_u64)
                    .collect();
                Some((s["shard"].as_u64()? as u32, voters))
            })
            .collect(),
    )
}

/// Checks every invariant over the nodes that hold replicas, giving replication up
/// to a minute to converge: each acknowledged audit ID is in every replica of one
/// shard exactly once, one object span per (object, window), equal checksums.
pub fn verify(
    client: &Client,
    nodes: &[&NodeProc],
    load: &LoadResult,
    shards: u32,
) -> anyhow::Result<Verdict> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let verdict = check_once(client, nodes, load, shards)?;
        if verdict.ok() || Instant::now() > deadline {
            return Ok(verdict);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn check_once(
    client: &Client,
    nodes: &[&NodeProc],
    load: &LoadResult,
    shards: u32,
) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::default();
    let Some(placement) = placement(client, nodes) else {
        bail!("no node reports the placement")
    };
    let replicas = replicas(client, nodes)?;
    let mut stored: BTreeMap<&str, u32> = BTreeMap::new();
    for (shard, voters) in &placement {
        let held: Vec<&Replica> = voters
            .iter()
            .filter_map(|n| replicas.get(&(*shard, *n)))
            .collect();
        if held.len() != voters.len() || held.is_empty() {
            let on: Vec<u64> = voters
                .iter()
                .filter(|n| replicas.contains_key(&(*shard, **n)))
                .copied()
                .collect();
            verdict.replica_mismatches.push(format!(
                "shard {shard}: placement names {voters:?}, replicas found on {on:?}"
            ));
            continue;
        }
        for r in &held {
            verdict.duplicated += r.ids.values().filter(|c| **c > 1).count();
            verdict.span_violations += r.object_spans - r.distinct_windows;
        }
        for id in held[0].ids.keys() {
            *stored.entry(id.as_str()).or_default() += 1;
        }
        for r in &held[1..] {
            verdict.lost += held[0]
                .ids
                .keys()
                .filter(|id| !r.ids.contains_key(*id))
                .count();
        }
    }
    verdict.duplicated += stored.values().filter(|c| **c > 1).count();
    verdict.lost += load
        .acked_ids
        .iter()
        .filter(|id| !stored.contains_key(id.as_str()))
        .count();
    verdict
        .replica_mismatches
        .extend(replica_mismatches(client, nodes, &placement, shards));
    Ok(verdict)
}

/// Shards whose replicas (per the placement) differ at the same applied index, or
/// have not converged to one index.
fn replica_mismatches(
    client: &Client,
    nodes: &[&NodeProc],
    placement: &BTreeMap<u32, Vec<u64>>,
    shards: u32,
) -> Vec<String> {
    let mut sums: BTreeMap<(u32, u64), (Option<u64>, Option<String>)> = BTreeMap::new();
    for n in nodes {
        let Some(v) = get(client, n, "/cluster/checksums") else {
            return vec![format!("node {} did not report checksums", n.id)];
        };
        for e in v["shards"].as_array().into_iter().flatten() {
            let shard = e["shard"].as_u64().unwrap_or(u64::MAX) as u32;
            sums.insert(
                (shard, n.id),
                (
                    e["applied"].as_u64(),
                    e["checksum"].as_str().map(str::to_string),
                ),
            );
        }
    }
    (0..shards)
        .filter_map(|s| {
            let seen: BTreeMap<u64, &(Option<u64>, Option<String>)> = placement
                .get(&s)
                .into_iter()
                .flatten()
                .filter_map(|n| sums.get(&(s, *n)).map(|p| (*n, p)))
                .collect();
            let distinct: BTreeSet<_> = seen.values().collect();
            (distinct.len() != 1 || distinct.iter().any(|(a, _)| a.is_none()))
                .then(|| format!("shard {s}: (applied, checksum) per node {seen:?}"))
        })
        .collect()
}
