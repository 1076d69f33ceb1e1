//! A node that lost its data (a damaged database found at start-up and moved aside,
//! or a volume replaced by an empty one) gets its replicas back from its peers; it
//! answers for none of its old replicas until the cluster has moved them off, so it
//! never serves or votes with wrong data.

use crate::cluster::{start_cluster, CLUSTER};
use crate::support::{start_of_recent_window, Node};
use kelemetry_testkit::workload::deployment_lifecycle;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Flips 32 bytes an eighth into the largest table of `db`: inside its data blocks,
/// which every read checks against their checksums.
fn damage_largest_table(db: &Path) -> String {
    let table = std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("the stopped node flushed its memtables into tables");
    let mut bytes = std::fs::read(&table).unwrap();
    let at = bytes.len() / 8;
    for b in &mut bytes[at..at + 32] {
        *b ^= 0xff;
    }
    std::fs::write(&table, bytes).unwrap();
    table.display().to_string()
}

fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until `node`'s log holds `line`.
fn wait_for_log(node: &Node, line: &str, timeout: Duration) {
    wait_until(&format!("the log line {line:?}"), timeout, || {
        node.log().contains(line).then_some(())
    });
}

/// Starts `node` again on its directory and waits until it listens and its log
/// holds `line`.
fn restart_until_logged(node: &mut Node, line: &str) {
    node.spawn().expect("restart the node");
    node.wait_listening(Duration::from_secs(60))
        .expect("listening");
    wait_for_log(node, line, Duration::from_secs(30));
}

/// Every replica of every shard, by node, with its applied index and checksum.
fn checksums(nodes: &[Node]) -> BTreeMap<u64, Vec<(usize, Value, Value)>> {
    let mut by_shard: BTreeMap<u64, Vec<(usize, Value, Value)>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        let (_, sums) = n.http_get_json("/cluster/checksums");
        for s in sums["shards"].as_array().into_iter().flatten() {
            by_shard
                .entry(s["shard"].as_u64().unwrap())
                .or_default()
                .push((i, s["applied"].clone(), s["checksum"].clone()));
        }
    }
    by_shard
}

/// Waits until node `who` (index and id), which lost its data, has been drained,
/// readmitted and given replicas again whose contents equal its peers'.
fn rebuilt(nodes: &mut [Node], shards: usize, who: usize) {
    // Its old replicas are moved off (the metadata leader drains its id), then it
    // is readmitted, and it gets replicas back: every shard has three again, this
    // node among them, as a peer sees the ring.
    wait_for_log(
        &nodes[who],
        "readmitted after losing its data",
        Duration::from_secs(120),
    );
    assert!(
        nodes.iter().enumerate().any(|(i, n)| i != who
            && n.log()
                .contains("node lost its data; moving its replicas off")),
        "the metadata leader drained the node's id first"
    );
    let peer = (who + 1) % nodes.len();
    let status = wait_until("rebuilt", Duration::from_secs(240), || {
        let (_, s) = nodes[peer].http_get_json("/cluster/status");
        let settled = s["shards_moving"] == 0
            && s["shards"].as_array().is_some_and(|all| {
                all.len() == shards
                    && all
                        .iter()
                        .all(|sh| sh["replicas"].as_array().is_some_and(|r| r.len() == 3))
            })
            && s["nodes"]
                .as_array()
                .is_some_and(|ns| ns.len() == 3 && ns.iter().all(|n| n["state"] == "active"));
        settled.then_some(s)
    });
    assert!(
        status["shards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|sh| sh["replicas"]
                .as_array()
                .unwrap()
                .contains(&Value::from(who))),
        "{status}"
    );
    nodes[who].wait_ready();
    let metrics = nodes[who].metrics_text();
    assert!(
        metrics.contains("kelemetry_awaiting_readmission 0"),
        "{metrics}"
    );

    // Its replicas hold what their peers hold, byte for byte.
    wait_until("replicas identical", Duration::from_secs(60), || {
        let sums = checksums(nodes);
        let on_2 = sums
            .values()
            .flatten()
            .filter(|(i, _, _)| *i == who)
            .count();
        let same = sums.values().all(|replicas| {
            replicas.len() == 3
                && replicas
                    .iter()
                    .all(|(_, a, c)| *a == replicas[0].1 && *c == replicas[0].2)
        });
        (on_2 > 0 && same).then_some(())
    });
}

