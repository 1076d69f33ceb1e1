//! Shard reads for queries: served by the shard's leader after a linearizability
//! check (locally when this node leads, over the peer RPC otherwise), and, when the
//! shard has no leader, from a replica with the result marked stale.

use kelemetry_core::state::{ShardRead, ShardReadResult};
use kelemetry_proto::kelemetry::cluster::v1::ReadRequest;
use kelemetry_raft::{PeerError, ShardRaft, ShardSet};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// How long a leader may take to confirm its leadership for a read.
const LINEARIZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why this node did not serve a read.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// This node does not lead the shard (or holds no replica); the leader it knows.
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<u64>),
    /// The read failed.
    #[error(transparent)]
    Failed(#[from] ReadError),
}

/// Why a shard read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The node asked could not be reached, or refused.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The replica's state could not be read.
    #[error("shard {shard}: {message}")]
    State {
        /// The shard.
        shard: u32,
        /// What the storage said.
        message: String,
    },
    /// No replica of the shard answered.
    #[error("shard {0} has no reachable replica")]
    NoReplica(u32),
    /// The read could not be encoded for a peer.
    #[error("cannot encode the read: {0}")]
    Encode(String),
    /// The task running the read failed.
    #[error("shard {shard} read task failed: {message}")]
    Task {
        /// The shard.
        shard: u32,
        /// The join error.
        message: String,
    },
}

/// A read answered, and whether it may be stale.
pub type Answer = (ShardReadResult, bool);

fn run(g: &ShardRaft, read: &ShardRead, stale: bool) -> Result<Answer, ServeError> {
    read.run(g.reader()).map(|r| (r, stale)).map_err(|e| {
        ServeError::Failed(ReadError::State {
            shard: g.shard(),
            message: e.to_string(),
        })
    })
}

/// Serves a read with this node's replica: linearizable when this node leads the
/// shard; otherwise only with `allow_stale` (and then marked stale).
pub async fn serve_read(
    shards: &ShardSet,
    shard: u32,
    read: &ShardRead,
    allow_stale: bool,
) -> Result<Answer, ServeError> {
    let Some(g) = shards.local(shard) else {
        return Err(ServeError::NotLeader(shards.leader_hint(shard)));
    };
    if g.is_leader()
        && matches!(
            tokio::time::timeout(LINEARIZE_TIMEOUT, g.ensure_linearizable()).await,
            Ok(Ok(()))
        )
    {
        return run(&g, read, false);
    }
    if allow_stale {
        return run(&g, read, true);
    }
    Err(ServeError::NotLeader(
        g.leader().or_else(|| shards.leader_hint(shard)),
    ))
}

fn transport(message: String) -> ServeError {
    ServeError::Failed(ReadError::Peer(PeerError::Transport(message)))
}

async fn remote(
    shards: &ShardSet,
    node: u64,
    shard: u32,
    body: &[u8],
    allow_stale: bool,
) -> Result<Answer, ServeError> {
    let mut client = shards.peer_client(node).map_err(ReadError::from)?;
    let call = tokio::time::timeout(
        LINEARIZE_TIMEOUT * 2,
        client.read(ReadRequest {
            shard,
            read: body.to_vec(),
            allow_stale,
        }),
    );
    let answered = tokio::select! {
        a = call => a.ok(),
        () = shards.until_unreachable(node) => None,
    };
    let reply = answered
        .ok_or_else(|| transport(format!("node {node} did not answer a read in time")))?
        .map_err(|s| transport(format!("reading from node {node}: {}", s.message())))?
        .into_inner();
    if reply.not_leader {
        return Err(ServeError::NotLeader(reply.leader));
    }
    if !reply.error.is_empty() {
        return Err(ReadError::Peer(PeerError::Refused {
            peer: format!("node {node}"),
            message: reply.error,
        })
        .into());
    }
    let result = postcard::from_bytes(&reply.result)
        .map_err(|e| transport(format!("undecodable read result: {e}")))?;
    Ok((result, reply.stale))
}

