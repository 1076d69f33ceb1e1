//! The faults the harness injects one at a time (besides scaling), how each is
//! healed, and the probes run against a minority while it is cut off.

use crate::checks;
use crate::cluster::{Cluster, MIN_FREE_DISK_MIB};
use crate::net::Link;
use crate::node::NodeProc;
use crate::workload::{Targets, CLUSTER};
use anyhow::Context;
use kelemetry_core::audit::{parse_event_list, AuditContext, AuditItem, TimeBounds};
use kelemetry_core::filter::AuditFilter;
use kelemetry_core::ids::shard_of;
use kelemetry_testkit::workload::deployment_lifecycle;
use kelemetry_testkit::Client;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Fault {
    /// SIGKILL a shard leader; start it again on its data after `--down`.
    Kill,
    /// SIGSTOP a shard leader for `--down`, then SIGCONT.
    Pause,
    /// Cut a shard leader off from every other node, both ways.
    #[value(name = "isolate-leader")]
    Isolate,
    /// Split the members into a majority and a minority (the highest ids).
    Split,
    /// Cut a shard leader's outgoing links: it hears the others, they never hear it
    /// (its requests and its answers are lost).
    OneWayOut,
    /// Cut a shard leader's incoming links: the others hear it, it never hears them.
    OneWayIn,
    /// Cut the metadata group's leader off from every other node, both ways.
    #[value(name = "isolate-metadata-leader")]
    MetaIsolate,
    /// Cut and restore a shard leader's links every 100-400 ms for twice `--down`.
    Flap,
    /// Delay every link by 20 ms plus up to 80 ms of jitter for twice `--down`.
    Delay,
}

impl Fault {
    /// Every fault, in the order the harness cycles through them.
    pub const ALL: [Fault; 9] = [
        Fault::Kill,
        Fault::Isolate,
        Fault::Pause,
        Fault::Split,
        Fault::OneWayOut,
        Fault::MetaIsolate,
        Fault::Flap,
        Fault::OneWayIn,
        Fault::Delay,
    ];

    /// The name `--faults` takes and the report uses.
    pub fn name(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// What one injected fault did.
pub struct Injected {
    /// Nodes killed, paused or cut off.
    pub victims: Vec<u64>,
    /// From the fault to every shard (and the metadata group) led outside the
    /// victims, as the other nodes see it; for flapping and delay, from the heal to
    /// every shard led.
    pub recovery: Duration,
    /// What the minority probes saw, for faults that leave a minority.
    pub probes: Option<Probes>,
}

/// Answers a cut-off minority node gave while it was cut off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Probes {
    /// Writes refused (429/503 or no answer): what a minority must do.
    pub writes_refused: u64,
    /// Writes acknowledged on the cut-off side although some shard they touched has
    /// no majority of its voters there: a violation.
    pub writes_acked: u64,
    /// Writes acknowledged on the cut-off side where every shard they touched has a
    /// majority of its voters (a side that is a minority of the ring can still be a
    /// quorum of a shard placed mostly on it): what Raft allows.
    pub writes_acked_by_own_quorum: u64,
    /// Searches answered and marked stale.
    pub reads_stale: u64,
    /// Searches answered with nothing found (no span to carry a mark).
    pub reads_empty: u64,
    /// Searches refused.
    pub reads_refused: u64,
    /// Searches answered without a stale mark: a violation.
    pub reads_unmarked: u64,
    /// The slowest answer to a write probe.
    pub slowest_write: Duration,
    /// The slowest answer to a search probe.
    pub slowest_read: Duration,
}

impl Probes {
    /// Adds another fault's probes.
    pub fn add(&mut self, o: Probes) {
        self.writes_refused += o.writes_refused;
        self.writes_acked += o.writes_acked;
        self.writes_acked_by_own_quorum += o.writes_acked_by_own_quorum;
        self.reads_stale += o.reads_stale;
        self.reads_empty += o.reads_empty;
        self.reads_refused += o.reads_refused;
        self.reads_unmarked += o.reads_unmarked;
        self.slowest_write = self.slowest_write.max(o.slowest_write);
        self.slowest_read = self.slowest_read.max(o.slowest_read);
    }
}

/// How long the harness waits for the cluster to recover from a fault.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Injects `fault` on a victim chosen by `pick` (an index into the candidates),
/// holds it for `down`, heals it, and measures.
pub fn inject(
    fault: Fault,
    cluster: &mut Cluster,
    targets: &Targets,
    down: Duration,
    pick: &mut dyn FnMut(u64) -> u64,
) -> anyhow::Result<Injected> {
    let shard = pick(u64::from(cluster.shards)) as u32;
    let live: Vec<u64> = cluster.live().iter().map(|n| n.id).collect();
    let leader = checks::leader_of(&cluster.client, &cluster.live(), shard)
        .unwrap_or(live[pick(live.len() as u64) as usize]);
    match fault {
        Fault::Kill | Fault::Pause => kill_or_pause(fault, cluster, targets, leader, down),
        Fault::Isolate => partition(cluster, vec![leader], down),
        Fault::MetaIsolate => {
            let meta = checks::meta_leader(&cluster.client, &cluster.live()).unwrap_or(leader);
            partition(cluster, vec![meta], down)
        }
        Fault::Split => {
            let mut members = cluster.members();
            let minority = members.split_off(members.len() - (members.len() - 1) / 2);
            partition(cluster, minority, down)
        }
        Fault::OneWayOut | Fault::OneWayIn => one_way(fault, cluster, leader, down),
        Fault::Flap => flap(cluster, leader, down * 2, pick),
        Fault::Delay => delay(cluster, down * 2),
    }
}

fn others(cluster: &Cluster, victims: &[u64]) -> Vec<u64> {
    cluster
        .members()
        .into_iter()
        .filter(|n| !victims.contains(n))
        .collect()
}

fn survivors<'a>(cluster: &'a Cluster, victims: &[u64]) -> Vec<&'a NodeProc> {
    cluster
        .live()
        .into_iter()
        .filter(|n| !victims.contains(&n.id))
        .collect()
}

