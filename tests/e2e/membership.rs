//! Membership changes of a ring under load: growing from three nodes to five and
//! draining back, a node down past the dead-node timeout replaced, and a removed node
//! that comes back on its old data kept out, each proving that nothing acknowledged is
//! lost or stored twice.

use crate::cluster::{expected_ids, start_cluster, start_cluster_of, wait_exactly_once, CLUSTER};
use crate::support::{start_of_recent_window, Node};
use kelemetry_testkit::ports::free_port;
use kelemetry_testkit::workload::deployment_lifecycle;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Posts lifecycles through the given webhook addresses (round-robin, retrying like
/// the API server) until told to stop; returns every acknowledged batch.
fn load(
    targets: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<Value>> {
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let t0 = start_of_recent_window();
        let mut acked = Vec::new();
        let mut k = 0usize;
        let mut d = 0i64;
        while !stop.load(Ordering::SeqCst) {
            let (batches, _) =
                deployment_lifecycle("default", &format!("scale{d}"), t0 + d * 1_000_000);
            d += 1;
            for b in batches {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let addr = {
                        let t = targets.lock().unwrap();
                        k += 1;
                        t[k % t.len()].clone()
                    };
                    let ok = agent
                        .post(format!("http://{addr}/audit/{CLUSTER}"))
                        .header("content-type", "application/json")
                        .send(b.to_string())
                        .is_ok_and(|r| r.status() == 200);
                    if ok {
                        break;
                    }
                    assert!(Instant::now() < deadline, "batch never acknowledged");
                    std::thread::sleep(Duration::from_millis(100));
                }
                acked.push(b);
            }
        }
        acked
    })
}

