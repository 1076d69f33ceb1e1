//! Bad input, overload, start-up errors and graceful shutdown.

use crate::support::{request, start_of_recent_window, Node};
use kelemetry_testkit::workload::{deployment_lifecycle, event_list, pod_churn_batch};
use std::time::Duration;

#[test]
fn bad_requests_and_overload_are_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        &[
            "--shards",
            "1",
            "--max-body-bytes",
            "20000",
            "--shard-queue-commands",
            "5",
        ],
    );
    let (status, body) = node.post_raw("/audit", b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "cluster");
    let (status, body) = node.post_raw("/audit/Bad_Cluster!", b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "cluster");
    let (status, body) = node.post_raw("/audit/c", b"[1,2");
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("body"))
    );
    let big = pod_churn_batch(0, 50, start_of_recent_window());
    let (status, body) = node.post_audit("c", &big);
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (413, Some("body")),
        "{body}"
    );
    // Ten commands for one shard whose queue holds five: refused, not buffered.
    let ten = pod_churn_batch(1, 10, start_of_recent_window());
    assert!(ten.to_string().len() < 20_000);
    let (status, body) = node.post_audit("c", &ten);
    assert_eq!(status, 429, "{body}");
    // A mixed batch with one malformed item is rejected whole: nothing is stored.
    let mut items = pod_churn_batch(2, 3, start_of_recent_window())["items"]
        .as_array()
        .unwrap()
        .clone();
    items[2]["requestReceivedTimestamp"] = "not a time".into();
    let (status, body) = node.post_audit("c", &event_list(items));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["item"], 2);
    assert_eq!(body["error"]["field"], "items[2].requestReceivedTimestamp");
    // An event dated year 9999 would escape retention forever: refused the same way.
    let mut items = pod_churn_batch(3, 2, start_of_recent_window())["items"]
        .as_array()
        .unwrap()
        .clone();
    items[1]["stageTimestamp"] = "9999-12-31T23:59:59Z".into();
    let (status, body) = node.post_audit("c", &event_list(items));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "items[1].stageTimestamp");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--max-clock-skew"),
        "{body}"
    );
    assert!(
        node.stored(&[("cluster", "c")]).is_empty(),
        "no half-applied batch"
    );
    let (status, body) = node.query("/api/traces?service=nope");
    assert_eq!(status, 400);
    assert!(body["errors"][0]["msg"]
        .as_str()
        .unwrap()
        .contains("'service'"));
    assert_eq!(node.query("/api/traces/00ff").0, 404);
}

#[test]
fn default_cluster_shard_count_and_node_id_guards_and_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(dir.path(), &["--shards", "4", "--default-cluster", "home"]);
    let (batches, _) = deployment_lifecycle("default", "web", start_of_recent_window());
    for b in &batches {
        let (status, body) = node.post_raw("/audit", b.to_string().as_bytes());
        assert_eq!(status, 200, "{body}");
    }
    let status = node.terminate();
    assert!(
        status.success(),
        "SIGTERM exits cleanly: {status}\n{}",
        node.log()
    );
    assert!(node.log().contains("shutdown complete"));

    let (status, out) = node.run_once(&["--shards", "8"]);
    assert!(!status.success());
    assert!(
        out.contains("--shards 8 does not match the 4 shards"),
        "{out}"
    );
    // Another node id on this data directory would reuse node 0's replicas.
    let (status, out) = node.run_once(&["--node-id", "7"]);
    assert!(!status.success());
    assert!(out.contains("--node-id 7 does not match node 0"), "{out}");

    node.restart();
    let found = node.stored(&[
        ("cluster", "home"),
        ("resource", "deployments"),
        ("name", "web"),
    ]);
    assert_eq!(found.len(), 1);
}

#[test]
fn rate_limits_per_cluster_and_per_client_answer_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        &[
            "--shards",
            "4",
            "--cluster-rate-limit",
            "50",
            "--client-rate-limit",
            "100",
        ],
    );
    let url = |cluster: &str| format!("http://{}/audit/{cluster}", node.http());
    let batch = |n: u64, size: u64| pod_churn_batch(n, size, start_of_recent_window()).to_string();
    // A cluster's burst is two seconds' worth (100 events); the next 60 are refused.
    assert_eq!(request("POST", &url("a"), &[], &batch(1, 100)).status, 200);
    let refused = request("POST", &url("a"), &[], &batch(2, 60));
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body.contains("--cluster-rate-limit"),
        "{}",
        refused.body
    );
    let wait: u64 = refused.retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // Another cluster has its own budget, until this client's (200 events) runs out;
    // the refused request above spent none of it.
    assert_eq!(request("POST", &url("b"), &[], &batch(3, 100)).status, 200);
    let refused = request("POST", &url("d"), &[], &batch(5, 100));
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("--client-rate-limit"),
        "{}",
        refused.body
    );
    // Retrying after Retry-After succeeds, and nothing refused was stored.
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(request("POST", &url("a"), &[], &batch(2, 60)).status, 200);
    assert!(node.stored(&[("cluster", "d")]).is_empty());
    let (status, out) = node.run_once(&["--cluster-rate-limit", "0"]);
    assert!(!status.success());
    assert!(out.contains("--cluster-rate-limit"), "{out}");
}

