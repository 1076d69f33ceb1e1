//! The write path on real RocksDB: group commit under concurrency, cross-shard links
//! through the outbox, and refusal when a shard queue is full.

use kelemetry_actors::{Pipeline, PipelineSettings, SubmitError};
use kelemetry_core::audit::AuditRecord;
use kelemetry_core::ids::shard_of;
use kelemetry_core::model::LinkRole;
use kelemetry_core::outbox::OutboxKind;
use kelemetry_core::state::{list_outbox, load_trace};
use kelemetry_core::window::Window;
use kelemetry_core::{Command, CommandOutcome, ObjectKey};
use kelemetry_raft::{Engine, RaftSettings, ShardSet};
use std::sync::Arc;
use std::time::Duration;

const T: i64 = 1_700_000_000_000_000;

async fn shard_set(dir: &std::path::Path, shards: u32) -> Arc<ShardSet> {
    let settings = RaftSettings::single(1, "127.0.0.1:7070".into(), shards);
    let set = ShardSet::open(Engine::open(dir).unwrap(), &settings)
        .await
        .unwrap();
    assert!(set.wait_for_leaders(Duration::from_secs(10)).await);
    Arc::new(set)
}

fn create(key: ObjectKey, id: &str, response: Option<String>) -> Command {
    Command::Audit(AuditRecord {
        key,
        version: "v1".into(),
        audit_id: id.into(),
        stage: "ResponseComplete".into(),
        verb: "create".into(),
        subresource: String::new(),
        title: "u create".into(),
        start_us: T,
        end_us: T,
        tags: vec![],
        request_rv: String::new(),
        response_code: 201,
        error_logs: vec![],
        response_object: response,
        diff_wait_us: 0,
    })
}

