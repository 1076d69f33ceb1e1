//! `kelemetry-watch-bench`: watch-to-span latency. A node watches a simulated
//! cluster (`--cluster`); Events are created in the simulator one at a time, and each
//! one's latency is the time from its creation until the node's Jaeger API returns
//! it as a span of its object's trace. Prints p50, p99 and max next to the count.
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
    let sim = SimProcess::start_at(&sim_bin, &kubeconfig, &[], tempfile::tempdir()?)?;
    let client = Client::new(Duration::from_secs(10));
    let as_admin = [
        ("Impersonate-User", "kubernetes-admin"),
        ("Content-Type", "application/json"),
    ];
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "target"}});
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
        loop {
            let (_, body) = client.get(&search)?;
            if body.contains(&format!("\"operationName\":\"{reason}\"")) {
                if i > 0 {
                    latencies.push(start.elapsed());
                }
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(30),
                "Event {i} never became a span"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    latencies.sort();
    println!(
        "watch-to-span latency over {} Events: p50 {:?} p99 {:?} max {:?}",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    println!("(time from creating the Event in the simulator until /api/traces returns its span; includes polling every 2 ms)");
    Ok(())
}
