//! The commit index openraft reports is persisted with the apply batch that follows
//! it (not in a batch of its own), so a restarted node still finds it.

use kelemetry_raft::keys;
use kelemetry_raft::types::NodeId;
use kelemetry_raft::Engine;
use kelemetry_raft::{RaftSettings, ShardSet};
use openraft::LogId;
use std::time::Duration;

mod support;

fn stored_log_id(engine: &Engine, key: &[u8]) -> Option<LogId<NodeId>> {
    let bytes = engine.get(key).unwrap()?;
    postcard::from_bytes::<Option<LogId<NodeId>>>(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_index_is_stored_with_the_applied_state_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = RaftSettings::single(1, "127.0.0.1:7070".into(), 1);
    let group = keys::shard_group(0);
    let t = 1_700_000_000_000_000;
    let last_applied = {
        let engine = Engine::open(dir.path()).unwrap();
        let set = ShardSet::open(engine.clone(), &settings).await.unwrap();
        assert!(set.wait_for_leaders(Duration::from_secs(10)).await);
        let shard = set.local(0).expect("local replica");
        for i in 0..20 {
            support::propose_create(&shard, &format!("p{i}"), t + i).await;
        }
        let applied = shard.applied_index().expect("applied");
        let committed = stored_log_id(&engine, &keys::committed(group)).map(|c| c.index);
        // A single voter commits an entry before applying it, and the apply batch
        // stores the commit index it knew: at least everything proposed above.
        assert!(committed.is_some_and(|c| c >= 20), "{committed:?}");
        assert!(committed >= Some(applied), "{committed:?} < {applied}");
        set.shutdown().await.unwrap();
        applied
    };
    let engine = support::reopen_engine(dir.path()).await;
    let committed = stored_log_id(&engine, &keys::committed(group)).map(|c| c.index);
    assert!(
        committed >= Some(last_applied),
        "{committed:?} < {last_applied}"
    );
    let set = ShardSet::open(engine.clone(), &settings).await.unwrap();
    assert!(set.wait_for_leaders(Duration::from_secs(10)).await);
    let reopened = set.local(0).expect("local replica");
    assert!(reopened.applied_index() >= Some(last_applied));
    set.shutdown().await.unwrap();
}
