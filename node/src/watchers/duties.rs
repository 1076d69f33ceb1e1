//! Runs the watch duties this node holds: `events/<cluster>` and
//! `objects/<cluster>/<resource>` as the duty roster in the replicated ring state
//! assigns them ([`kelemetry_core::ring::duties`]).
//!
//! Fencing: a node runs duties only while it is in contact with the metadata group
//! (it sees a leader). A node cut off from it loses its leader within an election
//! timeout (under a second) and stops its watchers, while the metadata leader waits
//! two seconds without pings before it moves that node's duties to others; so two
//! holders of an Events duty never write side by side for long, and what they do
//! write twice the shards deduplicate.

use super::discovery::Discovered;
use super::objects::{self, WatchSettings};
use super::{events, ClusterSource, WatchTask};
use kelemetry_actors::IngestRouter;
use kelemetry_core::ring::duties::events_duty;
use kelemetry_core::ring::{DutyRoster, NodeId};
use kelemetry_raft::ShardSet;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the runner compares the duties it runs with the roster.
const DUTY_CHECK: Duration = Duration::from_millis(250);

/// What this node may watch, as the object watchers of a cluster see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DutyView {
    /// This node.
    pub me: NodeId,
    /// The roster this node last applied.
    pub roster: DutyRoster,
    /// Whether this node sees a metadata leader (its duties are fenced otherwise).
    pub in_contact: bool,
}

impl DutyView {
    /// Whether this node should run `duty` now.
    pub fn runs(&self, duty: &str) -> bool {
        self.in_contact && self.roster.holds(self.me, duty)
    }

    /// Whether this node takes part in duties at all (object watchers then discover
    /// the cluster's resources to know which of them it holds).
    pub fn on_roster(&self) -> bool {
        self.in_contact && self.roster.nodes.contains(&self.me)
    }
}

/// Runs the duties of `clusters` this node holds until `stop` turns true.
pub async fn run(
    clusters: Vec<ClusterSource>,
    settings: WatchSettings,
    shards: Arc<ShardSet>,
    router: IngestRouter,
    discovered: Discovered,
    mut stop: watch::Receiver<bool>,
) {
    if clusters.is_empty() {
        return;
    }
    let view = || DutyView {
        me: shards.node_id(),
        roster: shards.ring().roster.clone(),
        in_contact: shards.meta().has_leader(),
    };
    let (view_tx, view_rx) = watch::channel(view());
    let mut event_watchers: BTreeMap<String, WatchTask> = BTreeMap::new();
    let mut object_runners: BTreeMap<String, WatchTask> = BTreeMap::new();
    let mut tick = tokio::time::interval(DUTY_CHECK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
        let now = view();
        view_tx.send_if_modified(|v| {
            let changed = *v != now;
            *v = now.clone();
            changed
        });
        for c in &clusters {
            let duty = events_duty(&c.name);
            match (event_watchers.contains_key(&c.name), now.runs(&duty)) {
                (false, true) => {
                    tracing::info!(duty, epoch = now.roster.epoch, "taking the watch duty");
                    let (c2, sh, epoch, r, d) = (
                        c.clone(),
                        shards.clone(),
                        now.roster.epoch,
                        router.clone(),
                        discovered.clone(),
                    );
                    let times = settings.event_times;
                    let task =
                        WatchTask::spawn(move |rx| events::run(c2, sh, epoch, r, d, times, rx));
                    event_watchers.insert(c.name.clone(), task);
                }
                (true, false) => {
                    tracing::info!(
                        duty,
                        epoch = now.roster.epoch,
                        in_contact = now.in_contact,
                        "leaving the watch duty"
                    );
                    if let Some(t) = event_watchers.remove(&c.name) {
                        t.stop().await;
                    }
                }
                _ => {}
            }
            match (object_runners.contains_key(&c.name), now.on_roster()) {
                (false, true) => {
                    let (c2, s, r, v, d) = (
                        c.clone(),
                        settings.clone(),
                        router.clone(),
                        view_rx.clone(),
                        discovered.clone(),
                    );
                    let task = WatchTask::spawn(move |rx| objects::run(c2, s, r, v, d, rx));
                    object_runners.insert(c.name.clone(), task);
                }
                (true, false) => {
                    if let Some(t) = object_runners.remove(&c.name) {
                        t.stop().await;
                    }
                }
                _ => {}
            }
        }
    }
    for (_, t) in event_watchers.into_iter().chain(object_runners) {
        t.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_out_of_contact_runs_nothing() {
        let roster = DutyRoster {
            nodes: vec![1],
            epoch: 3,
        };
        let view = |in_contact| DutyView {
            me: 1,
            roster: roster.clone(),
            in_contact,
        };
        assert!(view(true).runs("events/c"));
        assert!(view(true).on_roster());
        assert!(!view(false).runs("events/c"));
        assert!(!view(false).on_roster());
    }
}
