//! The ring agent (one actor per node): registers the node, runs the placement
//! controller when the node leads the metadata group, moves the shards the node
//! leads toward their targets, and opens and deletes local replicas as placement
//! changes.

use super::controller::{ControlSettings, Controller};
use super::{proposer, readmission, shard_moves};
use kelemetry_core::ring::{Member, MemberState, RingCommand};
use kelemetry_raft::ShardSet;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the agent runs.
const TICK: Duration = Duration::from_millis(500);

/// Longest one round of registration, control or replica upkeep may take: openraft
/// calls on a group that loses its leader mid-call may never answer, and the agent
/// must go on with its next round.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest one shard move step may take (catch-up included) before it is retried.
const MOVE_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a local replica must stay outside the placement before it is deleted
/// (covers a metadata replica that lags behind a move adding this node), if it is
/// cut off from its group (no leader, or not a member of its own configuration).
const REMOVE_GRACE: Duration = Duration::from_secs(10);

/// How long a replica outside the placement is kept even if it still hears from a
/// leader: a leader replicating to it may be adding this node back, and deleting a
/// replica under a leader that tracks its log would make the log go backwards.
const REMOVE_GRACE_CONNECTED: Duration = Duration::from_secs(60);

/// What the agent needs to know about this node.
pub struct AgentArgs {
    /// The node's groups.
    pub shards: Arc<ShardSet>,
    /// This node as a member (addresses to advertise).
    pub me: Member,
    /// Peer addresses to ask for admission while the node is not a member.
    pub join: Vec<String>,
    /// Controller tunables.
    pub control: ControlSettings,
}

/// Messages of the agent.
pub enum AgentMsg {
    /// Time for a round.
    Tick,
}

/// The cluster agent.
pub struct RingAgent;

/// State of the agent.
pub struct AgentState {
    args: AgentArgs,
    controller: Controller,
    moving: Arc<Mutex<HashSet<u32>>>,
    outside_since: HashMap<u32, Instant>,
    join_attempt: usize,
    warned_removed: bool,
    last_readmission: Option<String>,
}

