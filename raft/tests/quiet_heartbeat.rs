//! openraft's heartbeat timer is off; the node's own driver heartbeats only the
//! groups whose followers heard nothing else. An idle ring must still keep its
//! leaders: without heartbeats every follower would campaign within 800 ms.

mod support;

use std::time::Duration;

fn heartbeats() -> u64 {
    support::counter("kelemetry_raft_heartbeats_total", None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_ring_keeps_its_leaders_on_heartbeats_alone() {
    let nodes = support::two_nodes(true).await;
    support::commit_pods(&nodes, 8).await;
    let groups = |n: &support::TestNode| {
        let mut g = n.set.locals();
        g.push(n.set.meta().clone());
        g
    };
    let before: Vec<(u32, u64, Option<u64>)> = groups(&nodes[0])
        .iter()
        .map(|g| (g.shard(), g.term(), g.leader()))
        .collect();
    assert!(before.iter().all(|(_, _, leader)| leader.is_some()));
    let sent_before = heartbeats();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: Vec<(u32, u64, Option<u64>)> = groups(&nodes[0])
        .iter()
        .map(|g| (g.shard(), g.term(), g.leader()))
        .collect();
    assert_eq!(before, after, "a group elected again while idle");
    // Five groups, each led by one of the two nodes, one round per interval or so.
    let sent = heartbeats() - sent_before;
    assert!(sent >= 5 * 10, "only {sent} heartbeat rounds in 3 s");
    support::stop(nodes).await;
}
