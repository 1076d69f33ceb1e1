//! Applied state is written without the write-ahead log: a process that dies loses
//! what no flush wrote (the Raft log rebuilds it), and keeps what the flush before a
//! purge wrote. The crash is real: a child process writes and aborts, and the
//! parent reopens its database.

use kelemetry_raft::engine::Op;
use kelemetry_raft::Engine;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the child: the database it writes to before it aborts.
const CHILD_DB: &str = "KELEMETRY_TEST_APPLIED_WITHOUT_WAL_DB";
const GROUP: u32 = 5;

fn write_then_abort(path: &Path) -> ! {
    let engine = Engine::open(path).unwrap();
    engine
        .write_applied(GROUP, 100, [Op::Put(b"flushed".to_vec(), b"1".to_vec())])
        .unwrap();
    engine.persist_applied_through(GROUP, 100).unwrap();
    engine
        .write_applied(GROUP, 200, [Op::Put(b"unflushed".to_vec(), b"2".to_vec())])
        .unwrap();
    engine
        .write(
            [Op::PutLog(b"entry-200".to_vec(), b"the entry".to_vec())],
            true,
        )
        .unwrap();
    // Logged writes after the unlogged ones are kept; the unlogged ones are not.
    std::process::abort();
}

#[test]
fn a_crash_keeps_the_flushed_state_and_the_log_and_loses_only_unflushed_state() {
    if let Some(path) = std::env::var_os(CHILD_DB) {
        write_then_abort(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_crash_keeps_the_flushed_state_and_the_log_and_loses_only_unflushed_state",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD_DB, &path)
        .status()
        .unwrap();
    assert!(!status.success(), "the child aborts");

    let engine = Engine::open(&path).unwrap();
    assert_eq!(
        engine.get(b"flushed").unwrap().as_deref(),
        Some(&b"1"[..]),
        "state flushed before a purge survives the crash"
    );
    assert_eq!(
        engine.get(b"unflushed").unwrap(),
        None,
        "state no flush wrote is gone, so its log entries must stay"
    );
    let mut log = Vec::new();
    engine
        .scan_log(b"entry-", b"entry.", &mut |k, _| {
            log.push(k.to_vec());
            true
        })
        .unwrap();
    assert_eq!(log, vec![b"entry-200".to_vec()], "the synced log survives");
}

#[test]
fn state_written_with_the_log_or_already_flushed_needs_no_flush() {
    let (_dir, path, engine) = flushed_once(10);
    let files_after_first = sst_files(&path);
    assert_eq!(files_after_first, 1, "the first purge flushed the state");
    engine.persist_applied_through(GROUP, 10).unwrap();
    engine.persist_applied_through(GROUP + 1, 10).unwrap();
    assert_eq!(
        sst_files(&path),
        files_after_first,
        "covered or never written without the log: no second flush"
    );
}

/// A new database where `GROUP` applied through `applied` without the log and a purge
/// flushed it.
fn flushed_once(applied: u64) -> (tempfile::TempDir, PathBuf, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let engine = Engine::open(&path).unwrap();
    engine
        .write_applied(GROUP, applied, [Op::Put(b"old".to_vec(), b"1".to_vec())])
        .unwrap();
    engine.persist_applied_through(GROUP, applied).unwrap();
    (dir, path, engine)
}

fn sst_files(path: &Path) -> usize {
    std::fs::read_dir(path)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("sst".as_ref()))
        .count()
}

#[test]
fn a_replica_deleted_and_opened_again_is_flushed_before_its_first_purge() {
    let (_dir, path, engine) = flushed_once(1_100);
    let before = sst_files(&path);
    engine
        .write([Op::DeleteRange(b"o".to_vec(), b"p".to_vec())], true)
        .unwrap();
    engine.forget_applied(GROUP);
    engine
        .write_applied(GROUP, 1_007, [Op::Put(b"new".to_vec(), b"2".to_vec())])
        .unwrap();
    engine.persist_applied_through(GROUP, 7).unwrap();
    assert_eq!(
        sst_files(&path),
        before + 1,
        "the new replica's state is flushed although index 7 is below the old one's"
    );
}
