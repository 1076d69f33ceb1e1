//! `kelemetry demo`: posts simulated Deployment lifecycles to a node, as a quick way to
//! see traces without a Kubernetes cluster.

use crate::cli::DemoArgs;
use crate::workload::deployment_lifecycle;
use anyhow::{bail, Context};
use std::time::Duration;

/// Posts `args.deployments` lifecycles and prints where to look.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let url = format!(
        "{}/audit/{}",
        args.target.trim_end_matches('/'),
        args.cluster
    );
    let t0 = chrono::Utc::now().timestamp_micros() - 60_000_000;
    let mut accepted = 0;
    for d in 0..args.deployments {
        let name = format!("demo-{d}");
        let (batches, _) = deployment_lifecycle("default", &name, t0 + i64::from(d) * 2_000_000);
        for batch in batches {
            let mut r = agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(batch.to_string().as_bytes())
                .with_context(|| format!("--target {}: cannot reach the node", args.target))?;
            let body = r.body_mut().read_to_string().unwrap_or_default();
            if r.status() != 200 {
                bail!("{url} answered {}: {body}", r.status());
            }
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            accepted += v["accepted"].as_u64().unwrap_or(0);
        }
        println!(
            "posted deployment default/{name} ({}/{})",
            d + 1,
            args.deployments
        );
    }
    println!("{accepted} audit events accepted; query them with:");
    println!(
        "  curl -s 'http://127.0.0.1:16686/api/traces?service=tracing%20%5Bfull%20tree%5D&operation={}&tags=%7B%22resource%22%3A%22deployments%22%7D'",
        args.cluster
    );
    println!(
        "  curl -si 'http://127.0.0.1:8080/redirect?cluster={}&resource=deployments&namespace=default&name=demo-0'",
        args.cluster
    );
    Ok(())
}
