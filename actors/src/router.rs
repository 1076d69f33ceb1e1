//! Sends commands to the shard actors that own them and gathers the outcomes.
//!
//! Routing is a pure function of the object key (jump hash over the fixed shard
//! count), so the router holds no state beyond the actor references and is a plain
//! cloneable value rather than an actor: an actor would serialise every request
//! through one mailbox for nothing.
//!
//! The shards of a request that another node leads go to that node together, one
//! exchange per leader node instead of one per shard; a batch the leader does not
//! take (it no longer leads the shard) goes through its shard's actor, which finds
//! the leader.

use crate::error::SubmitError;
use crate::metrics;
use crate::shard::{route, BatchFate, Forwarder, Route, ShardMsg};
use kelemetry_core::ids::shard_of;
use kelemetry_core::{Command, CommandOutcome};
use kelemetry_raft::ShardSet;
use ractor::concurrency::{oneshot, OneshotReceiver};
use ractor::{ActorRef, RpcReplyPort};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Cloneable handle that routes commands to shard actors.
#[derive(Clone)]
pub struct IngestRouter {
    shards: Arc<Vec<ActorRef<ShardMsg>>>,
    set: Arc<ShardSet>,
    forwarder: Option<Arc<dyn Forwarder>>,
    timeout: Duration,
}

type Reply = Result<Vec<CommandOutcome>, SubmitError>;

/// A shard's part of a request: where its commands sit in the request, and them.
type Part = (u32, Vec<usize>, Vec<Command>);

impl IngestRouter {
    pub(crate) fn new(
        shards: Vec<ActorRef<ShardMsg>>,
        set: Arc<ShardSet>,
        forwarder: Option<Arc<dyn Forwarder>>,
        timeout: Duration,
    ) -> Self {
        Self {
            shards: Arc::new(shards),
            set,
            forwarder,
            timeout,
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> u32 {
        self.shards.len() as u32
    }

    /// Commits object-scoped commands, each on its object's shard, and returns their
    /// outcomes in input order. Returns only after every shard has committed its part.
    ///
    /// # Panics
    /// If a command has no routing key (maintenance commands go through
    /// [`IngestRouter::submit_to_shard`]).
    pub async fn submit(&self, commands: Vec<Command>) -> Reply {
        let n = self.shard_count();
        // A node short of disk space refuses every write, as its shard actors do, also
        // the ones it would only forward: its answer must not depend on where the
        // request's shards happen to be led.
        if let Some(message) = self.set.disk_refusal() {
            metrics::REJECTED.with_label_values(&["disk_low"]).inc();
            let shard = commands
                .iter()
                .find_map(Command::routing_key)
                .map_or(0, |k| shard_of(k, n));
            return Err(SubmitError::Unavailable { shard, message });
        }
        let mut groups: Vec<(Vec<usize>, Vec<Command>)> =
            vec![(Vec::new(), Vec::new()); n as usize];
        let total = commands.len();
        for (i, c) in commands.into_iter().enumerate() {
            let key = c
                .routing_key()
                .expect("submit takes object-scoped commands only");
            let g = &mut groups[shard_of(key, n) as usize];
            g.0.push(i);
            g.1.push(c);
        }
        let mut waits = Vec::new();
        let mut remote: BTreeMap<u64, Vec<Part>> = BTreeMap::new();
        for (shard, (positions, cmds)) in groups.into_iter().enumerate() {
            if cmds.is_empty() {
                continue;
            }
            let shard = shard as u32;
            match (route(&self.set, shard), &self.forwarder) {
                (Route::Forward(leader), Some(_)) => {
                    remote
                        .entry(leader)
                        .or_default()
                        .push((shard, positions, cmds));
                }
                _ => waits.push((shard, positions, self.send(shard, cmds, true)?)),
            }
        }
        let forwarded = match self.forwarder.as_deref() {
            Some(forwarder) => {
                futures::future::join_all(
                    remote
                        .into_iter()
                        .map(|(leader, parts)| forward_together(forwarder, leader, parts)),
                )
                .await
            }
            None => Vec::new(),
        };
        let mut answers: Vec<(Vec<usize>, Reply)> = Vec::new();
        for (shard, positions, fate) in forwarded.into_iter().flatten() {
            match fate {
                BatchFate::Answered(reply) => answers.push((positions, reply)),
                BatchFate::Returned(cmds) => {
                    waits.push((shard, positions, self.send(shard, cmds, true)?))
                }
            }
        }
        for (shard, positions, rx) in waits {
            answers.push((positions, self.wait(shard, rx).await));
        }
        let mut outcomes = vec![CommandOutcome::Duplicate; total];
        let mut first_error = None;
        for (positions, reply) in answers {
            match reply {
                Ok(outs) => {
                    for (p, o) in positions.into_iter().zip(outs) {
                        outcomes[p] = o;
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(outcomes), Err)
    }

    /// Commits commands on one given shard (forwarded to its leader if needed).
    pub async fn submit_to_shard(&self, shard: u32, commands: Vec<Command>) -> Reply {
        let rx = self.send(shard, commands, true)?;
        self.wait(shard, rx).await
    }

    /// Commits commands on one given shard only if this node leads it: for
    /// submissions a peer forwarded here, which must not be forwarded again.
    pub async fn submit_local(&self, shard: u32, commands: Vec<Command>) -> Reply {
        if shard >= self.shard_count() {
            return Err(SubmitError::Unavailable {
                shard,
                message: "no such shard".into(),
            });
        }
        let rx = self.send(shard, commands, false)?;
        self.wait(shard, rx).await
    }

    fn send(
        &self,
        shard: u32,
        commands: Vec<Command>,
        forwardable: bool,
    ) -> Result<OneshotReceiver<Reply>, SubmitError> {
        let (tx, rx) = oneshot();
        let reply: RpcReplyPort<Reply> = tx.into();
        self.shards[shard as usize]
            .cast(ShardMsg::Submit {
                commands,
                reply,
                forwardable,
            })
            .map_err(|e| SubmitError::Unavailable {
                shard,
                message: format!("shard actor stopped: {e}"),
            })?;
        Ok(rx)
    }

    async fn wait(&self, shard: u32, rx: OneshotReceiver<Reply>) -> Reply {
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(SubmitError::Unavailable {
                shard,
                message: "shard actor dropped the request".into(),
            }),
            Err(_) => Err(SubmitError::Timeout { shard }),
        }
    }
}

/// Sends the parts of a request that node `leader` leads to it in one exchange.
async fn forward_together(
    forwarder: &dyn Forwarder,
    leader: u64,
    parts: Vec<Part>,
) -> Vec<(u32, Vec<usize>, BatchFate)> {
    let mut places = Vec::with_capacity(parts.len());
    let mut batches = Vec::with_capacity(parts.len());
    for (shard, positions, cmds) in parts {
        places.push((shard, positions));
        batches.push((shard, cmds));
    }
    crate::metrics::FORWARDED_TOGETHER.inc_by(batches.len() as u64);
    let fates = forwarder.forward_many(leader, batches).await;
    places
        .into_iter()
        .zip(fates)
        .map(|((shard, positions), fate)| (shard, positions, fate))
        .collect()
}
