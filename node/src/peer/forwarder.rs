//! Forwarding command batches to the leader of their shard over the peer RPC, for
//! shards this node does not lead.

use kelemetry_actors::{ForwardFuture, Forwarder, SubmitError};
use kelemetry_core::{Command, CommandOutcome};
use kelemetry_proto::kelemetry::cluster::v1::SubmitRequest;
use kelemetry_raft::ShardSet;
use std::sync::Arc;

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
