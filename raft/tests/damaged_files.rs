//! Damaged database files are reported as corruption, at open or by the start-up
//! verification, and never read back as data: a truncated table, a flipped bit
//! inside a table, a damaged write-ahead log record before its tail. A torn tail
//! (what a crash leaves of an unsynced write) is not damage.

use kelemetry_raft::engine::Op;
use kelemetry_raft::Engine;
use std::path::{Path, PathBuf};

/// Values without repeats, so compression cannot shrink a table below the damage.
fn value(i: u32) -> Vec<u8> {
    let mut x = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..512)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn fill(engine: &Engine, records: u32) {
    for chunk in (0..records).collect::<Vec<_>>().chunks(100) {
        let ops = chunk
            .iter()
            .map(|i| Op::Put(format!("key-{i:08}").into_bytes(), value(*i)));
        engine.write(ops, true).unwrap();
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort_by_key(|p| std::fs::metadata(p).unwrap().len());
    found
}

/// A database of `records` records flushed into tables, then closed.
fn flushed_db(records: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let engine = Engine::open(&path).unwrap();
    fill(&engine, records);
    engine.flush().unwrap();
    drop(engine);
    (dir, path)
}

fn flip_middle(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn a_truncated_table_fails_the_open_as_corruption() {
    let (_dir, path) = flushed_db(20_000);
    let table = files(&path, ".sst").pop().expect("a table");
    let len = std::fs::metadata(&table).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&table)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = Engine::open(&path)
        .and_then(|e| e.verify(&mut |_| {}).map(|_| ()))
        .expect_err("a truncated table must not open cleanly");
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn a_flipped_bit_in_a_table_is_found_by_verification() {
    let (_dir, path) = flushed_db(20_000);
    let clean = Engine::open(&path).unwrap().verify(&mut |_| {}).unwrap();
    assert_eq!(clean.records, 20_000);
    flip_middle(&files(&path, ".sst").pop().expect("a table"));
    let engine = Engine::open(&path).expect("table contents are checked on read, not at open");
    let err = engine
        .verify(&mut |_| {})
        .expect_err("verification reads every block");
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn a_damaged_log_record_before_the_tail_fails_the_open_but_a_torn_tail_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let engine = Engine::open(&path).unwrap();
    fill(&engine, 2_000);
    drop(engine);
    let wal = files(&path, ".log").pop().expect("a write-ahead log");
    let len = std::fs::metadata(&wal).unwrap().len();

    // A torn tail: the last record cut short.
    let torn = dir.path().join("torn");
    copy_dir(&path, &torn);
    let torn_wal = torn.join(wal.file_name().unwrap());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&torn_wal)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let reopened = Engine::open(&torn).expect("a torn tail is what a crash leaves");
    assert!(reopened.get(b"key-00000000").unwrap().is_some());
    drop(reopened);

    // Damage in the middle: synced records after it would be silently dropped.
    flip_middle(&wal);
    let err = Engine::open(&path).err().expect("damage before the tail");
    assert!(err.is_corruption(), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
