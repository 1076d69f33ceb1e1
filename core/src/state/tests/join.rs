//! The diff join: audit events without response objects take their diff or snapshot
//! from watched changes, waiting in state for them up to their deadline.

use super::*;
use crate::model::LOG_KELEMETRY_ERROR;

const WAIT: i64 = 15_000_000;

fn waiting(c: Command) -> Command {
    match c {
        Command::Audit(mut a) => {
            a.diff_wait_us = WAIT;
            Command::Audit(a)
        }
        other => other,
    }
}

fn deployment(rv: u64, replicas: u32, generation: u32) -> String {
    object(
        "Deployment",
        "apps/v1",
        "demo",
        rv,
        None,
        json!({"spec": {"replicas": replicas}, "status": {"observedGeneration": generation}}),
    )
}

fn watched(json: &str, deleted: bool, t: i64) -> Command {
    Command::ObjectVersion(ObjectVersionRecord::from_json("c1", json, deleted, t).unwrap())
}

fn spans(h: &Harness, k: &ObjectKey) -> usize {
    let shard = shard_of(k, h.n());
    let start = crate::window::Window::containing(T0, TTL).start_us;
    load_trace(&h.shards[shard as usize], k, start)
        .unwrap()
        .map_or(0, |t| t.events.len())
}

#[test]
fn metadata_level_events_take_diffs_and_snapshots_from_watched_changes() {
    let mut h = Harness::new(1);
    let d = key("deployments", "apps", "demo");
    h.apply(vec![
        watched(&deployment(1, 2, 0), false, T0 + 10_000),
        watched(&deployment(2, 2, 1), false, T0 + 20_000),
        watched(&deployment(3, 4, 1), false, T0 + 1_010_000),
        watched(&deployment(4, 4, 2), false, T0 + 1_020_000),
    ]);
    h.apply(vec![
        waiting(audit(&d, "a1", "create", "", T0, "", None, 201)),
        waiting(audit(
            &d,
            "a2",
            "update",
            "status",
            T0 + 15_000,
            "1",
            None,
            200,
        )),
        waiting(audit(
            &d,
            "a3",
            "patch",
            "scale",
            T0 + 1_000_000,
            "",
            None,
            200,
        )),
        waiting(audit(
            &d,
            "a4",
            "update",
            "status",
            T0 + 1_015_000,
            "3",
            None,
            200,
        )),
    ]);
    let t = h.trace(&d, T0);
    assert_eq!(t.events.len(), 4);
    let snapshots = logs_of(&t, LOG_SNAPSHOT);
    assert_eq!(snapshots.len(), 1);
    assert!(
        snapshots[0].contains("\"resourceVersion\":\"1\""),
        "{snapshots:?}"
    );
    let mut diffs = logs_of(&t, LOG_DIFF);
    diffs.sort();
    // Each request got its own change: by old resourceVersion, or the earliest
    // unclaimed one after it began.
    assert_eq!(
        diffs,
        vec![
            "metadata.resourceVersion \"1\" -> \"2\"\nstatus.observedGeneration 0 -> 1\n",
            "metadata.resourceVersion \"2\" -> \"3\"\nspec.replicas 2 -> 4\n",
            "metadata.resourceVersion \"3\" -> \"4\"\nstatus.observedGeneration 1 -> 2\n",
        ],
        "{diffs:?}"
    );
    assert!(logs_of(&t, LOG_KELEMETRY_ERROR).is_empty());
}

#[test]
fn an_event_waits_in_state_until_its_change_is_watched() {
    let mut h = Harness::new(1);
    let d = key("deployments", "apps", "demo");
    h.apply(vec![watched(&deployment(1, 2, 0), false, T0)]);
    let update = waiting(audit(&d, "a1", "update", "", T0 + 5, "1", None, 200));
    let out = h.apply(vec![update.clone()]);
    assert_eq!(out, vec![CommandOutcome::Applied]);
    assert_eq!(spans(&h, &d), 0, "the event waits for its diff");
    assert_eq!(first_wait_deadline(&h.shards[0]).unwrap(), Some(T0 + WAIT));
    // A retried delivery of the same event neither writes nor parks it twice.
    let again = h.apply(vec![update]);
    assert_eq!(again, vec![CommandOutcome::Duplicate]);
    h.apply(vec![watched(&deployment(2, 3, 0), false, T0 + 900)]);
    let t = h.trace(&d, T0);
    assert_eq!(t.events.len(), 1);
    assert_eq!(
        logs_of(&t, LOG_DIFF),
        vec!["metadata.resourceVersion \"1\" -> \"2\"\nspec.replicas 2 -> 3\n"]
    );
    assert_eq!(first_wait_deadline(&h.shards[0]).unwrap(), None);
}

