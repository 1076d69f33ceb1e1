//! `kelemetry-demo`: posts simulated Deployment lifecycles to a node's audit webhook,
//! as a quick way to see traces without a Kubernetes cluster.

use clap::Parser;
use kelemetry_testkit::workload::deployment_lifecycle;
use kelemetry_testkit::Client;
use std::process::ExitCode;
use std::time::Duration;

/// Demo options.
#[derive(Parser, Debug)]
#[command(
    name = "kelemetry-demo",
    about = "Post simulated Deployment lifecycles to a node's audit webhook"
)]
struct Opts {
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

fn run(opts: &Opts) -> Result<(), String> {
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
    match run(&Opts::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kelemetry-demo: {e}");
            ExitCode::FAILURE
        }
    }
}
