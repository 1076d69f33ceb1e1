//! Every group's replication to a peer travels as frames on one Raft stream per
//! peer, and commits as before.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_travels_on_one_stream_per_peer() {
    let nodes = support::two_nodes(true).await;
    support::commit_pods(&nodes, 40).await;
    support::wait_for_identical_replicas(&nodes).await;
    assert!(support::sent("stream") > 40, "{}", support::sent("stream"));
    assert_eq!(support::sent("unary"), 0);
    support::stop(nodes).await;
}
