//! A snapshot install replaces a shard's state, and with it what the state machine
//! keeps in memory of that state: the applied log id and the hot records every apply
//! reads. An apply after the install works from the installed state.

use kelemetry_core::state::{clusters, ShardContext};
use kelemetry_core::Proposal;
use kelemetry_raft::keys;
use kelemetry_raft::log_store::LogStore;
use kelemetry_raft::state_machine::ShardStateMachine;
use kelemetry_raft::types::TypeConfig;
use kelemetry_raft::wal_sync::WalSyncer;
use kelemetry_raft::{Engine, GroupRequest};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

mod support;

const T: i64 = 1_700_000_000_000_000;

/// An entry at `index` creating pod `name` of `cluster`.
fn create(index: u64, cluster: &str, name: &str) -> Entry<TypeConfig> {
    let command = support::create_in(cluster, name, T);
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(GroupRequest::Shard(Arc::new(Proposal {
            span_ttl_us: 1_800_000_000,
            export_backlog: 0,
            now_us: T,
            commands: vec![command],
        }))),
    }
}

/// A state machine of shard 0 on its own engine in `dir`.
fn state_machine(dir: &std::path::Path) -> (Engine, WalSyncer, ShardStateMachine) {
    let engine = Engine::open(dir).unwrap();
    let syncer = WalSyncer::start(engine.clone()).unwrap();
    let group = keys::shard_group(0);
    let log = LogStore::new(engine.clone(), group, syncer.clone());
    let ctx = ShardContext {
        shard: 0,
        shards: 1,
    };
    let sm = ShardStateMachine::new(engine.clone(), group, ctx, log.pending_committed());
    (engine, syncer, sm)
}

fn clusters_of(engine: &Engine) -> Vec<String> {
    clusters(&engine.view(keys::state_prefix(keys::shard_group(0)))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_snapshot_replaces_the_applied_state_and_the_hot_records() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_a_engine, a_syncer, mut a) = state_machine(a_dir.path());
    let (b_engine, b_syncer, mut b) = state_machine(b_dir.path());
    // Replica A: ten pods of cluster "a". Replica B: five of cluster "b", so B's
    // memory holds cluster "b"'s marker and applied index 5.
    a.apply((1..=10).map(|i| create(i, "a", &format!("a{i}"))))
        .await
        .unwrap();
    b.apply((1..=5).map(|i| create(i, "b", &format!("b{i}"))))
        .await
        .unwrap();
    assert_eq!(clusters_of(&b_engine), vec!["b".to_string()]);

    let mut snapshot = a.get_current_snapshot().await.unwrap().expect("a snapshot");
    let mut bytes = Vec::new();
    snapshot
        .snapshot
        .seek(std::io::SeekFrom::Start(0))
        .await
        .unwrap();
    snapshot.snapshot.read_to_end(&mut bytes).await.unwrap();
    let mut receiving = b.begin_receiving_snapshot().await.unwrap();
    receiving.write_all(&bytes).await.unwrap();
    receiving.flush().await.unwrap();
    receiving.seek(std::io::SeekFrom::Start(0)).await.unwrap();
    b.install_snapshot(&snapshot.meta, receiving).await.unwrap();

    let (applied, _) = b.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(10), "A's applied index");
    assert_eq!(clusters_of(&b_engine), vec!["a".to_string()]);
    // A pod of cluster "b" again: its marker is gone with B's old state, so this apply
    // must write it (a stale memory of the marker would skip it).
    b.apply([create(11, "b", "b-again")]).await.unwrap();
    assert_eq!(
        clusters_of(&b_engine),
        vec!["a".to_string(), "b".to_string()]
    );
    let (applied, _) = b.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(11));
    a_syncer.stop();
    b_syncer.stop();
}
