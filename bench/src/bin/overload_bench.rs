//! `kelemetry-overload-bench`: a node driven far past what it can take, then back to
//! normal. It starts a `kelemetry serve` process (the binary beside this one) and runs
//! three phases against its webhook: normal load (the sustainable rate), overload
//! (many more clients, each retrying a refused request 50 ms later), and normal load
//! again. It prints each phase's acknowledged and refused rates and the node's
//! largest resident memory, how long throughput took to come back after the
//! overload, and then reads every stored audit ID back: each acknowledged event must
//! be stored exactly once, and no refused request may have stored anything.

use clap::Parser;
use kelemetry_bench::{rss_mib, Clients, Load, Stop};
use kelemetry_testkit::process::NodeProcess;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Benchmark options.
#[derive(Parser, Debug)]
#[command(name = "kelemetry-overload-bench")]
struct Opts {
    /// Length of each normal-load phase.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    normal: Duration,
    /// Length of the overload phase.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    overload: Duration,
    /// Clients of the normal phases.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Clients of the overload phase.
    #[arg(long, default_value_t = 400)]
    overload_clients: usize,
    /// Audit events per request.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Shards of the node.
    #[arg(long, default_value_t = 64)]
    shards: u32,
    /// Extra flags for `kelemetry serve` (repeatable), e.g. `--node-flag=--max-inflight-body-bytes=8388608`.
    #[arg(long = "node-flag")]
    node_flags: Vec<String>,
}

/// What one phase measured.
struct Phase {
    acked_events: u64,
    refused_requests: u64,
    seconds: f64,
    max_rss_mib: f64,
    /// Acknowledged events per 2 s window.
    windows: Vec<u64>,
}

/// The node under load, and what every phase's clients share.
struct Target {
    url: String,
    pid: Option<u32>,
    t0: i64,
    next_batch: Arc<AtomicU64>,
}

