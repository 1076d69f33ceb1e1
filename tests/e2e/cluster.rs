//! Three real node processes replicating every shard: ingest through each node, kill
//! the leader of a shard in the middle of a stream, and prove that every acknowledged
//! audit event is stored exactly once and that the shard took writes again.

use crate::support::{make_certs, start_of_recent_window, Node};
use kelemetry_testkit::ports::free_port;
use kelemetry_testkit::workload::deployment_lifecycle;
use kelemetry_testkit::Client;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub(crate) const CLUSTER: &str = "chaos";

/// Posts a batch, starting at node `start`, until some node acknowledges it,
/// retrying like the API server's webhook backend.
pub(crate) fn post_until_acked(nodes: &[Option<Node>], start: usize, batch: &Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for k in 0..nodes.len() {
            let Some(node) = &nodes[(start + k) % nodes.len()] else {
                continue;
            };
            if let Ok((200, _)) = node.try_post_audit(CLUSTER, batch) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "batch never acknowledged");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn audit_ids(batch: &Value) -> Vec<String> {
    batch["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["auditID"].as_str().unwrap().to_string())
        .collect()
}

/// How many times each audit ID of the acknowledged batches was sent.
pub(crate) fn expected_ids(acked: &[Value]) -> BTreeMap<String, usize> {
    let mut expected = BTreeMap::new();
    for b in acked {
        for id in audit_ids(b) {
            *expected.entry(id).or_default() += 1;
        }
    }
    expected
}

/// Waits until `stored` (audit ID -> times stored) equals `expected`: every
/// acknowledged event stored exactly once.
pub(crate) fn wait_exactly_once(
    expected: &BTreeMap<String, usize>,
    mut stored: impl FnMut() -> BTreeMap<String, usize>,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = stored();
        if &seen == expected {
            return;
        }
        let missing = expected.keys().filter(|k| !seen.contains_key(*k)).count();
        let dupes = seen.values().filter(|v| **v > 1).count();
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged events missing, {dupes} duplicated",
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts three nodes that replicate every shard, with `extra` flags on each, and
/// waits until all are ready; returns them with their peer addresses.
pub(crate) fn start_cluster(
    dir: &std::path::Path,
    shards: &str,
    extra: &[&str],
) -> (Vec<Node>, Vec<String>) {
    start_cluster_of(3, dir, shards, extra)
}

/// A ring of `n` nodes formed with `--peers`, every node ready.
pub(crate) fn start_cluster_of(
    n: usize,
    dir: &std::path::Path,
    shards: &str,
    extra: &[&str],
) -> (Vec<Node>, Vec<String>) {
    let addrs: Vec<String> = (0..n)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let peer_list = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{i}={a}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| {
            let data = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&data).unwrap();
            let id = i.to_string();
            let mut args = vec![
                "--shards",
                shards,
                "--node-id",
                &id,
                "--peers",
                &peer_list,
                "--peer-addr",
                &addrs[i],
            ];
            args.extend_from_slice(extra);
            Node::start_no_wait(&data, &args)
        })
        .collect();
    for n in &mut nodes {
        n.wait_ready();
    }
    (nodes, addrs)
}

fn leader_of(node: &Node, shard: u32) -> Option<u64> {
    kelemetry_testkit::ring::leader_of(&Client::new(Duration::from_secs(10)), &[node.http()], shard)
}

#[test]
fn killing_a_shard_leader_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (started, _) = start_cluster(dir.path(), "8", &[]);
    let mut nodes: Vec<Option<Node>> = started.into_iter().map(Some).collect();

    let t0 = start_of_recent_window();
    let mut acked: Vec<Value> = Vec::new();
    let mut killed = None;
    let mut acked_after_kill = 0;
    for d in 0..24 {
        let (batches, _) = deployment_lifecycle("default", &format!("app{d}"), t0 + d * 2_000_000);
        for b in batches {
            post_until_acked(&nodes, d as usize, &b);
            acked.push(b);
            if killed.is_some() {
                acked_after_kill += 1;
            }
        }
        if d == 8 {
            let observer = nodes.iter().flatten().next().unwrap();
            let leader = leader_of(observer, 0).expect("shard 0 has a leader") as usize;
            nodes[leader].as_mut().unwrap().kill();
            nodes[leader] = None;
            killed = Some(leader);
        }
    }
    let killed = killed.unwrap();
    assert!(
        acked_after_kill > 0,
        "writes continued after the leader died"
    );
    // A request's batches for shards another node leads went to that node together.
    let together: u64 = nodes
        .iter()
        .flatten()
        .flat_map(|n| {
            n.metrics_text()
                .lines()
                .filter_map(|l| l.strip_prefix("kelemetry_forwarded_together_batches_total "))
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum();
    assert!(together > 0, "no batch went to its leader node together");

    // A new leader for shard 0 on a survivor, and it accepted writes.
    let survivor = nodes.iter().flatten().next().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_leader = loop {
        if let Some(l) = leader_of(survivor, 0).filter(|l| *l as usize != killed) {
            break l;
        }
        assert!(Instant::now() < deadline, "no new leader for shard 0");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_ne!(new_leader as usize, killed);

    // `kelemetry cluster status` shows the leaders.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kelemetry"))
        .args([
            "cluster",
            "status",
            "--target",
            &format!("http://{}", survivor.http()),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("leaders: node"),
        "{text}"
    );

    // Every acknowledged event is stored exactly once, read from every survivor.
    let expected = expected_ids(&acked);
    for node in nodes.iter().flatten() {
        wait_exactly_once(&expected, || {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for t in &node.stored(&[("cluster", CLUSTER)]) {
                for s in t["spans"].as_array().unwrap() {
                    if let Some(id) = crate::support::tag(s, "auditId") {
                        *seen.entry(id.to_string()).or_default() += 1;
                    }
                }
            }
            seen
        });
    }
}

#[test]
fn a_shard_without_quorum_still_answers_queries_marked_stale() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, _) = start_cluster(dir.path(), "4", &[]);
    let (batches, _) = deployment_lifecycle("default", "lonely", start_of_recent_window());
    for b in &batches {
        assert_eq!(nodes[0].post_audit(CLUSTER, b).0, 200);
    }
    // Wait until node 2 has applied the data, then leave it alone without a quorum.
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes[2].stored(&[("name", "lonely")]).is_empty() {
        assert!(Instant::now() < deadline, "replica never caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    nodes[0].kill();
    nodes[1].kill();
    let lone = &nodes[2];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = lone.http_get_json("/cluster/status");
        if status["shards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["leader"].is_null())
        {
            break;
        }
        assert!(Instant::now() < deadline, "leaders never lapsed: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        lone.post_audit(CLUSTER, &batches[0]).0,
        503,
        "no quorum, no acknowledgement"
    );
    let found = lone.search(
        "tracing",
        &[("resource", "deployments"), ("name", "lonely")],
    );
    assert_eq!(found.len(), 1, "queries still answer from the replica");
    let warnings = found[0]["spans"][0]["warnings"].to_string();
    assert!(warnings.contains("may be stale"), "{warnings}");
    assert!(warnings.contains("could not be stored"), "{warnings}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_talk_over_mutual_tls_and_refuse_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let [cert, key, ca] = make_certs(dir.path());
    let tls = [
        "--peer-tls-cert",
        &cert,
        "--peer-tls-key",
        &key,
        "--peer-tls-ca",
        &ca,
    ];
    let (nodes, addrs) = start_cluster(dir.path(), "4", &tls);
    let (batches, _) = deployment_lifecycle("default", "tls", start_of_recent_window());
    for b in &batches {
        assert_eq!(nodes[1].post_audit(CLUSTER, b).0, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes[2].stored(&[("name", "tls")]).is_empty() {
        assert!(Instant::now() < deadline, "not replicated over TLS");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A peer without TLS is refused.
    let addr = &addrs[0];
    let plain = kelemetry_proto::kelemetry::cluster::v1::peer_client::PeerClient::connect(format!(
        "http://{addr}"
    ))
    .await;
    let refused = match plain {
        Err(_) => true,
        Ok(mut c) => c
            .submit(kelemetry_proto::kelemetry::cluster::v1::SubmitRequest::default())
            .await
            .is_err(),
    };
    assert!(
        refused,
        "plaintext peer RPC must fail against a TLS peer port"
    );
}
