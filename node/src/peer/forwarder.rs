//! Forwarding command batches to the leader of their shard over the peer RPC, for
//! shards this node does not lead.

use kelemetry_actors::{BatchFate, ForwardFuture, ForwardManyFuture, Forwarder, SubmitError};
use kelemetry_core::{Command, CommandOutcome};
use kelemetry_proto::kelemetry::cluster::v1::{SubmitManyRequest, SubmitReply, SubmitRequest};
use kelemetry_raft::ShardSet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a forwarded batch may take: the leader's own commit timeout plus
/// network slack.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// How long a peer that does not know `SubmitMany` (an older version, during a
/// rolling upgrade) is sent its batches one shard at a time.
const SUBMIT_MANY_FALLBACK: Duration = Duration::from_secs(60);

/// Forwards batches to shard leaders over the shared peer channels, following one
/// redirect when the receiver names another leader.
pub struct PeerForwarder {
    shards: Arc<ShardSet>,
    /// Peers that answered `SubmitMany` with "unimplemented", and when.
    one_by_one: Arc<Mutex<HashMap<u64, Instant>>>,
}

impl PeerForwarder {
    /// Forwards for this node's `shards`.
    pub fn new(shards: Arc<ShardSet>) -> Self {
        Self {
            shards,
            one_by_one: Arc::default(),
        }
    }
}

/// Every batch refused as unavailable with `message`.
fn all_unavailable(batches: Vec<(u32, Vec<Command>)>, message: &str) -> Vec<BatchFate> {
    batches
        .into_iter()
        .map(|(shard, _)| {
            BatchFate::Answered(Err(SubmitError::Unavailable {
                shard,
                message: message.to_string(),
            }))
        })
        .collect()
}

/// Every batch back to its shard's actor.
fn all_returned(batches: Vec<(u32, Vec<Command>)>) -> Vec<BatchFate> {
    batches
        .into_iter()
        .map(|(_, cmds)| BatchFate::Returned(cmds))
        .collect()
}

/// What node `leader`'s answer for `shard` means when it is not a redirect: the
/// outcomes (and `leader` noted as the shard's leader), or why there are none.
fn settled(
    shards: &ShardSet,
    leader: u64,
    shard: u32,
    r: &SubmitReply,
) -> Result<Vec<CommandOutcome>, SubmitError> {
    let unavailable = |message: String| SubmitError::Unavailable { shard, message };
    if r.overloaded {
        return Err(SubmitError::Overloaded { shard, queued: 0 });
    }
    if !r.error.is_empty() {
        return Err(unavailable(format!("node {leader}: {}", r.error)));
    }
    shards.note_leader(shard, leader);
    postcard::from_bytes::<Vec<CommandOutcome>>(&r.outcomes).map_err(|e| unavailable(e.to_string()))
}

/// What the leader's answer for one shard's batch sent with others means: a
/// redirect returns the batch (after noting whom the leader named).
fn fate(
    shards: &ShardSet,
    leader: u64,
    shard: u32,
    cmds: Vec<Command>,
    r: SubmitReply,
) -> BatchFate {
    if r.not_leader {
        match r.leader {
            Some(next) if next != leader => shards.note_leader(shard, next),
            _ => shards.forget_leader(shard),
        }
        return BatchFate::Returned(cmds);
    }
    BatchFate::Answered(settled(shards, leader, shard, &r))
}

impl Forwarder for PeerForwarder {
    fn forward_many(&self, leader: u64, batches: Vec<(u32, Vec<Command>)>) -> ForwardManyFuture {
        let shards = self.shards.clone();
        let one_by_one = self.one_by_one.clone();
        Box::pin(async move {
            let since = one_by_one
                .lock()
                .map(|m| m.get(&leader).copied())
                .ok()
                .flatten();
            if since.is_some_and(|t| t.elapsed() < SUBMIT_MANY_FALLBACK) {
                return all_returned(batches);
            }
            if shards.peer_unreachable(leader) {
                for (shard, _) in &batches {
                    shards.forget_leader(*shard);
                }
                let message = format!(
                    "node {leader} leads the shard but has answered no ping for {:?}",
                    kelemetry_raft::peer_health::UNREACHABLE_AFTER
                );
                return all_unavailable(batches, &message);
            }
            let mut requests = Vec::with_capacity(batches.len());
            for (shard, cmds) in &batches {
                match kelemetry_core::codec::to_sized_vec(cmds) {
                    Ok(commands) => requests.push(SubmitRequest {
                        shard: *shard,
                        commands,
                    }),
                    Err(e) => return all_unavailable(batches, &e.to_string()),
                }
            }
            let mut client = match shards.peer_client(leader) {
                Ok(c) => c,
                Err(e) => return all_unavailable(batches, &e.to_string()),
            };
            let call = client.submit_many(SubmitManyRequest { shards: requests });
            let answered = tokio::select! {
                a = tokio::time::timeout(FORWARD_TIMEOUT, call) => a.ok(),
                () = shards.until_unreachable(leader) => None,
            };
            let replies = match answered {
                None => {
                    let message = format!(
                        "node {leader} did not answer within {FORWARD_TIMEOUT:?} or stopped answering pings"
                    );
                    return all_unavailable(batches, &message);
                }
                Some(Err(status)) if status.code() == tonic::Code::Unimplemented => {
                    tracing::info!(node = leader, "peer has no SubmitMany (an older version); forwarding its batches shard by shard");
                    if let Ok(mut m) = one_by_one.lock() {
                        m.insert(leader, Instant::now());
                    }
                    return all_returned(batches);
                }
                Some(Err(status)) => {
                    for (shard, _) in &batches {
                        shards.forget_leader(*shard);
                    }
                    let message = format!("forwarding to node {leader}: {}", status.message());
                    return all_unavailable(batches, &message);
                }
                Some(Ok(reply)) => reply.into_inner().shards,
            };
            if replies.len() != batches.len() {
                let message = format!(
                    "node {leader} answered for {} of {} shards",
                    replies.len(),
                    batches.len()
                );
                return all_unavailable(batches, &message);
            }
            batches
                .into_iter()
                .zip(replies)
                .map(|((shard, cmds), r)| fate(&shards, leader, shard, cmds, r))
                .collect()
        })
    }

