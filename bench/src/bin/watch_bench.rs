//! `kelemetry-watch-bench`: watch-to-span latency. A node watches a simulated
//! cluster (`--cluster`) that audits at `Metadata` level to the node, so diffs can
//! only come from the object watchers. Two probes, one at a time:
//! - Events created in the simulator: the time from creation until the node's Jaeger
//!   API returns the Event as a span of its object's trace;
//! - object versions (a ConfigMap patched): the time from the patch until the
//!   patch's audit span carries the diff the watched version gave it.
//!
//! Prints p50, p99 and max next to the count.
//! Run with `cargo run --release -p kelemetry-bench --bin kelemetry-watch-bench`
//! (it starts `kelemetry` and `kelemetry-sim` from the same build directory).

use clap::Parser;
use kelemetry_testkit::client::urlencode;
use kelemetry_testkit::sim::{sibling_binary, SimProcess};
use kelemetry_testkit::{Client, NodeProcess};
use serde_json::json;
use std::time::{Duration, Instant};

/// Benchmark options.
#[derive(Parser, Debug)]
#[command(name = "kelemetry-watch-bench")]
struct Opts {
    /// Events to create, one after another.
    #[arg(long, default_value_t = 200)]
    events: usize,
    /// ConfigMap patches to make, one after another.
    #[arg(long, default_value_t = 200)]
    versions: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let me = std::env::current_exe()?;
    let node_bin = sibling_binary(&me, "kelemetry")?;
    let sim_bin = sibling_binary(&me, "kelemetry-sim")?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    let watched = format!("bench={}", kubeconfig.display());
    let mut node = NodeProcess::new(
        &node_bin,
        &dir.path().join("node"),
        &["--shards", "16", "--cluster", &watched],
    )
    .log_filter("warn");
    node.spawn()?;
    node.wait_ready(Duration::from_secs(60))?;
    let webhook = format!("http://{}/audit/bench", node.addrs.http);
    let sim_args = [
        "--audit-level",
        "Metadata",
        "--audit-webhook",
        &webhook,
        "--audit-batch-max-wait",
        "5ms",
    ];
    let sim = SimProcess::start_at(&sim_bin, &kubeconfig, &sim_args, tempfile::tempdir()?)?;
    let client = Client::new(Duration::from_secs(10));
    let as_admin = [
        ("Impersonate-User", "kubernetes-admin"),
        ("Content-Type", "application/json"),
    ];
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "target"},
                    "data": {"k": "v0"}});
    let cms = format!("{}/api/v1/namespaces/default/configmaps", sim.server());
    client.send("POST", &cms, &as_admin, Some(cm.to_string().as_bytes()))?;
    let (_, target) = client.get_json(&format!("{cms}/target"))?;
    let events = format!("{}/api/v1/namespaces/default/events", sim.server());
    let tags = urlencode(&json!({"resource": "configmaps", "name": "target"}).to_string());
    let search = format!(
        "http://{}/api/traces?service=tracing&raw=true&operation=bench&limit=10&tags={tags}",
        node.addrs.query
    );
    // Event 0 warms up: the watcher starts once the node leads the metadata group
    // and the simulator's kubeconfig exists; it is not counted.
    let mut latencies = Vec::with_capacity(opts.events);
    for i in 0..=opts.events {
        let reason = format!("Bench{i}");
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("target.bench{i}"), "namespace": "default"},
            "involvedObject": {"kind": "ConfigMap", "namespace": "default", "name": "target",
                               "uid": target["metadata"]["uid"], "apiVersion": "v1"},
            "reason": reason, "message": "watch-to-span latency probe",
            "source": {"component": "kelemetry-watch-bench"},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": "Normal",
        });
        let start = Instant::now();
        client.send(
            "POST",
            &events,
            &as_admin,
            Some(event.to_string().as_bytes()),
        )?;
        let span = format!("\"operationName\":\"{reason}\"");
        let latency = poll_until(&client, &search, &span, start, "an Event's span")?;
        if i > 0 {
            latencies.push(latency);
        }
    }
    report(
        "Events",
        latencies,
        "creating the Event in the simulator until /api/traces returns its span",
    );

    let mut latencies = Vec::with_capacity(opts.versions);
    let patch_headers = [
        ("Impersonate-User", "kubernetes-admin"),
        ("Content-Type", "application/merge-patch+json"),
    ];
    for i in 1..=opts.versions {
        let patch = json!({"data": {"k": format!("v{i}")}});
        let start = Instant::now();
        client.send(
            "PATCH",
            &format!("{cms}/target"),
            &patch_headers,
            Some(patch.to_string().as_bytes()),
        )?;
        let diff = format!(r#"data.k \"v{}\" -> \"v{i}\""#, i - 1);
        latencies.push(poll_until(
            &client,
            &search,
            &diff,
            start,
            "a patch's diff",
        )?);
    }
    report(
        "object versions",
        latencies,
        "patching the ConfigMap in the simulator until its audit span carries the watched diff (audit batches of at most 5 ms)",
    );
    Ok(())
}

/// Reads `search` every 2 ms until its body contains `needle`; the time since
/// `start`, or an error naming `what` after 30 seconds.
fn poll_until(
    client: &Client,
    search: &str,
    needle: &str,
    start: Instant,
    what: &str,
) -> anyhow::Result<Duration> {
    loop {
        let (_, body) = client.get(search)?;
        if body.contains(needle) {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "{what} never became queryable ({needle})"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Prints the percentiles of `latencies` of `what`, measured as `from`.
fn report(what: &str, mut latencies: Vec<Duration>, from: &str) {
    latencies.sort();
    println!(
        "watch-to-span latency over {} {what}: p50 {:?} p99 {:?} max {:?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    println!("(time from {from}; includes polling every 2 ms)");
}
