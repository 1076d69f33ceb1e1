//! The Event watcher of one cluster. It submits each `core/v1` Event as a
//! `KubeEvent` command to its object's shard, retrying until it is committed, and
//! records how far it has committed as the duty's cursor in the ring state.
//!
//! A new holder of the duty resumes from that cursor with a plain watch, so Events
//! that came and went while no node held the duty still arrive. When the cursor is
//! too old (`410 Gone`) or there is none, it lists and watches (kube-rs's watcher,
//! which relists after a `410` and backs off on errors). An Event the shard has seen
//! (same uid and resourceVersion) is a duplicate there, so a relist adds nothing.

use super::discovery::Discovered;
use super::ClusterSource;
use crate::metrics::{INGEST_EVENTS, WATCH_RESUMED, WATCH_SYNCED};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Event;
use kelemetry_actors::ring::proposer;
use kelemetry_actors::IngestRouter;
use kelemetry_core::audit::TimeLimits;
use kelemetry_core::event::KubeEventRecord;
use kelemetry_core::ring::duties::events_duty;
use kelemetry_core::ring::RingCommand;
use kelemetry_core::Command;
use kelemetry_raft::ShardSet;
use kube::api::{WatchEvent, WatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often the committed position is written to the ring state.
const CURSOR_SYNC: Duration = Duration::from_secs(2);

/// Server-side timeout of one resumed watch request.
const WATCH_TIMEOUT_S: u32 = 290;

/// The committed position of this holder: the newest resourceVersion whose Event
/// (and every earlier one) is committed, and when it was last written.
struct Cursor {
    duty: String,
    epoch: u64,
    committed: Option<String>,
    written: Option<String>,
    last_write: Instant,
}

impl Cursor {
    /// Notes that the Event at `rv` is committed (watch order is resourceVersion
    /// order; during a list the items come unordered, so the largest is kept).
    fn advance(&mut self, rv: &str) {
        let newer = match (&self.committed, rv.parse::<u64>()) {
            (Some(c), Ok(n)) => c.parse::<u64>().map_or(true, |c| n > c),
            _ => true,
        };
        if newer {
            self.committed = Some(rv.to_string());
        }
    }

    /// Writes the position to the ring state if it moved and the last write is old
    /// enough (or `now`); a refusal (no longer the holder) is only logged.
    async fn sync(&mut self, shards: &ShardSet, now: bool) {
        if self.committed == self.written || (!now && self.last_write.elapsed() < CURSOR_SYNC) {
            return;
        }
        let Some(rv) = self.committed.clone() else {
            return;
        };
        self.last_write = Instant::now();
        let cmd = RingCommand::SetCursor {
            duty: self.duty.clone(),
            resource_version: rv.clone(),
            node: shards.node_id(),
            epoch: self.epoch,
        };
        match proposer::submit(shards, cmd).await {
            Ok(()) => self.written = Some(rv),
            Err(e) => {
                tracing::debug!(duty = %self.duty, error = %e, "cannot record the watch cursor yet")
            }
        }
    }
}

/// What woke a watch loop: the stream (or stop, as `Next(None)`), or the cursor timer.
enum Step<T> {
    Next(Option<T>),
    Tick,
}

/// Watches the Events of `source` as the holder of its duty under roster `epoch`
/// until `stop` turns true. Every wait ends as soon as `stop` is true, including when
/// it turned true during an earlier wait.
pub async fn run(
    source: ClusterSource,
    shards: Arc<ShardSet>,
    epoch: u64,
    router: IngestRouter,
    discovered: Discovered,
    times: TimeLimits,
    mut stop: watch::Receiver<bool>,
) {
    let Some(client) = super::connect(&source, &mut stop).await else {
        return;
    };
    let duty = events_duty(&source.name);
    let mut cursor = Cursor {
        committed: shards.ring().cursors.get(&duty).cloned(),
        written: None,
        duty,
        epoch,
        last_write: Instant::now(),
    };
    let api: kube::Api<Event> = kube::Api::all(client);
    let synced = WATCH_SYNCED.with_label_values(&[&source.name, "events"]);
    let to = Sink {
        cluster: &source.name,
        router: &router,
        discovered: &discovered,
        times,
    };
    if let Some(from) = cursor.committed.clone() {
        WATCH_RESUMED.with_label_values(&[&source.name]).inc();
        tracing::info!(cluster = %source.name, from, "resuming the Event watch from the committed cursor");
        synced.set(1);
        if !resume(&to, &api, &mut cursor, &shards, &mut stop).await {
            synced.set(0);
            return;
        }
        tracing::info!(cluster = %source.name, "the cursor is too old; listing the Events again");
    }
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    tracing::info!(cluster = %source.name, "watching Events");
    let mut tick = tokio::time::interval(CURSOR_SYNC);
    loop {
        let next = tokio::select! {
            n = stream.next() => Step::Next(n),
            _ = tick.tick() => Step::Tick,
            _ = stop.wait_for(|stopped| *stopped) => Step::Next(None),
        };
        let next = match next {
            Step::Next(n) => n,
            Step::Tick => {
                cursor.sync(&shards, false).await;
                continue;
            }
        };
        match next {
            Some(Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e))) => {
                to.forward(&e, &mut stop).await;
                if let Some(rv) = &e.metadata.resource_version {
                    cursor.advance(rv);
                }
                cursor.sync(&shards, false).await;
            }
            Some(Ok(watcher::Event::InitDone)) => synced.set(1),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::warn!(cluster = %source.name, error = %e, "Event watch failed; retrying")
            }
            None => {
                synced.set(0);
                cursor.sync(&shards, true).await;
                return;
            }
        }
    }
}