#[test]
fn an_event_past_its_deadline_is_written_without_the_diff_and_says_why() {
    let mut h = Harness::new(1);
    let d = key("deployments", "apps", "demo");
    h.apply(vec![waiting(audit(
        &d, "a1", "update", "", T0, "7", None, 200,
    ))]);
    h.now_us = T0 + WAIT - 1;
    let early = h.apply_on(0, vec![Command::ReleaseWaiting { limit: 10 }]);
    assert_eq!(early, vec![CommandOutcome::Removed(0)]);
    assert_eq!(spans(&h, &d), 0);
    h.now_us = T0 + WAIT + 1;
    let due = h.apply_on(0, vec![Command::ReleaseWaiting { limit: 10 }]);
    assert_eq!(due, vec![CommandOutcome::Removed(1)]);
    let t = h.trace(&d, T0);
    assert_eq!(
        logs_of(&t, LOG_KELEMETRY_ERROR),
        vec!["no diff: no watched change of this object from resourceVersion 7 arrived within 15s"]
    );
    assert!(logs_of(&t, LOG_DIFF).is_empty());
    // A change arriving after the release adds nothing to the written span.
    h.apply(vec![watched(&deployment(8, 1, 0), false, T0 + WAIT + 2)]);
    assert_eq!(h.trace(&d, T0).events.len(), 1);
}

#[test]
fn unwatched_clusters_never_wait() {
    let mut h = Harness::new(1);
    let d = key("deployments", "apps", "demo");
    h.apply(vec![audit(&d, "a1", "update", "", T0, "7", None, 200)]);
    let t = h.trace(&d, T0);
    assert_eq!(t.events.len(), 1);
    assert!(t.events[0].logs.is_empty());
}

#[test]
fn a_deletion_without_response_takes_the_watched_final_state() {
    let mut h = Harness::new(1);
    let d = key("deployments", "apps", "demo");
    h.apply(vec![waiting(audit(
        &d, "a1", "delete", "", T0, "", None, 200,
    ))]);
    assert_eq!(spans(&h, &d), 0);
    h.apply(vec![watched(&deployment(9, 0, 3), true, T0 + 400)]);
    let snapshots = logs_of(&h.trace(&d, T0), LOG_SNAPSHOT);
    assert_eq!(snapshots.len(), 1);
    assert!(snapshots[0].contains("\"resourceVersion\":\"9\""));
}

#[test]
fn watched_secrets_are_redacted_before_they_are_stored() {
    let mut h = Harness::new(1);
    let s = key("secrets", "", "db");
    let secret = |rv: u64, pw: &str| {
        object(
            "Secret",
            "v1",
            "db",
            rv,
            None,
            json!({"data": {"password": pw}}),
        )
    };
    h.apply(vec![
        watched(&secret(1, "aHVudGVyMg=="), false, T0),
        watched(&secret(2, "c3dvcmRmaXNo"), false, T0 + 10),
        waiting(audit(&s, "a1", "create", "", T0, "", None, 201)),
        waiting(audit(&s, "a2", "update", "", T0 + 5, "1", None, 200)),
    ]);
    let mut everything = Vec::new();
    h.shards[0]
        .scan(&[0], &[0xff], &mut |k, v| {
            everything.extend_from_slice(k);
            everything.extend_from_slice(v);
            true
        })
        .unwrap();
    let text = String::from_utf8_lossy(&everything);
    assert!(
        !text.contains("aHVudGVyMg"),
        "a secret value reached the store"
    );
    assert!(
        !text.contains("c3dvcmRmaXNo"),
        "a secret value reached the store"
    );
    assert!(text.contains(crate::redact::REDACTED));
    // The creation snapshot is there, redacted; the update's diff has no value line.
    let t = h.trace(&s, T0);
    assert_eq!(logs_of(&t, LOG_SNAPSHOT).len(), 1);
    assert_eq!(
        logs_of(&t, LOG_DIFF),
        vec!["metadata.resourceVersion \"1\" -> \"2\"\n"]
    );
}

