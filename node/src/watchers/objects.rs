//! The object watchers of one cluster: discovery finds every resource that can be
//! listed and watched (custom resources included, minus the excluded types), and one
//! kube-rs watcher per resource submits each version it sees as an `ObjectVersion`
//! command to its object's shard. The shard diffs it against the version it holds
//! and dedupes by resourceVersion, so the watchers keep no objects in memory and a
//! relist or a second watcher on the same resource writes nothing new.
//!
//! Discovery runs again every `--discovery-interval`, and at once when a
//! CustomResourceDefinition changes, so new kinds are watched without a restart.

use super::discovery::{discover, resource_name, Discovered};
use super::duties::DutyView;
use super::{ClusterSource, WatchTask};
use crate::metrics::WATCH_SYNCED;
use futures::StreamExt;
use kelemetry_actors::IngestRouter;
use kelemetry_core::filter::AuditFilter;
use kelemetry_core::ring::duties::objects_duty;
use kelemetry_core::version::ObjectVersionRecord;
use kelemetry_core::{Command, ObjectKey};
use kube::api::{DynamicObject, TypeMeta};
use kube::discovery::ApiResource;
use kube::runtime::{watcher, WatchStreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// What the object watchers need besides the cluster.
#[derive(Clone, Debug)]
pub struct WatchSettings {
    /// Resources never watched (`--exclude-types`).
    pub filter: AuditFilter,
    /// How often discovery runs again.
    pub discovery_interval: Duration,
    /// Event times accepted (`--retention`, `--max-clock-skew`), as on the webhook.
    pub event_times: kelemetry_core::audit::TimeLimits,
}

/// Discovers the resources of `source` and watches those whose duty this node holds
/// (as `duties` says, following every change of the roster) until `stop` turns true.
pub async fn run(
    source: ClusterSource,
    settings: WatchSettings,
    router: IngestRouter,
    mut duties: watch::Receiver<DutyView>,
    discovered: Discovered,
    mut stop: watch::Receiver<bool>,
) {
    let Some(client) = super::connect(&source, &mut stop).await else {
        return;
    };
    let rediscover = Arc::new(Notify::new());
    let mut resources: BTreeMap<String, ApiResource> = BTreeMap::new();
    let mut running: BTreeMap<String, WatchTask> = BTreeMap::new();
    let mut next_discovery = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= next_discovery {
            next_discovery = tokio::time::Instant::now() + settings.discovery_interval;
            match discover(&client, &settings.filter).await {
                Ok((found, api)) => {
                    resources = found;
                    discovered.set(&source.name, api);
                }
                Err(e) => {
                    tracing::warn!(cluster = %source.name, error = %e, "discovery failed; retrying");
                    next_discovery = tokio::time::Instant::now() + DISCOVERY_RETRY;
                }
            }
        }
        let view = duties.borrow_and_update().clone();
        let before = running.len();
        for (name, task) in std::mem::take(&mut running) {
            if resources.contains_key(&name) && view.runs(&objects_duty(&source.name, &name)) {
                running.insert(name, task);
            } else {
                tracing::info!(cluster = %source.name, resource = %name, "no longer watching objects");
                task.stop().await;
            }
        }
        for (name, ar) in &resources {
            if running.contains_key(name) || !view.runs(&objects_duty(&source.name, name)) {
                continue;
            }
            let (cluster, c, ar, r, n) = (
                source.name.clone(),
                client.clone(),
                ar.clone(),
                router.clone(),
                rediscover.clone(),
            );
            let task = WatchTask::spawn(move |rx| watch_resource(cluster, c, ar, r, n, rx));
            running.insert(name.clone(), task);
        }
        if running.len() != before {
            tracing::info!(cluster = %source.name, watching = running.len(), discovered = resources.len(), epoch = view.roster.epoch, "object duties changed");
        }
        let notified = tokio::select! {
            _ = tokio::time::sleep_until(next_discovery) => false,
            _ = rediscover.notified() => true,
            r = duties.changed() => {
                if r.is_err() {
                    break;
                }
                false
            }
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        if notified {
            // Let a burst of CRD changes settle into one discovery.
            tokio::time::sleep(Duration::from_millis(500)).await;
            next_discovery = tokio::time::Instant::now();
        }
    }
    discovered.remove(&source.name);
    for (_, task) in running {
        task.stop().await;
    }
}

/// How soon a failed discovery is tried again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);

/// Whether a resource is the CustomResourceDefinitions, whose changes call for a new
/// discovery.
fn is_crd(ar: &ApiResource) -> bool {
    ar.group == "apiextensions.k8s.io" && ar.plural == "customresourcedefinitions"
}

async fn watch_resource(
    cluster: String,
    client: kube::Client,
    ar: ApiResource,
    router: IngestRouter,
    rediscover: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let api: kube::Api<DynamicObject> = kube::Api::all_with(client, &ar);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    tracing::debug!(cluster, group = %ar.group, resource = %ar.plural, "watching objects");
    let resource = resource_name(&ar);
    let synced = WATCH_SYNCED.with_label_values(&[&cluster, &resource]);
    let mut listed = false;
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = stop.wait_for(|stopped| *stopped) => None,
        };
        let (object, deleted) = match next {
            Some(Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => (o, false),
            Some(Ok(watcher::Event::Delete(o))) => (o, true),
            Some(Ok(watcher::Event::InitDone)) => {
                listed = true;
                synced.set(1);
                continue;
            }
            Some(Ok(watcher::Event::Init)) => continue,
            Some(Err(e)) => {
                tracing::warn!(cluster, resource = %ar.plural, error = %e, "object watch failed; retrying");
                continue;
            }
            None => {
                synced.set(0);
                return;
            }
        };
        if listed && is_crd(&ar) {
            rediscover.notify_one();
        }
        if let Some(record) = version_record(&cluster, &ar, object, deleted) {
            super::commit(
                &cluster,
                "object",
                Command::ObjectVersion(record),
                &router,
                &mut stop,
            )
            .await;
        }
    }
}

/// The command of one watched version: keyed by the discovered resource (list items
/// may lack `apiVersion` and `kind`, which are filled in so snapshots carry them).
fn version_record(
    cluster: &str,
    ar: &ApiResource,
    mut object: DynamicObject,
    deleted: bool,
) -> Option<ObjectVersionRecord> {
    let name = object.metadata.name.clone()?;
    let rv = object.metadata.resource_version.clone()?;
    if object.types.is_none() {
        object.types = Some(TypeMeta {
            api_version: ar.api_version.clone(),
            kind: ar.kind.clone(),
        });
    }
    let json = serde_json::to_string(&object).ok()?;
    let key = ObjectKey::new(
        cluster,
        ar.group.clone(),
        ar.plural.clone(),
        object.metadata.namespace.clone().unwrap_or_default(),
        name,
    );
    Some(ObjectVersionRecord::new(
        key,
        ar.version.clone(),
        rv,
        &json,
        deleted,
        chrono::Utc::now().timestamp_micros(),
    ))
}
