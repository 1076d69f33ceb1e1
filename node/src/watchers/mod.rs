//! Kubernetes watchers: for each configured cluster (`--cluster NAME=KUBECONFIG`,
//! `--in-cluster NAME`), a watcher of `core/v1` Events and watchers of every object
//! resource, each forwarding what it sees to its object's shard as a command. Watchers are stateless forwarders: the shard dedupes
//! an Event by uid and resourceVersion, so a relist or a second watcher creates no
//! second span.
//!
//! Duty: the node that leads the metadata group runs the watchers, and stops them
//! when it loses the lead (another node starts them).
//!
//! - [`events`]: the Event watcher.
//! - [`objects`]: the object watchers (every discovered resource), the source of
//!   diffs and snapshots when the audit policy records no objects.

pub mod events;
pub mod objects;

use crate::metrics::INGEST_EVENTS;
use kelemetry_actors::IngestRouter;
use kelemetry_core::{Command, CommandOutcome};
use kelemetry_raft::ShardSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where a watched cluster's API server is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSource {
    /// The cluster name every span and the webhook path carry.
    pub name: String,
    /// A kubeconfig file, or `None` for the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
}

/// Why a cluster's client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The kubeconfig cannot be read or used.
    #[error("--cluster {name}: {message}")]
    Config {
        /// The cluster.
        name: String,
        /// What went wrong.
        message: String,
    },
}

/// A client for `source`.
pub async fn client(source: &ClusterSource) -> Result<kube::Client, WatchError> {
    let err = |message: String| WatchError::Config {
        name: source.name.clone(),
        message,
    };
    let config = match &source.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| err(e.to_string()))?
        }
        None => kube::Config::incluster().map_err(|e| err(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| err(e.to_string()))
}

/// Longest pause between two attempts to connect or to commit one command.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Builds the client of `source`, retrying until it works; `None` if `stop` turned
/// true first.
pub(crate) async fn connect(
    source: &ClusterSource,
    stop: &mut watch::Receiver<bool>,
) -> Option<kube::Client> {
    loop {
        match client(source).await {
            Ok(c) => return Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the cluster client; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(MAX_RETRY) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return None,
                }
            }
        }
    }
}

/// Submits one watched command until it is committed (or the watcher stops),
/// counting it under `source` (`event`, `object`) in the ingest metric.
pub(crate) async fn commit(
    cluster: &str,
    source: &str,
    command: Command,
    router: &IngestRouter,
    stop: &mut watch::Receiver<bool>,
) {
    let mut pause = Duration::from_millis(100);
    loop {
        match router.submit(vec![command.clone()]).await {
            Ok(outcomes) => {
                let result = match outcomes.first() {
                    Some(CommandOutcome::Duplicate) => "duplicate",
                    _ => "accepted",
                };
                INGEST_EVENTS
                    .with_label_values(&[cluster, source, result])
                    .inc();
                return;
            }
            Err(err) => {
                tracing::warn!(cluster, source, error = %err, "cannot commit a watched change yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
                pause = (pause * 2).min(MAX_RETRY);
            }
        }
    }
}

/// How often the duty runner checks whether this node leads the metadata group.
const DUTY_CHECK: Duration = Duration::from_millis(500);

/// Runs the watchers of `clusters` while this node leads the metadata group, until
/// `stop` turns true.
pub async fn run_duties(
    clusters: Vec<ClusterSource>,
    settings: objects::ObjectWatchSettings,
    shards: Arc<ShardSet>,
    router: IngestRouter,
    mut stop: watch::Receiver<bool>,
) {
    if clusters.is_empty() {
        return;
    }
    let mut running: Option<(watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>)> = None;
    let mut tick = tokio::time::interval(DUTY_CHECK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
        let leads = shards.meta().is_leader();
        match (&running, leads) {
            (None, true) => {
                tracing::info!(
                    clusters = clusters.len(),
                    "this node leads the metadata group: starting the Kubernetes watchers"
                );
                let (tx, rx) = watch::channel(false);
                let mut tasks = Vec::new();
                for c in &clusters {
                    tasks.push(tokio::spawn(events::run(
                        c.clone(),
                        router.clone(),
                        rx.clone(),
                    )));
                    tasks.push(tokio::spawn(objects::run(
                        c.clone(),
                        settings.clone(),
                        router.clone(),
                        rx.clone(),
                    )));
                }
                running = Some((tx, tasks));
            }
            (Some(_), false) => {
                tracing::info!("this node no longer leads the metadata group: stopping the Kubernetes watchers");
                if let Some((tx, tasks)) = running.take() {
                    let _ = tx.send(true);
                    for t in tasks {
                        let _ = t.await;
                    }
                }
            }
            _ => {}
        }
    }
    if let Some((tx, tasks)) = running.take() {
        let _ = tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
    }
}
