//! The shim's only `wait`er. The shim is a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so every process the container leaves
//! behind — a daemon that double-forks, a child that calls `setsid` — ends
//! up as the shim's child when its parent dies. One thread reaps them all,
//! as an init process does, and hands the statuses of the processes the
//! shim itself started (the container's process, health checks) to whoever
//! waits for them; the others' are dropped.
//!
//! `std::process::Command::spawn` reaps a child itself when its `exec`
//! fails, so the reaper never reaps during a spawn: it peeks at an exited
//! child (`WNOWAIT`) and reaps it only under the lock [`Reaper::spawn`]
//! holds while spawning.

use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Reaper(Arc<Shared>);

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Counts spawns, so a reaper that found no child knows one came.
    spawns: u64,
    /// The children started through [`Reaper::spawn`] not waited for yet,
    /// with their status once they exited.
    watched: HashMap<u32, Option<ExitStatus>>,
}

impl Reaper {
    /// Makes this process a child subreaper and starts the reaping thread.
    pub fn start() -> Reaper {
        set_subreaper();
        let reaper = Reaper(Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }));
        let shared = reaper.0.clone();
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap_forever(&shared))
            .expect("the reaper thread starts");
        reaper
    }

    /// Spawns `cmd` as a watched child: its status goes to
    /// [`Reaper::wait`] / [`Reaper::try_wait`], never to `Child::wait`.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<Child> {
        let mut state = self.0.state.lock();
        let child = cmd.spawn();
        state.spawns += 1;
        if let Ok(c) = &child {
            state.watched.insert(c.id(), None);
        }
        self.0.changed.notify_all();
        child
    }

    /// The status of watched child `pid` if it has exited (then it is no
    /// longer watched).
    pub fn try_wait(&self, pid: u32) -> Option<ExitStatus> {
        let mut state = self.0.state.lock();
        let status = (*state.watched.get(&pid)?)?;
        state.watched.remove(&pid);
        Some(status)
    }

    /// Waits for watched child `pid` to exit.
    pub fn wait(&self, pid: u32) -> io::Result<ExitStatus> {
        let mut state = self.0.state.lock();
        loop {
            match state.watched.get(&pid) {
                None => return Err(io::Error::from_raw_os_error(libc::ECHILD)),
                Some(Some(status)) => {
                    let status = *status;
                    state.watched.remove(&pid);
                    return Ok(status);
                }
                Some(None) => self.0.changed.wait(&mut state),
            }
        }
    }
}

/// Orphans of the container's processes come to this process, not to init.
fn set_subreaper() {
    // SAFETY: prctl(2) with PR_SET_CHILD_SUBREAPER only sets a flag.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        eprintln!(
            "berth shim: cannot become a child subreaper: {}",
            io::Error::last_os_error()
        );
    }
}

fn reap_forever(shared: &Shared) {
    loop {
        let spawns = shared.state.lock().spawns;
        // SAFETY: siginfo_t is plain data, and waitid(2) writes only to it.
        let (rc, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT);
            (rc, info)
        };
        if rc != 0 {
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::ECHILD) => {
                    // No child at all: none can exit before the next spawn.
                    let mut state = shared.state.lock();
                    if state.spawns == spawns {
                        shared
                            .changed
                            .wait_for(&mut state, Duration::from_millis(500));
                    }
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
            continue;
        }
        // SAFETY: waitid filled `info` for an exited child.
        let pid = unsafe { info.si_pid() };
        let mut state = shared.state.lock();
        // No spawn runs now (it holds the lock), so nothing else reaps.
        let mut raw = 0;
        // SAFETY: waitpid(2) writes only to `raw`.
        let reaped = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
        if reaped == pid {
            if let Some(slot) = state.watched.get_mut(&(pid as u32)) {
                *slot = Some(ExitStatus::from_raw(raw));
                shared.changed.notify_all();
            }
        }
    }
}

// Tested through the shim (tests/process.rs): a reaper in a test binary
// would reap the children of every other test.
