//! Proposing ring commands from any node: at the metadata leader, which is this
//! node or is reached over the peer RPC (one forwarding hop at most).

use super::RingError;
use kelemetry_core::ring::{MemberState, RingCommand};
use kelemetry_proto::kelemetry::cluster::v1::MetaRequest;
use kelemetry_raft::{GroupError, PeerError, ShardSet, META_SHARD};
use std::time::Duration;

/// How long the metadata leader may take to add a joining node as a learner.
const ADD_LEARNER_TIMEOUT: Duration = Duration::from_secs(30);

/// Proposes `cmd` if this node leads the metadata group. A `Join` also adds the
/// node to the metadata group as a learner, so it receives the metadata.
pub async fn propose_here(shards: &ShardSet, cmd: RingCommand) -> Result<(), GroupError> {
    let meta = shards.meta();
    if !meta.is_leader() {
        return Err(GroupError::NotLeader {
            shard: META_SHARD,
            leader: meta.leader(),
        });
    }
    let joining = match &cmd {
        RingCommand::Join(m) => Some((m.id, m.peer_addr.clone())),
        _ => None,
    };
    meta.propose_ring(cmd).await?;
    if let Some((id, addr)) = joining {
        let known = meta.voters().contains(&id) || meta.learners().contains(&id);
        if !known {
            tracing::info!(node = id, addr = %addr, "admitting node to the metadata group");
            meta.membership()
                .add_caught_up_learner(id, &addr, ADD_LEARNER_TIMEOUT)
                .await?;
        }
    }
    Ok(())
}

/// Sends `cmd` to the node at `addr` (which proposes it or forwards it once to the
/// metadata leader).
pub async fn send_to(
    shards: &ShardSet,
    addr: &str,
    cmd: &RingCommand,
    forwarded: bool,
) -> Result<(), PeerError> {
    send_request(shards, addr, cmd, forwarded, false)
        .await
        .map(|_| ())
}

/// Sends `cmd` to the node at `addr`; `lost_data` marks the Join of a node that
/// lost its data ([`crate::ring::readmission`]). On success, whether the answer
/// says the node is readmitted.
pub(crate) async fn send_request(
    shards: &ShardSet,
    addr: &str,
    cmd: &RingCommand,
    forwarded: bool,
    lost_data: bool,
) -> Result<bool, PeerError> {
    let body = postcard::to_stdvec(cmd)
        .map_err(|e| PeerError::Transport(format!("cannot encode the command: {e}")))?;
    let mut client = shards.channels().client(addr)?;
    let reply = tokio::time::timeout(
        ADD_LEARNER_TIMEOUT + Duration::from_secs(5),
        client.meta(MetaRequest {
            command: body,
            forwarded,
            lost_data,
        }),
    )
    .await
    .map_err(|_| PeerError::Transport(format!("{addr} did not answer in time")))?
    .map_err(|s| PeerError::Transport(format!("{addr}: {}", s.message())))?
    .into_inner();
    if reply.error.is_empty() {
        Ok(reply.readmitted)
    } else {
        Err(PeerError::Refused {
            peer: addr.to_string(),
            message: reply.error,
        })
    }
}

/// Proposes `cmd` at the metadata leader, wherever it is.
pub async fn submit(shards: &ShardSet, cmd: RingCommand) -> Result<(), RingError> {
    match propose_here(shards, cmd.clone()).await {
        Ok(()) => Ok(()),
        Err(GroupError::NotLeader {
            leader: Some(leader),
            ..
        }) if leader != shards.node_id() => {
            let addr = shards
                .peer_addr(leader)
                .ok_or(PeerError::NoAddress(leader))?;
            // A metadata leader cut off just as the command left (its answers lost)
            // would hold the caller for the whole send timeout, and a shard move
            // waiting here starts no other step: give up once its pings do.
            tokio::select! {
                sent = send_to(shards, &addr, &cmd, true) => Ok(sent?),
                () = shards.until_unreachable(leader) => Err(PeerError::Transport(format!(
                    "metadata leader node {leader} stopped answering pings"
                ))
                .into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Handles a ring command that arrived over the peer RPC: proposed here, or
/// forwarded once to the leader.
pub async fn handle(shards: &ShardSet, cmd: RingCommand, forwarded: bool) -> Result<(), RingError> {
    if forwarded {
        Ok(propose_here(shards, cmd).await?)
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
    #[error(transparent)]
    Unavailable(#[from] RingError),
}

/// Marks `node` draining: its replicas and leadership move away, then it is removed.
pub async fn drain(shards: &ShardSet, node: u64) -> Result<(), DrainError> {
    let meta = shards.ring();
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
            RingCommand::SetState {
                id: node,
                state: MemberState::Draining,
            },
        )
        .await
        .map_err(DrainError::Unavailable),
    }
}
