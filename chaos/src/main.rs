//! `kelemetry-chaos`: starts a cluster of real node processes on loopback, drives an
//! audit workload with known content through random nodes, kills shard leaders
//! (SIGKILL) and restarts them during it, and every few faults scales the cluster
//! out (a node joins) or in (a node is drained, then stopped). At the end it checks
//! that every acknowledged event is stored exactly once in every replica of its
//! shard, that every object has one object span per window, and that all replicas of
//! each shard hold identical state. Prints a report and exits non-zero on any
//! violation.

mod checks;
mod node;
mod workload;

use anyhow::Context;
use clap::Parser;
use kelemetry_testkit::ports::free_port;
use kelemetry_testkit::Client;
use node::NodeProc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Harness options.
#[derive(Parser, Debug)]
#[command(name = "kelemetry-chaos")]
struct Opts {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Shards.
    #[arg(long, default_value_t = 16)]
    shards: u32,
    /// How long to inject faults.
    #[arg(long, default_value = "5m", value_parser = humantime_duration)]
    duration: Duration,
    /// Pause between faults.
    #[arg(long, default_value = "4s", value_parser = humantime_duration)]
    interval: Duration,
    /// How long a killed node stays down.
    #[arg(long, default_value = "2s", value_parser = humantime_duration)]
    down: Duration,
    /// The node binary (default: `kelemetry` next to this binary).
    #[arg(long)]
    node_bin: Option<std::path::PathBuf>,
    /// Seed of the fault choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrent workload clients.
    #[arg(long, default_value_t = 4)]
    clients: u64,
    /// Run the workload without injecting faults (a throughput baseline).
    #[arg(long)]
    no_faults: bool,
    /// Every this many faults, scale out or in instead of killing (0: never).
    #[arg(long, default_value_t = 4)]
    scale_every: u32,
    /// Every this many faults (that are not scaling), pause the leader (SIGSTOP for
    /// --down, then SIGCONT) instead of killing it (0: never).
    #[arg(long, default_value_t = 3)]
    pause_every: u32,
    /// Most nodes when scaling out (default: --nodes + 2).
    #[arg(long)]
    max_nodes: Option<u64>,
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 30s, 5m"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "ms" => Ok(Duration::from_millis(n)),
        _ => Err(format!("{s:?}: unit must be ms, s or m")),
    }
}

/// A small deterministic generator for fault choices.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The cluster under test: node processes (retired ones stay, stopped) and the
/// workload's address book.
struct Cluster {
    binary: std::path::PathBuf,
    dir: std::path::PathBuf,
    shards: u32,
    nodes: Vec<NodeProc>,
    retired: Vec<bool>,
    client: Client,
}

impl Cluster {
    /// Waits until every shard has a leader, as the live nodes see it.
    fn wait_all_led(&self) -> anyhow::Result<()> {
        checks::wait_all_led(
            &self.client,
            &self.live(),
            self.shards,
            Duration::from_secs(60),
        )
    }

    fn live(&self) -> Vec<&NodeProc> {
        self.nodes
            .iter()
            .zip(&self.retired)
            .filter(|(n, r)| n.running() && !**r)
            .map(|(n, _)| n)
            .collect()
    }

    fn add(&mut self, args: Vec<String>) -> anyhow::Result<usize> {
        let id = self.nodes.len() as u64;
        let mut n = NodeProc::new(id, &self.binary, &self.dir.join(format!("n{id}")), args);
        n.spawn()?;
        n.wait_up(Duration::from_secs(60))?;
        self.nodes.push(n);
        self.retired.push(false);
        Ok(id as usize)
    }

    fn base_args(&self, id: u64, port: u16) -> Vec<String> {
        vec![
            "--node-id".into(),
            id.to_string(),
            "--peer-addr".into(),
            format!("127.0.0.1:{port}"),
            "--shards".into(),
            self.shards.to_string(),
        ]
    }

    /// Waits until `done` holds for the status a live node reports.
    fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let live = self.live();
            if live
                .iter()
                .find_map(|n| checks::status(&self.client, n))
                .is_some_and(|s| done(&s))
            {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what} not reached in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A new node joins through a live node; returns once it holds its share and no
    /// shard is moving.
    fn scale_out(&mut self, targets: &workload::Targets) -> anyhow::Result<u64> {
        let id = self.nodes.len() as u64;
        let via = peer_addr_of(&self.client, self.live()[0])?;
        let mut args = self.base_args(id, free_port());
        args.extend(["--join".into(), via]);
        let i = self.add(args)?;
        targets.push(&self.nodes[i]);
        self.wait_status(
            "joined node active with replicas",
            Duration::from_secs(300),
            |s| {
                member(s, id)
                    .is_some_and(|m| m["state"] == "active" && m["replicas"].as_u64() > Some(0))
                    && s["shards_moving"] == 0
            },
        )?;
        Ok(id)
    }

