//! The Event watcher of one cluster: lists and watches `core/v1` Events (kube-rs's
//! watcher relists after a `410 Gone` and backs off on errors) and submits each as
//! a `KubeEvent` command to its object's shard, retrying until it is committed. An
//! Event the shard has seen (same uid and resourceVersion) is a duplicate there, so
//! a relist adds nothing.

use super::ClusterSource;
use crate::metrics::WATCH_SYNCED;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kelemetry_actors::IngestRouter;
use kelemetry_core::event::KubeEventRecord;
use kelemetry_core::Command;
use kube::runtime::{watcher, WatchStreamExt};
use tokio::sync::watch;

/// Watches the Events of `source` until `stop` turns true. Every wait ends as soon
/// as `stop` is true, including when it turned true during an earlier wait.
pub async fn run(source: ClusterSource, router: IngestRouter, mut stop: watch::Receiver<bool>) {
    let Some(client) = super::connect(&source, &mut stop).await else {
        return;
    };
    let api: kube::Api<Event> = kube::Api::all(client);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    tracing::info!(cluster = %source.name, "watching Events");
    let synced = WATCH_SYNCED.with_label_values(&[&source.name, "events"]);
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = stop.wait_for(|stopped| *stopped) => None,
        };
        match next {
            Some(Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e))) => {
                forward(&source.name, &e, &router, &mut stop).await;
            }
            Some(Ok(watcher::Event::InitDone)) => synced.set(1),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::warn!(cluster = %source.name, error = %e, "Event watch failed; retrying")
            }
            None => {
                synced.set(0);
                return;
            }
        }
    }
}

/// Submits one Event until it is committed (or the watcher stops).
async fn forward(
    cluster: &str,
    e: &Event,
    router: &IngestRouter,
    stop: &mut watch::Receiver<bool>,
) {
    let json = match serde_json::to_string(e) {
        Ok(j) => j,
        Err(err) => {
            tracing::warn!(error = %err, "cannot encode an Event");
            return;
        }
    };
    let record = match KubeEventRecord::from_json(cluster, &json) {
        Ok(r) => r,
        Err(err) => {
            tracing::debug!(error = %err, "Event not traced");
            return;
        }
    };
    super::commit(cluster, "event", Command::KubeEvent(record), router, stop).await;
}
