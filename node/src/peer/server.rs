//! The peer RPC service on `--peer-addr`: Raft messages for this node's groups,
//! command batches that other nodes forward to this node because it leads their
//! shard, shard reads at the leader, ring commands, handover requests and pings.

use crate::query::shard_reads::{serve_read, ServeError};
use kelemetry_actors::ring::{proposer, readmission, RingError};
use kelemetry_actors::{IngestRouter, SubmitError};
use kelemetry_core::ring::RingCommand;
use kelemetry_core::state::ShardRead;
use kelemetry_core::Command;
use kelemetry_proto::kelemetry::cluster::v1::peer_server::{Peer, PeerServer};
use kelemetry_proto::kelemetry::cluster::v1::{
    CampaignReply, CampaignRequest, MetaReply, MetaRequest, PingReply, PingRequest, RaftFrame,
    RaftKind, RaftMessage, ReadReply, ReadRequest, SubmitManyReply, SubmitManyRequest, SubmitReply,
    SubmitRequest,
};
use kelemetry_raft::{serve_raft_stream, RaftAnswers, ShardSet};
use std::sync::Arc;
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

/// The peer service over this node's groups and its shard actors.
#[derive(Clone)]
pub struct PeerService {
    shards: Arc<ShardSet>,
    router: IngestRouter,
    stop: watch::Receiver<bool>,
}

impl PeerService {
    /// The service of a node whose write path (`router`) has started; its Raft
    /// streams end when `stop` turns true.
    pub fn new(
        shards: Arc<ShardSet>,
        router: IngestRouter,
        stop: watch::Receiver<bool>,
    ) -> PeerServer<Self> {
        PeerServer::new(Self {
            shards,
            router,
            stop,
        })
        .max_decoding_message_size(256 << 20)
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    type RaftStreamStream = RaftAnswers;

    async fn raft_stream(
        &self,
        req: Request<Streaming<RaftFrame>>,
    ) -> Result<Response<RaftAnswers>, Status> {
        Ok(Response::new(serve_raft_stream(
            self.shards.clone(),
            req.into_inner(),
            self.stop.clone(),
        )))
    }

    async fn raft(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let msg = req.into_inner();
        let kind = RaftKind::try_from(msg.kind)
            .map_err(|_| Status::invalid_argument("unknown raft message kind"))?;
        let payload = self
            .shards
            .handle_raft(msg.group, kind, &msg.payload)
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(RaftMessage {
            group: msg.group,
            kind: msg.kind,
            payload,
        }))
    }

    async fn submit(&self, req: Request<SubmitRequest>) -> Result<Response<SubmitReply>, Status> {
        self.submit_one(req.into_inner()).await.map(Response::new)
    }

    async fn submit_many(
        &self,
        req: Request<SubmitManyRequest>,
    ) -> Result<Response<SubmitManyReply>, Status> {
        let batches = req.into_inner().shards;
        let answers =
            futures::future::join_all(batches.into_iter().map(|b| self.submit_one(b))).await;
        Ok(Response::new(SubmitManyReply {
            shards: answers.into_iter().collect::<Result<_, _>>()?,
        }))
    }

    async fn read(&self, req: Request<ReadRequest>) -> Result<Response<ReadReply>, Status> {
        let req = req.into_inner();
        let read: ShardRead = postcard::from_bytes(&req.read)
            .map_err(|e| Status::invalid_argument(format!("undecodable read: {e}")))?;
        let reply = match serve_read(&self.shards, req.shard, &read, req.allow_stale).await {
            Ok((result, stale)) => ReadReply {
                result: postcard::to_stdvec(&result)
                    .map_err(|e| Status::internal(e.to_string()))?,
                stale,
                ..Default::default()
            },
            Err(ServeError::NotLeader(leader)) => ReadReply {
                not_leader: true,
                leader,
                error: format!(
                    "node {} does not lead shard {}",
                    self.shards.node_id(),
                    req.shard
                ),
                ..Default::default()
            },
            Err(ServeError::Failed(error)) => ReadReply {
                error: error.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn meta(&self, req: Request<MetaRequest>) -> Result<Response<MetaReply>, Status> {
        let req = req.into_inner();
        let cmd: RingCommand = postcard::from_bytes(&req.command)
            .map_err(|e| Status::invalid_argument(format!("undecodable command: {e}")))?;
        let readmitted = req.lost_data && matches!(cmd, RingCommand::Join(_));
        let result = match (&cmd, req.lost_data) {
            (RingCommand::Join(me), true) => {
                readmission::handle(&self.shards, me, req.forwarded).await
            }
            (_, true) => Err(RingError::NotYet(
                "only a Join can be marked as coming from a node that lost its data".into(),
            )),
            (_, false) => proposer::handle(&self.shards, cmd, req.forwarded).await,
        };
        let reply = match result {
            Ok(()) => MetaReply {
                readmitted,
                ..Default::default()
            },
            Err(error) => MetaReply {
                error: error.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(reply))
    }

    async fn campaign(
        &self,
        req: Request<CampaignRequest>,
    ) -> Result<Response<CampaignReply>, Status> {
        let shard = req.into_inner().shard;
        let group = if shard == kelemetry_raft::META_SHARD {
            Some(self.shards.meta().clone())
        } else {
            self.shards.local(shard)
        };
        let error = match group {
            Some(_) if self.shards.disk_refusal().is_some() => {
                "this node is short of disk space and takes no leadership".to_string()
            }
            Some(g) => {
                tracing::info!(shard, "leadership handed to this node; campaigning");
                g.campaign()
                    .await
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            }
            None => format!("no replica of shard {shard} here"),
        };
        Ok(Response::new(CampaignReply { error }))
    }

    async fn ping(&self, req: Request<PingRequest>) -> Result<Response<PingReply>, Status> {
        let ring = self.shards.ring();
        let ran = |id| {
            ring.members
                .get(&id)
                .is_some_and(|m| !m.http_addr.is_empty())
        };
        Ok(Response::new(PingReply {
            node_id: self.shards.node_id(),
            in_ring: !ring.members.is_empty(),
            asking_node_ran: req.into_inner().asking_node.is_some_and(ran),
        }))
    }
}

impl PeerService {
    /// Commits one forwarded batch on a shard this node leads (never forwarded again).
    async fn submit_one(&self, req: SubmitRequest) -> Result<SubmitReply, Status> {
        let commands: Vec<Command> = postcard::from_bytes(&req.commands)
            .map_err(|e| Status::invalid_argument(format!("undecodable commands: {e}")))?;
        let reply = match self.router.submit_local(req.shard, commands).await {
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
        Ok(reply)
    }
}
