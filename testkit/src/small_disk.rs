//! A small disk for a node: a tmpfs of its own mounted on a directory (mounting one
//! needs root), which a test fills with a ballast file to run the node out of space
//! and then frees.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a directory until dropped.
pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size_mib` on `dir` (created if missing).
    pub fn mount(dir: &Path, size_mib: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir)
            .status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "cannot mount a tmpfs on {} (needs root): {status}",
                dir.display()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    fn ballast(&self) -> PathBuf {
        self.dir.join("ballast")
    }

    /// Fills the filesystem with a ballast file until about `leave` of `free` bytes
    /// are left.
    pub fn fill(&self, free: u64, leave: u64) -> std::io::Result<()> {
        let mut f = std::fs::File::create(self.ballast())?;
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..(free.saturating_sub(leave) >> 20) {
            f.write_all(&chunk)?;
        }
        f.sync_all()
    }

    /// Fills the filesystem with the ballast to the last byte.
    pub fn fill_up(&self) -> std::io::Result<()> {
        let mut f = std::fs::File::create(self.ballast())?;
        let chunk = vec![0u8; 64 << 10];
        loop {
            match f.write(&chunk) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Deletes the ballast.
    pub fn free(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.ballast()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a node process may still hold files open.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
