//! Two nodes' shard sets on real RocksDB files, talking over loopback gRPC through a
//! peer service that serves Raft only: unary messages always, the Raft stream when
//! asked to (a node without it stands for an older version).

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the support"
)]

use kelemetry_core::audit::AuditRecord;
use kelemetry_core::ids::shard_of;
use kelemetry_core::{Command, CommandOutcome, ObjectKey, Proposal};
use kelemetry_proto::kelemetry::cluster::v1::peer_server::PeerServer;
use kelemetry_proto::kelemetry::cluster::v1::{RaftFrame, RaftKind, RaftMessage};
use kelemetry_proto::peer_stub::{Partial, PartialPeer};
use kelemetry_raft::{serve_raft_stream, Engine, RaftAnswers, RaftSettings, ShardRaft, ShardSet};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

/// Shards of the test ring.
pub const SHARDS: u32 = 4;

/// One node: its shard set (once opened) and its stop signal.
pub struct TestNode {
    pub set: Arc<ShardSet>,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// The peer service of a test node.
#[derive(Clone)]
struct RaftOnlyPeer {
    set: Arc<OnceLock<Arc<ShardSet>>>,
    with_stream: bool,
    stop: watch::Receiver<bool>,
}

impl RaftOnlyPeer {
    fn set(&self) -> Result<Arc<ShardSet>, Status> {
        self.set
            .get()
            .cloned()
            .ok_or_else(|| Status::unavailable("not open yet"))
    }
}

#[tonic::async_trait]
impl PartialPeer for RaftOnlyPeer {
    type RaftStreamStream = RaftAnswers;

    async fn raft(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let msg = req.into_inner();
        let kind = RaftKind::try_from(msg.kind).map_err(|_| Status::invalid_argument("kind"))?;
        let payload = self
            .set()?
            .handle_raft(msg.group, kind, &msg.payload)
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(RaftMessage { payload, ..msg }))
    }

    async fn raft_stream(
        &self,
        req: Request<Streaming<RaftFrame>>,
    ) -> Result<Response<RaftAnswers>, Status> {
        if !self.with_stream {
            return Err(Status::unimplemented("no Raft stream in this version"));
        }
        let set = self.set()?;
        Ok(Response::new(serve_raft_stream(
            set,
            req.into_inner(),
            self.stop.clone(),
        )))
    }
}

/// Starts two nodes (ids 1 and 2, every shard on both); node 2 serves the Raft
/// stream only when `second_has_stream`.
pub async fn two_nodes(second_has_stream: bool) -> [TestNode; 2] {
    let listeners = [
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    ];
    let peers: BTreeMap<u64, String> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.local_addr().unwrap().to_string()))
        .collect();
    let mut opening = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let (stop, stop_rx) = watch::channel(false);
        let cell = Arc::new(OnceLock::new());
        let service = RaftOnlyPeer {
            set: cell.clone(),
            with_stream: id == 1 || second_has_stream,
            stop: stop_rx.clone(),
        };
        let mut until_stop = stop_rx;
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(PeerServer::new(Partial(service)))
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async move {
                        let _ = until_stop.wait_for(|s| *s).await;
                    },
                ),
        );
        let dir = tempfile::tempdir().unwrap();
        let settings = RaftSettings {
            peers: peers.clone(),
            replicas: 2,
            ..RaftSettings::single(id, peers[&id].clone(), SHARDS)
        };
        let engine = Engine::open(dir.path()).unwrap();
        opening.push(async move {
            let set = Arc::new(ShardSet::open(engine, &settings).await.unwrap());
            let _ = cell.set(set.clone());
            TestNode {
                set,
                stop,
                _dir: dir,
            }
        });
    }
    let nodes: Vec<TestNode> = futures::future::join_all(opening).await;
    for n in &nodes {
        assert!(n.set.wait_for_leaders(Duration::from_secs(20)).await);
    }
    nodes.try_into().map_err(|_| ()).unwrap()
}

/// An audit event creating pod `name` at `t`.
pub fn create(name: &str, t: i64) -> Command {
    create_in("c", name, t)
}

/// An audit event creating pod `name` of `cluster` at `t`.
pub fn create_in(cluster: &str, name: &str, t: i64) -> Command {
    Command::Audit(AuditRecord {
        key: ObjectKey::new(cluster, "", "pods", "ns", name),
        version: "v1".into(),
        audit_id: format!("id-{name}"),
        stage: "ResponseComplete".into(),
        verb: "create".into(),
        subresource: String::new(),
        title: "u create".into(),
        start_us: t,
        end_us: t,
        tags: vec![],
        request_rv: String::new(),
        response_code: 201,
        error_logs: vec![],
        response_object: None,
        diff_wait_us: 0,
    })
}

/// Proposes the creation of pod `name` at `t` to `group`, whose replica here leads,
/// and checks that it applied.
pub async fn propose_create(group: &ShardRaft, name: &str, t: i64) {
    let out = group
        .propose(Proposal {
            span_ttl_us: 1_800_000_000,
            export_backlog: 0,
            now_us: t,
            commands: vec![create(name, t)],
        })
        .await
        .unwrap();
    assert_eq!(out.outcomes, vec![CommandOutcome::Applied]);
}

/// Commits `count` new pods, each at its shard's leader, and checks every one applied.
pub async fn commit_pods(nodes: &[TestNode; 2], count: usize) {
    let t = 1_700_000_000_000_000;
    for i in 0..count {
        let name = format!("p{i}");
        let shard = shard_of(create(&name, t).routing_key().unwrap(), SHARDS);
        let leader = nodes
            .iter()
            .filter_map(|n| n.set.local(shard))
            .find(|g| g.is_leader())
            .expect("every shard has a leader");
        propose_create(&leader, &name, t + i as i64).await;
    }
}

/// Waits until both replicas of every shard hold the same state.
pub async fn wait_for_identical_replicas(nodes: &[TestNode; 2]) {
    for _ in 0..200 {
        let same = (0..SHARDS).all(|s| {
            let sums: Vec<_> = nodes
                .iter()
                .map(|n| n.set.local(s).map(|g| g.state_checksum().unwrap()))
                .collect();
            sums[0].is_some() && sums[0] == sums[1]
        });
        if same {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the replicas did not converge");
}

/// The sum of counter `name` over its series that have a label valued `label`
/// (every series when `None`); 0 when never counted.
pub fn counter(name: &str, label: Option<&str>) -> u64 {
    prometheus::gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric())
        .filter(|m| label.is_none_or(|v| m.get_label().iter().any(|l| l.value() == v)))
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// Raft messages sent on `path` (`kelemetry_raft_messages_sent_total`).
pub fn sent(path: &str) -> u64 {
    counter("kelemetry_raft_messages_sent_total", Some(path))
}

/// Stops both nodes' servers and groups.
pub async fn stop(nodes: [TestNode; 2]) {
    for n in nodes {
        let _ = n.stop.send(true);
        n.set.shutdown().await.unwrap();
    }
}

/// Opens the engine in `dir`; the previous set's Raft tasks and WAL syncer release the
/// database lock shortly after it is dropped, so opening retries for a moment.
pub async fn reopen_engine(dir: &std::path::Path) -> Engine {
    let mut tries = 0;
    loop {
        match Engine::open(dir) {
            Ok(e) => return e,
            Err(e) if tries < 50 && e.to_string().contains("lock") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot open the engine: {e}"),
        }
    }
}
