//! `kelemetry cluster ...`: inspecting a running cluster through a node's admin API.

use crate::cli::ClusterCommand;
use anyhow::Context;
use std::collections::BTreeMap;
use std::time::Duration;

/// Runs a cluster subcommand.
pub fn run(cmd: &ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Status { target } => status(target),
    }
}

fn status(target: &str) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let url = format!("{}/cluster/status", target.trim_end_matches('/'));
    let body = agent
        .get(&url)
        .call()
        .with_context(|| format!("--target {target}: cannot reach the node"))?
        .body_mut()
        .read_to_string()?;
    let v: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("{url}: not JSON"))?;
    let shards = v["shards"].as_array().cloned().unwrap_or_default();
    let mut per_leader: BTreeMap<String, usize> = BTreeMap::new();
    println!("as seen by node {}", v["node"]);
    println!("{:>6}  {:>8}  {:>6}", "shard", "leader", "term");
    for s in &shards {
        let leader = s["leader"]
            .as_u64()
            .map_or_else(|| "none".to_string(), |l| l.to_string());
        println!("{:>6}  {:>8}  {:>6}", s["shard"], leader, s["term"]);
        *per_leader.entry(leader).or_default() += 1;
    }
    let spread: Vec<String> = per_leader
        .iter()
        .map(|(n, c)| format!("node {n}: {c}"))
        .collect();
    println!("leaders: {}", spread.join(", "));
    if per_leader.contains_key("none") {
        anyhow::bail!("some shards have no leader");
    }
    Ok(())
}