fn wait_recovered(cluster: &Cluster, victims: &[u64]) -> anyhow::Result<Duration> {
    let t = Instant::now();
    checks::wait_leaders_alive(
        &cluster.client,
        &survivors(cluster, victims),
        victims,
        cluster.shards,
        RECOVERY_TIMEOUT,
    )?;
    Ok(t.elapsed())
}

fn kill_or_pause(
    fault: Fault,
    cluster: &mut Cluster,
    targets: &Targets,
    victim: u64,
    down: Duration,
) -> anyhow::Result<Injected> {
    let i = victim as usize;
    if fault == Fault::Pause {
        cluster.nodes[i].pause()?;
    } else {
        cluster.nodes[i].kill();
    }
    targets.set_down(i, true);
    let recovery = wait_recovered(cluster, &[victim])?;
    std::thread::sleep(down.saturating_sub(recovery));
    if fault == Fault::Pause {
        cluster.nodes[i].resume()?;
    } else {
        cluster.nodes[i].spawn()?;
        cluster.nodes[i].wait_up(RECOVERY_TIMEOUT)?;
        targets.update(i, &cluster.nodes[i]);
        cluster.refresh_watched();
    }
    targets.set_down(i, false);
    Ok(Injected {
        victims: vec![victim],
        recovery,
        probes: None,
    })
}

/// Cuts `minority` off from the other members both ways; while cut off, a minority
/// node is asked to write and to read.
fn partition(cluster: &Cluster, minority: Vec<u64>, down: Duration) -> anyhow::Result<Injected> {
    let majority = others(cluster, &minority);
    let cut_at = Instant::now();
    cluster.net.split(&minority, &majority);
    let recovery = wait_recovered(cluster, &minority)?;
    let live = cluster.live();
    let placement = checks::placement(&cluster.client, &live);
    let probes = live
        .iter()
        .find(|n| minority.contains(&n.id))
        .map(|n| {
            let side = CutOffSide {
                members: &minority,
                placement: placement.as_ref(),
                shards: cluster.shards,
            };
            probe_minority(&cluster.client, n, &side)
        })
        .unwrap_or_default();
    std::thread::sleep(down.saturating_sub(cut_at.elapsed()));
    cluster.net.heal();
    Ok(Injected {
        victims: minority,
        recovery,
        probes: Some(probes),
    })
}

/// Cuts one direction of every link between `victim` and the others.
fn one_way(
    fault: Fault,
    cluster: &Cluster,
    victim: u64,
    down: Duration,
) -> anyhow::Result<Injected> {
    let cut = Link {
        cut: true,
        ..Link::default()
    };
    for other in others(cluster, &[victim]) {
        let (from, to) = if fault == Fault::OneWayOut {
            (victim, other)
        } else {
            (other, victim)
        };
        cluster.net.set(from, to, cut);
    }
    let cut_at = Instant::now();
    let recovery = wait_recovered(cluster, &[victim]);
    std::thread::sleep(down.saturating_sub(cut_at.elapsed()));
    cluster.net.heal();
    Ok(Injected {
        victims: vec![victim],
        recovery: recovery?,
        probes: None,
    })
}