#[test]
fn webhook_bodies_in_progress_are_bounded_in_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // A budget smaller than one batch: each request takes all of it and runs alone.
    let node = Node::start(
        dir.path(),
        &["--shards", "2", "--max-inflight-body-bytes", "1000"],
    );
    let batches: Vec<serde_json::Value> = (0..16)
        .map(|i| pod_churn_batch(100 + i, 20, start_of_recent_window()))
        .collect();
    assert!(batches[0].to_string().len() > 1000);
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for _round in 0..5 {
        let barrier = std::sync::Barrier::new(batches.len());
        let answers: Vec<(u16, serde_json::Value, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = batches
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let (node, barrier) = (&node, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        let (code, body) = node.post_audit("c", b);
                        (code, body, i as u64)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (code, body, i) in answers {
            match code {
                200 => accepted.push(i),
                429 => {
                    let message = body["error"]["message"].as_str().unwrap_or_default();
                    assert!(message.contains("--max-inflight-body-bytes"), "{body}");
                    refused += 1;
                }
                other => panic!("{other} {body}"),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(
        refused > 0,
        "concurrent bodies beyond the budget are refused"
    );
    assert!(!accepted.is_empty(), "one body at a time still runs");
    // Every accepted batch is stored whole (replays were deduplicated); nothing of a
    // refused one that was never accepted is.
    accepted.sort_unstable();
    accepted.dedup();
    for i in 0..16u64 {
        let pods = node
            .stored(&[("name", &format!("pod-{}-0", 100 + i))])
            .len();
        assert_eq!(pods, usize::from(accepted.contains(&i)), "batch {i}");
    }
    let metrics = node.metrics_text();
    assert!(
        metrics.contains("kelemetry_webhook_body_bytes{kind=\"capacity\"} 1000"),
        "{metrics}"
    );
}

/// Writes one `POST /audit/c` with `body` on `conn` and reads the status line and
/// headers of its answer; the status code, or the I/O error the client met.
fn post_on(conn: &mut std::net::TcpStream, body: &[u8]) -> std::io::Result<u16> {
    use std::io::{BufRead, BufReader, Read, Write};
    write!(
        conn,
        "POST /audit/c HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body)?;
    let mut reader = BufReader::new(conn);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    reader.read_exact(&mut vec![0; length])?;
    Ok(status.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0))
}

#[test]
fn a_request_refused_for_want_of_a_permit_gets_its_429_on_a_connection_that_stays_open() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        &["--shards", "1", "--max-concurrent-requests", "1"],
    );
    // The only permit is held by a request whose body is still on its way.
    let mut slow = std::net::TcpStream::connect(node.http()).unwrap();
    write!(
        slow,
        "POST /audit/c HTTP/1.1\r\nHost: node\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // A large request arriving meanwhile is refused; its body is read and dropped,
    // so the client gets the 429 and may retry on the same connection.
    let big = vec![b' '; 4 << 20];
    let mut conn = std::net::TcpStream::connect(node.http()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    for attempt in 0..3 {
        let status = post_on(&mut conn, &big).unwrap_or_else(|e| {
            panic!("attempt {attempt}: the refused request's connection failed: {e}")
        });
        assert_eq!(status, 429, "attempt {attempt}");
    }
    drop(slow);
    let batch = pod_churn_batch(7, 3, start_of_recent_window()).to_string();
    assert_eq!(post_on(&mut conn, batch.as_bytes()).unwrap(), 200);
}

/// The value of the series `name` (labels included) in a `/metrics` text.
fn series(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn in_memory_bounds_follow_their_flags_and_show_on_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        &[
            "--shards",
            "2",
            "--raft-recent-entries-kib",
            "2",
            "--shard-queue-commands",
            "500",
        ],
    );
    let t0 = start_of_recent_window();
    for i in 0..40 {
        let (code, body) = node.post_audit("c", &pod_churn_batch(300 + i, 1, t0));
        assert_eq!(code, 200, "{body}");
    }
    let metrics = node.metrics_text();
    let capacity = series(
        &metrics,
        "kelemetry_raft_recent_entries_bytes{kind=\"capacity\"}",
    )
    .unwrap_or_else(|| panic!("{metrics}"));
    let used = series(
        &metrics,
        "kelemetry_raft_recent_entries_bytes{kind=\"used\"}",
    )
    .unwrap_or_else(|| panic!("{metrics}"));
    assert_eq!(
        series(&metrics, "kelemetry_shard_queue_capacity"),
        Some(500)
    );
    let replicas = series(&metrics, "kelemetry_local_replicas").unwrap();
    assert_eq!(capacity, 2048 * replicas, "{metrics}");
    // 40 entries of several hundred encoded bytes each went through 2 groups (about
    // 33 KB kept with a bound too large to matter): the runs hold some of them and
    // never more than their bound.
    assert!(used > 0 && used <= capacity, "used {used} of {capacity}");
    let appended = series(
        &metrics,
        "kelemetry_rocksdb_operations_total{op=\"bytes_written\"}",
    )
    .unwrap();
    assert!(
        appended > 2 * capacity,
        "the runs were filled past their bound"
    );
    for family in ["state", "log"] {
        for kind in ["live", "pending_compaction"] {
            let name =
                format!("kelemetry_rocksdb_table_bytes{{family=\"{family}\",kind=\"{kind}\"}}");
            assert!(series(&metrics, &name).is_some(), "{name} in {metrics}");
        }
    }
    for job in ["compaction", "flush"] {
        let name = format!("kelemetry_rocksdb_background_jobs{{job=\"{job}\"}}");
        assert!(series(&metrics, &name).is_some(), "{name} in {metrics}");
    }
}
