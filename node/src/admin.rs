//! `kelemetry cluster ...`: inspecting a running cluster through a node's admin API.

use crate::cli::ClusterCommand;
use anyhow::Context;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Runs a cluster subcommand.
pub fn run(cmd: &ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Status { target } => status(target),
        ClusterCommand::Drain {
            node,
            target,
            no_wait,
            timeout,
        } => drain(*node, target, *no_wait, *timeout),
        ClusterCommand::LeaveIfScaledDown(args) => crate::prestop::run(args),
    }
}

pub(crate) fn agent() -> ureq::Agent {
    agent_within(Duration::from_secs(10))
}

/// An admin client whose every call ends within `timeout`.
fn agent_within(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Environment variable naming the admin token file of the `kelemetry cluster`
/// commands (the node's `--admin-token-file`).
pub const ADMIN_TOKEN_ENV: &str = "KELEMETRY_ADMIN_TOKEN_FILE";

/// The `Authorization` value for the admin API: the first token of the file named by
/// `$KELEMETRY_ADMIN_TOKEN_FILE`, if set.
fn admin_authorization() -> anyhow::Result<Option<String>> {
    let Some(path) = std::env::var_os(ADMIN_TOKEN_ENV) else {
        return Ok(None);
    };
    let tokens =
        crate::auth::read_tokens(std::path::Path::new(&path), "$KELEMETRY_ADMIN_TOKEN_FILE")?;
    let first = String::from_utf8_lossy(&tokens[0]).into_owned();
    Ok(Some(format!("Bearer {first}")))
}

/// A request to the admin API carrying the admin token when one is configured.
fn with_token<B>(request: ureq::RequestBuilder<B>) -> anyhow::Result<ureq::RequestBuilder<B>> {
    Ok(match admin_authorization()? {
        Some(value) => request.header("authorization", value),
        None => request,
    })
}

pub(crate) fn get_json(agent: &ureq::Agent, base: &str, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut response = with_token(agent.get(&url))?
        .call()
        .with_context(|| format!("--target {base}: cannot reach the node"))?;
    anyhow::ensure!(
        !matches!(response.status().as_u16(), 401 | 403),
        "{url}: refused ({}): {}; set ${ADMIN_TOKEN_ENV} to a file holding an admin token",
        response.status(),
        response.body_mut().read_to_string().unwrap_or_default()
    );
    let body = response.body_mut().read_to_string()?;
    serde_json::from_str(&body).with_context(|| format!("{url}: not JSON"))
}

/// The target's status `v` and the status of every other member it lists that
/// answers: each node knows the leaders of its own replicas only, and a node
/// taken out of the metadata group stops learning the ring's later changes.
/// A member is asked at its webhook address, and first on the target's own port
/// at the member's host: in a StatefulSet every pod serves the same ports, so a
/// target on the plain metrics port (the preStop hook's) reaches members whose
/// webhook port speaks TLS.
fn views(agent: &ureq::Agent, target: &str, v: &Value) -> Vec<Value> {
    let target_port = target
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|host_port| host_port.rsplit_once(':'))
        .map(|(_, port)| port.to_string());
    let mut views = vec![v.clone()];
    for n in v["nodes"].as_array().into_iter().flatten() {
        let addr = n["http_addr"].as_str().unwrap_or_default();
        if addr.is_empty() || n["state"] == "removed" || n["id"] == v["node"] {
            continue;
        }
        let same_port = target_port
            .as_ref()
            .and_then(|port| Some(format!("{}:{port}", addr.rsplit_once(':')?.0)));
        let view = same_port
            .into_iter()
            .chain([addr.to_string()])
            .filter_map(|a| get_json(agent, &format!("http://{a}"), "/cluster/status").ok())
            // On one host, the target's port at the member's host is the target.
            .find(|view| view["node"] == n["id"]);
        views.extend(view);
    }
    views
}