/// Watches from the cursor, request after request, until the cursor is too old
/// (returns true: list instead) or `stop` (returns false).
async fn resume(
    to: &Sink<'_>,
    api: &kube::Api<Event>,
    cursor: &mut Cursor,
    shards: &ShardSet,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let cluster = to.cluster;
    // Bookmarks are on by default: they move the cursor through quiet periods.
    let params = WatchParams::default().timeout(WATCH_TIMEOUT_S);
    loop {
        let from = cursor.committed.clone().unwrap_or_default();
        let stream = match api.watch(&params, &from).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(cluster, error = %e, "cannot resume the Event watch");
                return true;
            }
        };
        futures::pin_mut!(stream);
        let mut tick = tokio::time::interval(CURSOR_SYNC);
        loop {
            let next = tokio::select! {
                n = stream.try_next() => Step::Next(Some(n)),
                _ = tick.tick() => Step::Tick,
                _ = stop.wait_for(|stopped| *stopped) => Step::Next(None),
            };
            let next = match next {
                Step::Next(Some(n)) => n,
                Step::Next(None) => {
                    cursor.sync(shards, true).await;
                    return false;
                }
                Step::Tick => {
                    cursor.sync(shards, false).await;
                    continue;
                }
            };
            match next {
                Ok(Some(WatchEvent::Added(e) | WatchEvent::Modified(e))) => {
                    to.forward(&e, stop).await;
                    if let Some(rv) = &e.metadata.resource_version {
                        cursor.advance(rv);
                    }
                    cursor.sync(shards, false).await;
                }
                Ok(Some(WatchEvent::Bookmark(b))) => {
                    cursor.advance(&b.metadata.resource_version);
                    cursor.sync(shards, false).await;
                }
                Ok(Some(WatchEvent::Deleted(_))) => {}
                Ok(Some(WatchEvent::Error(e))) => {
                    tracing::info!(cluster, code = e.code, message = %e.message, "resumed Event watch ended");
                    return true;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(cluster, error = %e, "resumed Event watch failed");
                    return true;
                }
            }
        }
    }
}

/// Where watched Events go: the shards, with kinds mapped by the cluster's discovery,
/// unless dated outside the times the webhook accepts too.
struct Sink<'a> {
    cluster: &'a str,
    router: &'a IngestRouter,
    discovered: &'a Discovered,
    times: TimeLimits,
}

impl Sink<'_> {
    /// Submits one Event until it is committed (or the watcher stops).
    async fn forward(&self, e: &Event, stop: &mut watch::Receiver<bool>) {
        let json = match serde_json::to_string(e) {
            Ok(j) => j,
            Err(err) => {
                tracing::warn!(error = %err, "cannot encode an Event");
                return;
            }
        };
        let lookup = |group: &str, kind: &str| self.discovered.kind(self.cluster, group, kind);
        let record = match KubeEventRecord::from_json_with(self.cluster, &json, &lookup) {
            Ok(r) => r,
            Err(err) => {
                tracing::debug!(error = %err, "Event not traced");
                return;
            }
        };
        if let Some(why) = self.times.bounds_now().check(record.time_us) {
            INGEST_EVENTS
                .with_label_values(&[self.cluster, "event", "rejected_time"])
                .inc();
            tracing::warn!(cluster = self.cluster, uid = %record.uid, reason = %why, "Event not traced");
            return;
        }
        let command = Command::KubeEvent(record);
        super::commit(self.cluster, "event", command, self.router, stop).await;
    }
}
