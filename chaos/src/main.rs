//! `kelemetry-chaos`: starts a cluster of real node processes on loopback, all peer
//! traffic crossing a fault-injecting proxy per node, drives an audit workload with
//! known content through random nodes, and injects faults one at a time: shard
//! leaders killed (SIGKILL) and restarted or paused (SIGSTOP), partitions (a leader
//! or the metadata leader isolated, majority/minority splits, one-way links,
//! flapping links, delayed and jittered links) and, every few faults, scaling out (a
//! node joins) or in (a node is drained, then stopped). While a minority is cut off
//! it is asked to write (must refuse) and to read (must mark the answer stale); a
//! watch polls every node for two leaders of one group in one term. At the end it
//! checks that every acknowledged event is stored exactly once in every replica of
//! its shard, that every object has one object span per window, and that all
//! replicas of each shard hold identical state. Prints a report and exits non-zero
//! on any violation.

mod checks;
mod cluster;
mod faults;
mod net;
mod node;
mod split_brain;
mod workload;

use anyhow::Context;
use clap::Parser;
use cluster::Cluster;
use faults::{DiskProbes, Fault, Probes};
use kelemetry_testkit::Client;
use std::collections::BTreeMap;
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
    /// Keep the nodes' data and logs after a passing run too (a failing run always
    /// keeps them), to look into a slow recovery.
    #[arg(long)]
    keep_data: bool,
    /// Every this many faults, scale out or in instead of killing (0: never).
    #[arg(long, default_value_t = 4)]
    scale_every: u32,
    /// The faults to cycle through (besides scaling), comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Fault::ALL)]
    faults: Vec<Fault>,
    /// Every this many faults (that are not scaling), fill node 0's disk below
    /// `--min-free-disk` instead, then free it (0: never). Node 0 then runs on a
    /// tmpfs of its own, which needs root to mount.
    #[arg(long, default_value_t = 0)]
    disk_full_every: u32,
    /// Size of node 0's tmpfs with `--disk-full-every`, MiB.
    #[arg(long, default_value_t = 4096)]
    small_disk_mib: u64,
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

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let dir = tempfile::tempdir()?;
    let outcome = run(&opts, dir.path());
    if opts.keep_data || !matches!(outcome, Ok(true)) {
        // Nodes are stopped (their handles dropped); their data and logs stay.
        eprintln!("node data and logs kept in {}", dir.keep().display());
    }
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => std::process::exit(1),
        Err(e) => Err(e),
    }
}

/// Recovery times per fault kind (scaling included), in injection order.
type Timings = BTreeMap<String, Vec<Duration>>;

