//! Peer RPC on `--peer-addr`: Raft messages for this node's groups, and command
//! batches that a follower forwards to this node because it leads their shard.

use crate::server::AppState;
use kelemetry_actors::{ForwardFuture, Forwarder, SubmitError};
use kelemetry_core::{Command, CommandOutcome};
use kelemetry_proto::kelemetry::cluster::v1::peer_server::{Peer, PeerServer};
use kelemetry_proto::kelemetry::cluster::v1::{RaftKind, RaftMessage, SubmitReply, SubmitRequest};
use kelemetry_raft::ShardSet;
use std::sync::{Arc, OnceLock};
use tonic::{Request, Response, Status};

/// The peer service; the state is set once the write path has started.
#[derive(Clone)]
pub struct PeerService {
    shards: Arc<ShardSet>,
    state: Arc<OnceLock<Arc<AppState>>>,
}

impl PeerService {
    /// A service answering Raft at once and submissions once `state` is set.
    pub fn new(shards: Arc<ShardSet>, state: Arc<OnceLock<Arc<AppState>>>) -> PeerServer<Self> {
        PeerServer::new(Self { shards, state }).max_decoding_message_size(256 << 20)
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    async fn raft(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let msg = req.into_inner();
        let kind = RaftKind::try_from(msg.kind)
            .map_err(|_| Status::invalid_argument("unknown raft message kind"))?;
        let payload = self
            .shards
            .handle_raft(msg.group, kind, &msg.payload)
            .await
            .map_err(Status::failed_precondition)?;
        Ok(Response::new(RaftMessage {
            group: msg.group,
            kind: msg.kind,
            payload,
        }))
    }

    async fn submit(&self, req: Request<SubmitRequest>) -> Result<Response<SubmitReply>, Status> {
        let Some(state) = self.state.get() else {
            return Err(Status::unavailable("node is starting"));
        };
        let req = req.into_inner();
        let commands: Vec<Command> = postcard::from_bytes(&req.commands)
            .map_err(|e| Status::invalid_argument(format!("undecodable commands: {e}")))?;
        let reply = match state.router.submit_local(req.shard, commands).await {
            Ok(outcomes) => SubmitReply {
                outcomes: postcard::to_stdvec(&outcomes)
                    .map_err(|e| Status::internal(e.to_string()))?,
                ..Default::default()
            },
            Err(e) => SubmitReply {
                not_leader: matches!(e, SubmitError::NotLeader { .. }),
                overloaded: matches!(e, SubmitError::Overloaded { .. }),
                error: e.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }
}

/// Forwards batches to shard leaders over the shared peer channels.
pub struct PeerForwarder(pub Arc<ShardSet>);

impl Forwarder for PeerForwarder {
    fn forward(&self, leader: u64, shard: u32, commands: Vec<Command>) -> ForwardFuture {
        let shards = self.0.clone();
        Box::pin(async move {
            let unavailable = |message: String| SubmitError::Unavailable { shard, message };
            let addr = shards
                .peer_addr(leader)
                .ok_or_else(|| unavailable(format!("leader {leader} has no known address")))?
                .to_string();
            let mut client = shards.channels().client(&addr).map_err(unavailable)?;
            let body = postcard::to_stdvec(&commands).map_err(|e| unavailable(e.to_string()))?;
            let reply = client
                .submit(SubmitRequest {
                    shard,
                    commands: body,
                })
                .await
                .map_err(|s| unavailable(format!("forwarding to node {leader}: {}", s.message())))?
                .into_inner();
            if reply.overloaded {
                return Err(SubmitError::Overloaded { shard, queued: 0 });
            }
            if !reply.error.is_empty() {
                return Err(unavailable(format!("node {leader}: {}", reply.error)));
            }
            postcard::from_bytes::<Vec<CommandOutcome>>(&reply.outcomes)
                .map_err(|e| unavailable(e.to_string()))
        })
    }
}