    /// Drains the newest live node, waits until it is removed, then stops it.
    fn scale_in(&mut self, targets: &workload::Targets) -> anyhow::Result<u64> {
        let victim = self
            .live()
            .iter()
            .map(|n| n.id)
            .max()
            .context("no live node")?;
        let via = self
            .live()
            .into_iter()
            .find(|n| n.id != victim)
            .context("no other live node")?
            .addrs
            .http
            .clone();
        let (status, body) = self.client.post(
            &format!("http://{via}/cluster/drain"),
            format!("{{\"node\": {victim}}}").as_bytes(),
        )?;
        anyhow::ensure!(status == 202, "drain refused: {body}");
        self.wait_status("drained node removed", Duration::from_secs(300), |s| {
            member(s, victim).is_some_and(|m| m["state"] == "removed") && s["shards_moving"] == 0
        })?;
        let i = victim as usize;
        targets.set_down(i, true);
        self.nodes[i].kill();
        self.retired[i] = true;
        Ok(victim)
    }
}

fn member(status: &serde_json::Value, id: u64) -> Option<&serde_json::Value> {
    status["nodes"].as_array()?.iter().find(|m| m["id"] == id)
}

fn peer_addr_of(client: &Client, node: &NodeProc) -> anyhow::Result<String> {
    let s = checks::status(client, node).context("status")?;
    let me = s["node"].as_u64().context("node id")?;
    Ok(member(&s, me)
        .and_then(|m| m["peer_addr"].as_str())
        .context("own peer address")?
        .to_string())
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let dir = tempfile::tempdir()?;
    let outcome = run(&opts, dir.path());
    if !matches!(outcome, Ok(true)) {
        // Nodes are stopped (their handles dropped); their data and logs stay.
        eprintln!("node data and logs kept in {}", dir.keep().display());
    }
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => std::process::exit(1),
        Err(e) => Err(e),
    }
}

