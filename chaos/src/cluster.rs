//! The cluster under test: node processes behind the fault-injecting network, and
//! the membership changes the harness makes (joins and drains).

use crate::checks;
use crate::net::Network;
use crate::node::NodeProc;
use crate::split_brain;
use crate::workload::Targets;
use anyhow::Context;
use kelemetry_testkit::ports::free_port;
use kelemetry_testkit::small_disk::SmallDisk;
use kelemetry_testkit::Client;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Node processes (retired ones stay, stopped), the network between them, and the
/// harness's address book.
pub struct Cluster {
    binary: PathBuf,
    dir: PathBuf,
    /// Shards.
    pub shards: u32,
    /// Every node ever started, by id.
    pub nodes: Vec<NodeProc>,
    retired: Vec<bool>,
    /// The harness's HTTP client.
    pub client: Client,
    /// The proxies all peer traffic crosses.
    pub net: Network,
    /// Webhook addresses of the running nodes, for the split-brain watch.
    pub watched: split_brain::Addresses,
    /// Node 0's own small filesystem, for the disk-full fault.
    pub small_disk: Option<SmallDisk>,
}

/// Free space below which every node refuses writes (`--min-free-disk-mib`).
pub const MIN_FREE_DISK_MIB: u64 = 128;

impl Cluster {
    /// Starts `count` nodes as a new ring with `shards` shards, each behind its proxy.
    pub fn start(
        binary: PathBuf,
        dir: PathBuf,
        shards: u32,
        count: u64,
        client: Client,
        small_disk_mib: Option<u64>,
    ) -> anyhow::Result<Self> {
        let small_disk = small_disk_mib
            .map(|mib| SmallDisk::mount(&dir.join("n0"), mib))
            .transpose()
            .context("the disk-full fault puts node 0 on a tmpfs")?;
        let mut cluster = Self {
            binary,
            dir,
            shards,
            nodes: Vec::new(),
            retired: Vec::new(),
            client,
            net: Network::new()?,
            watched: split_brain::Addresses::default(),
            small_disk,
        };
        let ports: Vec<(u16, SocketAddr)> = (0..count)
            .map(|id| cluster.listen_and_front(id))
            .collect::<anyhow::Result<_>>()?;
        let peers: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, front))| format!("{i}={front}"))
            .collect::<Vec<_>>()
            .join(",");
        for (id, (port, front)) in (0..count).zip(&ports) {
            let mut args = cluster.base_args(id, *port, *front);
            args.extend(["--peers".into(), peers.clone()]);
            let mut n = NodeProc::new(
                id,
                &cluster.binary,
                &cluster.dir.join(format!("n{id}")),
                args,
            );
            n.spawn()?;
            cluster.nodes.push(n);
            cluster.retired.push(false);
        }
        for n in &mut cluster.nodes {
            n.wait_up(Duration::from_secs(60))?;
        }
        cluster.refresh_watched();
        cluster.wait_all_led()?;
        Ok(cluster)
    }

    /// A peer port for node `id` and the proxy in front of it.
    fn listen_and_front(&self, id: u64) -> anyhow::Result<(u16, SocketAddr)> {
        let port = free_port();
        let front = self
            .net
            .front(id, SocketAddr::from(([127, 0, 0, 1], port)))?;
        Ok((port, front))
    }

    /// Records the running nodes' webhook addresses for the split-brain watch.
    pub fn refresh_watched(&self) {
        if let Ok(mut w) = self.watched.lock() {
            *w = self
                .nodes
                .iter()
                .filter(|n| n.running())
                .map(|n| (n.id, n.addrs.http.clone()))
                .collect();
        }
    }

    /// Waits until every shard has a leader, as the live nodes see it.
    pub fn wait_all_led(&self) -> anyhow::Result<()> {
        checks::wait_all_led(
            &self.client,
            &self.live(),
            self.shards,
            Duration::from_secs(60),
        )
    }

    /// Members that are running and not retired.
    pub fn live(&self) -> Vec<&NodeProc> {
        self.nodes
            .iter()
            .zip(&self.retired)
            .filter(|(n, r)| n.running() && !**r)
            .map(|(n, _)| n)
            .collect()
    }

    /// Ids of the members that are not retired (running or not).
    pub fn members(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .zip(&self.retired)
            .filter(|(_, r)| !**r)
            .map(|(n, _)| n.id)
            .collect()
    }

    fn base_args(&self, id: u64, port: u16, front: SocketAddr) -> Vec<String> {
        vec![
            "--node-id".into(),
            id.to_string(),
            "--peer-addr".into(),
            format!("127.0.0.1:{port}"),
            "--advertise-addr".into(),
            front.to_string(),
            "--peer-source-ip".into(),
            Network::source_ip(id).to_string(),
            "--shards".into(),
            self.shards.to_string(),
            "--min-free-disk-mib".into(),
            MIN_FREE_DISK_MIB.to_string(),
        ]
    }

    /// Waits until `done` holds for the status a live node reports.
    fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let live = self.live();
            if live
                .iter()
                .find_map(|n| checks::status(&self.client, n))
                .is_some_and(|s| done(&s))
            {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what} not reached in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A new node joins through a live node; returns once it holds its share and no
    /// shard is moving.
    pub fn scale_out(&mut self, targets: &Targets) -> anyhow::Result<u64> {
        let id = self.nodes.len() as u64;
        let via = peer_addr_of(&self.client, self.live()[0])?;
        let (port, front) = self.listen_and_front(id)?;
        let mut args = self.base_args(id, port, front);
        args.extend(["--join".into(), via]);
        let mut n = NodeProc::new(id, &self.binary, &self.dir.join(format!("n{id}")), args);
        n.spawn()?;
        n.wait_up(Duration::from_secs(60))?;
        targets.push(&n);
        self.nodes.push(n);
        self.retired.push(false);
        self.refresh_watched();
        self.wait_status(
            "joined node active with replicas",
            Duration::from_secs(300),
            |s| {
                member(s, id)
                    .is_some_and(|m| m["state"] == "active" && m["replicas"].as_u64() > Some(0))
                    && s["shards_moving"] == 0
            },
        )?;
        Ok(id)
    }

    /// Drains the newest live node, waits until it is removed, then stops it.
    pub fn scale_in(&mut self, targets: &Targets) -> anyhow::Result<u64> {
        let victim = self
            .live()
            .iter()
            .map(|n| n.id)
            .max()
            .context("no live node")?;
        let via = self
            .live()
            .into_iter()
            .find(|n| n.id != victim)
            .context("no other live node")?
            .addrs
            .http
            .clone();
        // Right after a fault the metadata group may be between leaders: the drain
        // is refused with 503 then, and retried as an operator would.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.client.post(
                &format!("http://{via}/cluster/drain"),
                format!("{{\"node\": {victim}}}").as_bytes(),
            )?;
            if status == 202 {
                break;
            }
            anyhow::ensure!(
                status == 503 && Instant::now() < deadline,
                "drain refused: {status} {body}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        self.wait_status("drained node removed", Duration::from_secs(300), |s| {
            member(s, victim).is_some_and(|m| m["state"] == "removed") && s["shards_moving"] == 0
        })?;
        let i = victim as usize;
        targets.set_down(i, true);
        self.nodes[i].kill();
        self.retired[i] = true;
        self.refresh_watched();
        Ok(victim)
    }
}

fn member(status: &serde_json::Value, id: u64) -> Option<&serde_json::Value> {
    status["nodes"].as_array()?.iter().find(|m| m["id"] == id)
}

fn peer_addr_of(client: &Client, node: &NodeProc) -> anyhow::Result<String> {
    let s = checks::status(client, node).context("status")?;
    let me = s["node"].as_u64().context("node id")?;
    Ok(member(&s, me)
        .and_then(|m| m["peer_addr"].as_str())
        .context("own peer address")?
        .to_string())
}
