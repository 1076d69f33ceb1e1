//! The receiving side of Raft: an inbound peer message decoded and handed to its
//! group, opening the replica if this node has none yet (that is how a node added as
//! a learner receives its first entries or snapshot). Messages come one per RPC or
//! as frames on a peer's Raft stream.

use crate::error::{InboundError, ShardSetError};
use crate::group::ShardRaft;
use crate::keys::{self, GroupId};
use crate::registry::ShardSet;
use kelemetry_proto::kelemetry::cluster::v1::{RaftFrame, RaftKind};
use std::sync::Arc;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

/// Frames of one inbound Raft stream being handled at once; reading pauses (and
/// HTTP/2 flow control holds the sender back) beyond that. A peer has at most one
/// AppendEntries in flight per group, so this is far above what a healthy peer sends.
const STREAM_FRAMES_IN_FLIGHT: usize = 4096;

/// Answers queued for sending back on one inbound Raft stream.
const STREAM_ANSWER_QUEUE: usize = 1024;

/// The answers of an inbound Raft stream, as the peer service returns them.
pub type RaftAnswers = ReceiverStream<Result<RaftFrame, tonic::Status>>;

/// Serves one inbound Raft stream: every frame is handed to its group at once, and
/// its answer goes back as soon as the group gives it, in whatever order. The answers
/// end when the peer closes the stream or `stop` turns true (so a node shutting down
/// is not held by its peers' streams).
pub fn serve_raft_stream(
    shards: Arc<ShardSet>,
    mut frames: tonic::Streaming<RaftFrame>,
    mut stop: watch::Receiver<bool>,
) -> RaftAnswers {
    let (answers, rx) = mpsc::channel(STREAM_ANSWER_QUEUE);
    let in_flight = Arc::new(Semaphore::new(STREAM_FRAMES_IN_FLIGHT));
    tokio::spawn(async move {
        loop {
            let frame = tokio::select! {
                f = frames.message() => f,
                _ = stop.wait_for(|s| *s) => break,
            };
            let Ok(Some(frame)) = frame else { break };
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let shards = shards.clone();
            let answers = answers.clone();
            tokio::spawn(async move {
                let answer = shards.handle_frame(frame).await;
                let _ = answers.send(Ok(answer)).await;
                drop(permit);
            });
        }
    });
    ReceiverStream::new(rx)
}

impl ShardSet {
    /// Opens this node's replica of `shard` for a message of `kind` naming it. A
    /// replica this node deleted is opened again only for its leader's entries or
    /// snapshot once the metadata places the shard here; a vote is never cast from
    /// it, as a blank replica would grant any candidate, however stale its log.
    async fn open_for_message(
        &self,
        shard: u32,
        kind: RaftKind,
    ) -> Result<ShardRaft, InboundError> {
        let removed = self.removed_here(shard).map_err(ShardSetError::from)?;
        if removed && (kind == RaftKind::Vote || !self.placed_here(shard)) {
            crate::metrics::REMOVED_REPLICA_REFUSALS.inc();
            return Err(InboundError::RemovedReplica(shard));
        }
        Ok(self.ensure_group(shard).await?)
    }

    /// Handles a Raft message from a peer and returns the encoded result. A message
    /// for a shard this node has no replica of opens one: that is how a node added
    /// as a learner receives its first entries or snapshot.
    pub async fn handle_raft(
        &self,
        group: GroupId,
        kind: RaftKind,
        payload: &[u8],
    ) -> Result<Vec<u8>, InboundError> {
        // Checked before a group is opened: answering as a replica it forgot is what
        // must not happen.
        if let Some(why) = self.lost_data_refusal() {
            return Err(InboundError::LostData(why));
        }
        let g = match keys::group_shard(group) {
            None => self.meta().clone(),
            Some(shard) => match self.local(shard) {
                Some(g) => g,
                None => self.open_for_message(shard, kind).await?,
            },
        };
        let raft = &g.raft;
        fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, InboundError> {
            postcard::from_bytes(b).map_err(|e| InboundError::Undecodable(e.to_string()))
        }
        fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, InboundError> {
            postcard::to_stdvec(v).map_err(|e| InboundError::Encode(e.to_string()))
        }
        match kind {
            RaftKind::AppendEntries => {
                let req: openraft::raft::AppendEntriesRequest<crate::types::TypeConfig> =
                    dec(payload)?;
                // Heartbeats still pass, so a short disk does not start elections.
                if !req.entries.is_empty() {
                    self.refuse_if_disk_low()?;
                }
                // A leader that answers none of this node's pings is treated as gone:
                // its messages still arriving over a one-way link would otherwise
                // renew its lease here forever while it hears nothing back, and no
                // election could start.
                if let Some(leader) = req.vote.leader_id().voted_for() {
                    if leader != self.node_id() && self.peer_unreachable(leader) {
                        crate::metrics::UNREACHABLE_LEADER_REFUSALS.inc();
                        return Err(InboundError::Unreachable(leader));
                    }
                }
                enc(&raft.append_entries(req).await)
            }
            RaftKind::Vote => enc(&raft.vote(dec(payload)?).await),
            RaftKind::InstallSnapshot => {
                self.refuse_if_disk_low()?;
                enc(&raft.install_snapshot(dec(payload)?).await)
            }
        }
    }

    async fn handle_frame(&self, frame: RaftFrame) -> RaftFrame {
        let result = match RaftKind::try_from(frame.kind) {
            Ok(kind) => self
                .handle_raft(frame.group, kind, &frame.payload)
                .await
                .map_err(|e| e.to_string()),
            Err(_) => Err(format!("unknown raft message kind {}", frame.kind)),
        };
        let (payload, error) = match result {
            Ok(payload) => (payload, String::new()),
            Err(error) => (Vec::new(), error),
        };
        RaftFrame {
            id: frame.id,
            group: frame.group,
            kind: frame.kind,
            payload,
            error,
        }
    }

    fn refuse_if_disk_low(&self) -> Result<(), InboundError> {
        self.disk_refusal()
            .map_or(Ok(()), |m| Err(InboundError::DiskLow(m)))
    }
}
