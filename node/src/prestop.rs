//! The StatefulSet's preStop decision (`kelemetry cluster leave-if-scaled-down`): a
//! pod whose ordinal is at or above the StatefulSet's `spec.replicas` is being scaled
//! away, so its node drains (every replica and all leadership move off, then it is
//! removed from the ring) before the pod stops. Any other termination (a restart, an
//! eviction, a rolling upgrade) keeps the node's data where it is and returns at once.
//!
//! With `podManagementPolicy: Parallel` the leaving pods stop together; each waits
//! until every higher leaving ordinal has left, so the nodes drain one at a time.

use crate::admin::{agent, drain, get_json};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Flags of `kelemetry cluster leave-if-scaled-down`.
#[derive(Args, Debug, Clone)]
pub struct LeaveArgs {
    /// The StatefulSet the pod belongs to.
    #[arg(long, env = "KELEMETRY_STATEFULSET")]
    pub statefulset: String,
    /// Its namespace; defaults to `$POD_NAMESPACE`, else the service account's.
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// This pod's name (`<statefulset>-<ordinal>`); defaults to `$HOSTNAME`.
    #[arg(long, env = "HOSTNAME")]
    pub pod: String,
    /// A kubeconfig for the API server instead of the pod's service account.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// This node's admin API.
    #[arg(
        long,
        env = "KELEMETRY_TARGET",
        default_value = "http://127.0.0.1:8080"
    )]
    pub target: String,
    /// Give up after this long (keep it below terminationGracePeriodSeconds).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// What the hook does for a pod of `ordinal` when the StatefulSet wants `replicas`.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The pod stays in the StatefulSet: restart, eviction or upgrade.
    Stay,
    /// The pod is scaled away: drain its node, after the higher leaving ordinals.
    Leave {
        /// Leaving ordinals above this one, which leave first.
        after: Vec<u64>,
    },
}

/// The decision for `ordinal` among `replicas`, with the highest ordinal that still
/// has a member in the ring (`highest`).
pub fn decide(ordinal: u64, replicas: u64, highest: u64) -> Decision {
    if ordinal < replicas {
        Decision::Stay
    } else {
        Decision::Leave {
            after: (ordinal + 1..=highest).collect(),
        }
    }
}

fn ordinal_of(pod: &str) -> anyhow::Result<u64> {
    pod.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .with_context(|| format!("--pod {pod}: expected <statefulset>-<ordinal>"))
}

fn namespace(args: &LeaveArgs) -> String {
    args.namespace.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|_| "default".into())
    })
}

/// `spec.replicas` of the StatefulSet, read through the API server.
fn desired_replicas(args: &LeaveArgs) -> anyhow::Result<u64> {
    let source = crate::watchers::ClusterSource {
        name: "self".into(),
        kubeconfig: args.kubeconfig.clone(),
    };
    let ns = namespace(args);
    let read = async {
        let client = crate::watchers::client(&source).await?;
        let api: kube::Api<k8s_openapi::api::apps::v1::StatefulSet> =
            kube::Api::namespaced(client, &ns);
        let sts = api
            .get(&args.statefulset)
            .await
            .with_context(|| format!("statefulset {ns}/{}", args.statefulset))?;
        Ok(sts.spec.replicas.unwrap_or(1).max(0) as u64)
    };
    // The CLI runs inside the binary's runtime; a caller without one gets its own.
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => tokio::task::block_in_place(|| handle.block_on(read)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(read),
    }
}

/// Members of the ring by id with their state, as the node reports them.
fn members(target: &str) -> anyhow::Result<Vec<(u64, String)>> {
    let v = get_json(&agent(), target, "/cluster/status")?;
    Ok(v["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["id"].as_u64()?, n["state"].as_str()?.to_string())))
        .collect())
}

/// Runs the hook.
pub fn run(args: &LeaveArgs) -> anyhow::Result<()> {
    let deadline = Instant::now() + args.timeout;
    let ordinal = ordinal_of(&args.pod)?;
    let replicas = desired_replicas(args)?;
    let ring = members(&args.target)?;
    let highest = ring.iter().map(|(id, _)| *id).max().unwrap_or(ordinal);
    let after = match decide(ordinal, replicas, highest) {
        Decision::Stay => {
            println!(
                "{} is ordinal {ordinal} of {replicas}: not scaling down, leaving the ring as it is",
                args.pod
            );
            return Ok(());
        }
        Decision::Leave { after } => after,
    };
    println!(
        "{} is ordinal {ordinal}, the StatefulSet wants {replicas}: draining node {ordinal}",
        args.pod
    );
    loop {
        let ring = members(&args.target)?;
        let waiting: Vec<u64> = after
            .iter()
            .copied()
            .filter(|id| ring.iter().any(|(m, state)| m == id && state != "removed"))
            .collect();
        if waiting.is_empty() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "nodes {waiting:?} are still leaving after --timeout"
        );
        eprintln!("waiting for nodes {waiting:?} to leave first");
        std::thread::sleep(Duration::from_secs(1));
    }
    drain(
        ordinal,
        &args.target,
        false,
        deadline.saturating_duration_since(Instant::now()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pods_past_the_wanted_count_leave_highest_first() {
        assert_eq!(decide(2, 5, 4), Decision::Stay, "a restart keeps its data");
        assert_eq!(decide(4, 3, 4), Decision::Leave { after: vec![] });
        assert_eq!(decide(3, 3, 4), Decision::Leave { after: vec![4] });
        assert_eq!(decide(0, 0, 2), Decision::Leave { after: vec![1, 2] });
        assert_eq!(ordinal_of("kelemetry-12").unwrap(), 12);
        assert!(ordinal_of("kelemetry").is_err());
    }
}