fn pod(name: &str) -> ObjectKey {
    ObjectKey::new("c", "", "pods", "ns", name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_commit_and_links_cross_shards() {
    let dir = tempfile::tempdir().unwrap();
    let shards = shard_set(dir.path(), 8).await;
    let settings = PipelineSettings {
        outbox_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let pipeline = Pipeline::start(shards.clone(), &settings, None)
        .await
        .unwrap();
    let router = pipeline.router();

    let mut tasks = Vec::new();
    for c in 0..16 {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            let cmds = (0..50)
                .map(|i| create(pod(&format!("p{c}-{i}")), &format!("{c}-{i}"), None))
                .collect();
            router.submit(cmds).await
        }));
    }
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        assert_eq!(out.len(), 50);
        assert!(out.iter().all(|o| *o == CommandOutcome::Applied));
    }

    // A ReplicaSet owning pods on other shards: the owner's side arrives via outboxes.
    let rs = ObjectKey::new("c", "apps", "replicasets", "ns", "rs");
    let owned: Vec<_> = (0..12)
        .map(|i| {
            let json = serde_json::json!({"kind": "Pod", "metadata": {"name": format!("owned-{i}"), "resourceVersion": "1",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "controller": true}]}});
            create(pod(&format!("owned-{i}")), &format!("o{i}"), Some(json.to_string()))
        })
        .collect();
    assert!(owned
        .iter()
        .any(|c| shard_of(c.routing_key().unwrap(), 8) != shard_of(&rs, 8)));
    router.submit(owned).await.unwrap();
    let rs_shard = shards.local(shard_of(&rs, 8)).expect("local replica");
    let window = Window::containing(T, settings.span_ttl.as_micros() as i64);
    let mut links = 0;
    for _ in 0..200 {
        links = load_trace(rs_shard.reader(), &rs, window.start_us)
            .unwrap()
            .map_or(0, |t| {
                assert!(t.links.iter().all(|l| l.role == LinkRole::Child));
                t.links.len()
            });
        if links == 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(links, 12, "every child link reached the owner's shard");
    for _ in 0..100 {
        if shards.locals().iter().all(|s| {
            list_outbox(s.reader(), OutboxKind::Link, 0, 1)
                .unwrap()
                .is_empty()
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        shards
            .locals()
            .iter()
            .all(|s| list_outbox(s.reader(), OutboxKind::Link, 0, 1)
                .unwrap()
                .is_empty()),
        "outboxes acknowledged"
    );
    pipeline.stop().await;
    shards.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_refused_not_grown() {
    let dir = tempfile::tempdir().unwrap();
    let shards = shard_set(dir.path(), 1).await;
    let settings = PipelineSettings {
        max_queued_commands: 10,
        max_in_flight: 1,
        ..Default::default()
    };
    let pipeline = Pipeline::start(shards.clone(), &settings, None)
        .await
        .unwrap();
    let router = pipeline.router();
    let mut tasks = Vec::new();
    for c in 0..40 {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            router
                .submit(
                    (0..8)
                        .map(|i| create(pod(&format!("q{c}-{i}")), &format!("q{c}-{i}"), None))
                        .collect(),
                )
                .await
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(SubmitError::Overloaded { .. }) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(ok >= 1 && refused >= 1, "ok {ok} refused {refused}");
    pipeline.stop().await;
    shards.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_windows_older_than_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let shards = shard_set(dir.path(), 4).await;
    let settings = PipelineSettings {
        retention: Duration::from_secs(3600),
        retention_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let pipeline = Pipeline::start(shards.clone(), &settings, None)
        .await
        .unwrap();
    let old = create(pod("old"), "old", None);
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let mut recent = create(pod("recent"), "recent", None);
    if let Command::Audit(a) = &mut recent {
        a.start_us = now_us;
        a.end_us = now_us;
    }
    pipeline.router().submit(vec![old, recent]).await.unwrap();
    let ttl = settings.span_ttl.as_micros() as i64;
    let window_of = |t: i64| Window::containing(t, ttl).start_us;
    let reader = |k: &ObjectKey| {
        shards
            .local(shard_of(k, 4))
            .expect("local replica")
            .reader()
            .clone()
    };
    let mut gone = false;
    for _ in 0..100 {
        if load_trace(&reader(&pod("old")), &pod("old"), window_of(T))
            .unwrap()
            .is_none()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the 2023 window was expired");
    assert!(
        load_trace(&reader(&pod("recent")), &pod("recent"), window_of(now_us))
            .unwrap()
            .is_some()
    );
    pipeline.stop().await;
    shards.shutdown().await.unwrap();
}

/// How many forwards ran at once, at most.
#[derive(Default)]
struct ForwardCount {
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

/// A leader that takes 400 ms to commit each forwarded batch.
struct SlowLeader(Arc<ForwardCount>);

impl kelemetry_actors::Forwarder for SlowLeader {
    fn forward(
        &self,
        _leader: u64,
        _shard: u32,
        commands: Vec<Command>,
    ) -> kelemetry_actors::ForwardFuture {
        use std::sync::atomic::Ordering::SeqCst;
        let count = self.0.clone();
        Box::pin(async move {
            let now = count.running.fetch_add(1, SeqCst) + 1;
            count.most.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(400)).await;
            count.running.fetch_sub(1, SeqCst);
            Ok(vec![CommandOutcome::Applied; commands.len()])
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_lead_a_shard_forwards_up_to_four_batches_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let shards = shard_set(dir.path(), 2).await;
    // Shard 1 is led elsewhere: this node has no replica and knows node 7 leads it.
    shards.remove_group(1).await.unwrap();
    shards.note_leader(1, 7);
    let count = Arc::new(ForwardCount::default());
    let settings = PipelineSettings {
        max_in_flight: 1,
        ..Default::default()
    };
    let pipeline = Pipeline::start(
        shards.clone(),
        &settings,
        Some(Arc::new(SlowLeader(count.clone()))),
    )
    .await
    .unwrap();
    let router = pipeline.router();
    let mut tasks = Vec::new();
    for (i, key) in (0..)
        .map(|i| pod(&format!("f{i}")))
        .filter(|k| shard_of(k, 2) == 1)
        .take(8)
        .enumerate()
    {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            router
                .submit(vec![create(key, &format!("f{i}"), None)])
                .await
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), vec![CommandOutcome::Applied]);
    }
    // One at a time would keep each batch waiting for the previous one's commit;
    // more than four would let one node pile its batches on a leader.
    assert_eq!(count.most.load(std::sync::atomic::Ordering::SeqCst), 4);
    pipeline.stop().await;
    shards.shutdown().await.unwrap();
}

/// A leader that commits whole requests' batches at once (as a peer's `SubmitMany`
/// does), counting the batches it took.
struct BatchingLeader(Arc<std::sync::atomic::AtomicUsize>);

impl kelemetry_actors::Forwarder for BatchingLeader {
    fn forward(&self, _: u64, _: u32, commands: Vec<Command>) -> kelemetry_actors::ForwardFuture {
        panic!("batches of {} commands go together", commands.len())
    }

    fn forward_many(
        &self,
        _leader: u64,
        batches: Vec<(u32, Vec<Command>)>,
    ) -> kelemetry_actors::ForwardManyFuture {
        self.0
            .fetch_add(batches.len(), std::sync::atomic::Ordering::SeqCst);
        let fates = batches
            .into_iter()
            .map(|(_, c)| {
                kelemetry_actors::BatchFate::Answered(Ok(vec![CommandOutcome::Applied; c.len()]))
            })
            .collect();
        Box::pin(async move { fates })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_short_of_disk_refuses_writes_it_would_only_forward() {
    let dir = tempfile::tempdir().unwrap();
    let shards = shard_set(dir.path(), 2).await;
    // Shard 1 is led by node 7; shard 0 is led here.
    shards.remove_group(1).await.unwrap();
    shards.note_leader(1, 7);
    let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pipeline = Pipeline::start(
        shards.clone(),
        &PipelineSettings::default(),
        Some(Arc::new(BatchingLeader(taken.clone()))),
    )
    .await
    .unwrap();
    let router = pipeline.router();
    let on = |shard| {
        (0..)
            .map(|i| pod(&format!("d{i}")))
            .find(|k| shard_of(k, 2) == shard)
    };
    let forwarded = create(on(1).unwrap(), "d-forwarded", None);
    assert_eq!(
        router.submit(vec![forwarded.clone()]).await.unwrap(),
        vec![CommandOutcome::Applied]
    );
    shards.guard_disk(kelemetry_raft::disk_guard::DiskGuard::new(
        dir.path(),
        u64::MAX / 2,
    ));
    for command in [forwarded, create(on(0).unwrap(), "d-local", None)] {
        match router.submit(vec![command]).await {
            Err(SubmitError::Unavailable { message, .. }) => {
                assert!(message.contains("--min-free-disk"), "{message}")
            }
            other => panic!("a write was not refused: {other:?}"),
        }
    }
    assert_eq!(
        taken.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "only the first"
    );
    pipeline.stop().await;
    shards.shutdown().await.unwrap();
}
