//! Snapshots as files, so a shard of any size moves between nodes in bounded memory.
//!
//! The sender scans the shard's records straight from RocksDB into a file, and
//! openraft sends that file in chunks; the receiver writes the chunks into a file,
//! checks it whole, then installs it in bounded batches. The format: a magic line,
//! then `u32` key length, key, `u32` value length, value per record (little endian),
//! then a trailer (`u32::MAX`, record count, XXH3 of everything before the trailer),
//! so a truncated or damaged transfer is refused before it touches the state.

use crate::engine::{EngineError, PrefixView};
use kelemetry_core::state::KvRead;
use prometheus::{register_int_counter_vec, IntCounterVec};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::LazyLock;
use xxhash_rust::xxh3::Xxh3;

const MAGIC: &[u8; 8] = b"KSNAP01\n";
const TRAILER: u32 = u32::MAX;
/// Buffer of the file reader and writer.
const BUFFER: usize = 1 << 20;
/// Bytes of records handed to the installer at a time.
pub const INSTALL_BATCH_BYTES: usize = 4 << 20;
/// A progress line every this many bytes.
const PROGRESS_EVERY: u64 = 256 << 20;
/// The writer asks whether the disk still has room every this many bytes.
const ROOM_CHECK_EVERY: u64 = 16 << 20;

/// Snapshot bytes written (`op="built"`) and installed (`op="installed"`).
pub static SNAPSHOT_BYTES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "kelemetry_snapshot_bytes_total",
        "Bytes of shard snapshots built for lagging or new replicas, and installed from a leader.",
        &["op"]
    )
    .expect("metric names are unique")
});

/// Why a snapshot file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    /// The file could not be read or written.
    #[error("snapshot file: {0}")]
    Io(#[from] std::io::Error),
    /// The records could not be read from the store.
    #[error("snapshot records: {0}")]
    Engine(String),
    /// The file is not a whole snapshot.
    #[error("snapshot file is damaged or incomplete: {0}")]
    Damaged(String),
}

impl From<EngineError> for SnapshotFileError {
    fn from(e: EngineError) -> Self {
        Self::Engine(e.to_string())
    }
}

/// A batch of records (keys relative to the shard's state prefix, and values).
pub type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// What a snapshot file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contents {
    /// Records.
    pub records: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// Writes every record of `view` to `file` (from its start) and rewinds it; runs on
/// a blocking thread. `shard` names the progress lines.
pub fn write(
    view: &PrefixView,
    file: File,
    shard: u32,
    room: &dyn Fn() -> bool,
) -> Result<(File, Contents), SnapshotFileError> {
    let mut out = BufWriter::with_capacity(BUFFER, file);
    let mut hash = Xxh3::new();
    let mut put = |bytes: &[u8], out: &mut BufWriter<File>| -> std::io::Result<()> {
        hash.update(bytes);
        out.write_all(bytes)
    };
    put(MAGIC, &mut out)?;
    let mut contents = Contents {
        records: 0,
        bytes: MAGIC.len() as u64,
    };
    let mut failed = None;
    let mut next_progress = PROGRESS_EVERY;
    let mut next_room_check = ROOM_CHECK_EVERY;
    view.scan(&[], &[0xff; 8], &mut |k, v| {
        let step = put(&len(k), &mut out)
            .and_then(|()| put(k, &mut out))
            .and_then(|()| put(&len(v), &mut out))
            .and_then(|()| put(v, &mut out));
        if let Err(e) = step {
            failed = Some(e);
            return false;
        }
        contents.records += 1;
        contents.bytes += 8 + (k.len() + v.len()) as u64;
        if contents.bytes >= next_room_check {
            next_room_check += ROOM_CHECK_EVERY;
            if !room() {
                failed = Some(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "the disk's free space fell to the store's reserve",
                ));
                return false;
            }
        }
        if contents.bytes >= next_progress {
            next_progress += PROGRESS_EVERY;
            tracing::info!(
                shard,
                mib = contents.bytes >> 20,
                records = contents.records,
                "building a snapshot"
            );
        }
        true
    })
    .map_err(|e| SnapshotFileError::Engine(e.to_string()))?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let digest = hash.digest();
    out.write_all(&TRAILER.to_le_bytes())?;
    out.write_all(&contents.records.to_le_bytes())?;
    out.write_all(&digest.to_le_bytes())?;
    contents.bytes += 20;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.seek(SeekFrom::Start(0))?;
    SNAPSHOT_BYTES
        .with_label_values(&["built"])
        .inc_by(contents.bytes);
    Ok((file, contents))
}

fn len(b: &[u8]) -> [u8; 4] {
    u32::try_from(b.len()).unwrap_or(u32::MAX - 1).to_le_bytes()
}

