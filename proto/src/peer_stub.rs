//! A peer service for tests that stand in for another node: [`PartialPeer`] has every
//! peer RPC answer "unimplemented" unless the stub overrides it, and [`Partial`]
//! serves such a stub as a [`Peer`]. A new RPC then needs no change to each stub.

use crate::kelemetry::cluster::v1 as pb;
use crate::kelemetry::cluster::v1::peer_server::Peer;
use tonic::codegen::tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// The peer RPCs, each refused as unimplemented unless overridden.
#[tonic::async_trait]
pub trait PartialPeer: Send + Sync + 'static {
    /// The answer stream of [`PartialPeer::raft_stream`].
    type RaftStreamStream: Stream<Item = Result<pb::RaftFrame, Status>> + Send + 'static;

    /// See [`Peer::raft`].
    async fn raft(&self, _: Request<pb::RaftMessage>) -> Result<Response<pb::RaftMessage>, Status> {
        Err(Status::unimplemented("raft"))
    }
    /// See [`Peer::raft_stream`].
    async fn raft_stream(
        &self,
        _: Request<Streaming<pb::RaftFrame>>,
    ) -> Result<Response<Self::RaftStreamStream>, Status> {
        Err(Status::unimplemented("raft stream"))
    }
    /// See [`Peer::submit`].
    async fn submit(
        &self,
        _: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitReply>, Status> {
        Err(Status::unimplemented("submit"))
    }
    /// See [`Peer::submit_many`].
    async fn submit_many(
        &self,
        _: Request<pb::SubmitManyRequest>,
    ) -> Result<Response<pb::SubmitManyReply>, Status> {
        Err(Status::unimplemented("submit many"))
    }
    /// See [`Peer::read`].
    async fn read(&self, _: Request<pb::ReadRequest>) -> Result<Response<pb::ReadReply>, Status> {
        Err(Status::unimplemented("read"))
    }
    /// See [`Peer::meta`].
    async fn meta(&self, _: Request<pb::MetaRequest>) -> Result<Response<pb::MetaReply>, Status> {
        Err(Status::unimplemented("meta"))
    }
    /// See [`Peer::ping`].
    async fn ping(&self, _: Request<pb::PingRequest>) -> Result<Response<pb::PingReply>, Status> {
        Err(Status::unimplemented("ping"))
    }
    /// See [`Peer::campaign`].
    async fn campaign(
        &self,
        _: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignReply>, Status> {
        Err(Status::unimplemented("campaign"))
    }
}

/// Serves a [`PartialPeer`] as a [`Peer`].
pub struct Partial<T>(pub T);

#[tonic::async_trait]
impl<T: PartialPeer> Peer for Partial<T> {
    type RaftStreamStream = T::RaftStreamStream;

    async fn raft(&self, r: Request<pb::RaftMessage>) -> Result<Response<pb::RaftMessage>, Status> {
        self.0.raft(r).await
    }
    async fn raft_stream(
        &self,
        r: Request<Streaming<pb::RaftFrame>>,
    ) -> Result<Response<Self::RaftStreamStream>, Status> {
        self.0.raft_stream(r).await
    }
    async fn submit(
        &self,
        r: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitReply>, Status> {
        self.0.submit(r).await
    }
    async fn submit_many(
        &self,
        r: Request<pb::SubmitManyRequest>,
    ) -> Result<Response<pb::SubmitManyReply>, Status> {
        self.0.submit_many(r).await
    }
    async fn read(&self, r: Request<pb::ReadRequest>) -> Result<Response<pb::ReadReply>, Status> {
        self.0.read(r).await
    }
    async fn meta(&self, r: Request<pb::MetaRequest>) -> Result<Response<pb::MetaReply>, Status> {
        self.0.meta(r).await
    }
    async fn ping(&self, r: Request<pb::PingRequest>) -> Result<Response<pb::PingReply>, Status> {
        self.0.ping(r).await
    }
    async fn campaign(
        &self,
        r: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignReply>, Status> {
        self.0.campaign(r).await
    }
}
