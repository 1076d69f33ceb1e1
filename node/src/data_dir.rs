//! Opening the node's database: checked at start-up, and moved aside when damaged so
//! that the node's replicas are rebuilt from its peers instead of served wrong.

use anyhow::Context;
use kelemetry_raft::{Engine, EngineError, EngineMemory};
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    let damage = match open_checked(&path, memory, verify) {
        Ok(engine) => return Ok(engine),
        Err(e) if e.is_corruption() => e,
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "--data-dir {}: cannot open the database",
                    data_dir.display()
                )
            })
        }
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
