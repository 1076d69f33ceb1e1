//! The Raft log lives in its own column family: a committing group's entries go there
//! and never among the state, and a data directory whose log an older version kept
//! among the state has it moved at open, entry for entry, surviving a reopen.

use kelemetry_raft::engine::Op;
use kelemetry_raft::keys;
use kelemetry_raft::log_store::LogStore;
use kelemetry_raft::types::TypeConfig;
use kelemetry_raft::wal_sync::WalSyncer;
use kelemetry_raft::Engine;
use kelemetry_raft::{RaftSettings, ShardSet};
use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader};
use std::time::Duration;

mod support;

fn entry(index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(3, 1), index),
        payload: EntryPayload::Blank,
    }
}

/// Where a group's log keys are counted.
#[derive(Clone, Copy)]
enum Space {
    State,
    LogFamily,
}

/// Number of keys of `group`'s log range in `space`.
fn log_keys(engine: &Engine, group: u32, space: Space) -> usize {
    let (start, end) = (keys::log(group, 0), keys::log(group, u64::MAX));
    let mut n = 0;
    let mut count = |_: &[u8], _: &[u8]| {
        n += 1;
        true
    };
    match space {
        Space::State => engine.scan(&start, &end, &mut count),
        Space::LogFamily => engine.scan_log(&start, &end, &mut count),
    }
    .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_an_older_version_kept_among_the_state_move_to_the_log_family() {
    let dir = tempfile::tempdir().unwrap();
    let group = keys::shard_group(5);
    let other = keys::shard_group(6);
    {
        let engine = Engine::open(dir.path()).unwrap();
        // The layout before the log family: entries beside the state, 2,500 of them
        // so the move takes several batches, and a neighbour group's state key.
        let mut ops: Vec<Op> = (1..=2_500)
            .map(|i| Op::Put(keys::log(group, i), postcard::to_stdvec(&entry(i)).unwrap()))
            .collect();
        ops.push(Op::Put(keys::state_prefix(other), b"state".to_vec()));
        engine.write(ops, true).unwrap();
        engine.flush().unwrap();
    }
    for _ in 0..2 {
        let engine = Engine::open(dir.path()).unwrap();
        let syncer = WalSyncer::start(engine.clone()).unwrap();
        let mut log = LogStore::open(engine.clone(), group, syncer.clone()).unwrap();
        assert_eq!(log_keys(&engine, group, Space::State), 0);
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|l| l.index), Some(2_500));
        let read = log.try_get_log_entries(1..=2_500).await.unwrap();
        assert_eq!(read.len(), 2_500);
        assert!(read
            .iter()
            .zip(1..)
            .all(|(e, i)| e.log_id == entry(i).log_id));
        assert_eq!(
            engine.get(&keys::state_prefix(other)).unwrap().as_deref(),
            Some(&b"state"[..]),
            "the move touches nothing but the group's log"
        );
        syncer.stop();
        engine.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committing_group_writes_its_log_in_the_log_family_only() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let settings = RaftSettings::single(1, "127.0.0.1:7070".into(), 1);
    let set = ShardSet::open(engine.clone(), &settings).await.unwrap();
    assert!(set.wait_for_leaders(Duration::from_secs(10)).await);
    let t = 1_700_000_000_000_000;
    let shard = set.local(0).expect("local replica");
    for i in 0..30 {
        support::propose_create(&shard, &format!("p{i}"), t + i).await;
    }
    let group = keys::shard_group(0);
    assert_eq!(log_keys(&engine, group, Space::State), 0);
    // The 30 proposals, and the blank entry and membership of the group's start.
    assert!(log_keys(&engine, group, Space::LogFamily) >= 30);
    set.shutdown().await.unwrap();
}

/// The table bytes reported for `/metrics` are each column family's own: state keys
/// written and flushed show under the state alone, log keys under the log alone.
#[test]
fn table_bytes_are_reported_per_column_family() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path()).unwrap();
    let before = engine.tables();
    assert_eq!((before.state.live_bytes, before.log.live_bytes), (0, 0));

    let value = vec![7u8; 1_000];
    let state: Vec<Op> = (0..2_000u32)
        .map(|i| Op::Put(format!("s{i:06}").into_bytes(), value.clone()))
        .collect();
    engine.write(state, false).unwrap();
    engine.flush().unwrap();
    let after_state = engine.tables();
    assert!(
        after_state.state.live_bytes > 100_000,
        "2 MB of state flushed, {after_state:?}"
    );
    assert_eq!(after_state.log.live_bytes, 0, "{after_state:?}");
    drop(engine);

    let engine = Engine::open(dir.path()).unwrap();
    let group = keys::shard_group(3);
    let log: Vec<Op> = (1..=2_000u64)
        .map(|i| Op::PutLog(keys::log(group, i), value.clone()))
        .collect();
    engine.write(log, false).unwrap();
    engine.flush().unwrap();
    let after_log = engine.tables();
    assert!(after_log.log.live_bytes > 100_000, "{after_log:?}");
    assert_eq!(
        after_log.state, after_state.state,
        "the state's tables are unchanged"
    );
}