#[test]
fn a_node_with_a_damaged_table_is_rebuilt_from_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let shards = 8;
    let (mut nodes, _) = start_cluster(dir.path(), "8", &[]);
    let (before, _) = deployment_lifecycle("default", "before", start_of_recent_window());
    for b in &before {
        assert_eq!(nodes[0].post_audit(CLUSTER, b).0, 200);
    }
    // A graceful stop flushes the memtables, so the data is in tables.
    assert!(nodes[2].terminate().success());
    let n2 = dir.path().join("n2");
    let table = damage_largest_table(&n2.join("db"));

    restart_until_logged(&mut nodes[2], "the database is damaged");
    let log = nodes[2].log();
    assert!(
        log.contains("Corruption"),
        "the message names the damage: {log}"
    );
    assert!(
        n2.join("db.damaged")
            .join(Path::new(&table).file_name().unwrap())
            .exists(),
        "the damaged database is kept for inspection"
    );

    // Writes go on through the other two while node 2 waits.
    let (during, _) = deployment_lifecycle("default", "during", start_of_recent_window());
    for b in &during {
        wait_until(
            "a write during the rebuild",
            Duration::from_secs(30),
            || (nodes[1].post_audit(CLUSTER, b).0 == 200).then_some(()),
        );
    }

    rebuilt(&mut nodes, shards, 2);
    let metrics = nodes[2].metrics_text();
    assert!(
        metrics.contains("kelemetry_damaged_databases_moved_total 1"),
        "{metrics}"
    );

    // Everything acknowledged before and during is there, also read through node 2,
    // and node 2 takes writes again.
    for name in ["before", "during"] {
        assert_eq!(nodes[2].stored(&[("name", name)]).len(), 1, "{name}");
    }
    let (after, _) = deployment_lifecycle("default", "after", start_of_recent_window());
    for b in &after {
        wait_until("a write through node 2", Duration::from_secs(30), || {
            (nodes[2].post_audit(CLUSTER, b).0 == 200).then_some(())
        });
    }
    assert_eq!(nodes[0].stored(&[("name", "after")]).len(), 1);
}

/// Flips 16 bytes in every 4 KiB of the first four fifths (the data blocks) of
/// every table of `db`, so any read of an older record fails its checksum.
fn damage_every_table(db: &Path) {
    for table in std::fs::read_dir(db)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
    {
        let mut bytes = std::fs::read(&table).unwrap();
        let end = bytes.len() * 4 / 5;
        for at in (0..end.saturating_sub(16)).step_by(4096) {
            for b in &mut bytes[at..at + 16] {
                *b ^= 0xff;
            }
        }
        std::fs::write(&table, bytes).unwrap();
    }
}

#[test]
fn damage_met_by_a_read_stops_the_node_and_its_next_start_rebuilds_it() {
    // No start-up verification anywhere: what finds the damage is an ordinary read,
    // and what acts on it at the next start is the mark the node left.
    let dir = tempfile::tempdir().unwrap();
    let shards = 8;
    let (mut nodes, _) = start_cluster(dir.path(), "8", &["--verify-data-on-start", "false"]);
    let (before, _) = deployment_lifecycle("default", "before", start_of_recent_window());
    for b in &before {
        assert_eq!(nodes[0].post_audit(CLUSTER, b).0, 200);
    }
    // Node 2's data goes into tables (a graceful stop flushes), the tables are
    // damaged, and it starts on them.
    assert!(nodes[2].terminate().success());
    let db = dir.path().join("n2").join("db");
    damage_every_table(&db);
    nodes[2].spawn().expect("restart node 2");

    // Its first reads of older records (opening its groups, or, if those are
    // served from memory, the per-shard checksums over its replicas) meet the
    // damage.
    let status = nodes[2].wait_exit(Duration::from_secs(10)).or_else(|| {
        nodes[2]
            .wait_listening(Duration::from_secs(30))
            .expect("listening");
        let _ = nodes[2].try_http_get("/cluster/checksums");
        nodes[2].wait_exit(Duration::from_secs(30))
    });
    let status = status.expect("the node stops on the damage it read");
    let log = nodes[2].log();
    assert_eq!(status.code(), Some(74), "{status}: {log}");
    assert!(log.contains("stopping on a storage failure"), "{log}");
    assert!(log.contains("Corruption"), "{log}");
    assert!(db.join("kelemetry-damage-found").exists());

    // Restarted (as its supervisor would), it moves the database aside because of
    // the mark, and is rebuilt from its peers.
    restart_until_logged(&mut nodes[2], "found while the node ran");
    rebuilt(&mut nodes, shards, 2);
    assert_eq!(nodes[2].stored(&[("name", "before")]).len(), 1);
}

