//! A node whose disk fills up: on a small filesystem of its own (a tmpfs, so the
//! test needs the right to mount one), filled by a ballast file to below
//! `--min-free-disk`, it refuses writes with 503 and Retry-After, leaves the
//! Service (readyz), reports it on /metrics and in its status, keeps serving reads
//! and loses nothing accepted; when the ballast is deleted it takes writes again by
//! itself.

use crate::support::{request, start_of_recent_window, Node};
use kelemetry_testkit::small_disk::SmallDisk;
use kelemetry_testkit::workload::deployment_lifecycle;
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
