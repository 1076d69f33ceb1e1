//! `kelemetry-demo`: a three-node Kelemetry ring on this machine, fed by a
//! simulated Kubernetes (audit webhook and Event watcher) that runs a scripted
//! Deployment rollout; prints where to look and runs until Ctrl-C. Its nodes and
//! simulator end with it, even when it is killed before the ring is up.
//! `kelemetry-demo post` instead posts synthetic Deployment lifecycles to a running
//! node's webhook.

use clap::{Args, Parser, Subcommand};
use kelemetry_testkit::ports::free_port;
use kelemetry_testkit::sim::{sibling_binary, SimProcess};
use kelemetry_testkit::workload::deployment_lifecycle;
use kelemetry_testkit::{Client, NodeProcess};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Demo options.
#[derive(Parser, Debug)]
#[command(
    name = "kelemetry-demo",
    about = "A local Kelemetry ring fed by a simulated Kubernetes, or synthetic audit events for a running node"
)]
struct Opts {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    ring: RingArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Post synthetic Deployment lifecycles to a running node's audit webhook.
    Post(PostArgs),
}

/// Options of the ring demo.
#[derive(Args, Debug)]
struct RingArgs {
    /// Kelemetry nodes in the ring.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=7))]
    nodes: u32,
    /// Where the nodes keep their data (default: a new directory under the system temp dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Webhook, `/redirect` and admin address of the first node.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_addr: String,
    /// Jaeger API (and UI with --ui-dir) address of the first node.
    #[arg(long, default_value = "127.0.0.1:16686")]
    query_addr: String,
    /// A Jaeger UI build to serve on --query-addr.
    #[arg(long)]
    ui_dir: Option<PathBuf>,
    /// Exit after the scenario instead of running until Ctrl-C.
    #[arg(long)]
    once: bool,
}

/// Options of `post`.
#[derive(Args, Debug)]
struct PostArgs {
    /// Base URL of the node's webhook server.
    #[arg(
        long,
        env = "KELEMETRY_DEMO_TARGET",
        default_value = "http://127.0.0.1:8080"
    )]
    target: String,
    /// Cluster name to post as.
    #[arg(long, env = "KELEMETRY_DEMO_CLUSTER", default_value = "local", value_parser = cluster_name)]
    cluster: String,
    /// Number of Deployments (each with 2 ReplicaSets and 6 Pods).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    deployments: u32,
}

fn cluster_name(s: &str) -> Result<String, String> {
    kelemetry_core::key::validate_cluster_name(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

/// The cluster name the simulator's data carries.
const CLUSTER: &str = "demo";

fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let node = sibling_binary(&me, "kelemetry").map_err(|e| e.to_string())?;
    let sim = sibling_binary(&me, "kelemetry-sim").map_err(|e| e.to_string())?;
    Ok((node, sim))
}

/// Starts the ring: node 0 on the given addresses, the others on free ports.
fn start_ring(
    a: &RingArgs,
    data: &Path,
    kubeconfig: &Path,
    node_bin: &Path,
) -> Result<Vec<NodeProcess>, String> {
    let ports: Vec<u16> = (0..a.nodes).map(|_| free_port()).collect();
    let peers = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{i}=127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let watched = format!("{CLUSTER}={}", kubeconfig.display());
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let mut args = vec![
            "--node-id".to_string(),
            i.to_string(),
            "--peers".into(),
            peers.clone(),
            "--peer-addr".into(),
            format!("127.0.0.1:{port}"),
            "--shards".into(),
            "16".into(),
            "--cluster".into(),
            watched.clone(),
        ];
        if i == 0 {
            args.extend([
                "--http-addr".into(),
                a.http_addr.clone(),
                "--query-addr".into(),
                a.query_addr.clone(),
            ]);
            if let Some(ui) = &a.ui_dir {
                args.extend(["--ui-dir".into(), ui.display().to_string()]);
            }
        }
        let mut n = NodeProcess::new(node_bin, &data.join(format!("node-{i}")), &args)
            .log_filter("warn")
            .terminate_with_spawning_thread();
        n.spawn().map_err(|e| format!("node {i}: {e}"))?;
        nodes.push(n);
    }
    for (i, n) in nodes.iter_mut().enumerate() {
        n.wait_ready(Duration::from_secs(60))
            .map_err(|e| format!("node {i}: {e}"))?;
    }
    Ok(nodes)
}