/// Node 2 of a 3-node ring loses its volume and comes back under its id on an
/// empty directory, started with `ring_flag` (`--join` or `--peers`) over the
/// addresses `ring_value` makes of the ring's peer addresses; it is drained,
/// readmitted and rebuilt before it answers as a replica.
fn lost_volume_is_readmitted(ring_flag: &str, ring_value: impl Fn(&[String]) -> String) {
    let dir = tempfile::tempdir().unwrap();
    let shards = 8;
    let (mut nodes, addrs) = start_cluster(dir.path(), "8", &[]);
    let (before, _) = deployment_lifecycle("default", "before", start_of_recent_window());
    for b in &before {
        assert_eq!(nodes[0].post_audit(CLUSTER, b).0, 200);
    }
    // Node 2 has run: the ring holds the addresses it registered.
    wait_until("node 2 registered", Duration::from_secs(30), || {
        let (_, s) = nodes[0].http_get_json("/cluster/status");
        s["nodes"]
            .as_array()?
            .iter()
            .any(|n| n["id"] == 2 && n["http_addr"].as_str().is_some_and(|a| !a.is_empty()))
            .then_some(())
    });
    nodes[2].kill();
    let n2 = dir.path().join("n2-new");
    std::fs::create_dir_all(&n2).unwrap();
    let ring = ring_value(&addrs);
    let mut fresh = Node::start_no_wait(
        &n2,
        &[
            "--shards",
            "8",
            "--node-id",
            "2",
            ring_flag,
            &ring,
            "--peer-addr",
            &addrs[2],
        ],
    );
    fresh
        .wait_listening(Duration::from_secs(60))
        .expect("listening");
    nodes[2] = fresh;
    rebuilt(&mut nodes, shards, 2);
    assert_eq!(nodes[2].stored(&[("name", "before")]).len(), 1);
}

#[test]
fn a_member_restarted_on_an_empty_data_directory_is_readmitted_before_it_answers() {
    lost_volume_is_readmitted("--join", |addrs| format!("{},{}", addrs[0], addrs[1]));
}

#[test]
fn a_fixed_ring_member_on_an_empty_data_directory_is_readmitted_instead_of_initialising_again() {
    // Started as the ring was (--peers), a fresh directory would initialise the
    // node's groups again; its peers' ring says it ran, so it is readmitted.
    lost_volume_is_readmitted("--peers", |addrs| {
        addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{i}={a}"))
            .collect::<Vec<_>>()
            .join(",")
    });
}

#[test]
fn the_first_pod_on_an_empty_volume_rejoins_its_ring_instead_of_starting_another() {
    // A ring formed as the chart forms it: the pods start together; the first (id
    // 0 from its hostname, no --node-id) finds no ring among its peers and
    // bootstraps one; the others join through it.
    let dir = tempfile::tempdir().unwrap();
    let shards = 8;
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", kelemetry_testkit::ports::free_port()))
        .collect();
    let join = addrs.join(",");
    let first_pod = |data: &Path| {
        Node::start_with_env(
            data,
            &["--shards", "8", "--join", &join, "--peer-addr", &addrs[0]],
            &[("HOSTNAME", "kelemetry-0")],
        )
    };
    let mut nodes = vec![first_pod(&dir.path().join("n0"))];
    for i in 1..3 {
        let id = i.to_string();
        let data = dir.path().join(format!("n{i}"));
        nodes.push(Node::start_no_wait(
            &data,
            &[
                "--shards",
                "8",
                "--node-id",
                &id,
                "--join",
                &addrs[0],
                "--peer-addr",
                &addrs[i],
            ],
        ));
    }
    for n in &mut nodes {
        n.wait_ready();
    }
    wait_until("three replicas per shard", Duration::from_secs(120), || {
        let (_, s) = nodes[1].http_get_json("/cluster/status");
        let full = s["shards_moving"] == 0
            && s["shards"].as_array().is_some_and(|all| {
                all.iter()
                    .all(|sh| sh["replicas"].as_array().is_some_and(|r| r.len() == 3))
            });
        full.then_some(())
    });
    let (before, _) = deployment_lifecycle("default", "before", start_of_recent_window());
    for b in &before {
        assert_eq!(nodes[1].post_audit(CLUSTER, b).0, 200);
    }

    // The whole StatefulSet restarts, and the first pod's volume is lost. With a
    // fresh directory it would bootstrap by its ordinal; it asks its --join peers
    // first, and keeps asking while they are still down, finds their ring, and is
    // readmitted to it.
    for n in &mut nodes {
        n.kill();
    }
    nodes[0] = first_pod(&dir.path().join("n0-new"));
    wait_for_log(
        &nodes[0],
        "waiting for --join peers to say whether a ring exists",
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(2));
    for n in &mut nodes[1..] {
        n.spawn().expect("restart a peer");
    }
    for n in &mut nodes {
        n.wait_listening(Duration::from_secs(60))
            .expect("listening");
    }
    wait_for_log(
        &nodes[0],
        "a ring already exists among the --join peers",
        Duration::from_secs(30),
    );
    rebuilt(&mut nodes, shards, 0);
    assert_eq!(nodes[0].stored(&[("name", "before")]).len(), 1);
}
