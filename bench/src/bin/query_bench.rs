//! `kelemetry-query-bench`: latency of Jaeger queries on one node holding a wide owner
//! tree (1 Deployment, 10 ReplicaSets, 100 Pods over 64 shards): the full-tree search,
//! reopening that result by trace ID, and a single-object search. Prints p50/p99.
//! With `--preload N` the node first stores N other events (growth mode), so the
//! figures can be set beside the empty store's.
//! Run with `cargo run --release -p kelemetry-bench --bin kelemetry-query-bench`.

use clap::Parser;
use kelemetry_testkit::workload::owner_tree;
use std::time::{Duration, Instant};

/// Benchmark options.
#[derive(Parser, Debug)]
#[command(name = "kelemetry-query-bench")]
struct Opts {
    /// Requests per measured query.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// ReplicaSets under the Deployment.
    #[arg(long, default_value_t = 10)]
    replicasets: u32,
    /// Pods under each ReplicaSet.
    #[arg(long, default_value_t = 10)]
    pods: u32,
    /// Growth mode: store this many other events (new pods, 8 clients x 100 per
    /// request) before building the tree.
    #[arg(long, default_value_t = 0)]
    preload: u64,
}

fn get(agent: &ureq::Agent, url: &str) -> anyhow::Result<serde_json::Value> {
    let mut r = agent.get(url).call()?;
    anyhow::ensure!(r.status() == 200, "{url}: {}", r.status());
    Ok(serde_json::from_str(&r.body_mut().read_to_string()?)?)
}

fn measure(name: &str, n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f()?;
        lat.push(t.elapsed());
        if (i + 1) % 50 == 0 {
            eprintln!("  {name}: {}/{n}", i + 1);
        }
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: p50 {:?} p99 {:?} max {:?} ({n} requests)",
        p(0.5),
        p(0.99),
        lat[lat.len() - 1]
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let args = kelemetry::cli::ServeArgs::loopback(dir.path(), 64).map_err(anyhow::Error::msg)?;
    let node = runtime.block_on(kelemetry::server::start(args))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    if opts.preload > 0 {
        let load = kelemetry_bench::Load {
            clients: 8,
            batch: 100,
        };
        kelemetry_bench::preload(
            load,
            opts.preload,
            &[format!("http://{}/audit/bench", node.http_addr)],
            chrono::Utc::now().timestamp_micros() - 3_600_000_000,
            &std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
            dir.path(),
        )?;
    }
    let t0 = chrono::Utc::now().timestamp_micros() - 600_000_000;
    for batch in owner_tree("default", "big", opts.replicasets, opts.pods, t0) {
        let mut r = agent
            .post(format!("http://{}/audit/bench", node.http_addr))
            .header("Content-Type", "application/json")
            .send(batch.to_string().as_bytes())?;
        anyhow::ensure!(
            r.status() == 200,
            "ingest: {}",
            r.body_mut().read_to_string()?
        );
    }
    let objects = 1 + opts.replicasets as usize * (1 + opts.pods as usize);
    let q = |service: &str, tags: &str| {
        format!(
            "http://{}/api/traces?service={}&tags={}",
            node.query_addr,
            service
                .replace(' ', "%20")
                .replace('[', "%5B")
                .replace(']', "%5D"),
            tags.replace('"', "%22")
                .replace('{', "%7B")
                .replace('}', "%7D")
                .replace(':', "%3A")
                .replace(',', "%2C")
        )
    };
    let full = q(
        "tracing [full tree]",
        r#"{"resource":"deployments","name":"big"}"#,
    );
    let started = Instant::now();
    let id = loop {
        let v = get(&agent, &full)?;
        let spans = v["data"][0]["spans"].as_array().map_or(0, Vec::len);
        if spans == objects {
            break v["data"][0]["traceID"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "tree incomplete: {spans} of {objects} spans"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "tree of {objects} objects over 64 shards ingested and linked in {:?}",
        started.elapsed()
    );
    measure(
        "full-tree search (tracing [full tree], 111 objects)",
        opts.requests,
        || get(&agent, &full).map(|_| ()),
    )?;
    let by_id = format!("http://{}/api/traces/{id}", node.query_addr);
    measure("full-tree trace by ID (re-render)", opts.requests, || {
        get(&agent, &by_id).map(|_| ())
    })?;
    let single = q("tracing", r#"{"resource":"pods","name":"big-rs03-p4"}"#);
    measure(
        "single-object search (tracing, one pod)",
        opts.requests,
        || {
            let v = get(&agent, &single)?;
            anyhow::ensure!(
                v["data"].as_array().map_or(0, Vec::len) == 1,
                "pod not found"
            );
            Ok(())
        },
    )?;
    runtime.block_on(node.shutdown())?;
    Ok(())
}
