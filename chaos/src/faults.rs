//! The faults the harness injects one at a time (besides scaling), how each is
//! healed, and the probes run against a minority while it is cut off.

use crate::checks;
use crate::cluster::{Cluster, MIN_FREE_DISK_MIB};
use crate::net::Link;
use crate::node::NodeProc;
use crate::workload::Targets;
use anyhow::Context;
use kelemetry_testkit::workload::deployment_lifecycle;
use kelemetry_testkit::Client;
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
    /// Writes acknowledged by the minority: a violation.
    pub writes_acked: u64,
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
    let probes = cluster
        .live()
        .into_iter()
        .find(|n| minority.contains(&n.id))
        .map(|n| probe_minority(&cluster.client, n))
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

/// One write and one search sent to a node that is cut off from a quorum: the write
/// must not be acknowledged, the search must be refused or marked stale.
fn probe_minority(client: &Client, node: &NodeProc) -> Probes {
    let mut p = Probes::default();
    let (written, took) = probe_write(client, node);
    p.slowest_write = took;
    match written {
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

/// One new Deployment's first batch posted to `node`; the answer and its time.
fn probe_write(client: &Client, node: &NodeProc) -> (Answer, Duration) {
    let now = chrono::Utc::now().timestamp_micros();
    let (batches, _) = deployment_lifecycle("probe", &format!("p{now}"), now - 60_000_000);
    let t = Instant::now();
    let written = client.post(
        &format!("http://{}/audit/chaos", node.addrs.http),
        batches[0].to_string().as_bytes(),
    );
    (written, t.elapsed())
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
