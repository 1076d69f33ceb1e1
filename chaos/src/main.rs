//! `kelemetry-chaos`: starts a cluster of real node processes on loopback, drives an
//! audit workload with known content through random nodes, kills shard leaders
//! (SIGKILL) and restarts them during it, then checks that every acknowledged event
//! is stored exactly once on every node, that every object has one object span per
//! window, and that all replicas of each shard hold identical state. Prints a report
//! and exits non-zero on any violation.

mod checks;
mod node;
mod workload;

use anyhow::Context;
use clap::Parser;
use node::NodeProc;
use std::net::TcpListener;
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

/// A free peer port below the kernel's ephemeral range, so no port-0 bind elsewhere
/// can take it before the node starts.
fn peer_port(seed: u64, node: u64) -> u16 {
    let base = u64::from(std::process::id()) ^ seed;
    (0..)
        .map(|k: u64| 20_000 + ((base + node * 7919 + k * 104_729) % 10_000) as u16)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .unwrap_or(20_000)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let binary = match &opts.node_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary dir")?
            .join("kelemetry"),
    };
    let dir = tempfile::tempdir()?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let ports: Vec<u16> = (0..opts.nodes).map(|i| peer_port(opts.seed, i)).collect();
    let peers: String = (0..opts.nodes)
        .map(|i| format!("{i}=127.0.0.1:{}", ports[i as usize]))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<NodeProc> = (0..opts.nodes)
        .map(|i| {
            let args = vec![
                "--node-id".into(),
                i.to_string(),
                "--peers".into(),
                peers.clone(),
                "--peer-addr".into(),
                format!("127.0.0.1:{}", ports[i as usize]),
                "--shards".into(),
                opts.shards.to_string(),
            ];
            NodeProc::new(i, &binary, &dir.path().join(format!("n{i}")), args)
        })
        .collect();
    for n in &mut nodes {
        n.start()?;
    }
    for n in &mut nodes {
        n.wait_up(&agent, Duration::from_secs(60))?;
    }
    checks::wait_all_led(&agent, &nodes, Duration::from_secs(60))?;
    println!(
        "kelemetry-chaos: {} nodes, {} shards, faults every {:?} for {:?}",
        opts.nodes, opts.shards, opts.interval, opts.duration
    );

    let targets = workload::Targets::new(&nodes);
    let stop = Arc::new(AtomicBool::new(false));
    let load = workload::start(targets.clone(), stop.clone(), opts.clients);
    let mut rng = Rng(opts.seed.max(1));
    let mut recoveries = Vec::new();
    let started = Instant::now();
    let mut faults = 0;
    while started.elapsed() < opts.duration {
        std::thread::sleep(
            opts.interval
                .min(opts.duration.saturating_sub(started.elapsed())),
        );
        if opts.no_faults || started.elapsed() >= opts.duration {
            continue;
        }
        let live: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].running()).collect();
        let observer = &nodes[live[0]];
        let shard = rng.below(u64::from(opts.shards)) as u32;
        let victim = checks::leader_of(&agent, observer, shard)
            .unwrap_or(live[rng.below(live.len() as u64) as usize] as u64)
            as usize;
        nodes[victim].kill();
        targets.set_down(victim, true);
        faults += 1;
        let killed_at = Instant::now();
        let survivors: Vec<&NodeProc> = nodes.iter().filter(|n| n.running()).collect();
        checks::wait_leaders_alive(&agent, &survivors, victim as u64, Duration::from_secs(60))?;
        let recovery = killed_at.elapsed();
        recoveries.push(recovery);
        println!("  fault {faults}: killed node {victim} (leader of shard {shard}); all shards led by live nodes after {recovery:?}; acked so far {}", load.acked_events());
        std::thread::sleep(opts.down.saturating_sub(recovery));
        nodes[victim].start()?;
        nodes[victim].wait_up(&agent, Duration::from_secs(60))?;
        targets.update(victim, &nodes[victim]);
        targets.set_down(victim, false);
    }
    stop.store(true, Ordering::SeqCst);
    let result = load.join();
    let elapsed = started.elapsed();
    checks::wait_all_led(&agent, &nodes, Duration::from_secs(60))?;
    let verdict = checks::verify(&agent, &nodes, &result, opts.shards)?;
    recoveries.sort();
    println!("---");
    println!(
        "faults injected: {faults} (SIGKILL of a shard leader, restart after {:?})",
        opts.down
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
        "recovery time (kill -> every shard led by a live node): p50 {:?} p99 {:?} max {:?}",
        percentile(&recoveries, 0.5),
        percentile(&recoveries, 0.99),
        recoveries.last().copied().unwrap_or_default()
    );
    println!(
        "lost: {}, duplicated: {}, object-span violations: {}, replica mismatches: {}",
        verdict.lost, verdict.duplicated, verdict.span_violations, verdict.replica_mismatches
    );
    if verdict.ok() {
        println!("PASS");
        Ok(())
    } else {
        println!("FAIL");
        std::process::exit(1)
    }
}