/// Runs the whole experiment in `dir`; `Ok(false)` when an invariant was violated.
fn run(opts: &Opts, dir: &std::path::Path) -> anyhow::Result<bool> {
    let binary = match &opts.node_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary dir")?
            .join("kelemetry"),
    };
    let client = Client::new(Duration::from_secs(10));
    let mut cluster = Cluster {
        binary,
        dir: dir.to_path_buf(),
        shards: opts.shards,
        nodes: Vec::new(),
        retired: Vec::new(),
        client: client.clone(),
    };
    let ports: Vec<u16> = (0..opts.nodes).map(|_| free_port()).collect();
    let peers: String = (0..opts.nodes)
        .map(|i| format!("{i}=127.0.0.1:{}", ports[i as usize]))
        .collect::<Vec<_>>()
        .join(",");
    for i in 0..opts.nodes {
        let mut args = cluster.base_args(i, ports[i as usize]);
        args.extend(["--peers".into(), peers.clone()]);
        let mut n = NodeProc::new(i, &cluster.binary, &cluster.dir.join(format!("n{i}")), args);
        n.spawn()?;
        cluster.nodes.push(n);
        cluster.retired.push(false);
    }
    for n in &mut cluster.nodes {
        n.wait_up(Duration::from_secs(60))?;
    }
    cluster.wait_all_led()?;
    let max_nodes = opts.max_nodes.unwrap_or(opts.nodes + 2);
    println!(
        "kelemetry-chaos: {} nodes (scaling between {} and {max_nodes}), {} shards, faults every {:?} for {:?}",
        opts.nodes, opts.nodes, opts.shards, opts.interval, opts.duration
    );

    let targets = workload::Targets::new(&cluster.nodes);
    let stop = Arc::new(AtomicBool::new(false));
    let load = workload::start(targets.clone(), stop.clone(), opts.clients);
    let mut rng = Rng(opts.seed.max(1));
    let mut recoveries = Vec::new();
    let mut scale_times: Vec<(&str, Duration)> = Vec::new();
    let mut growing = true;
    let started = Instant::now();
    let mut faults = 0u32;
    let mut kills = 0u32;
    let mut pauses = 0u32;
    while started.elapsed() < opts.duration {
        std::thread::sleep(
            opts.interval
                .min(opts.duration.saturating_sub(started.elapsed())),
        );
        if opts.no_faults || started.elapsed() >= opts.duration {
            continue;
        }
        faults += 1;
        if opts.scale_every > 0 && faults.is_multiple_of(opts.scale_every) {
            let live = cluster.live().len() as u64;
            growing = (growing && live < max_nodes) || live <= opts.nodes;
            let t = Instant::now();
            let (kind, id) = if growing {
                ("scale-out", cluster.scale_out(&targets)?)
            } else {
                ("scale-in", cluster.scale_in(&targets)?)
            };
            scale_times.push((kind, t.elapsed()));
            println!("  fault {faults}: {kind} of node {id} finished after {:?} ({} live nodes); acked so far {}", t.elapsed(), cluster.live().len(), load.acked_events());
            continue;
        }
        let live = cluster.live();
        let shard = rng.below(u64::from(opts.shards)) as u32;
        let victim = checks::leader_of(&client, &live, shard)
            .unwrap_or(live[rng.below(live.len() as u64) as usize].id)
            as usize;
        kills += 1;
        let pause = opts.pause_every > 0 && kills.is_multiple_of(opts.pause_every);
        if pause {
            cluster.nodes[victim].pause()?;
        } else {
            cluster.nodes[victim].kill();
        }
        targets.set_down(victim, true);
        let killed_at = Instant::now();
        let others: Vec<&NodeProc> = cluster
            .live()
            .into_iter()
            .filter(|n| n.id != victim as u64)
            .collect();
        checks::wait_leaders_alive(
            &client,
            &others,
            victim as u64,
            opts.shards,
            Duration::from_secs(60),
        )?;
        let recovery = killed_at.elapsed();
        recoveries.push(recovery);
        let what = if pause { "paused" } else { "killed" };
        println!("  fault {faults}: {what} node {victim} (leader of shard {shard}); all shards led by other nodes after {recovery:?}; acked so far {}", load.acked_events());
        std::thread::sleep(opts.down.saturating_sub(recovery));
        if pause {
            cluster.nodes[victim].resume()?;
            pauses += 1;
        } else {
            cluster.nodes[victim].spawn()?;
            cluster.nodes[victim].wait_up(Duration::from_secs(60))?;
            targets.update(victim, &cluster.nodes[victim]);
        }
        targets.set_down(victim, false);
    }
    stop.store(true, Ordering::SeqCst);
    let result = load.join();
    let elapsed = started.elapsed();
    cluster.wait_all_led()?;
    let verdict = checks::verify(&client, &cluster.live(), &result, opts.shards)?;
    recoveries.sort();
    println!("---");
    println!(
        "faults injected: {faults}: {} SIGKILLs and {pauses} SIGSTOP pauses of a shard leader (restart or SIGCONT after {:?}), {} scale-outs, {} scale-ins",
        recoveries.len() - pauses as usize,
        opts.down,
        scale_times.iter().filter(|(k, _)| *k == "scale-out").count(),
        scale_times.iter().filter(|(k, _)| *k == "scale-in").count(),
    );
    println!(
        "batches acknowledged: {}, events acknowledged: {}, attempts refused or failed: {}",
        result.acked_batches,
        result.acked_ids.len(),
        result.failed_attempts
    );
    println!(
        "acknowledged throughput under faults: {:.0} events/s",
        result.acked_ids.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "recovery time (kill or pause -> every shard led by another node): p50 {:?} p99 {:?} max {:?}",
        percentile(&recoveries, 0.5),
        percentile(&recoveries, 0.99),
        recoveries.last().copied().unwrap_or_default()
    );
    let mut scaling: Vec<Duration> = scale_times.iter().map(|(_, d)| *d).collect();
    scaling.sort();
    println!(
        "scale time (join or drain -> placement settled): p50 {:?} max {:?}",
        percentile(&scaling, 0.5),
        scaling.last().copied().unwrap_or_default()
    );
    println!(
        "lost: {}, duplicated: {}, object-span violations: {}, replica mismatches: {}",
        verdict.lost,
        verdict.duplicated,
        verdict.span_violations,
        verdict.replica_mismatches.len()
    );
    for m in verdict.replica_mismatches.iter().take(5) {
        println!("  {m}");
    }
    println!("{}", if verdict.ok() { "PASS" } else { "FAIL" });
    Ok(verdict.ok())
}
