//! Duties of the metadata group's leader: create the cluster metadata of a new
//! cluster, keep the metadata voters on up to five active members, mark members
//! that stay unreachable past `--dead-node-timeout` as draining (so their replicas
//! are replaced), and apply the placement plan (rate-limited shard moves, joining
//! members activated, drained members removed).

use super::pacing::HandoverPacing;
use super::proposer::propose_here;
use super::RingError;
use kelemetry_core::ring::{Member, MemberState, NodeId, RingCommand, RingState};
use kelemetry_raft::{PeerError, ShardSet, META_SHARD};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long after a metadata lead handover before another is tried.
const HANDOVER_COOLDOWN: Duration = Duration::from_secs(5);

/// A member that answered no ping for this long leaves the watch-duty roster.
const ROSTER_GRACE: Duration = Duration::from_secs(2);

/// Tunables of the controller.
#[derive(Clone, Debug)]
pub struct ControlSettings {
    /// Replicas per shard of a new cluster.
    pub replicas: u32,
    /// Unreachable this long: replicas are moved away.
    pub dead_node_timeout: Duration,
    /// Most shards moving at once.
    pub max_moving: usize,
}

/// The controller's memory: when each member last answered a ping (kept only while
/// this node leads the metadata group; a new leader starts counting afresh), since
/// when each removed member has waited to leave the metadata group, and the pacing
/// of this node's metadata lead handovers.
pub struct Controller {
    settings: ControlSettings,
    last_seen: HashMap<NodeId, Instant>,
    leaving_since: HashMap<NodeId, (Instant, u64)>,
    pacing: HandoverPacing,
}

/// How long a removed member may take to receive its own removal before it is
/// taken out of the metadata group anyway (it may be down).
const LEAVE_GRACE: Duration = Duration::from_secs(10);

/// How long a node added to the metadata group may take to catch up before it is
/// made a voter (within the agent's 30 s round; the next round tries again).
const METADATA_CATCH_UP: Duration = Duration::from_secs(20);

impl Controller {
    /// A controller with no liveness history.
    pub fn new(settings: ControlSettings) -> Self {
        Self {
            settings,
            last_seen: HashMap::new(),
            leaving_since: HashMap::new(),
            pacing: HandoverPacing::new(HANDOVER_COOLDOWN),
        }
    }

    /// One round of duties; does nothing unless this node leads the metadata group.
    pub async fn tick(&mut self, shards: &Arc<ShardSet>) {
        if !shards.meta().is_leader() {
            self.last_seen.clear();
            return;
        }
        let meta = shards.ring();
        if meta.shards == 0 {
            self.init(shards).await;
            return;
        }
        self.dead_nodes(shards, &meta).await;
        self.roster(shards, &meta).await;
        let meta_voters = shards.meta().voters();
        for cmd in meta.plan(self.settings.max_moving) {
            // A drained node is marked removed (and may then be stopped) only once it
            // has left the metadata voters: stopped while still counted there, it
            // would leave the group one failure from losing its quorum.
            if let RingCommand::SetState {
                id,
                state: MemberState::Removed,
            } = &cmd
            {
                if meta_voters.contains(id) {
                    continue;
                }
            }
            tracing::info!(?cmd, "placement controller");
            if let Err(e) = propose_here(shards, cmd).await {
                tracing::warn!(error = %e, "placement decision not committed");
                return;
            }
        }
        // A leader that must leave the voters does not remove itself (the group
        // would wait out an election timeout, and a change in flight can be lost):
        // it hands the lead to a staying voter first (`hand_over_metadata_lead`).
        if meta.metadata_voters().contains(&shards.node_id()) {
            if let Err(e) = self.metadata_voters(shards, &meta).await {
                tracing::warn!(error = %e, "cannot change the metadata voters");
            }
        }
    }

    /// On a metadata leader that is leaving the voters (draining, removed, or no
    /// longer among the first five active members): hands the lead to a staying
    /// voter holding the whole log, so the voters can then change without the
    /// group waiting out an election.
    pub async fn hand_over_metadata_lead(&mut self, shards: &ShardSet) {
        let g = shards.meta();
        self.pacing.observe([g]);
        let staying = shards.ring().metadata_voters();
        if !g.is_leader()
            || staying.is_empty()
            || staying.contains(&shards.node_id())
            || !self.pacing.ready(META_SHARD)
        {
            return;
        }
        let voters = g.voters();
        let Some(to) = staying
            .into_iter()
            .find(|n| voters.contains(n) && g.has_caught_up(*n))
        else {
            return;
        };
        self.pacing.record(META_SHARD);
        tracing::info!(
            to,
            "metadata leader is leaving the voters; handing the lead over"
        );
        if let Err(e) = shards.hand_over(g, to).await {
            tracing::warn!(to, error = %e, "metadata lead handover failed");
        }
    }

