//! A peer without the Raft stream (an older version during a rolling upgrade) is sent
//! unary RPCs instead, and the ring keeps committing in both directions.

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_stream_is_sent_unary_rpcs() {
    let nodes = support::two_nodes(false).await;
    support::commit_pods(&nodes, 40).await;
    support::wait_for_identical_replicas(&nodes).await;
    // Node 1 reaches node 2 by unary RPCs; node 2 reaches node 1 on its stream.
    assert!(support::sent("unary") > 0);
    assert!(support::sent("stream") > 0);
    support::stop(nodes).await;
}