/// The trace ID `/redirect` gives for the demo Deployment, once it is queryable.
fn traced(http: &str) -> Result<String, String> {
    let client = Client::new(Duration::from_secs(10));
    let url = format!(
        "http://{http}/redirect?cluster={CLUSTER}&resource=deployments&namespace=default&name=demo"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((302, location)) = client.get_location(&url) {
            if let Some(id) = location.strip_prefix("/trace/").filter(|id| id.len() == 32) {
                return Ok(id.to_string());
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("no trace of default/demo within 30 s ({url})"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ring(a: &RingArgs) -> Result<(), String> {
    let (node_bin, sim_bin) = binaries()?;
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = a
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&data).map_err(|e| format!("--data-dir {}: {e}", data.display()))?;
    let kubeconfig = data.join("kubeconfig");
    println!(
        "starting {} Kelemetry nodes in {} ...",
        a.nodes,
        data.display()
    );
    let nodes = start_ring(a, &data, &kubeconfig, &node_bin)?;
    let http = nodes[0].addrs.http.clone();
    let query = nodes[0].addrs.query.clone();
    let webhook = format!("http://{http}/audit/{CLUSTER}");
    println!("starting the Kubernetes simulator (audit webhook {webhook}) ...");
    let keep = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sim = SimProcess::start_tied_at(
        &sim_bin,
        &kubeconfig,
        &["--audit-webhook", &webhook, "--nodes", "3"],
        keep,
    )
    .map_err(|e| e.to_string())?;
    kelemetry_testkit::scenario::rollout(sim.server(), "demo", |s| {
        println!("scenario: {}", s.title)
    })
    .map_err(|e| e.to_string())?;
    sim.audit_flushed(Duration::from_secs(60))
        .map_err(|e| e.to_string())?;
    let id = traced(&http)?;
    let full_tree = format!("ff21000000{}", &id[10..]);
    println!();
    println!("Kelemetry ring ready; the Deployment default/demo is trace {id}. Try:");
    println!("  curl -s 'http://{query}/api/traces/{full_tree}'   # tracing [full tree]");
    println!("  curl -si 'http://{http}/redirect?cluster={CLUSTER}&resource=deployments&namespace=default&name=demo'");
    println!("  curl -s  'http://{query}/api/services'");
    println!(
        "  KUBECONFIG={} kubectl create deployment web --image=nginx --replicas=3",
        kubeconfig.display()
    );
    println!(
        "  KUBECONFIG={} kubectl get deployments,replicasets,pods,events",
        kubeconfig.display()
    );
    println!("  target/release/kelemetry cluster status --target http://{http}");
    match &a.ui_dir {
        Some(_) => println!("Jaeger UI: http://{query}/search?service=tracing&operation={CLUSTER}"),
        None => println!("Jaeger UI: add --ui-dir <Jaeger UI build> (e.g. ../shared/jaeger-ui) and open http://{query}/"),
    }
    if a.once {
        return Ok(());
    }
    println!("running until Ctrl-C or SIGTERM");
    let (stop, stopped) = std::sync::mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    let _ = stopped.recv();
    println!("stopping the simulator and the nodes ...");
    drop(sim);
    for mut node in nodes {
        let _ = node.terminate(Duration::from_secs(10));
    }
    Ok(())
}

fn post(opts: &PostArgs) -> Result<(), String> {
    let client = Client::new(Duration::from_secs(30));
    let url = format!(
        "{}/audit/{}",
        opts.target.trim_end_matches('/'),
        opts.cluster
    );
    let t0 = chrono::Utc::now().timestamp_micros() - 60_000_000;
    let mut accepted = 0;
    for d in 0..opts.deployments {
        let name = format!("demo-{d}");
        let (batches, _) = deployment_lifecycle("default", &name, t0 + i64::from(d) * 2_000_000);
        for batch in batches {
            let (status, body) = client
                .post_json(&url, batch.to_string().as_bytes())
                .map_err(|e| format!("--target {}: cannot reach the node: {e}", opts.target))?;
            if status != 200 {
                return Err(format!("{url} answered {status}: {body}"));
            }
            accepted += body["accepted"].as_u64().unwrap_or(0);
        }
        println!(
            "posted deployment default/{name} ({}/{})",
            d + 1,
            opts.deployments
        );
    }
    println!("{accepted} audit events accepted; query them with:");
    println!(
        "  curl -s 'http://127.0.0.1:16686/api/traces?service=tracing%20%5Bfull%20tree%5D&operation={}&tags=%7B%22resource%22%3A%22deployments%22%7D'",
        opts.cluster
    );
    println!(
        "  curl -si 'http://127.0.0.1:8080/redirect?cluster={}&resource=deployments&namespace=default&name=demo-0'",
        opts.cluster
    );
    Ok(())
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    let result = match &opts.command {
        Some(Command::Post(p)) => post(p),
        None => ring(&opts.ring),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kelemetry-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