/// How long a read waits for a shard that is between leaders before it is answered
/// from a replica and marked stale: an election takes well under a second, but one
/// that follows a lost handover waits out the followers' leader lease (0.8 s) and an
/// election timeout (up to 0.8 s) first, and one leader read under load can take a
/// second of that.
const ELECTION_WAIT: Duration = Duration::from_secs(3);

/// Reads a shard at its leader (following one redirect, and waiting out an election
/// for up to [`ELECTION_WAIT`]); when no leader answers, from this node's replica or
/// any replica the placement names, marked stale.
pub async fn read(shards: &ShardSet, shard: u32, read: &ShardRead) -> Result<Answer, ReadError> {
    let body = postcard::to_stdvec(read).map_err(|e| ReadError::Encode(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + ELECTION_WAIT;
    loop {
        match leader_read(shards, shard, read, &body).await {
            Ok(Some(a)) => return Ok(a),
            Ok(None)
                if tokio::time::Instant::now() < deadline && shards.leader_reachable(shard) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(None) => break,
            Err(e) => return Err(e),
        }
    }
    stale_read(shards, shard, read, &body).await
}

/// One attempt at a linearizable read: here if this node leads, else at the leader
/// it knows, following redirects and then asking every replica the placement names
/// (a stale hint must not hide a leader that exists). `None` when no leader answered.
async fn leader_read(
    shards: &ShardSet,
    shard: u32,
    read: &ShardRead,
    body: &[u8],
) -> Result<Option<Answer>, ReadError> {
    let first = match serve_read(shards, shard, read, false).await {
        Ok(a) => return Ok(Some(a)),
        Err(ServeError::NotLeader(l)) => l,
        Err(ServeError::Failed(e)) => return Err(e),
    };
    let mut queue: VecDeque<u64> = first.into_iter().collect();
    queue.extend(shards.leader_candidates(shard));
    let mut tried = vec![shards.node_id()];
    while let Some(node) = queue.pop_front() {
        // A peer that answers no pings is not waited for: the read falls back to a
        // replica, marked stale, instead of timing out against it.
        if tried.contains(&node) || shards.peer_unreachable(node) {
            continue;
        }
        tried.push(node);
        match remote(shards, node, shard, body, false).await {
            Ok(a) => {
                shards.note_leader(shard, node);
                return Ok(Some(a));
            }
            Err(ServeError::NotLeader(Some(next))) => queue.push_front(next),
            Err(ServeError::NotLeader(None)) => {}
            Err(ServeError::Failed(e)) => {
                tracing::debug!(shard, node, error = %e, "leader read failed");
            }
        }
    }
    shards.forget_leader(shard);
    Ok(None)
}

/// A read from this node's replica or any replica the placement names, marked stale.
async fn stale_read(
    shards: &ShardSet,
    shard: u32,
    read: &ShardRead,
    body: &[u8],
) -> Result<Answer, ReadError> {
    if let Ok(a) = serve_read(shards, shard, read, true).await {
        return Ok(a);
    }
    let replicas = shards.ring().voters.get(&shard).cloned();
    let mut last = ReadError::NoReplica(shard);
    for node in replicas.unwrap_or_default() {
        if node == shards.node_id() || shards.peer_unreachable(node) {
            continue;
        }
        match remote(shards, node, shard, body, true).await {
            Ok(a) => return Ok(a),
            Err(ServeError::Failed(e)) => last = e,
            Err(ServeError::NotLeader(_)) => {}
        }
    }
    Err(last)
}

/// Runs one read on each of several shards concurrently; answers in input order.
pub async fn read_many(
    shards: &Arc<ShardSet>,
    reads: Vec<(u32, ShardRead)>,
) -> Vec<(u32, Result<Answer, ReadError>)> {
    let tasks: Vec<(u32, tokio::task::JoinHandle<Result<Answer, ReadError>>)> = reads
        .into_iter()
        .map(|(shard, r)| {
            let shards = shards.clone();
            (
                shard,
                tokio::spawn(async move { read(&shards, shard, &r).await }),
            )
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (shard, task) in tasks {
        let result = task.await.unwrap_or_else(|e| {
            Err(ReadError::Task {
                shard,
                message: e.to_string(),
            })
        });
        out.push((shard, result));
    }
    out
}