/// Every shard's leader as the nodes holding it see them.
fn leaders(agent: &ureq::Agent, target: &str, v: &Value) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for view in views(agent, target, v) {
        for s in view["shards"].as_array().into_iter().flatten() {
            if let (Some(shard), Some(leader)) = (s["shard"].as_u64(), s["leader"].as_u64()) {
                out.entry(shard).or_insert(leader);
            }
        }
    }
    out
}

fn status(target: &str) -> anyhow::Result<()> {
    let agent = agent();
    let v = get_json(&agent, target, "/cluster/status")?;
    println!(
        "as seen by node {} (metadata leader: {})",
        v["node"], v["metadata_leader"]
    );
    println!("{:>6}  {:>10}  {:>9}", "node", "state", "replicas");
    for n in v["nodes"].as_array().into_iter().flatten() {
        println!(
            "{:>6}  {:>10}  {:>9}",
            n["id"],
            n["state"].as_str().unwrap_or("?"),
            n["replicas"]
        );
    }
    println!(
        "watch duty roster (epoch {}): {}",
        v["duty_roster"]["epoch"], v["duty_roster"]["nodes"]
    );
    for d in v["watch_duties"].as_array().into_iter().flatten() {
        println!(
            "duty {} on nodes {}",
            d["duty"].as_str().unwrap_or("?"),
            d["nodes"]
        );
    }
    let leaders = leaders(&agent, target, &v);
    let shards = v["shards"].as_array().cloned().unwrap_or_default();
    let mut per_leader: BTreeMap<String, usize> = BTreeMap::new();
    println!(
        "{:>6}  {:>8}  {:<16}  moving",
        "shard", "leader", "replicas"
    );
    for s in &shards {
        let leader = s["shard"]
            .as_u64()
            .and_then(|id| leaders.get(&id))
            .map_or_else(|| "none".to_string(), |l| l.to_string());
        println!(
            "{:>6}  {:>8}  {:<16}  {}",
            s["shard"],
            leader,
            s["replicas"].to_string(),
            if s["moving"] == true { "yes" } else { "" }
        );
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

pub(crate) fn drain(
    node: u64,
    target: &str,
    no_wait: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let agent = agent();
    let url = format!("{}/cluster/drain", target.trim_end_matches('/'));
    let mut resp = with_token(agent.post(&url))?
        .header("content-type", "application/json")
        .send(serde_json::json!({ "node": node }).to_string())
        .with_context(|| format!("--target {target}: cannot reach the node"))?;
    let code = resp.status().as_u16();
    let body = resp.body_mut().read_to_string()?;
    anyhow::ensure!(code == 202, "drain of node {node} refused ({code}): {body}");
    if no_wait {
        println!("node {node} is draining");
        return Ok(());
    }
    let deadline = std::time::Instant::now() + timeout;
    let member_in = |view: &Value| {
        view["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["id"] == node)
            .cloned()
            .unwrap_or_default()
    };
    // Other members are asked briefly: one that is down must not hold up the wait.
    let peers = agent_within(Duration::from_secs(2));
    loop {
        let v = get_json(&agent, target, "/cluster/status")?;
        let member = member_in(&v);
        // A drained node that left the metadata group before it heard of its own
        // removal (it had 10 s to) never hears of it: near the end, any member's
        // word counts.
        let near_the_end = member["state"] == "draining" && member["replicas"] == 0;
        let removed_elsewhere = near_the_end
            && views(&peers, target, &v)
                .iter()
                .any(|view| member_in(view)["state"] == "removed");
        let state = if removed_elsewhere {
            "removed"
        } else {
            member["state"].as_str().unwrap_or("unknown")
        };
        eprint!(
            "\rnode {node}: {state}, {} replicas left, {} shards moving   ",
            member["replicas"], v["shards_moving"]
        );
        if state == "removed" {
            eprintln!();
            println!("node {node} drained and removed");
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "node {node} still {state} after --timeout {}",
            humantime::format_duration(timeout)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
