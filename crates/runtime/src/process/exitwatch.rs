//! Waking when a shim exits instead of polling for its `exit` file: a
//! pidfd (Linux 5.3 and later) becomes readable when its process ends, and
//! the shim writes `exit` before it ends. The shim need not be our child
//! (after an agent restart it is not), which a pidfd does not mind.

use super::state::{read_json, ProcRecord, SHIM_PID};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub struct ShimExit(AsyncFd<OwnedFd>);

impl ShimExit {
    /// Watches the shim recorded in `dir`; `None` if it no longer runs or
    /// the kernel has no pidfds (the caller polls then).
    pub fn open(dir: &Path) -> Option<ShimExit> {
        let shim: ProcRecord = read_json(&dir.join(SHIM_PID))?;
        // SAFETY: pidfd_open(2) returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, shim.pid as libc::pid_t, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // Checked after the open: if the shim still runs now, the
        // descriptor names it and not a process that reused its pid.
        if !shim.is_alive() {
            return None;
        }
        // SAFETY: an OwnedFd stays open, naming the same pidfd, for as
        // long as the AsyncFd that owns it.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .ok()
            .map(ShimExit)
    }

    /// Returns once the shim has exited.
    pub async fn exited(&self) {
        let _ = self.0.readable().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::state::write_json;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_when_the_process_exits() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let rec = ProcRecord::of(child.id()).unwrap();
        write_json(&dir.path().join(SHIM_PID), &rec).unwrap();
        let watch = ShimExit::open(dir.path()).expect("a pidfd on this kernel");
        tokio::time::timeout(Duration::from_secs(10), watch.exited())
            .await
            .expect("woken by the exit");
        child.wait().unwrap();
        // Gone: nothing to watch.
        assert!(ShimExit::open(dir.path()).is_none());
    }
}
