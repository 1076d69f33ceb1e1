//! Shard groups on real RocksDB files: commit, restart, and the shard-count guard.

mod support;

use kelemetry_core::ids::shard_of;
use kelemetry_core::state::{find_traces, TraceQuery};
use kelemetry_core::{CommandOutcome, Proposal};
use kelemetry_raft::{RaftSettings, ShardSet, ShardSetError};
use std::time::Duration;
use support::{create, reopen_engine};

const TTL: i64 = 1_800_000_000;

fn settings(shards: u32) -> RaftSettings {
    RaftSettings::single(1, "127.0.0.1:7070".into(), shards)
}

/// Opens the set on `dir` (see [`reopen_engine`]).
async fn open(dir: &std::path::Path, shards: u32) -> Result<ShardSet, ShardSetError> {
    ShardSet::open(reopen_engine(dir).await, &settings(shards)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_survive_restart_and_shard_count_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let t = 1_700_000_000_000_000;
    {
        let set = open(dir.path(), 4).await.unwrap();
        assert!(set.wait_for_leaders(Duration::from_secs(10)).await);
        for i in 0..20 {
            let cmd = create(&format!("p{i}"), t + i);
            let shard = shard_of(cmd.routing_key().unwrap(), 4);
            let out = set
                .local(shard)
                .expect("local replica")
                .propose(Proposal {
                    span_ttl_us: TTL,
                    export_backlog: 0,
                    now_us: t,
                    commands: vec![cmd.clone(), cmd],
                })
                .await
                .unwrap();
            assert_eq!(
                out.outcomes,
                vec![CommandOutcome::Applied, CommandOutcome::Duplicate]
            );
        }
        set.shutdown().await.unwrap();
    }
    let err = open(dir.path(), 8).await.err().expect("mismatch must fail");
    assert!(
        err.to_string()
            .contains("--shards 8 does not match the 4 shards"),
        "{err}"
    );

    let set = open(dir.path(), 4).await.unwrap();
    assert!(set.wait_for_leaders(Duration::from_secs(10)).await);
    let q = TraceQuery {
        start_us: t - TTL,
        end_us: t + TTL,
        limit: 100,
        max_window_us: TTL,
        ..Default::default()
    };
    let total: usize = set
        .locals()
        .iter()
        .map(|s| find_traces(s.reader(), &q).unwrap().len())
        .sum();
    assert_eq!(total, 20);
    // Replaying after restart is still deduplicated by the persisted markers.
    let cmd = create("p3", t + 3);
    let shard = shard_of(cmd.routing_key().unwrap(), 4);
    let out = set
        .local(shard)
        .expect("local replica")
        .propose(Proposal {
            span_ttl_us: TTL,
            export_backlog: 0,
            now_us: t,
            commands: vec![cmd],
        })
        .await
        .unwrap();
    assert_eq!(out.outcomes, vec![CommandOutcome::Duplicate]);
    set.shutdown().await.unwrap();
}
