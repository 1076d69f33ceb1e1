//! Load mode: the background of a busy cluster for benchmarks and soaks. Deployments
//! are created at start; then, as `kubernetes-admin` (so every request is audited as
//! a user's would be), Pods are deleted at random (their ReplicaSets replace them) and
//! Deployments are rolled to a new image at the configured rates. With the kubelets
//! renewing their node leases and the controllers reacting, this is a cluster's
//! steady traffic.

use crate::apiserver::patch::PatchType;
use crate::apiserver::{ApiServer, DeletePropagation};
use crate::audit::Requester;
use crate::controllers::client::{Client, ObjectId};
use crate::store::ResourceId;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What the load generator does.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct LoadSettings {
    /// Deployments created at start (`load-0`, `load-1`, ...; 0 disables load mode).
    #[arg(long = "load-deployments", default_value_t = 0)]
    pub deployments: usize,
    /// Replicas of each load Deployment.
    #[arg(long = "load-replicas", default_value_t = 10)]
    pub replicas: usize,
    /// Pods deleted per minute (each is replaced by its ReplicaSet).
    #[arg(long = "load-pod-churn-per-min", default_value_t = 60.0)]
    pub pod_churn_per_min: f64,
    /// Deployments rolled to a new image per minute.
    #[arg(long = "load-rollouts-per-min", default_value_t = 2.0)]
    pub rollouts_per_min: f64,
}

/// Runs the load until the process ends.
pub async fn run(api: Arc<ApiServer>, settings: LoadSettings) {
    if settings.deployments == 0 {
        return;
    }
    let admin = Client::acting_as(
        api.clone(),
        Requester::component(
            "kubernetes-admin",
            &["system:masters"],
            "kelemetry-sim-load/v1",
        ),
    );
    let deployments = ResourceId::new("apps", "deployments");
    for i in 0..settings.deployments {
        let name = format!("load-{i}");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
            "spec": {"replicas": settings.replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "app:0"}]}}}});
        let id = ObjectId {
            resource: deployments.clone(),
            namespace: "default".into(),
            name,
        };
        if let Err(e) = admin.create(&id, d) {
            tracing::warn!(error = %e.message, "load: cannot create a Deployment");
        }
    }
    tracing::info!(
        deployments = settings.deployments,
        replicas = settings.replicas,
        "load: Deployments created"
    );
    let every = |per_min: f64| (per_min > 0.0).then(|| Duration::from_secs_f64(60.0 / per_min));
    let churn = every(settings.pod_churn_per_min);
    let rollouts = every(settings.rollouts_per_min);
    let mut churn_tick = churn.map(tokio::time::interval);
    let mut rollout_tick = rollouts.map(tokio::time::interval);
    let mut step: u64 = 0;
    loop {
        step += 1;
        tokio::select! {
            _ = tick(&mut churn_tick) => delete_a_pod(&admin, step),
            _ = tick(&mut rollout_tick) => roll(&admin, &deployments, step, settings.deployments),
        }
    }
}

async fn tick(t: &mut Option<tokio::time::Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Deletes the `step`-th Pod (modulo how many there are) of the load Deployments.
fn delete_a_pod(admin: &Client, step: u64) {
    let pods = ResourceId::new("", "pods");
    let (items, _) = admin.api().store().list(&pods, Some("default"));
    let load: Vec<_> = items
        .iter()
        .filter(|p| {
            p["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("load-"))
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect();
    if load.is_empty() {
        return;
    }
    let pick = load[(xxhash_rust::xxh3::xxh3_64(&step.to_be_bytes()) % load.len() as u64) as usize];
    let id = ObjectId::of(&pods, pick);
    if let Err(e) = admin.delete(&id, DeletePropagation::Background) {
        tracing::debug!(error = %e.message, "load: cannot delete a Pod");
    }
}

/// Sets a new image on load Deployment `step % count`.
fn roll(admin: &Client, deployments: &ResourceId, step: u64, count: usize) {
    let id = ObjectId {
        resource: deployments.clone(),
        namespace: "default".into(),
        name: format!("load-{}", step as usize % count),
    };
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": format!("app:{step}")}]}}}});
    if let Err(e) = admin.patch(&id, "", PatchType::Strategic, patch) {
        tracing::warn!(error = %e.message, "load: cannot roll a Deployment");
    }
}