#[test]
fn event_spans_link_to_owners_known_from_watched_versions() {
    let mut h = Harness::new(4);
    let d = key("deployments", "apps", "px");
    let rs = key("replicasets", "apps", "px-5d5");
    let pod = key("pods", "", "px-5d5-abc");
    let event = |k: &ObjectKey, kind: &str, api: &str, uid: &str, t: i64| {
        let json = json!({"metadata": {"uid": uid, "resourceVersion": "1"},
            "involvedObject": {"apiVersion": api, "kind": kind, "namespace": "default", "name": k.name},
            "reason": "Test", "message": "m", "source": {"component": "c"},
            "lastTimestamp": chrono::DateTime::from_timestamp_micros(t).unwrap().to_rfc3339()});
        Command::KubeEvent(KubeEventRecord::from_json("c1", &json.to_string()).unwrap())
    };
    // The ReplicaSet's Event comes before its version (the pod's after), as in a
    // recorded watch stream; both end up linked.
    h.apply(vec![
        event(&rs, "ReplicaSet", "apps/v1", "e1", T0),
        watched(
            &object(
                "ReplicaSet",
                "apps/v1",
                "px-5d5",
                2,
                Some(("Deployment", "px")),
                json!({}),
            ),
            false,
            T0 + 10,
        ),
        watched(
            &object(
                "Pod",
                "v1",
                "px-5d5-abc",
                3,
                Some(("ReplicaSet", "px-5d5")),
                json!({}),
            ),
            false,
            T0 + 20,
        ),
        event(&pod, "Pod", "v1", "e2", T0 + 30),
    ]);
    let children_of = |h: &Harness, k: &ObjectKey| -> Vec<String> {
        h.trace(k, T0)
            .links
            .iter()
            .filter(|l| l.role == LinkRole::Child)
            .map(|l| l.linked.name.clone())
            .collect()
    };
    assert_eq!(children_of(&h, &d), vec!["px-5d5"]);
    assert_eq!(children_of(&h, &rs), vec!["px-5d5-abc"]);
}

#[test]
fn an_event_is_its_own_dedupe_marker_and_claims_only_in_watched_clusters() {
    let mut h = Harness::new(1);
    let markers = |h: &Harness| -> Vec<Vec<u8>> {
        h.shards[0]
            .0
            .keys()
            .filter(|k| k[0] == schema::DEDUPE || k[0] == schema::EXPIRY)
            .cloned()
            .collect()
    };
    let pod = |name: &str, rv| Some(object("Pod", "v1", name, rv, None, json!({})));
    let p = key("pods", "", "p");
    let create = audit(&p, "a1", "create", "", T0, "", pod("p", 5), 201);
    assert_eq!(h.apply(vec![create.clone()]), vec![CommandOutcome::Applied]);
    assert_eq!(
        markers(&h),
        Vec::<Vec<u8>>::new(),
        "not watched: no marker, no claim"
    );
    assert_eq!(h.apply(vec![create]), vec![CommandOutcome::Duplicate]);
    assert_eq!(spans(&h, &p), 1);

    // In a watched cluster the create claims the change to its resourceVersion, with
    // the claim's expiry entry, and writes no other marker.
    let q = key("pods", "", "q");
    let create = waiting(audit(&q, "a2", "create", "", T0, "", pod("q", 6), 201));
    assert_eq!(h.apply(vec![create.clone()]), vec![CommandOutcome::Applied]);
    let claim = schema::dedupe_key(&["c", &q.to_string(), "6"]);
    assert_eq!(
        markers(&h),
        vec![claim.clone(), schema::expiry_key(T0, &claim)]
    );
    assert_eq!(h.apply(vec![create]), vec![CommandOutcome::Duplicate]);
}