    async fn init(&self, shards: &ShardSet) {
        let members = shards
            .settings()
            .peers
            .iter()
            .map(|(id, addr)| Member {
                id: *id,
                peer_addr: addr.clone(),
                http_addr: String::new(),
                state: MemberState::Active,
            })
            .collect();
        let cmd = RingCommand::Init {
            shards: shards.count(),
            replicas: self.settings.replicas,
            members,
        };
        tracing::info!(?cmd, "creating the ring state");
        if let Err(e) = propose_here(shards, cmd).await {
            tracing::warn!(error = %e, "cannot create the ring state yet");
        }
    }

    async fn metadata_voters(
        &mut self,
        shards: &ShardSet,
        meta: &RingState,
    ) -> Result<(), RingError> {
        let g = shards.meta();
        if g.membership().finish_joint_config(true).await? {
            tracing::info!("finished a metadata voter change its previous leader left joint");
            return Ok(());
        }
        let want = meta.metadata_voters();
        let have = g.voters();
        if !want.is_empty() && want != have {
            for id in want.difference(&have) {
                let addr = meta.peer_addr(*id).ok_or(PeerError::NoAddress(*id))?;
                g.membership()
                    .add_caught_up_learner(*id, addr, METADATA_CATCH_UP)
                    .await?;
            }
            tracing::info!(?want, ?have, "changing metadata voters");
            g.membership().set_voters(want, true).await?;
        }
        let in_group: BTreeSet<NodeId> = g.voters().union(&g.learners()).copied().collect();
        // Read afresh: the tick's snapshot is up to a ping round old, and a removed
        // node readmitted since (Join, then added as a learner) must stay.
        // A removed member leaves once it holds the log up to its own removal
        // (applied here before this reads it): cut off before that, it never
        // learns it was removed, and whoever waits on its view (its preStop hook)
        // waits in vain. One that does not get there within LEAVE_GRACE (it may be
        // down) leaves anyway.
        let now = Instant::now();
        let applied = g.applied_index().unwrap_or(0);
        let removed = shards.ring().ids_in(MemberState::Removed);
        self.leaving_since.retain(|id, _| removed.contains(id));
        let gone: BTreeSet<NodeId> = removed
            .into_iter()
            .filter(|id| in_group.contains(id))
            .filter(|id| {
                let (since, removal) = *self.leaving_since.entry(*id).or_insert((now, applied));
                g.has_replicated(*id, removal) || now.duration_since(since) >= LEAVE_GRACE
            })
            .collect();
        if !gone.is_empty() {
            tracing::info!(nodes = ?gone, "removing removed members from the metadata group");
            g.membership().remove_nodes(gone).await?;
        }
        Ok(())
    }

    /// Keeps the watch-duty roster to the active members that answered a ping within
    /// [`ROSTER_GRACE`] (this node always counts), so the duties of a node that died
    /// or was cut off move within seconds, long before its replicas are replaced.
    async fn roster(&self, shards: &ShardSet, meta: &RingState) {
        let now = Instant::now();
        let me = shards.node_id();
        let live: Vec<NodeId> = meta
            .ids_in(MemberState::Active)
            .into_iter()
            .filter(|id| {
                *id == me
                    || self
                        .last_seen
                        .get(id)
                        .is_some_and(|seen| now.duration_since(*seen) < ROSTER_GRACE)
            })
            .collect();
        if live == meta.roster.nodes {
            return;
        }
        tracing::info!(
            nodes = ?live,
            was = ?meta.roster.nodes,
            "watch duty roster changed"
        );
        if let Err(e) = propose_here(shards, RingCommand::SetRoster { nodes: live }).await {
            tracing::warn!(error = %e, "cannot change the watch duty roster");
        }
    }

    async fn dead_nodes(&mut self, shards: &ShardSet, meta: &RingState) {
        let now = Instant::now();
        let me = shards.node_id();
        let mut pings = Vec::new();
        for m in meta.members.values() {
            if m.state != MemberState::Active || m.id == me {
                continue;
            }
            let (channels, addr) = (shards.channels().clone(), m.peer_addr.clone());
            pings.push((
                m.id,
                tokio::spawn(async move { channels.ping(&addr, None).await }),
            ));
        }
        for (id, ping) in pings {
            let answered = matches!(ping.await, Ok(Some(_)));
            let seen = self.last_seen.entry(id).or_insert(now);
            if answered {
                *seen = now;
                continue;
            }
            let down = now.duration_since(*seen);
            if down >= self.settings.dead_node_timeout {
                tracing::warn!(
                    node = id,
                    down_s = down.as_secs(),
                    "node unreachable past --dead-node-timeout; replacing its replicas"
                );
                let cmd = RingCommand::SetState {
                    id,
                    state: MemberState::Draining,
                };
                if let Err(e) = propose_here(shards, cmd).await {
                    tracing::warn!(node = id, error = %e, "cannot mark the node draining");
                }
            }
        }
    }
}
