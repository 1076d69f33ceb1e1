//! Opening the node's database: checked at start-up, and moved aside when damaged so
//! that the node's replicas are rebuilt from its peers instead of served wrong.

use anyhow::Context;
use kelemetry_raft::{Engine, EngineError, EngineMemory};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A file inside the database directory recording damage found while the node ran
/// (a read that failed its checksum). It moves with the directory, so the damage
/// is acted on at the next start even with `--verify-data-on-start=false`, and a
/// crash while the database is moved aside cannot attach it to the new one.
const DAMAGE_MARK: &str = "kelemetry-damage-found";

/// How long a stopping node waits for its damage mark to be written.
const MARK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The exit status of a node stopped by a storage failure (EX_IOERR), so its
/// supervisor restarts it and the start-up path takes over.
pub const EXIT_STORAGE_FAILED: i32 = 74;

/// The database directory inside `--data-dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("db")
}

/// Where a damaged database is kept for inspection (one, the latest).
pub fn damaged_path(data_dir: &Path) -> PathBuf {
    data_dir.join("db.damaged")
}

/// Opens the database of `data_dir`, verifying it when `verify`. A damaged one is
/// moved to [`damaged_path`] and an empty one opened in its place, marked as lost
/// data, when `can_rebuild` (the node has peers to rebuild from); otherwise start-up
/// fails naming what is damaged.
pub fn open(
    data_dir: &Path,
    memory: EngineMemory,
    verify: bool,
    can_rebuild: bool,
) -> anyhow::Result<Engine> {
    let path = db_path(data_dir);
    let damage = match std::fs::read(path.join(DAMAGE_MARK)) {
        Ok(found) => format!(
            "found while the node ran: {}",
            String::from_utf8_lossy(&found).trim()
        ),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            format!("a damage mark that cannot be read ({e})")
        }
        Err(_) => match open_checked(&path, memory, verify) {
            Ok(engine) => return Ok(engine),
            Err(e) if e.is_corruption() => e.to_string(),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "--data-dir {}: cannot open the database",
                        data_dir.display()
                    )
                })
            }
        },
    };
    anyhow::ensure!(
        can_rebuild,
        "--data-dir {}: the database is damaged ({damage}); this node has no peer to rebuild it from (no --join or other --peers): restore the directory from a backup, or move it away to start empty",
        data_dir.display()
    );
    let aside = damaged_path(data_dir);
    if aside.exists() {
        std::fs::remove_dir_all(&aside)
            .with_context(|| format!("cannot remove the older {}", aside.display()))?;
    }
    std::fs::rename(&path, &aside)
        .with_context(|| format!("cannot move the damaged database to {}", aside.display()))?;
    tracing::error!(
        data_dir = %data_dir.display(),
        damage = %damage,
        moved_to = %aside.display(),
        "the database is damaged; it was moved aside, and this node's replicas will be rebuilt from its peers"
    );
    crate::metrics::DATA_REBUILDS.inc();
    let engine = Engine::open_with(&path, memory).with_context(|| {
        format!(
            "--data-dir {}: cannot create a new database",
            data_dir.display()
        )
    })?;
    kelemetry_raft::lost_data::mark_lost(&engine)
        .context("cannot record that this node lost its data")?;
    Ok(engine)
}

/// Stops the process on the engine's first storage failure (see
/// `kelemetry_raft::storage_fault`), on the thread that met it: damage is recorded
/// in the database directory first, so the next start rebuilds it; the exit
/// status is [`EXIT_STORAGE_FAILED`].
pub fn stop_on_storage_failure(engine: &Engine, data_dir: &Path) {
    let db = db_path(data_dir);
    engine.fault().on_failure(Box::new(move |failure| {
        if failure.corruption {
            // On its own thread with a bounded wait: a dying disk can block an
            // fsync for good, and the node must stop regardless.
            let (db, message) = (db.clone(), failure.message.clone());
            let (done, written) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = done.send(record_damage(&db, &message));
            });
            match written.recv_timeout(MARK_WAIT) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "cannot record the damage; only --verify-data-on-start can find it at the next start"),
                Err(_) => tracing::error!("recording the damage did not finish in time; only --verify-data-on-start can find it at the next start"),
            }
        }
        let next = if failure.corruption {
            "the next start moves the damaged database aside and rebuilds this node's replicas from its peers"
        } else {
            "the next start reopens the database once the disk takes writes again"
        };
        tracing::error!(error = %failure.message, exit_status = EXIT_STORAGE_FAILED, "stopping on a storage failure; {next}");
        // SAFETY: `_exit` ends the process at once. Acknowledged writes are already
        // synced; running exit handlers instead would tear down RocksDB under its
        // own background threads.
        unsafe { libc::_exit(EXIT_STORAGE_FAILED) }
    }));
}

/// Writes the damage mark into the database directory `db`, synced.
fn record_damage(db: &Path, message: &str) -> std::io::Result<()> {
    let mut file = std::fs::File::create(db.join(DAMAGE_MARK))?;
    file.write_all(message.as_bytes())?;
    file.sync_all()?;
    std::fs::File::open(db)?.sync_all()
}

/// Opens the database at `path` and, when `verify`, reads it whole; the engine is
/// closed again when either finds damage.
fn open_checked(path: &Path, memory: EngineMemory, verify: bool) -> Result<Engine, EngineError> {
    let engine = Engine::open_with(path, memory)?;
    if verify {
        let started = Instant::now();
        let seen = engine.verify(&mut |seen| {
            tracing::info!(
                records = seen.records,
                mib = seen.bytes >> 20,
                "verifying the database"
            )
        })?;
        tracing::info!(
            records = seen.records,
            mib = seen.bytes >> 20,
            seconds = started.elapsed().as_secs_f64(),
            "database verified"
        );
    }
    Ok(engine)
}