impl Actor for RingAgent {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AgentMsg>,
        args: AgentArgs,
    ) -> Result<AgentState, ActorProcessingErr> {
        myself.send_after(TICK, || AgentMsg::Tick);
        Ok(AgentState {
            controller: Controller::new(args.control.clone()),
            args,
            moving: Arc::default(),
            outside_since: HashMap::new(),
            join_attempt: 0,
            warned_removed: false,
            last_readmission: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        AgentMsg::Tick: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        bounded_round("registration", register(state)).await;
        let shards = state.args.shards.clone();
        bounded_round("controller", state.controller.tick(&shards)).await;
        bounded_round(
            "metadata handover",
            state.controller.hand_over_metadata_lead(&shards),
        )
        .await;
        start_moves(state);
        bounded_round("replica upkeep", reconcile_replicas(state)).await;
        myself.send_after(TICK, || AgentMsg::Tick);
        Ok(())
    }
}

/// Runs one round of agent work, giving up after [`ROUND_TIMEOUT`] so the next
/// round still happens.
async fn bounded_round(what: &str, round: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(ROUND_TIMEOUT, round).await.is_err() {
        tracing::warn!(round = what, "agent round timed out");
    }
}

/// Makes sure this node is a member with its current addresses: asks a `--join`
/// peer for admission while the node has no metadata, re-registers when its
/// addresses changed.
async fn register(state: &mut AgentState) {
    let shards = &state.args.shards;
    let me = &state.args.me;
    if shards.awaits_readmission() {
        ask_readmission(state).await;
        return;
    }
    let meta = shards.ring();
    if meta.members.is_empty() {
        // A node that leads the metadata group it just bootstrapped is in the ring
        // its controller creates; it asks no one (itself included) to join.
        if state.args.join.is_empty() || shards.meta().is_leader() {
            return;
        }
        let addr = &state.args.join[state.join_attempt % state.args.join.len()];
        state.join_attempt += 1;
        match proposer::send_to(shards, addr, &RingCommand::Join(me.clone()), false).await {
            Ok(()) => {
                tracing::info!(via = %addr, "join request accepted; waiting for the metadata")
            }
            Err(e) => tracing::warn!(via = %addr, error = %e, "join request failed; retrying"),
        }
        return;
    }
    match meta.members.get(&me.id) {
        Some(m) if m.state == MemberState::Removed && !state.warned_removed => {
            tracing::warn!("this node was removed from the cluster; start it with a fresh --data-dir and --join to add it again");
            state.warned_removed = true;
        }
        Some(m) if m.state == MemberState::Removed => {}
        Some(m) if m.peer_addr == me.peer_addr && m.http_addr == me.http_addr => {}
        _ if shards.meta().has_leader() => {
            if let Err(e) = proposer::submit(shards, RingCommand::Join(me.clone())).await {
                tracing::warn!(error = %e, "cannot register this node's addresses yet");
            }
        }
        _ => {}
    }
}

/// Asks the next `--join` peer whether this node, which lost its data, may join;
/// logs the answer when it changes.
async fn ask_readmission(state: &mut AgentState) {
    let join = &state.args.join;
    if join.is_empty() {
        if state.last_readmission.is_none() {
            tracing::error!("this node lost its data and has no --join peer to be readmitted through; restart it with --join");
            state.last_readmission = Some(String::new());
        }
        return;
    }
    let addr = &join[state.join_attempt % join.len()];
    state.join_attempt += 1;
    match readmission::ask(&state.args.shards, addr, &state.args.me).await {
        Ok(()) => state.last_readmission = None,
        Err(e) => {
            let answer = e.to_string();
            if state.last_readmission.as_deref() != Some(answer.as_str()) {
                tracing::info!(via = %addr, answer = %answer, "waiting to be readmitted");
                state.last_readmission = Some(answer);
            }
        }
    }
}

/// Starts a move task for every shard this node leads whose group differs from its
/// target (or whose voters the metadata has not recorded), one task per shard.
fn start_moves(state: &mut AgentState) {
    let shards = &state.args.shards;
    let meta = shards.ring();
    for g in shards.locals() {
        if !g.is_leader() {
            continue;
        }
        let target = meta.target.get(&g.shard()).cloned().unwrap_or_default();
        let pending = kelemetry_core::ring::next_step(&target, &g.voters(), &g.learners())
            .is_some()
            || shard_moves::needs_report(&meta, &g);
        if !pending {
            continue;
        }
        {
            let mut moving = state.moving.lock().unwrap_or_else(|p| p.into_inner());
            if !moving.insert(g.shard()) {
                continue;
            }
        }
        let (shards, moving) = (shards.clone(), state.moving.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(MOVE_TIMEOUT, shard_moves::advance(&shards, &g)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(shard = g.shard(), error = %e, "shard move step failed; will retry")
                }
                Err(_) => {
                    tracing::warn!(shard = g.shard(), "shard move step timed out; will retry")
                }
            }
            moving
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&g.shard());
        });
    }
}

/// Opens replicas placed on this node and deletes replicas that have been outside
/// the placement for longer than [`REMOVE_GRACE`] (cut off from their group) or
/// [`REMOVE_GRACE_CONNECTED`].
async fn reconcile_replicas(state: &mut AgentState) {
    let shards = state.args.shards.clone();
    let meta = shards.ring();
    if !meta.members.contains_key(&shards.node_id()) {
        return;
    }
    let placed = meta.shards_of(shards.node_id());
    for shard in &placed {
        if shards.local(*shard).is_none() {
            if let Err(e) = shards.ensure_group(*shard).await {
                tracing::warn!(shard, error = %e, "cannot open placed replica");
            }
        }
    }
    let now = Instant::now();
    state.outside_since.retain(|s, _| !placed.contains(s));
    for g in shards.locals() {
        if placed.contains(&g.shard()) || g.is_leader() {
            continue;
        }
        let since = *state.outside_since.entry(g.shard()).or_insert(now);
        let me = shards.node_id();
        let cut_off =
            g.leader().is_none() || !(g.voters().contains(&me) || g.learners().contains(&me));
        let grace = if cut_off {
            REMOVE_GRACE
        } else {
            REMOVE_GRACE_CONNECTED
        };
        if now.duration_since(since) >= grace {
            if let Err(e) = shards.remove_group(g.shard()).await {
                tracing::warn!(shard = g.shard(), error = %e, "cannot delete replica");
            }
            state.outside_since.remove(&g.shard());
        }
    }
}

/// Starts the agent.
pub async fn start(
    args: AgentArgs,
) -> Result<(ActorRef<AgentMsg>, tokio::task::JoinHandle<()>), ractor::SpawnErr> {
    Actor::spawn(None, RingAgent, args).await
}
