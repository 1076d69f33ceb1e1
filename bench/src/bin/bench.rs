//! `kelemetry-bench`: audit events per second ingested with durable acknowledgement on
//! one in-process node (or on running nodes given with `--targets`), next to the raw
//! RocksDB synced-batch write rate of the same disk measured in the same run. As a soak
//! (`--duration 10m --rss-every 10s`) it also samples the node's resident memory and
//! prints the series' range and slope; with `--preload N` it first stores N events and
//! measures ingest on the grown store. Run with
//! `cargo run --release -p kelemetry-bench --bin kelemetry-bench`.

use clap::Parser;
use kelemetry_bench::{cpu_seconds, metrics_text, preload, rss_mib, Clients, Load, Stop};
use kelemetry_raft::engine::Op;
use kelemetry_raft::Engine;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The node binary's allocator, so the in-process node measures what `kelemetry` runs.
kelemetry::node_allocator!();

/// Benchmark options.
#[derive(Parser, Debug)]
#[command(name = "kelemetry-bench")]
struct Opts {
    /// How long to drive the webhook.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent webhook clients (the API server's batch backend uses several).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Audit events per webhook request.
    #[arg(long, default_value_t = 100)]
    batch: u64,
    /// Shards of the node under test.
    #[arg(long, default_value_t = 64)]
    shards: u32,
    /// Synced batches written in the raw RocksDB measurement.
    #[arg(long, default_value_t = 2000)]
    raw_batches: u64,
    /// Webhook base URLs of running nodes (`http://host:port,...`) to drive instead
    /// of an in-process node; clients are spread over them round-robin.
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    /// Soak: sample the resident memory of the node(s) this often and print the series
    /// and its slope (the in-process node, or the processes given with `--pids`).
    #[arg(long, value_parser = humantime::parse_duration)]
    rss_every: Option<Duration>,
    /// Process ids of the running nodes: `--rss-every` samples their memory, and the
    /// CPU they use during the run is reported per acknowledged event.
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Growth mode: first store this many events (new objects), then measure ingest
    /// on the grown store for `--duration`.
    #[arg(long, default_value_t = 0)]
    preload: u64,
    /// Metrics base URLs of the running nodes (`http://host:port,...`), read at the
    /// end for the owner links still waiting in outboxes.
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
}

/// The nodes' `/metrics` texts, read once for every figure taken at one moment; `None`
/// when no node's metrics were given or one could not be read.
fn metrics_now(metrics_urls: &[String]) -> Option<Vec<String>> {
    if metrics_urls.is_empty() {
        return None;
    }
    metrics_urls
        .iter()
        .map(|base| metrics_text(base).ok())
        .collect()
}

/// Sum over the nodes' metrics `texts` of the series whose line `matches`.
fn metric_sum(texts: &[String], matches: impl Fn(&str) -> bool) -> u64 {
    texts
        .iter()
        .flat_map(|text| text.lines())
        .filter(|line| matches(line))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Owner links delivered and still waiting, summed over the nodes' metrics: every
/// load event links its pod to a ReplicaSet, mostly on another shard, so a backlog
/// that grows over the run is work the run did not pay for.
fn outbox_report(texts: &[String]) -> (u64, u64) {
    let delivered = metric_sum(texts, |line| {
        line.starts_with("kelemetry_outbox_delivered_total{result=\"delivered\"}")
    });
    let waiting = metric_sum(texts, |line| {
        line.starts_with("kelemetry_outbox_backlog{") && line.contains("kind=\"link\"")
    });
    (delivered, waiting)
}

/// Bytes RocksDB's compactions still owe, summed over the nodes and column families:
/// a run on a grown store pays off what the preload left, and how much it inherits
/// moves its figure from run to run.
fn compaction_debt(texts: &[String]) -> u64 {
    metric_sum(texts, |line| {
        line.starts_with("kelemetry_rocksdb_table_bytes{")
            && line.contains("kind=\"pending_compaction\"")
    })
}

/// Least-squares slope of `(seconds, MiB)` samples, MiB per minute.
fn slope_per_minute(samples: &[(f64, f64)]) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (sx, sy) = samples
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = samples.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den * 60.0
    }
}

