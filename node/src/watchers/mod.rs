//! Kubernetes watchers: for each configured cluster (`--cluster NAME=KUBECONFIG`,
//! `--in-cluster NAME`), a watcher of `core/v1` Events and watchers of every object
//! resource, each forwarding what it sees to its object's shard as a command. Watchers are stateless forwarders: the shard dedupes
//! an Event by uid and resourceVersion, so a relist or a second watcher creates no
//! second span.
//!
//! Duties ([`duties`]): which node runs which watcher follows the roster the
//! metadata group replicates; a node runs none while it has lost contact with it.
//!
//! - [`discovery`]: which resources a cluster serves and how kinds map to them.
//! - [`events`]: the Event watcher.
//! - [`objects`]: the object watchers (every discovered resource), the source of
//!   diffs and snapshots when the audit policy records no objects.

pub mod discovery;
pub mod duties;
pub mod events;
pub mod objects;

use crate::metrics::INGEST_EVENTS;
use kelemetry_actors::IngestRouter;
use kelemetry_core::{Command, CommandOutcome};
use std::path::PathBuf;
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

/// A spawned watcher and the switch that stops it.
pub(crate) struct WatchTask {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WatchTask {
    /// Spawns `make(stop)`.
    pub(crate) fn spawn<F>(make: impl FnOnce(watch::Receiver<bool>) -> F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (stop, rx) = watch::channel(false);
        Self {
            stop,
            task: tokio::spawn(make(rx)),
        }
    }

    /// Asks the watcher to stop without waiting for it.
    pub(crate) fn signal(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops the watcher and waits until it has.
    pub(crate) async fn stop(self) {
        self.signal();
        let _ = self.task.await;
    }
}
