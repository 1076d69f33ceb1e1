//! Peer RPC on `--peer-addr`: Raft messages for this node's groups, and command
//! batches that a follower forwards to this node because it leads their shard.

use crate::server::AppState;
use kelemetry_actors::{ForwardFuture, Forwarder, SubmitError};
use kelemetry_core::cluster::MetaCommand;
use kelemetry_core::state::ShardRead;
use kelemetry_core::{Command, CommandOutcome};
use kelemetry_proto::kelemetry::cluster::v1::peer_server::{Peer, PeerServer};
use kelemetry_proto::kelemetry::cluster::v1::{
    CampaignReply, CampaignRequest, MetaReply, MetaRequest, PingReply, PingRequest, RaftKind,
    RaftMessage, ReadReply, ReadRequest, SubmitReply, SubmitRequest,
};
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
                leader: match e {
                    SubmitError::NotLeader { leader, .. } => leader,
                    _ => None,
                },
                error: e.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn read(&self, req: Request<ReadRequest>) -> Result<Response<ReadReply>, Status> {
        let req = req.into_inner();
        let read: ShardRead = postcard::from_bytes(&req.read)
            .map_err(|e| Status::invalid_argument(format!("undecodable read: {e}")))?;
        let reply =
            match crate::reads::serve_read(&self.shards, req.shard, &read, req.allow_stale).await {
                Ok((result, stale)) => ReadReply {
                    result: postcard::to_stdvec(&result)
                        .map_err(|e| Status::internal(e.to_string()))?,
                    stale,
                    ..Default::default()
                },
                Err(crate::reads::ServeError::NotLeader(leader)) => ReadReply {
                    not_leader: true,
                    leader,
                    error: format!(
                        "node {} does not lead shard {}",
                        self.shards.node_id(),
                        req.shard
                    ),
                    ..Default::default()
                },
                Err(crate::reads::ServeError::Failed(error)) => ReadReply {
                    error,
                    ..Default::default()
                },
            };
        Ok(Response::new(reply))
    }

    async fn meta(&self, req: Request<MetaRequest>) -> Result<Response<MetaReply>, Status> {
        let req = req.into_inner();
        let cmd: MetaCommand = postcard::from_bytes(&req.command)
            .map_err(|e| Status::invalid_argument(format!("undecodable command: {e}")))?;
        let reply =
            match crate::cluster::meta_client::handle(&self.shards, cmd, req.forwarded).await {
                Ok(()) => MetaReply::default(),
                Err(error) => MetaReply { error },
            };
        Ok(Response::new(reply))
    }

    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignReply>, Status> {
        let shard = req.into_inner().shard;
        let error = match self.shards.local(shard) {
            Some(g) => {
                tracing::info!(shard, "leadership handed to this node; campaigning");
                g.campaign().await.err().unwrap_or_default()
            }
            None => format!("no replica of shard {shard} here"),
        };
        Ok(Response::new(CampaignReply { error }))
    }

    async fn ping(&self, _req: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        Ok(Response::new(PingReply {
            node_id: self.shards.node_id(),
        }))
    }
}

/// How long a forwarded batch may take: the leader's own commit timeout plus
/// network slack.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Forwards batches to shard leaders over the shared peer channels, following one
/// redirect when the receiver names another leader.
pub struct PeerForwarder(pub Arc<ShardSet>);

impl Forwarder for PeerForwarder {
    fn forward(&self, leader: u64, shard: u32, commands: Vec<Command>) -> ForwardFuture {
        let shards = self.0.clone();
        Box::pin(async move {
            let unavailable = |message: String| SubmitError::Unavailable { shard, message };
            let body = postcard::to_stdvec(&commands).map_err(|e| unavailable(e.to_string()))?;
            let mut target = leader;
            for attempt in 0..2 {
                let mut client = shards.peer_client(target).map_err(unavailable)?;
                let call = client.submit(SubmitRequest {
                    shard,
                    commands: body.clone(),
                });
                let reply = tokio::time::timeout(FORWARD_TIMEOUT, call)
                    .await
                    .map_err(|_| {
                        unavailable(format!(
                            "node {target} did not answer within {FORWARD_TIMEOUT:?}"
                        ))
                    })?
                    .map_err(|s| {
                        shards.forget_leader(shard);
                        unavailable(format!("forwarding to node {target}: {}", s.message()))
                    })?
                    .into_inner();
                if reply.overloaded {
                    return Err(SubmitError::Overloaded { shard, queued: 0 });
                }
                match (reply.not_leader, reply.leader) {
                    (true, Some(next)) if next != target && attempt == 0 => {
                        shards.note_leader(shard, next);
                        target = next;
                        continue;
                    }
                    (true, _) => shards.forget_leader(shard),
                    _ => {}
                }
                if !reply.error.is_empty() {
                    return Err(unavailable(format!("node {target}: {}", reply.error)));
                }
                shards.note_leader(shard, target);
                return postcard::from_bytes::<Vec<CommandOutcome>>(&reply.outcomes)
                    .map_err(|e| unavailable(e.to_string()));
            }
            Err(unavailable(format!("node {target} redirected again")))
        })
    }
}