/// Cuts and restores every link of `victim` at random intervals for `span`, then
/// waits for every shard to be led.
fn flap(
    cluster: &Cluster,
    victim: u64,
    span: Duration,
    pick: &mut dyn FnMut(u64) -> u64,
) -> anyhow::Result<Injected> {
    let until = Instant::now() + span;
    let peers = others(cluster, &[victim]);
    let mut cut = false;
    while Instant::now() < until {
        cut = !cut;
        if cut {
            cluster.net.split(&[victim], &peers);
        } else {
            cluster.net.heal();
        }
        std::thread::sleep(Duration::from_millis(100 + pick(300)));
    }
    cluster.net.heal();
    settle(cluster, vec![victim])
}

/// Delays and jitters every link for `span`, then waits for every shard to be led.
fn delay(cluster: &Cluster, span: Duration) -> anyhow::Result<Injected> {
    let slow = Link {
        cut: false,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(80),
    };
    let members = cluster.members();
    for &a in &members {
        for &b in &members {
            if a != b {
                cluster.net.set(a, b, slow);
            }
        }
    }
    std::thread::sleep(span);
    cluster.net.heal();
    settle(cluster, members)
}

/// After a fault that is already healed: the time until every shard is led.
fn settle(cluster: &Cluster, victims: Vec<u64>) -> anyhow::Result<Injected> {
    let t = Instant::now();
    cluster.wait_all_led()?;
    Ok(Injected {
        victims,
        recovery: t.elapsed(),
        probes: None,
    })
}

/// The nodes cut off from the rest, and where the shards' voters were when they were.
struct CutOffSide<'a> {
    members: &'a [u64],
    placement: Option<&'a BTreeMap<u32, Vec<u64>>>,
    shards: u32,
}

impl CutOffSide<'_> {
    /// Whether every shard `body` writes to has a majority of its voters on this side,
    /// so that its leader there may commit: never when the placement is unknown.
    fn holds_quorums_of(&self, body: &str) -> bool {
        let Some(placement) = self.placement else {
            return false;
        };
        let shards = shards_written(body, self.shards);
        !shards.is_empty()
            && shards.iter().all(|s| {
                placement.get(s).is_some_and(|voters| {
                    let here = voters.iter().filter(|v| self.members.contains(v)).count();
                    here * 2 > voters.len()
                })
            })
    }
}

