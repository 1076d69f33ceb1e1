//! Peer ports for nodes that must know each other's addresses before any of them
//! starts (`--peers`).

use std::fs::File;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// A free loopback port below the kernel's ephemeral range, so no other process's
/// port-0 bind can take it between picking and use. Ports are spread by the process
/// id and the clock, and each is reserved for this process's lifetime (see
/// [`reserve`]), so test processes running in parallel never pick the same one.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seed = std::process::id() ^ nanos;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(7919)) % 10_000) as u16;
        if reserve(port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Files locked for the ports this process picked; the locks end with the process.
static RESERVED: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// Takes `port` for this process: an exclusive lock on a file named after it, shared
/// by every process on the machine. A port is picked some time before the node that
/// uses it binds it, and the bind check alone let two test processes pick the same
/// port in that time (a node then failed with "Address already in use"). Without a
/// usable lock directory the bind check is all there is.
fn reserve(port: u16) -> bool {
    let dir = std::env::temp_dir().join("kelemetry-test-ports");
    let file = std::fs::create_dir_all(&dir).and_then(|()| {
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
    });
    let Ok(file) = file else {
        return true;
    };
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return false;
    }
    RESERVED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(file);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_locked_by_another_process_is_not_picked() {
        let port = free_port();
        let dir = std::env::temp_dir().join("kelemetry-test-ports");
        let status = std::process::Command::new("flock")
            .args(["--nonblock", "--exclusive"])
            .arg(dir.join(port.to_string()))
            .arg("true")
            .status()
            .expect("flock(1) from util-linux");
        assert!(
            !status.success(),
            "another process could take the lock on a port this one picked"
        );
    }
}
