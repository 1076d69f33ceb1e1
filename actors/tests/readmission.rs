//! Readmission across versions, over loopback gRPC: a node that lost its data
//! clears its mark only when the metadata leader says "readmitted", never on a
//! bare success from a peer that predates readmission.

use kelemetry_actors::ring::readmission;
use kelemetry_core::ring::{Member, MemberState};
use kelemetry_proto::kelemetry::cluster::v1 as pb;
use kelemetry_proto::kelemetry::cluster::v1::peer_server::PeerServer;
use kelemetry_proto::peer_stub::{Partial, PartialPeer};
use kelemetry_raft::{Engine, RaftSettings, ShardSet};
use tonic::{Request, Response, Status};

/// A metadata leader that answers every Meta request with success, saying
/// "readmitted" or not as configured.
struct MetaLeader {
    says_readmitted: bool,
}

#[tonic::async_trait]
impl PartialPeer for MetaLeader {
    type RaftStreamStream = kelemetry_raft::RaftAnswers;

    async fn meta(&self, _: Request<pb::MetaRequest>) -> Result<Response<pb::MetaReply>, Status> {
        Ok(Response::new(pb::MetaReply {
            error: String::new(),
            readmitted: self.says_readmitted,
        }))
    }
}

async fn serve(says_readmitted: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(PeerServer::new(Partial(MetaLeader { says_readmitted })))
            .serve_with_incoming(incoming),
    );
    addr
}

/// A node on a fresh directory that joins (does not bootstrap): marked as having
/// lost its data. Each test shuts it down before returning: RocksDB's background
/// threads still running at process exit abort the test binary.
async fn lost_node(dir: &std::path::Path) -> (ShardSet, Member) {
    let addr = "127.0.0.1:1".to_string();
    let mut settings = RaftSettings::single(5, addr.clone(), 4);
    settings.bootstrap = false;
    let set = ShardSet::open(Engine::open(dir).unwrap(), &settings)
        .await
        .unwrap();
    assert!(set.awaits_readmission());
    let me = Member {
        id: 5,
        peer_addr: addr,
        http_addr: "127.0.0.1:2".into(),
        state: MemberState::Active,
    };
    (set, me)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_success_from_an_older_peer_does_not_readmit() {
    let dir = tempfile::tempdir().unwrap();
    let (set, me) = lost_node(dir.path()).await;
    let old = serve(false).await;
    let err = readmission::ask(&set, &old, &me).await.unwrap_err();
    assert!(err.to_string().contains("predates readmission"), "{err}");
    assert!(set.awaits_readmission());
    assert!(set.lost_data_refusal().is_some());
    set.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_readmission_clears_the_mark() {
    let dir = tempfile::tempdir().unwrap();
    let (set, me) = lost_node(dir.path()).await;
    let leader = serve(true).await;
    readmission::ask(&set, &leader, &me).await.unwrap();
    assert!(!set.awaits_readmission());
    set.shutdown().await.unwrap();
}
