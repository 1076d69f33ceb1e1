//! Watch duties: which node watches what of each Kubernetes cluster.
//!
//! The metadata leader keeps a *roster* in the ring state: the active members that
//! answer its liveness pings, with an epoch that every change of the roster bumps.
//! Each duty's holders are a pure function of the roster (rendezvous hashing of the
//! duty's name), so every node that has applied the same roster agrees on them, and
//! a change of the roster moves only the duties whose holders entered or left it.
//!
//! - `events/<cluster>`: one holder (the Event stream is watched once).
//! - `objects/<cluster>/<resource>`: two holders (the shard dedupes versions by
//!   resourceVersion, so the second one costs no duplicates and covers a holder's
//!   death until the roster drops it).

use super::members::NodeId;
use super::placement::rendezvous_of;
use serde::{Deserialize, Serialize};

/// Holders of an Events duty.
pub const EVENT_HOLDERS: usize = 1;
/// Holders of an object duty.
pub const OBJECT_HOLDERS: usize = 2;

/// The nodes duties are spread over, as the metadata leader last saw them alive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DutyRoster {
    /// Live active members, sorted.
    pub nodes: Vec<NodeId>,
    /// Bumped by every change of `nodes`; a holder's duties are valid for one epoch.
    pub epoch: u64,
}

impl DutyRoster {
    /// The holders of `duty`, best first.
    pub fn holders(&self, duty: &str) -> Vec<NodeId> {
        let n = if duty.starts_with("events/") {
            EVENT_HOLDERS
        } else {
            OBJECT_HOLDERS
        };
        rendezvous_of(duty.as_bytes(), &self.nodes, n)
    }

    /// Whether `node` holds `duty`.
    pub fn holds(&self, node: NodeId, duty: &str) -> bool {
        self.holders(duty).contains(&node)
    }
}

/// Name of the Events duty of `cluster`.
pub fn events_duty(cluster: &str) -> String {
    format!("events/{cluster}")
}

/// Name of the duty to watch `resource` (`group/plural`, or `plural` in the core
/// group) of `cluster`.
pub fn objects_duty(cluster: &str, resource: &str) -> String {
    format!("objects/{cluster}/{resource}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_spread_and_move_only_with_their_nodes() {
        let roster = DutyRoster {
            nodes: vec![1, 2, 3, 4],
            epoch: 1,
        };
        let duties: Vec<String> = [
            "pods",
            "apps/deployments",
            "apps/replicasets",
            "nodes",
            "services",
            "configmaps",
        ]
        .iter()
        .map(|r| objects_duty("c", r))
        .collect();
        let mut load = std::collections::BTreeMap::new();
        for d in &duties {
            let h = roster.holders(d);
            assert_eq!(h.len(), 2);
            assert_ne!(h[0], h[1]);
            for n in h {
                *load.entry(n).or_insert(0) += 1;
            }
        }
        assert!(load.len() >= 3, "duties spread over the roster: {load:?}");
        assert_eq!(roster.holders(&events_duty("c")).len(), 1);
        // Node 4 leaves: only duties it held change holders.
        let smaller = DutyRoster {
            nodes: vec![1, 2, 3],
            epoch: 2,
        };
        for d in &duties {
            let before = roster.holders(d);
            if !before.contains(&4) {
                assert_eq!(smaller.holders(d), before, "{d} moved without cause");
            }
        }
    }

    #[test]
    fn the_epoch_moves_only_when_the_roster_changes() {
        let mut ring = crate::ring::RingState::default();
        let set = |nodes: Vec<NodeId>| crate::ring::RingCommand::SetRoster { nodes };
        ring.apply(&set(vec![3, 1, 2]));
        assert_eq!(
            (ring.roster.nodes.clone(), ring.roster.epoch),
            (vec![1, 2, 3], 1)
        );
        ring.apply(&set(vec![1, 2, 3]));
        assert_eq!(ring.roster.epoch, 1, "the same nodes are no change");
        ring.apply(&set(vec![1, 3]));
        assert_eq!(
            (ring.roster.nodes.clone(), ring.roster.epoch),
            (vec![1, 3], 2)
        );
    }

    #[test]
    fn only_the_current_holder_moves_a_cursor() {
        let mut ring = crate::ring::RingState::default();
        ring.apply(&crate::ring::RingCommand::SetRoster {
            nodes: vec![1, 2, 3],
        });
        let duty = events_duty("c");
        let holder = ring.roster.holders(&duty)[0];
        let other = [1, 2, 3].into_iter().find(|n| *n != holder).unwrap();
        let cursor = |node, epoch, rv: &str| crate::ring::RingCommand::SetCursor {
            duty: duty.clone(),
            resource_version: rv.into(),
            node,
            epoch,
        };
        ring.apply(&cursor(other, 1, "5"));
        assert_eq!(ring.cursors.get(&duty), None, "not the holder");
        ring.apply(&cursor(holder, 1, "7"));
        assert_eq!(ring.cursors.get(&duty).map(String::as_str), Some("7"));
        ring.apply(&crate::ring::RingCommand::SetRoster {
            nodes: vec![1, 2, 3, 4],
        });
        ring.apply(&cursor(holder, 1, "9"));
        assert_eq!(
            ring.cursors.get(&duty).map(String::as_str),
            Some("7"),
            "an assignment of an earlier epoch is fenced"
        );
    }

    #[test]
    fn an_empty_roster_has_no_holders() {
        assert!(DutyRoster::default().holders("events/c").is_empty());
    }
}
