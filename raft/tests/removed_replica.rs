//! A replica this node deleted stays deleted for everyone acting on an old
//! configuration: no vote is cast from it and no entries are taken into it until
//! the metadata places the shard on this node again. Found by a chaos run: a stale
//! candidate won a vote from a node that had deleted its replica and reopened it
//! blank, and its followers then failed applying a log that went backwards.

mod support;

use kelemetry_core::ring::{Member, MemberState, RingCommand};
use kelemetry_proto::kelemetry::cluster::v1::RaftKind;
use kelemetry_raft::keys::shard_group;
use kelemetry_raft::types::TypeConfig;
use kelemetry_raft::{InboundError, NodeId, RaftSettings, ShardSet};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::Vote;
use std::time::Duration;
use support::reopen_engine;

const SHARDS: u32 = 2;
const SHARD: u32 = 1;

async fn open(dir: &std::path::Path) -> ShardSet {
    let settings = RaftSettings::single(1, "127.0.0.1:7070".into(), SHARDS);
    let set = ShardSet::open(reopen_engine(dir).await, &settings)
        .await
        .unwrap();
    assert!(set.wait_for_leaders(Duration::from_secs(10)).await);
    set
}

/// A vote request from node 9, a candidate whose log is empty.
fn stale_vote() -> Vec<u8> {
    let req = VoteRequest::<NodeId> {
        vote: Vote::new(100, 9),
        last_log_id: None,
    };
    postcard::to_stdvec(&req).unwrap()
}

/// A heartbeat from node 9 as the leader of term 100.
fn stale_heartbeat() -> Vec<u8> {
    let req = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(100, 9),
        prev_log_id: None,
        leader_commit: None,
        entries: vec![],
    };
    postcard::to_stdvec(&req).unwrap()
}

async fn refused(set: &ShardSet, kind: RaftKind, payload: &[u8]) -> bool {
    match set.handle_raft(shard_group(SHARD), kind, payload).await {
        Err(InboundError::RemovedReplica(s)) => s == SHARD,
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_replica_answers_no_one_until_placed_here_again() {
    let dir = tempfile::tempdir().unwrap();
    {
        let set = open(dir.path()).await;
        set.remove_group(SHARD).await.unwrap();
        assert!(set.local(SHARD).is_none());

        assert!(refused(&set, RaftKind::Vote, &stale_vote()).await);
        assert!(refused(&set, RaftKind::AppendEntries, &stale_heartbeat()).await);
        assert!(set.local(SHARD).is_none(), "no blank replica was opened");
        set.shutdown().await.unwrap();
    }

    // The deletion is remembered across a restart.
    let set = open(dir.path()).await;
    assert!(set.local(SHARD).is_none());
    assert!(refused(&set, RaftKind::Vote, &stale_vote()).await);

    // Once the metadata places the shard here, its leader's entries open it again;
    // the node is a member being added back, and no longer refuses.
    set.meta()
        .propose_ring(RingCommand::Init {
            shards: SHARDS,
            replicas: 1,
            members: vec![Member {
                id: 1,
                peer_addr: "127.0.0.1:7070".into(),
                http_addr: "127.0.0.1:8080".into(),
                state: MemberState::Active,
            }],
        })
        .await
        .unwrap();
    // The node's view of the ring follows its applied index, which openraft's
    // metrics report a moment after the write returns.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !set.placed_here(SHARD) {
        assert!(
            std::time::Instant::now() < deadline,
            "the ring never placed the shard here"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused(&set, RaftKind::Vote, &stale_vote()).await);
    assert!(!refused(&set, RaftKind::AppendEntries, &stale_heartbeat()).await);
    assert!(set.local(SHARD).is_some());
    assert!(!set.removed_here(SHARD).unwrap());
    set.shutdown().await.unwrap();
}