    fn forward(&self, leader: u64, shard: u32, commands: Vec<Command>) -> ForwardFuture {
        let shards = self.shards.clone();
        Box::pin(async move {
            let unavailable = |message: String| SubmitError::Unavailable { shard, message };
            let body = kelemetry_core::codec::to_sized_vec(&commands)
                .map_err(|e| unavailable(e.to_string()))?;
            let mut target = leader;
            for attempt in 0..2 {
                if shards.peer_unreachable(target) {
                    shards.forget_leader(shard);
                    return Err(unavailable(format!(
                        "node {target} leads shard {shard} but has answered no ping for {:?}",
                        kelemetry_raft::peer_health::UNREACHABLE_AFTER
                    )));
                }
                let mut client = shards
                    .peer_client(target)
                    .map_err(|e| unavailable(e.to_string()))?;
                let call = client.submit(SubmitRequest {
                    shard,
                    commands: body.clone(),
                });
                let answered = tokio::select! {
                    a = tokio::time::timeout(FORWARD_TIMEOUT, call) => a.ok(),
                    () = shards.until_unreachable(target) => None,
                };
                let reply = answered
                    .ok_or_else(|| {
                        unavailable(format!(
                            "node {target} did not answer within {FORWARD_TIMEOUT:?} or stopped answering pings"
                        ))
                    })?
                    .map_err(|s| {
                        shards.forget_leader(shard);
                        unavailable(format!("forwarding to node {target}: {}", s.message()))
                    })?
                    .into_inner();
                match (reply.not_leader, reply.leader) {
                    (true, Some(next)) if next != target && attempt == 0 => {
                        shards.note_leader(shard, next);
                        target = next;
                        continue;
                    }
                    (true, _) => shards.forget_leader(shard),
                    _ => {}
                }
                return settled(&shards, target, shard, &reply);
            }
            Err(unavailable(format!("node {target} redirected again")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kelemetry_proto::kelemetry::cluster::v1 as pb;
    use kelemetry_proto::kelemetry::cluster::v1::peer_server::PeerServer;
    use kelemetry_proto::peer_stub::{Partial, PartialPeer};
    use kelemetry_raft::{Engine, RaftAnswers, RaftSettings};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tonic::{Request, Response, Status};

    /// A peer of an older version: it knows no `SubmitMany`, and counts the calls.
    struct OlderPeer(Arc<AtomicUsize>);

    #[tonic::async_trait]
    impl PartialPeer for OlderPeer {
        type RaftStreamStream = RaftAnswers;

        async fn submit_many(
            &self,
            _: Request<SubmitManyRequest>,
        ) -> Result<Response<pb::SubmitManyReply>, Status> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(Status::unimplemented("submit many"))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_for_a_peer_without_submit_many_come_back_to_go_shard_by_shard() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let calls = Arc::new(AtomicUsize::new(0));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(PeerServer::new(Partial(OlderPeer(calls.clone()))))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let dir = tempfile::tempdir().unwrap();
        let mut settings = RaftSettings::single(1, "127.0.0.1:1".into(), 4);
        settings.peers.insert(2, addr);
        settings.bootstrap = false;
        let set = Arc::new(
            ShardSet::open(Engine::open(dir.path()).unwrap(), &settings)
                .await
                .unwrap(),
        );
        let forwarder = PeerForwarder::new(set.clone());
        let batches = || vec![(0, Vec::<Command>::new()), (3, Vec::new())];
        for _ in 0..2 {
            let fates = forwarder.forward_many(2, batches()).await;
            assert_eq!(fates.len(), 2);
            assert!(fates.iter().all(|f| matches!(f, BatchFate::Returned(_))));
        }
        // Asked once; the second request went shard by shard without asking again.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        set.shutdown().await.unwrap();
    }
}
