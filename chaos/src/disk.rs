//! A small disk for one node: its data directory on a tmpfs of its own (mounting one
//! needs root), which the disk-full fault fills with a ballast file and then frees.

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a directory until dropped.
pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size_mib` on `dir` (created if missing).
    pub fn mount(dir: &Path, size_mib: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .context("running mount")?;
        anyhow::ensure!(
            status.success(),
            "cannot mount a tmpfs on {} (the disk-full fault needs root): {status}",
            dir.display()
        );
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn ballast(&self) -> PathBuf {
        self.dir.join("ballast")
    }

    /// Fills the filesystem until `leave` bytes are free.
    pub fn fill(&self, free: u64, leave: u64) -> anyhow::Result<()> {
        let mut f = std::fs::File::create(self.ballast())?;
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..(free.saturating_sub(leave) >> 20) {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
        Ok(())
    }

    /// Deletes the ballast.
    pub fn free(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(self.ballast()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a node process may still hold files open while the harness exits.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