/// Runs the whole experiment in `dir`; `Ok(false)` when an invariant was violated.
fn run(opts: &Opts, dir: &std::path::Path) -> anyhow::Result<bool> {
    anyhow::ensure!(!opts.faults.is_empty(), "--faults: name at least one fault");
    let binary = match &opts.node_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary dir")?
            .join("kelemetry"),
    };
    let client = Client::new(Duration::from_secs(20));
    let mut cluster = Cluster::start(
        binary,
        dir.to_path_buf(),
        opts.shards,
        opts.nodes,
        client.clone(),
        (opts.disk_full_every > 0).then_some(opts.small_disk_mib),
    )?;
    let max_nodes = opts.max_nodes.unwrap_or(opts.nodes + 2);
    println!(
        "kelemetry-chaos: {} nodes (scaling between {} and {max_nodes}), {} shards, faults every {:?} for {:?}: {}",
        opts.nodes,
        opts.nodes,
        opts.shards,
        opts.interval,
        opts.duration,
        opts.faults.iter().map(|f| f.name()).collect::<Vec<_>>().join(", ")
    );
    let watch = split_brain::Watch::start(
        client.clone(),
        cluster.watched.clone(),
        Duration::from_millis(250),
    );
    let targets = workload::Targets::new(&cluster.nodes);
    let stop = Arc::new(AtomicBool::new(false));
    let load = workload::start(targets.clone(), stop.clone(), opts.clients);
    let mut rng = Rng(opts.seed.max(1));
    let mut timings = Timings::new();
    let mut probes = Probes::default();
    let mut disk_probes = DiskProbes::default();
    let mut growing = true;
    let started = Instant::now();
    let mut faults = 0u32;
    let mut cycled = 0usize;
    while started.elapsed() < opts.duration {
        std::thread::sleep(
            opts.interval
                .min(opts.duration.saturating_sub(started.elapsed())),
        );
        if opts.no_faults || started.elapsed() >= opts.duration {
            continue;
        }
        faults += 1;
        let t = Instant::now();
        let at = started.elapsed().as_secs();
        if opts.scale_every > 0 && faults.is_multiple_of(opts.scale_every) {
            let live = cluster.live().len() as u64;
            growing = (growing && live < max_nodes) || live <= opts.nodes;
            let (kind, id) = if growing {
                ("scale-out", cluster.scale_out(&targets)?)
            } else {
                ("scale-in", cluster.scale_in(&targets)?)
            };
            timings
                .entry(kind.to_string())
                .or_default()
                .push(t.elapsed());
            println!(
                "  {at:>4}s fault {faults}: {kind} of node {id} settled after {:?} ({} live nodes); acked so far {}",
                t.elapsed(),
                cluster.live().len(),
                load.acked_events()
            );
            continue;
        }
        if opts.disk_full_every > 0 && faults.is_multiple_of(opts.disk_full_every) {
            let (done, p) = faults::disk_full(&cluster, opts.down)
                .with_context(|| format!("fault {faults} (disk-full)"))?;
            disk_probes.add(p);
            timings
                .entry("disk-full".to_string())
                .or_default()
                .push(done.recovery);
            println!(
                "  {at:>4}s fault {faults}: disk-full of node 0: writes again {:?} after the disk was freed, {:?} in all; acked so far {}",
                done.recovery,
                t.elapsed(),
                load.acked_events()
            );
            continue;
        }
        let fault = opts.faults[cycled % opts.faults.len()];
        cycled += 1;
        let done = faults::inject(fault, &mut cluster, &targets, opts.down, &mut |n| {
            rng.below(n)
        })
        .with_context(|| format!("fault {faults} ({})", fault.name()))?;
        if let Some(p) = done.probes {
            probes.add(p);
        }
        timings.entry(fault.name()).or_default().push(done.recovery);
        println!(
            "  {at:>4}s fault {faults}: {} of {:?}: recovered after {:?}, healed after {:?}; acked so far {}",
            fault.name(),
            done.victims,
            done.recovery,
            t.elapsed(),
            load.acked_events()
        );
    }
    stop.store(true, Ordering::SeqCst);
    let result = load.join();
    let elapsed = started.elapsed();
    cluster.wait_all_led()?;
    let observed = watch.stop();
    let verdict = checks::verify(&client, &cluster.live(), &result, opts.shards)?;
    println!("---");
    report_faults(faults, &timings, opts.down);
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
        "cut-off minority: writes refused {}, acknowledged {}, acknowledged by shards with a voter majority on that side {} (slowest answer {:.1?}); searches marked stale {}, refused {}, empty {}, unmarked {} (slowest answer {:.1?})",
        probes.writes_refused,
        probes.writes_acked,
        probes.writes_acked_by_own_quorum,
        probes.slowest_write,
        probes.reads_stale,
        probes.reads_refused,
        probes.reads_empty,
        probes.reads_unmarked,
        probes.slowest_read
    );
    if opts.disk_full_every > 0 {
        println!(
            "node 0 with a full disk: writes refused {}, acknowledged {}; searches answered {}, failed {}",
            disk_probes.writes_refused,
            disk_probes.writes_acked,
            disk_probes.reads_served,
            disk_probes.reads_failed
        );
    }
    println!(
        "split-brain watch: {} status samples, {} (group, term) leaderships, {} led by two nodes",
        observed.samples,
        observed.leaderships,
        observed.split_brains.len()
    );
    for s in observed.split_brains.iter().take(5) {
        println!("  {s}");
    }
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
    let ok = verdict.ok()
        && observed.split_brains.is_empty()
        && probes.writes_acked == 0
        && probes.reads_unmarked == 0
        && disk_probes.writes_acked == 0
        && disk_probes.reads_failed == 0;
    println!("{}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

/// Prints the faults by kind with their recovery times.
fn report_faults(total: u32, timings: &Timings, down: Duration) {
    println!("faults injected: {total} (each held {down:?}, or twice that for flap and delay)");
    println!(
        "  {:<24} {:>5} {:>10} {:>10} {:>10}",
        "kind", "count", "p50", "p99", "max"
    );
    for (kind, times) in timings {
        let mut sorted = times.clone();
        sorted.sort();
        println!(
            "  {kind:<24} {:>5} {:>10.2?} {:>10.2?} {:>10.2?}",
            sorted.len(),
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.99),
            sorted.last().copied().unwrap_or_default()
        );
    }
    println!("  recovery: for kills, pauses and cuts, from the fault to every shard and the metadata group led outside the victims; for flap and delay, from the heal to every shard led; for a full disk, from freeing it to the node taking a write; for scaling, until placement settled");
}