fn run_phase(
    name: &str,
    load: Load,
    length: Duration,
    target: &Target,
    acked_batches: &mut Vec<u64>,
) -> Phase {
    let started = Instant::now();
    let clients = Clients::start(
        load,
        std::slice::from_ref(&target.url),
        target.t0,
        &target.next_batch,
        Stop::At(started + length),
    );
    let (mut last, mut windows, mut max_rss) = (0, Vec::new(), 0f64);
    while started.elapsed() < length {
        std::thread::sleep(Duration::from_secs(2));
        let now = clients.acked.load(Ordering::Relaxed);
        let rss = target.pid.and_then(|p| rss_mib(Some(p))).unwrap_or(0.0);
        max_rss = max_rss.max(rss);
        println!(
            "  {name:<8} {:>5.1}s  {:>8.0} events/s acked  {:>7} requests refused so far  rss {rss:.0} MiB",
            started.elapsed().as_secs_f64(),
            (now - last) as f64 / 2.0,
            clients.refused.load(Ordering::Relaxed),
        );
        windows.push(now - last);
        last = now;
    }
    for w in clients.workers {
        w.join().expect("client thread");
    }
    acked_batches.extend(clients.acked_batches.lock().expect("acked batches").iter());
    Phase {
        acked_events: clients.acked.load(Ordering::Relaxed),
        refused_requests: clients.refused.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        max_rss_mib: max_rss,
        windows,
    }
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let binary = std::env::current_exe()?
        .parent()
        .map(|d| d.join("kelemetry"))
        .ok_or_else(|| anyhow::anyhow!("cannot locate the kelemetry binary"))?;
    let dir = tempfile::tempdir()?;
    let mut args = vec!["--shards".to_string(), opts.shards.to_string()];
    args.extend(opts.node_flags.iter().cloned());
    let mut node = NodeProcess::new(&binary, &dir.path().join("node"), &args);
    node.spawn()?;
    node.wait_ready(Duration::from_secs(60))?;
    let target = Target {
        url: format!("http://{}/audit/overload", node.addrs.http),
        pid: node.pid(),
        t0: chrono::Utc::now().timestamp_micros() - 3_600_000_000,
        next_batch: Arc::new(AtomicU64::new(0)),
    };
    println!(
        "kelemetry-overload-bench: node {} (pid {:?}), {} shards, {} events per request",
        binary.display(),
        target.pid,
        opts.shards,
        opts.batch
    );

    let mut acked_batches = Vec::new();
    let normal = Load {
        clients: opts.clients,
        batch: opts.batch,
    };
    let heavy = Load {
        clients: opts.overload_clients,
        batch: opts.batch,
    };
    let mut phase = |name: &str, load: Load, length: Duration| {
        run_phase(name, load, length, &target, &mut acked_batches)
    };
    let before = phase("normal", normal, opts.normal);
    let over = phase("overload", heavy, opts.overload);
    let after = phase("after", normal, opts.normal);

    let sustainable = before.acked_events as f64 / before.seconds;
    println!("---");
    for (name, clients, p) in [
        ("normal", opts.clients, &before),
        ("overload", opts.overload_clients, &over),
        ("after", opts.clients, &after),
    ] {
        let attempts = p.acked_events / opts.batch + p.refused_requests;
        println!(
            "{name:<8} {clients:>4} clients  {:>8.0} events/s acked  {:>8.0} events/s offered ({:.1}x the sustainable rate)  {:>7} requests refused  max RSS {:.0} MiB",
            p.acked_events as f64 / p.seconds,
            (attempts * opts.batch) as f64 / p.seconds,
            (attempts * opts.batch) as f64 / p.seconds / sustainable,
            p.refused_requests,
            p.max_rss_mib
        );
    }
    // The store grew during the overload, and ingest slows as it grows; so the
    // reference after it is the steady rate of the last phase's second half.
    let mut late: Vec<u64> = after.windows[after.windows.len() / 2..].to_vec();
    late.sort_unstable();
    let steady = late.get(late.len() / 2).copied().unwrap_or(0) as f64 / 2.0;
    let back = after
        .windows
        .iter()
        .position(|w| *w as f64 / 2.0 >= 0.9 * steady)
        .map(|i| format!("{} s", 2 * (i + 1)));
    println!(
        "after the overload: steady {steady:.0} events/s on the grown store ({:.0}% of the empty store's); 90% of it reached within {}",
        100.0 * steady / sustainable,
        back.as_deref().unwrap_or("(not within the phase)")
    );
    let metrics = kelemetry_bench::metrics_text(&format!("http://{}", node.addrs.metrics))?;
    for line in metrics.lines().filter(|l| {
        l.starts_with("kelemetry_webhook_requests_total") && l.contains("code=\"4")
            || l.starts_with("kelemetry_rejected")
            || l.starts_with("kelemetry_webhook_body_bytes")
    }) {
        println!("  {line}");
    }

    println!("reading every stored audit ID back ...");
    let stored: serde_json::Value =
        ureq::get(&format!("http://{}/cluster/audit-ids", node.addrs.http))
            .call()?
            .into_body()
            .with_config()
            .limit(1 << 30)
            .read_json()?;
    let mut count: HashMap<&str, u32> = HashMap::new();
    for id in stored["audit_ids"].as_array().into_iter().flatten() {
        *count.entry(id.as_str().unwrap_or_default()).or_default() += 1;
    }
    let (mut lost, mut duplicated) = (0u64, 0u64);
    for b in &acked_batches {
        for seq in 1..=opts.batch {
            match count.remove(format!("load-{b}-{seq:06}").as_str()) {
                None => lost += 1,
                Some(1) => {}
                Some(_) => duplicated += 1,
            }
        }
    }
    let acked = acked_batches.len() as u64 * opts.batch;
    println!(
        "acknowledged {acked} events: lost {lost}, duplicated {duplicated}; stored without an acknowledgement: {}",
        count.values().map(|n| u64::from(*n)).sum::<u64>()
    );
    node.terminate(Duration::from_secs(60))?;
    anyhow::ensure!(lost == 0 && duplicated == 0, "FAIL");
    println!("PASS");
    Ok(())
}
