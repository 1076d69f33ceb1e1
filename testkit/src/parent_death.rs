//! Child processes that end with the thread that started them, however it ends.
//!
//! The demo supervises its nodes and simulator itself, and stops them on Ctrl-C or
//! SIGTERM once the ring runs. Killed before that (a SIGTERM during start-up, a
//! SIGKILL, a panic), it used to leave them running as orphans that kept their ports
//! and data directories. Linux can send a child a signal when the thread that
//! started it exits (`PR_SET_PDEATHSIG`); a child started this way from the main
//! thread gets SIGTERM, and stops cleanly, when its parent process ends.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the process `command` starts receive SIGTERM when the calling thread exits.
/// Call it from a thread that lives as long as the child should (the main thread).
pub fn terminate_with_this_thread(command: &mut Command) {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(libc::pid_t::MAX);
    // SAFETY: between fork and exec the closure makes only async-signal-safe calls
    // (prctl, getppid) and builds its errors without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A parent that ended before the prctl sends no signal any more.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}
