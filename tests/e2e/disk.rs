//! A node whose disk fills up: on a small filesystem of its own (a tmpfs, so the
//! test needs the right to mount one), filled by a ballast file to below
//! `--min-free-disk`, it refuses writes with 503 and Retry-After, leaves the
//! Service (readyz), reports it on /metrics and in its status, keeps serving reads
//! and loses nothing accepted; when the ballast is deleted it takes writes again by
//! itself. A disk that fills to the last byte before the check notices stops the
//! node, and its restart loses nothing acknowledged.

use crate::cluster::expected_ids;
use crate::support::{request, start_of_recent_window, Node};
use kelemetry_testkit::small_disk::SmallDisk;
use kelemetry_testkit::workload::{deployment_lifecycle, pod_churn_batch};
use std::time::{Duration, Instant};

fn free_bytes(status: &serde_json::Value) -> u64 {
    status["disk"]["free_bytes"]
        .as_u64()
        .expect("disk in status")
}

fn wait_disk_low(node: &Node, low: bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, status) = node.http_get_json("/cluster/status");
        if status["disk"]["low"] == low {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "disk low never became {low}: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_full_disk_refuses_writes_serves_reads_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("small");
    let disk = match SmallDisk::mount(&data, 320) {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!("{e}; skipped");
            return;
        }
    };
    let mut node = Node::start(&data, &["--shards", "4", "--min-free-disk-mib", "128"]);
    let t = start_of_recent_window();
    let (before, _) = deployment_lifecycle("default", "before", t);
    assert_eq!(node.post_audit("c", &before[0]).0, 200);

    // Fill the filesystem to 64 MiB free, below the 128 MiB minimum.
    let (_, status) = node.http_get_json("/cluster/status");
    disk.fill(free_bytes(&status), 64 << 20).unwrap();
    let status = wait_disk_low(&node, true);
    assert!(free_bytes(&status) < 128 << 20, "{status}");

    let (after, _) = deployment_lifecycle("default", "after", t + 1_000_000);
    let url = format!("http://{}/audit/c", node.http());
    let refused = request("POST", &url, &[], &after[0].to_string());
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.body.contains("--min-free-disk"), "{}", refused.body);
    assert!(refused.retry_after.is_some(), "no Retry-After");
    let (ready, _) = node.http_get("/readyz");
    assert_eq!(ready, 503, "a node short of disk leaves the Service");
    assert!(node.metrics_text().contains("kelemetry_disk_low 1"));
    assert_eq!(
        node.stored(&[("name", "before")]).len(),
        1,
        "reads are served while the disk is short"
    );

    disk.free().unwrap();
    wait_disk_low(&node, false);
    assert_eq!(node.post_audit("c", &after[0]).0, 200);
    assert_eq!(node.stored(&[("name", "after")]).len(), 1);
    assert!(node.metrics_text().contains("kelemetry_disk_low 0"));

    // Everything accepted survives a restart on the filesystem that was full.
    assert!(node.terminate().success());
    node.restart();
    assert_eq!(node.stored(&[("name", "before")]).len(), 1);
    assert_eq!(node.stored(&[("name", "after")]).len(), 1);
    node.terminate();
}

#[test]
fn a_disk_filled_to_the_last_byte_stops_the_node_and_its_restart_loses_nothing() {
    // The database alone on the small disk (the log stays readable), and no
    // free-space guard: writes run into the full disk itself.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let disk = match SmallDisk::mount(&data.join("db"), 96) {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!("{e}; skipped");
            return;
        }
    };
    let flags = [
        "--shards",
        "4",
        "--min-free-disk-mib",
        "0",
        "--rocksdb-write-buffer-mib",
        "4",
    ];
    let mut node = Node::start(&data, &flags);
    let t = start_of_recent_window();
    let mut acked = vec![pod_churn_batch(0, 50, t)];
    assert_eq!(node.post_audit("c", &acked[0]).0, 200);

    // Writes go on into the space RocksDB set aside for its log until one fails on
    // the disk; that failure stops the node.
    disk.fill_up().unwrap();
    let mut refused = None;
    for batch in 1..400 {
        let list = pod_churn_batch(batch, 50, t);
        match node.try_post_audit("c", &list) {
            Ok((200, _)) => acked.push(list),
            other => {
                refused = Some((list, format!("{other:?}")));
                break;
            }
        }
    }
    let (unacked, refusal) = refused.expect("a write on the full disk was refused");
    let status = node
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the node still runs after {refusal}"));
    let log = node.log();
    let tail = &log[log.len().saturating_sub(3000)..];
    // Mostly the node's own stop, naming the failure. When another thread's write
    // reaches RocksDB's failed log writer before the failure is recorded, Debian's
    // build of RocksDB aborts on its own assertion instead; either way the process
    // is gone and its restart is what matters.
    use std::os::unix::process::ExitStatusExt;
    if status.code() == Some(74) {
        assert!(log.contains("stopping on a storage failure"), "{tail}");
        assert!(log.contains("No space left on device"), "{tail}");
    } else {
        assert_eq!(status.signal(), Some(libc::SIGABRT), "{status}: {tail}");
        assert!(
            log.contains("Writer has previous error") || log.contains("sync_without_flush_called_"),
            "{tail}"
        );
        eprintln!("the node was aborted by RocksDB's assertion: {status}");
    }

    // Its supervisor restarts it; with space back, every acknowledged event is
    // there once, and it takes writes.
    disk.free().unwrap();
    node.restart();
    let after = pod_churn_batch(1_000, 10, t);
    assert_eq!(node.post_audit("c", &after).0, 200);
    acked.push(after);
    stored_once_each(&node, &acked, &unacked);
    eprintln!(
        "{} batches acknowledged before the disk refused one: {refusal}",
        acked.len() - 2
    );
    node.terminate();
}

/// Every event of the `acked` batches is stored exactly once; of the batch whose
/// answer was lost with the node (`unacked`), each event is stored at most once.
fn stored_once_each(node: &Node, acked: &[serde_json::Value], unacked: &serde_json::Value) {
    let expected = expected_ids(acked);
    let maybe = expected_ids(std::slice::from_ref(unacked));
    let (_, ids) = node.http_get_json("/cluster/audit-ids");
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for id in ids["audit_ids"].as_array().unwrap() {
        *seen.entry(id.as_str().unwrap().to_string()).or_default() += 1;
    }
    let missing = expected.keys().filter(|k| !seen.contains_key(*k)).count();
    let twice = seen.values().filter(|n| **n > 1).count();
    let unknown = seen
        .keys()
        .filter(|k| !expected.contains_key(*k) && !maybe.contains_key(*k))
        .count();
    assert_eq!(
        (missing, twice, unknown),
        (0, 0, 0),
        "of {} acknowledged events: missing, stored twice, never sent",
        expected.len()
    );
}