/// CPU seconds used so far by all of `watched` (`None` in the list: this process);
/// `None` if one of them cannot be read.
fn cpu_of(watched: &[Option<u32>]) -> Option<f64> {
    watched.iter().map(|pid| cpu_seconds(*pid)).sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Synced single-writer batches per second on this disk, each batch carrying
/// `batch` puts of about the size of one stored audit event.
fn raw_synced_rate(dir: &std::path::Path, batches: u64, batch: u64) -> anyhow::Result<f64> {
    let engine = Engine::open(&dir.join("raw"))?;
    let value = vec![7u8; 1500];
    let started = Instant::now();
    for b in 0..batches {
        let ops =
            (0..batch).map(|i| Op::Put(format!("k{b:08}-{i:04}").into_bytes(), value.clone()));
        engine.write(ops, true)?;
    }
    Ok(batches as f64 / started.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let dir = tempfile::tempdir()?;
    println!(
        "kelemetry-bench: data in {} (same disk for both measurements)",
        dir.path().display()
    );

    println!(
        "raw RocksDB: {} synced batches of {} puts ...",
        opts.raw_batches, opts.batch
    );
    let raw = raw_synced_rate(dir.path(), opts.raw_batches, opts.batch)?;
    println!("raw RocksDB synced batches/s: {raw:.0}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut metrics_urls = opts.metrics.clone();
    let (node, urls) = if opts.targets.is_empty() {
        let data_dir = dir.path().join("node");
        let args = kelemetry::cli::ServeArgs::loopback(&data_dir, opts.shards)
            .map_err(anyhow::Error::msg)?;
        let node = runtime.block_on(kelemetry::server::start(args))?;
        let url = format!("http://{}/audit/bench", node.http_addr);
        metrics_urls.push(format!("http://{}", node.metrics_addr));
        (Some(node), vec![url])
    } else {
        let urls = opts
            .targets
            .iter()
            .map(|t| format!("{}/audit/bench", t.trim_end_matches('/')))
            .collect();
        (None, urls)
    };

    let t0 = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
    let next_batch = Arc::new(AtomicU64::new(0));
    let load = Load {
        clients: opts.clients,
        batch: opts.batch,
    };
    if opts.preload > 0 {
        preload(
            load,
            opts.preload,
            &urls,
            t0,
            &next_batch,
            &dir.path().join("node"),
        )?;
    }
    let debt_at_start = metrics_now(&metrics_urls).map(|texts| compaction_debt(&texts));
    let deadline = Instant::now() + opts.duration;
    let started = Instant::now();
    let Clients {
        workers,
        acked,
        refused,
        latencies,
        ..
    } = Clients::start(load, &urls, t0, &next_batch, Stop::At(deadline));
    let mut last = 0;
    let watched: Vec<Option<u32>> = if opts.pids.is_empty() {
        vec![None]
    } else {
        opts.pids.iter().copied().map(Some).collect()
    };
    let mut series: Vec<Vec<(f64, f64)>> = vec![Vec::new(); watched.len()];
    let cpu_at_start = cpu_of(&watched);
    let mut next_sample = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        let now = acked.load(Ordering::Relaxed);
        let t = started.elapsed().as_secs_f64();
        println!(
            "  {t:>5.1}s  acked {:>9} events  {:>8.0} events/s (last 2s)",
            now,
            (now - last) as f64 / 2.0
        );
        last = now;
        if let Some(every) = opts.rss_every {
            if Instant::now() >= next_sample {
                next_sample += every;
                let rss: Vec<String> = watched
                    .iter()
                    .zip(series.iter_mut())
                    .map(|(pid, s)| {
                        let mib = rss_mib(*pid).unwrap_or(0.0);
                        s.push((t, mib));
                        format!("{mib:.1}")
                    })
                    .collect();
                println!("  {t:>5.1}s  rss MiB {}", rss.join(" "));
            }
        }
    }
    for w in workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let events = acked.load(Ordering::Relaxed);
    let cpu_used = cpu_of(&watched)
        .zip(cpu_at_start)
        .map(|(end, start)| end - start);
    let rate = events as f64 / elapsed;
    let mut lat = latencies
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    lat.sort();
    let at_end = metrics_now(&metrics_urls);
    let outboxes = at_end.as_deref().map(outbox_report);
    let debt_at_end = at_end.as_deref().map(compaction_debt);
    if let Some(node) = node {
        runtime.block_on(node.shutdown())?;
    }

    println!("---");
    let against = if opts.targets.is_empty() {
        format!("one in-process node with {} shards", opts.shards)
    } else {
        format!("{} running nodes", opts.targets.len())
    };
    println!(
        "clients {} x {} events/request against {against}, {:.1}s",
        opts.clients, opts.batch, elapsed
    );
    println!("ingest, durable ack (200 after Raft commit): {rate:.0} events/s ({events} events, {} refused requests)", refused.load(Ordering::Relaxed));
    println!(
        "request latency p50 {:?} p99 {:?} max {:?}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
    if let Some((delivered, waiting)) = outboxes {
        println!("owner links: {delivered} delivered across shards during the run, {waiting} waiting in outboxes at its end");
    }
    if let (Some(start), Some(end)) = (debt_at_start, debt_at_end) {
        println!(
            "compaction debt (RocksDB's pending compaction bytes): {:.0} MiB at the start of the run, {:.0} MiB at its end",
            start as f64 / 1_048_576.0,
            end as f64 / 1_048_576.0
        );
    }
    if let (Some(cpu), true) = (cpu_used, events > 0) {
        let whose = if opts.pids.is_empty() {
            "this process (node and clients)".to_string()
        } else {
            format!("the {} node processes", opts.pids.len())
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "CPU per acknowledged event: {:.0} us ({cpu:.1} s of CPU in {whose}, {:.0}% of {cores} cores)",
            cpu * 1e6 / events as f64,
            cpu / elapsed / cores as f64 * 100.0
        );
    }
    println!("raw RocksDB synced batches/s: {raw:.0}");
    println!(
        "ratio: {:.1} acknowledged events per raw synced batch",
        rate / raw
    );
    for (pid, s) in watched.iter().zip(&series) {
        if s.is_empty() {
            continue;
        }
        let values: Vec<f64> = s.iter().map(|(_, m)| *m).collect();
        let (min, max) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        let who = pid.map_or("in-process node".to_string(), |p| format!("pid {p}"));
        println!(
            "rss of {who}: {} samples, min {min:.1} MiB, max {max:.1} MiB, last {:.1} MiB, slope {:+.2} MiB/min",
            s.len(),
            values.last().copied().unwrap_or(0.0),
            slope_per_minute(s)
        );
    }
    Ok(())
}
