//! The Event watcher of one cluster: lists and watches `core/v1` Events (kube-rs's
//! watcher relists after a `410 Gone` and backs off on errors) and submits each as
//! a `KubeEvent` command to its object's shard, retrying until it is committed. An
//! Event the shard has seen (same uid and resourceVersion) is a duplicate there, so
//! a relist adds nothing.

use super::ClusterSource;
use crate::metrics::INGEST_EVENTS;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kelemetry_actors::IngestRouter;
use kelemetry_core::event::KubeEventRecord;
use kelemetry_core::{Command, CommandOutcome};
use kube::runtime::{watcher, WatchStreamExt};
use std::time::Duration;
use tokio::sync::watch;

/// Longest pause between two attempts to commit one Event.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Watches the Events of `source` until `stop` turns true. Every wait ends as soon
/// as `stop` is true, including when it turned true during an earlier wait.
pub async fn run(source: ClusterSource, router: IngestRouter, mut stop: watch::Receiver<bool>) {
    let client = loop {
        match super::client(&source).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the cluster client; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(MAX_RETRY) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
        }
    };
    let api: kube::Api<Event> = kube::Api::all(client);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    tracing::info!(cluster = %source.name, "watching Events");
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = stop.wait_for(|stopped| *stopped) => return,
        };
        match next {
            Some(Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e))) => {
                forward(&source.name, &e, &router, &mut stop).await;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::warn!(cluster = %source.name, error = %e, "Event watch failed; retrying")
            }
            None => return,
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
    let mut pause = Duration::from_millis(100);
    loop {
        match router
            .submit(vec![Command::KubeEvent(record.clone())])
            .await
        {
            Ok(outcomes) => {
                let result = match outcomes.first() {
                    Some(CommandOutcome::Duplicate) => "duplicate",
                    _ => "accepted",
                };
                INGEST_EVENTS
                    .with_label_values(&[cluster, "event", result])
                    .inc();
                return;
            }
            Err(err) => {
                tracing::warn!(cluster, error = %err, "cannot commit an Event yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
                pause = (pause * 2).min(MAX_RETRY);
            }
        }
    }
}
