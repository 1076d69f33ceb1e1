//! Proposing metadata commands from any node: at the metadata leader, which is this
//! node or is reached over the peer RPC (one forwarding hop at most).

use kelemetry_core::cluster::{MemberState, MetaCommand};
use kelemetry_proto::kelemetry::cluster::v1::MetaRequest;
use kelemetry_raft::{ProposeError, ShardSet};
use std::time::Duration;

/// How long the metadata leader may take to add a joining node as a learner.
const ADD_LEARNER_TIMEOUT: Duration = Duration::from_secs(30);

/// Proposes `cmd` if this node leads the metadata group. A `Join` also adds the
/// node to the metadata group as a learner, so it receives the metadata.
pub async fn propose_here(shards: &ShardSet, cmd: MetaCommand) -> Result<(), ProposeError> {
    let meta = shards.meta();
    if !meta.is_leader() {
        return Err(ProposeError::NotLeader {
            shard: kelemetry_raft::META_SHARD,
            leader: meta.leader(),
        });
    }
    let joining = match &cmd {
        MetaCommand::Join(m) => Some((m.id, m.peer_addr.clone())),
        _ => None,
    };
    meta.propose_meta(cmd).await?;
    if let Some((id, addr)) = joining {
        let known = meta.voters().contains(&id) || meta.learners().contains(&id);
        if !known {
            tracing::info!(node = id, addr = %addr, "admitting node to the metadata group");
            match tokio::time::timeout(ADD_LEARNER_TIMEOUT, meta.add_learner(id, &addr)).await {
                Ok(Ok(())) => {}
                Ok(Err(message)) => {
                    return Err(ProposeError::Unavailable {
                        shard: kelemetry_raft::META_SHARD,
                        message,
                    })
                }
                Err(_) => {
                    return Err(ProposeError::Unavailable {
                        shard: kelemetry_raft::META_SHARD,
                        message: format!("node {id} did not catch up with the metadata in time"),
                    })
                }
            }
        }
    }
    Ok(())
}

/// Sends `cmd` to the node at `addr` (which proposes it or forwards it once to the
/// metadata leader).
pub async fn send_to(
    shards: &ShardSet,
    addr: &str,
    cmd: &MetaCommand,
    forwarded: bool,
) -> Result<(), String> {
    let body = postcard::to_stdvec(cmd).map_err(|e| e.to_string())?;
    let mut client = shards.channels().client(addr)?;
    let reply = tokio::time::timeout(
        ADD_LEARNER_TIMEOUT + Duration::from_secs(5),
        client.meta(MetaRequest {
            command: body,
            forwarded,
        }),
    )
    .await
    .map_err(|_| format!("{addr} did not answer in time"))?
    .map_err(|s| format!("{addr}: {}", s.message()))?
    .into_inner();
    if reply.error.is_empty() {
        Ok(())
    } else {
        Err(format!("{addr}: {}", reply.error))
    }
}

/// Proposes `cmd` at the metadata leader, wherever it is.
pub async fn submit(shards: &ShardSet, cmd: MetaCommand) -> Result<(), String> {
    match propose_here(shards, cmd.clone()).await {
        Ok(()) => Ok(()),
        Err(ProposeError::NotLeader {
            leader: Some(leader),
            ..
        }) if leader != shards.node_id() => {
            let addr = shards
                .peer_addr(leader)
                .ok_or_else(|| format!("metadata leader {leader} has no known address"))?;
            send_to(shards, &addr, &cmd, true).await
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Handles a metadata command that arrived over the peer RPC: proposed here, or
/// forwarded once to the leader.
pub async fn handle(shards: &ShardSet, cmd: MetaCommand, forwarded: bool) -> Result<(), String> {
    if forwarded {
        propose_here(shards, cmd).await.map_err(|e| e.to_string())
    } else {
        submit(shards, cmd).await
    }
}

/// Why a drain was refused.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The request cannot be carried out (unknown node, last active node, ...).
    #[error("{0}")]
    Invalid(String),
    /// The metadata leader could not commit it now; retry.
    #[error("{0}")]
    Unavailable(String),
}

/// Marks `node` draining: its replicas and leadership move away, then it is removed.
pub async fn drain(shards: &ShardSet, node: u64) -> Result<(), DrainError> {
    let meta = shards.cluster();
    match meta.members.get(&node).map(|m| m.state) {
        None => Err(DrainError::Invalid(format!("node {node} is not a member"))),
        Some(MemberState::Removed) => Err(DrainError::Invalid(format!(
            "node {node} is already removed"
        ))),
        Some(MemberState::Active) if meta.ids_in(MemberState::Active).len() <= 1 => {
            Err(DrainError::Invalid(format!(
                "node {node} is the last active node; nothing could take its shards"
            )))
        }
        Some(_) => submit(
            shards,
            MetaCommand::SetState {
                id: node,
                state: MemberState::Draining,
            },
        )
        .await
        .map_err(DrainError::Unavailable),
    }
}