/// Waits until `check` holds for the status `node` reports.
fn wait_status(node: &Node, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let (_, status) = node.http_get_json("/cluster/status");
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: {status}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn member_states(status: &Value) -> BTreeMap<u64, (String, u64)> {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_u64().unwrap(),
                (
                    n["state"].as_str().unwrap().to_string(),
                    n["replicas"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Every shard's term as each of `nodes` sees it.
fn terms(nodes: &[Node]) -> Vec<Value> {
    nodes
        .iter()
        .flat_map(|n| {
            let (_, status) = n.http_get_json("/cluster/status");
            status["shards"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["term"].clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits for a six-second window in which no shard on `nodes` changes its term.
fn wait_for_quiet_terms(nodes: &[Node]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut before = terms(nodes);
    loop {
        std::thread::sleep(Duration::from_secs(6));
        let after = terms(nodes);
        if after == before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "elections never stopped: {before:?} -> {after:?}"
        );
        before = after;
    }
}

/// Waits until every one of `nodes` leads within one of its even share of `shards`.
fn wait_for_balanced_leaders(nodes: &[Node], shards: u64) {
    let n = nodes.len() as u64;
    let (low, high) = ((shards / n).saturating_sub(1), shards.div_ceil(n) + 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let led: Vec<u64> = nodes
            .iter()
            .map(|node| {
                node.http_get_json("/cluster/status").1["shards_led"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .collect();
        if led.iter().all(|l| (low..=high).contains(l)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "leaders per node {led:?}, want {low}..={high} each"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn growing_three_to_five_and_draining_back_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shards = 16u64;
    let (mut nodes, addrs) = start_cluster(dir.path(), "16", &[]);
    let targets = std::sync::Arc::new(std::sync::Mutex::new(
        nodes
            .iter()
            .map(|n| n.http().to_string())
            .collect::<Vec<_>>(),
    ));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = load(targets.clone(), stop.clone());

    // Grow: nodes 3 and 4 join through node 0 while the load runs.
    for id in [3u64, 4] {
        let data = dir.path().join(format!("n{id}"));
        std::fs::create_dir_all(&data).unwrap();
        let peer = format!("127.0.0.1:{}", free_port());
        let id_s = id.to_string();
        let mut n = Node::start_no_wait(
            &data,
            &[
                "--shards",
                "16",
                "--node-id",
                &id_s,
                "--join",
                &addrs[0],
                "--peer-addr",
                &peer,
            ],
        );
        n.wait_ready();
        targets.lock().unwrap().push(n.http().to_string());
        nodes.push(n);
    }
    // Each node ends with about its share of the 48 replicas (9.6), by rendezvous
    // hashing over five members.
    let share = shards * 3 / 5;
    let grown = wait_status(&nodes[0], "five active members with their share", |s| {
        let m = member_states(s);
        m.len() == 5
            && m.values()
                .all(|(state, n)| state == "active" && n.abs_diff(share) <= 4)
            && s["shards_moving"] == 0
    });
    assert_eq!(
        member_states(&grown).values().map(|(_, n)| n).sum::<u64>(),
        shards * 3
    );
    // Leadership spreads to the new members too (handed over, about 16 / 5 each).
    wait_for_balanced_leaders(&nodes, shards);
    // A joined node answers queries for shards it holds no replica of (reads go to
    // their leaders), complete and not marked stale.
    let found = nodes[3].search(
        "tracing",
        &[("resource", "deployments"), ("name", "scale0")],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let root = &found[0]["spans"][0];
    assert!(root["warnings"].is_null(), "{root}");
    assert_eq!(
        found[0]["spans"].as_array().unwrap().len(),
        nodes[0].search(
            "tracing",
            &[("resource", "deployments"), ("name", "scale0")]
        )[0]["spans"]
            .as_array()
            .unwrap()
            .len()
    );

    // Drain back to three: node 3 with the CLI, node 4 over HTTP.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kelemetry"))
        .args([
            "cluster",
            "drain",
            "3",
            "--target",
            &format!("http://{}", nodes[1].http()),
            "--timeout",
            "4m",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "drain 3: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("replicas left"));
    let (code, body) = nodes[2].post_raw("/cluster/drain", br#"{"node": 4}"#);
    assert_eq!(code, 202, "{body}");
    let (code, body) = nodes[2].post_raw("/cluster/drain", br#"{"node": 9}"#);
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["field"], "node");
    let drained = wait_status(&nodes[0], "nodes 3 and 4 removed", |s| {
        let m = member_states(s);
        m[&3].0 == "removed" && m[&4].0 == "removed" && s["shards_moving"] == 0
    });
    for id in 0..3u64 {
        assert_eq!(
            member_states(&drained)[&id].1,
            shards,
            "node {id}: {drained}"
        );
    }
    targets.lock().unwrap().truncate(3);
    // Leadership settles under load: a window with no election in any shard comes
    // within a minute (a shard whose leader keeps being unseated never has one).
    wait_for_quiet_terms(&nodes[..3]);
    stop.store(true, Ordering::SeqCst);
    let acked = writer.join().unwrap();
    assert!(
        acked.len() > 20,
        "the load ran throughout ({} batches)",
        acked.len()
    );

    // Removed nodes delete their replicas.
    for n in &nodes[3..] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, sums) = n.http_get_json("/cluster/checksums");
            if sums["shards"].as_array().is_some_and(Vec::is_empty) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replicas left on a removed node: {sums}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    // Every acknowledged event is stored exactly once.
    stored_exactly_once(&nodes[0], &acked);
}

/// Waits until `node` reports every event of the acknowledged batches stored exactly
/// once (its shards' audit IDs, read through `/cluster/audit-ids`).
pub(crate) fn stored_exactly_once(node: &Node, acked: &[Value]) {
    wait_exactly_once(&expected_ids(acked), || {
        let (_, ids) = node.http_get_json("/cluster/audit-ids");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for id in ids["audit_ids"].as_array().unwrap() {
            *seen.entry(id.as_str().unwrap().to_string()).or_default() += 1;
        }
        seen
    });
}

#[test]
fn a_node_down_past_the_dead_node_timeout_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let shards = 8u64;
    let (mut nodes, addrs) = start_cluster(dir.path(), "8", &["--dead-node-timeout", "3s"]);
    let data = dir.path().join("n3");
    std::fs::create_dir_all(&data).unwrap();
    let peer = format!("127.0.0.1:{}", free_port());
    let mut joined = Node::start_no_wait(
        &data,
        &[
            "--shards",
            "8",
            "--node-id",
            "3",
            "--join",
            &addrs[0],
            "--peer-addr",
            &peer,
            "--dead-node-timeout",
            "3s",
        ],
    );
    joined.wait_ready();
    nodes.push(joined);
    wait_status(&nodes[0], "four members settled", |s| {
        let m = member_states(s);
        m.len() == 4
            && m.values().all(|(st, n)| st == "active" && *n > 0)
            && s["shards_moving"] == 0
    });

    nodes[2].kill();
    let replaced = wait_status(&nodes[0], "node 2 replaced and removed", |s| {
        let m = member_states(s);
        m[&2].0 == "removed" && s["shards_moving"] == 0
    });
    let m = member_states(&replaced);
    assert_eq!(m[&2].1, 0, "{replaced}");
    assert_eq!(
        [0u64, 1, 3].iter().map(|id| m[id].1).sum::<u64>(),
        shards * 3,
        "every shard back to three live replicas: {replaced}"
    );
    // Writes are taken again (a 503 while leadership settles is retried, as the API
    // server does).
    let (batches, _) = deployment_lifecycle("default", "after", start_of_recent_window());
    for b in &batches {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (code, body) = nodes[3].post_audit(CLUSTER, b);
            if code == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "{code} {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(nodes[0].stored(&[("name", "after")]).len(), 1);
}

#[test]
fn a_removed_node_restarted_on_its_old_data_stays_out_and_disturbs_no_group() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, _) = start_cluster_of(4, dir.path(), "4", &[]);
    let (before, _) = deployment_lifecycle("default", "before", start_of_recent_window());
    for b in &before {
        assert_eq!(nodes[0].post_audit(CLUSTER, b).0, 200);
    }
    let (code, body) = nodes[0].post_raw("/cluster/drain", br#"{"node": 3}"#);
    assert_eq!(code, 202, "{body}");
    wait_status(&nodes[0], "node 3 removed", |s| {
        member_states(s)
            .get(&3)
            .is_some_and(|(state, replicas)| state == "removed" && *replicas == 0)
    });
    assert!(nodes[3].terminate().success());
    wait_for_quiet_terms(&nodes[..3]);
    let quiet = terms(&nodes[..3]);

    // Back on the data it had as a member: it knows it was removed and stays out.
    nodes[3].spawn().expect("spawn the removed node");
    nodes[3]
        .wait_listening(Duration::from_secs(60))
        .expect("listening");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !nodes[3]
        .log()
        .contains("this node was removed from the cluster")
    {
        assert!(Instant::now() < deadline, "{}", nodes[3].log());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(5));
    let (code, reason) = nodes[3].http_get("/readyz");
    assert_eq!(code, 503);
    assert!(reason.contains("removed"), "{reason}");

    // No election was caused, every shard still has three voters on nodes 0-2, and
    // writes go on.
    assert_eq!(
        terms(&nodes[..3]),
        quiet,
        "the removed node disturbed a group"
    );
    let status = nodes[0].http_get_json("/cluster/status").1;
    for s in status["shards"].as_array().unwrap() {
        let replicas = s["replicas"].as_array().unwrap();
        assert_eq!(replicas.len(), 3, "{s}");
        assert!(!replicas.contains(&serde_json::json!(3)), "{s}");
    }
    let (after, _) = deployment_lifecycle("default", "after", start_of_recent_window());
    for b in &after {
        assert_eq!(nodes[1].post_audit(CLUSTER, b).0, 200);
    }
    assert_eq!(nodes[0].stored(&[("name", "after")]).len(), 1);
}

#[test]
fn draining_the_metadata_leader_hands_its_lead_over_before_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, _) = start_cluster_of(4, dir.path(), "4", &[]);
    let (_, status) = nodes[0].http_get_json("/cluster/status");
    let leader = status["metadata_leader"]
        .as_u64()
        .expect("a metadata leader");
    let via = (leader as usize + 1) % nodes.len();
    let (code, body) = nodes[via].post_raw(
        "/cluster/drain",
        format!("{{\"node\": {leader}}}").as_bytes(),
    );
    assert_eq!(code, 202, "{body}");
    // Removed only once out of the metadata voters, which takes a lead handover.
    let removed = wait_status(
        &nodes[via],
        "the metadata leader drained and removed",
        |s| {
            member_states(s)
                .get(&leader)
                .is_some_and(|(state, replicas)| state == "removed" && *replicas == 0)
        },
    );
    let new_leader = removed["metadata_leader"].as_u64();
    assert!(
        new_leader.is_some_and(|l| l != leader),
        "the lead moved to a staying member: {removed}"
    );
    assert!(nodes[leader as usize].terminate().success());
    let (after, _) = deployment_lifecycle("default", "after", start_of_recent_window());
    for b in &after {
        assert_eq!(nodes[via].post_audit(CLUSTER, b).0, 200);
    }
    assert_eq!(nodes[via].stored(&[("name", "after")]).len(), 1);
}