/// Reads the records of the snapshot in `file` from its start, handing them to
/// `batch` in groups of about [`INSTALL_BATCH_BYTES`], and checks the trailer. With
/// `batch` doing nothing it only checks the file.
pub fn read(
    file: &mut File,
    batch: &mut dyn FnMut(Records) -> Result<(), SnapshotFileError>,
) -> Result<Contents, SnapshotFileError> {
    file.seek(SeekFrom::Start(0))?;
    let mut input = BufReader::with_capacity(BUFFER, &mut *file);
    let mut hash = Xxh3::new();
    let mut magic = [0u8; 8];
    read_exact(&mut input, &mut magic, "no header")?;
    if &magic != MAGIC {
        return Err(SnapshotFileError::Damaged("not a snapshot file".into()));
    }
    hash.update(&magic);
    let mut contents = Contents {
        records: 0,
        bytes: 8,
    };
    let mut pending = Vec::new();
    let mut pending_bytes = 0;
    loop {
        let mut n = [0u8; 4];
        read_exact(&mut input, &mut n, "no trailer")?;
        if u32::from_le_bytes(n) == TRAILER {
            break;
        }
        hash.update(&n);
        let key = read_field(&mut input, u32::from_le_bytes(n), &mut hash)?;
        read_exact(&mut input, &mut n, "a record without a value")?;
        hash.update(&n);
        let value = read_field(&mut input, u32::from_le_bytes(n), &mut hash)?;
        contents.records += 1;
        contents.bytes += 8 + (key.len() + value.len()) as u64;
        pending_bytes += key.len() + value.len();
        pending.push((key, value));
        if pending_bytes >= INSTALL_BATCH_BYTES {
            batch(std::mem::take(&mut pending))?;
            pending_bytes = 0;
        }
    }
    let mut trailer = [0u8; 16];
    read_exact(&mut input, &mut trailer, "a short trailer")?;
    let (count, digest) = trailer.split_at(8);
    let count = u64::from_le_bytes(count.try_into().unwrap_or_default());
    let digest = u64::from_le_bytes(digest.try_into().unwrap_or_default());
    if count != contents.records || digest != hash.digest() {
        return Err(SnapshotFileError::Damaged(format!(
            "{} records read, the trailer says {count}; checksum {}",
            contents.records,
            if digest == hash.digest() {
                "matches"
            } else {
                "differs"
            }
        )));
    }
    if !pending.is_empty() {
        batch(pending)?;
    }
    contents.bytes += 20;
    Ok(contents)
}

fn read_exact(input: &mut impl Read, buf: &mut [u8], what: &str) -> Result<(), SnapshotFileError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            SnapshotFileError::Damaged(format!("ends early: {what}"))
        }
        _ => SnapshotFileError::Io(e),
    })
}

/// Longest key or value a snapshot may hold: far above any record the state
/// machine writes, low enough that a damaged length cannot exhaust memory.
const MAX_FIELD: u32 = 64 << 20;

fn read_field(
    input: &mut impl Read,
    n: u32,
    hash: &mut Xxh3,
) -> Result<Vec<u8>, SnapshotFileError> {
    if n > MAX_FIELD {
        return Err(SnapshotFileError::Damaged(format!("a field of {n} bytes")));
    }
    let mut v = vec![0u8; n as usize];
    read_exact(input, &mut v, "a record cut short")?;
    hash.update(&v);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, Op};

    fn store(records: u32) -> (tempfile::TempDir, PrefixView) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(&dir.path().join("db")).unwrap();
        let view = engine.view(b"s".to_vec());
        let ops: Vec<Op> = (0..records)
            .map(|i| view.op(format!("k{i:06}").into_bytes(), Some(vec![i as u8; 300])))
            .collect();
        engine.write(ops, false).unwrap();
        (dir, view)
    }

    #[test]
    fn records_round_trip_in_bounded_batches() {
        let (dir, view) = store(30_000);
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("snap"))
            .unwrap();
        let (mut file, written) = write(&view, file, 0, &|| true).unwrap();
        assert_eq!(written.records, 30_000);
        assert_eq!(written.bytes, file.metadata().unwrap().len());
        let mut batches = 0;
        let mut seen = 0;
        let read_back = read(&mut file, &mut |b| {
            batches += 1;
            assert!(
                b.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() < 2 * INSTALL_BATCH_BYTES
            );
            for (k, v) in b {
                assert_eq!(k, format!("k{seen:06}").into_bytes());
                assert_eq!(v, vec![seen as u8; 300]);
                seen += 1;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(read_back, written);
        assert_eq!(seen, 30_000);
        assert!(batches >= 2, "{batches} batches");
    }

    #[test]
    fn a_snapshot_stops_with_storage_full_once_the_disk_has_no_room() {
        // 60,000 records of about 310 bytes: about 18 MiB, so the room is asked once.
        let (dir, view) = store(60_000);
        let file = File::create(dir.path().join("snap")).unwrap();
        let asked = std::cell::Cell::new(0);
        let no_room = || {
            asked.set(asked.get() + 1);
            false
        };
        match write(&view, file, 0, &no_room) {
            Err(SnapshotFileError::Io(e)) => {
                assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}")
            }
            other => panic!(
                "expected a storage-full error, got {:?}",
                other.map(|r| r.1)
            ),
        }
        assert_eq!(asked.get(), 1);
        let file = File::create(dir.path().join("snap2")).unwrap();
        let (_, written) = write(&view, file, 0, &|| true).unwrap();
        assert_eq!(written.records, 60_000);
    }

    #[test]
    fn a_truncated_or_altered_file_is_refused() {
        let (dir, view) = store(100);
        let path = dir.path().join("snap");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let (file, written) = write(&view, file, 0, &|| true).unwrap();
        drop(file);
        let whole = std::fs::read(&path).unwrap();
        let nothing = &mut |_: Records| Ok(());
        for damaged in [
            whole[..whole.len() - 5].to_vec(),
            whole[..written.bytes as usize / 2].to_vec(),
            {
                let mut w = whole.clone();
                w[100] ^= 1;
                w
            },
        ] {
            std::fs::write(&path, &damaged).unwrap();
            let mut f = File::open(&path).unwrap();
            let err = read(&mut f, nothing).unwrap_err();
            assert!(matches!(err, SnapshotFileError::Damaged(_)), "{err}");
        }
    }
}