/// The shards the audit events of `body` are stored on, as a node routes them.
fn shards_written(body: &str, shards: u32) -> BTreeSet<u32> {
    let filter = AuditFilter::default();
    let ctx = AuditContext {
        cluster: CLUSTER,
        apiserver: "",
        filter: &filter,
        diff_wait_us: 0,
        accepted_times: TimeBounds {
            oldest_us: i64::MIN,
            latest_us: i64::MAX,
        },
    };
    parse_event_list(body.as_bytes(), &ctx)
        .map(|items| {
            items
                .into_iter()
                .filter_map(|item| match item {
                    AuditItem::Accepted(r) => Some(shard_of(&r.key, shards)),
                    AuditItem::Filtered(_) => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One write and one search sent to a node that is cut off from a quorum: the write
/// must not be acknowledged unless the cut-off side holds a quorum of every shard it
/// touches, the search must be refused or marked stale.
fn probe_minority(client: &Client, node: &NodeProc, side: &CutOffSide<'_>) -> Probes {
    let mut p = Probes::default();
    let (written, took, body) = probe_write(client, node);
    p.slowest_write = took;
    match written {
        Ok((200, _)) if side.holds_quorums_of(&body) => p.writes_acked_by_own_quorum += 1,
        Ok((200, _)) => p.writes_acked += 1,
        other => {
            print_refusal("write", node.id, other);
            p.writes_refused += 1
        }
    }
    let (found, took) = probe_search(client, node);
    p.slowest_read = took;
    match found {
        Ok((200, body)) if body.contains("may be stale") => p.reads_stale += 1,
        Ok((200, body)) if body.contains(r#""data":[]"#) => p.reads_empty += 1,
        Ok((200, _)) => p.reads_unmarked += 1,
        other => {
            print_refusal("search", node.id, other);
            p.reads_refused += 1
        }
    }
    p
}

type Answer = Result<(u16, String), kelemetry_testkit::TestkitError>;

/// One new Deployment's first batch posted to `node`; the answer, its time and the
/// batch.
fn probe_write(client: &Client, node: &NodeProc) -> (Answer, Duration, String) {
    let now = chrono::Utc::now().timestamp_micros();
    let (batches, _) = deployment_lifecycle("probe", &format!("p{now}"), now - 60_000_000);
    let body = batches[0].to_string();
    let t = Instant::now();
    let written = client.post(
        &format!("http://{}/audit/{CLUSTER}", node.addrs.http),
        body.as_bytes(),
    );
    (written, t.elapsed(), body)
}

/// A search on `node` for the workload's first namespace; the answer and its time.
fn probe_search(client: &Client, node: &NodeProc) -> (Answer, Duration) {
    let tags = r#"{"resource":"deployments","namespace":"ns0"}"#;
    let url = format!(
        "http://{}/api/traces?service=tracing&limit=5&start=0&tags={}",
        node.addrs.query,
        kelemetry_testkit::client::urlencode(tags)
    );
    let t = Instant::now();
    let found = client
        .get_json(&url)
        .map(|(status, body)| (status, body.to_string()));
    (found, t.elapsed())
}

/// What node 0 did while its disk was full.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskProbes {
    /// Writes refused while full: what it must do.
    pub writes_refused: u64,
    /// Writes acknowledged while full: a violation.
    pub writes_acked: u64,
    /// Searches answered while full: what it must do.
    pub reads_served: u64,
    /// Searches refused while full: a violation.
    pub reads_failed: u64,
}

impl DiskProbes {
    /// Adds another episode's probes.
    pub fn add(&mut self, o: DiskProbes) {
        self.writes_refused += o.writes_refused;
        self.writes_acked += o.writes_acked;
        self.reads_served += o.reads_served;
        self.reads_failed += o.reads_failed;
    }
}

/// Fills node 0's small disk below `--min-free-disk`, checks that it refuses writes
/// and serves reads, holds for `down`, frees the disk, and measures until node 0
/// takes a write again.
pub fn disk_full(cluster: &Cluster, down: Duration) -> anyhow::Result<(Injected, DiskProbes)> {
    let disk = cluster
        .small_disk
        .as_ref()
        .context("the disk-full fault needs node 0 on a small disk")?;
    let client = &cluster.client;
    let node = &cluster.nodes[0];
    let free = checks::status(client, node)
        .and_then(|s| s["disk"]["free_bytes"].as_u64())
        .context("node 0 reports no free disk space")?;
    disk.fill(free, (MIN_FREE_DISK_MIB / 2) << 20)?;
    let filled = Instant::now();
    while !checks::status(client, node).is_some_and(|s| s["disk"]["low"] == true) {
        anyhow::ensure!(
            filled.elapsed() < Duration::from_secs(10),
            "node 0 did not notice its full disk within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut p = DiskProbes::default();
    match probe_write(client, node).0 {
        Ok((200, _)) => p.writes_acked += 1,
        _ => p.writes_refused += 1,
    }
    match probe_search(client, node).0 {
        Ok((200, _)) => p.reads_served += 1,
        other => {
            print_refusal("search (disk full)", node.id, other);
            p.reads_failed += 1
        }
    }
    std::thread::sleep(down.saturating_sub(filled.elapsed()));
    disk.free()?;
    let freed = Instant::now();
    while !matches!(probe_write(client, node).0, Ok((200, _))) {
        anyhow::ensure!(
            freed.elapsed() < RECOVERY_TIMEOUT,
            "node 0 took no write {RECOVERY_TIMEOUT:?} after its disk was freed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((
        Injected {
            victims: vec![0],
            recovery: freed.elapsed(),
            probes: None,
        },
        p,
    ))
}

/// Prints how a probe was refused, shortened.
fn print_refusal(what: &str, node: u64, answer: Answer) {
    let text = match answer {
        Ok((status, body)) => format!("{status} {}", body.chars().take(200).collect::<String>()),
        Err(e) => format!("no answer: {e}"),
    };
    println!("    {what} probe on node {node}: {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_off_side_may_commit_only_where_it_holds_a_majority_of_every_shard_written() {
        let (batches, _) = deployment_lifecycle("probe", "p1", 1_700_000_000_000_000);
        let body = batches[0].to_string();
        let written = shards_written(&body, 16);
        assert!(!written.is_empty());
        let everywhere = |voters: Vec<u64>| -> BTreeMap<u32, Vec<u64>> {
            (0..16).map(|s| (s, voters.clone())).collect()
        };
        let on_1_2_3 = everywhere(vec![1, 2, 3]);
        let side = |members: &'static [u64], placement| CutOffSide {
            members,
            placement,
            shards: 16,
        };
        assert!(side(&[2, 3], Some(&on_1_2_3)).holds_quorums_of(&body));
        assert!(!side(&[3], Some(&on_1_2_3)).holds_quorums_of(&body));
        assert!(!side(&[2, 3], None).holds_quorums_of(&body));
        // One written shard placed mostly elsewhere is enough to make an ack a violation.
        let mut mixed = on_1_2_3.clone();
        let first = *written.iter().next().unwrap();
        mixed.insert(first, vec![1, 2, 4]);
        assert!(!side(&[2, 3], Some(&mixed)).holds_quorums_of(&body));
    }
}
