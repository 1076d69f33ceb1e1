//! Store reads of a batch: a window the store does not hold yet is read once, and a
//! record several commands of a batch read comes from the store once.

use super::*;
use crate::link::LinkCommand;
use crate::model::LINK_CLASS_CHILDREN;

/// Creations of `n` pods owned by ReplicaSet `r`, at `T0`.
fn pod_creations(n: usize) -> Vec<Command> {
    (0..n)
        .map(|i| {
            let name = format!("p{i}");
            let pod = object(
                "Pod",
                "v1",
                &name,
                10 + i as u64,
                Some(("ReplicaSet", "r")),
                json!({}),
            );
            audit(
                &key("pods", "", &name),
                &format!("a{i}"),
                "create",
                "",
                T0,
                "",
                Some(pod),
                201,
            )
        })
        .collect()
}

#[test]
fn new_objects_cost_fewer_reads_and_duplicates_are_still_found() {
    let mut h = Harness::new(1);
    let pods = pod_creations(20);
    let (out, first_reads) = h.apply_counted(0, pods.clone());
    assert!(out.iter().all(|o| *o == CommandOutcome::Applied));
    // Per pod: its window's span, its parked marker and its last version; the
    // span, link and parent link of a window the store does not hold are not read.
    assert!(
        first_reads <= 3 * 20 + 10,
        "{first_reads} store reads for 20 new pods"
    );
    let stored = h.shards[0].clone();

    // The same events again, in one batch and twice over: every one is a duplicate
    // (the windows are in the store now), and nothing changes.
    let twice: Vec<Command> = pods.iter().chain(&pods).cloned().collect();
    let (again, _) = h.apply_counted(0, twice);
    assert!(
        again.iter().all(|o| *o == CommandOutcome::Duplicate),
        "{again:?}"
    );
    assert_eq!(h.shards[0].0, stored.0);

    // Within one batch of new windows, a repeated event is found among the batch's
    // own writes.
    let mut fresh = Harness::new(1);
    let one = pod_creations(1).remove(0);
    let (out, _) = fresh.apply_counted(0, vec![one.clone(), one]);
    assert_eq!(out, [CommandOutcome::Applied, CommandOutcome::Duplicate]);
}

#[test]
fn a_record_many_commands_read_comes_from_the_store_once() {
    let mut h = Harness::new(1);
    let owner = key("replicasets", "apps", "r");
    let link = |i: usize| {
        Command::Link(LinkCommand {
            target: owner.clone(),
            target_version: "apps/v1".into(),
            linked: key("pods", "", &format!("p{i}")),
            role: LinkRole::Child,
            class: LINK_CLASS_CHILDREN.into(),
            time_us: T0,
        })
    };
    // The owner's window in the store first.
    h.apply_counted(0, vec![link(0)]);
    let (out, reads) = h.apply_counted(0, (1..=50).map(link).collect());
    assert!(out.iter().all(|o| *o == CommandOutcome::Applied));
    // One read per new link, one of the owner's span, and the shard's counters.
    assert!(reads <= 50 + 1 + 5, "{reads} store reads for 50 links");
    let (again, _) = h.apply_counted(0, (0..=50).map(link).collect());
    assert!(again.iter().all(|o| *o == CommandOutcome::Duplicate));
}
