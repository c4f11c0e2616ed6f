//! A cgroup (v2) per container, so that stopping it ends every process it
//! started, however it detached (`setsid`, double forks): `cgroup.kill`
//! kills them all at once, and a process cannot leave its cgroup without
//! write access to another one's `cgroup.procs`.
//!
//! The cgroup is `<cgroup v2 mount>/<the shim's own cgroup>/berth/<runtime
//! id>`, so it sits under whatever cgroup the agent runs in (a systemd
//! service, a container). It needs a writable cgroup v2 hierarchy: on a
//! host without one (cgroup v1 only, a read-only `/sys/fs/cgroup` in a
//! container), the shim falls back to killing its process tree (it is a
//! child subreaper, see `shim::reaper`). No controller is enabled: CPU and
//! memory are not limited.

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long killed processes may take to leave the cgroup.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The directory under which containers' cgroups are created: the cgroup
/// this process runs in, on the cgroup v2 hierarchy, plus `berth`.
pub fn parent_dir() -> Result<PathBuf, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    let (mount_root, mount_point) =
        v2_mount(&mountinfo).ok_or("no cgroup v2 hierarchy is mounted")?;
    let own = fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2")?;
    let rel = Path::new(own)
        .strip_prefix(&mount_root)
        .unwrap_or(Path::new(own.trim_start_matches('/')));
    Ok(mount_point.join(rel).join("berth"))
}

/// The root and mount point of the first cgroup2 mount in `mountinfo`.
fn v2_mount(mountinfo: &str) -> Option<(PathBuf, PathBuf)> {
    mountinfo.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        if rest.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mut f = fields.split_whitespace().skip(3);
        let root = unescape(f.next()?);
        let point = unescape(f.next()?);
        Some((PathBuf::from(root), PathBuf::from(point)))
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && s.is_char_boundary(i + 4) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A container's cgroup, with its `cgroup.procs` open so that a new
/// process can move itself in before it runs anything (see [`Cgroup::join`]).
pub struct Cgroup {
    path: PathBuf,
    procs: fs::File,
}

impl Cgroup {
    /// Creates the cgroup `name` under [`parent_dir`].
    pub fn create(name: &str) -> Result<Cgroup, String> {
        let parent = parent_dir()?;
        match fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create {}: {e}", parent.display())),
        }
        let path = parent.join(name);
        fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let procs = fs::OpenOptions::new()
            .write(true)
            .open(path.join("cgroup.procs"));
        match procs {
            Ok(procs) => Ok(Cgroup { path, procs }),
            Err(e) => {
                let _ = fs::remove_dir(&path);
                Err(format!("cannot open {}/cgroup.procs: {e}", path.display()))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What a freshly forked child calls before `exec`: moves the calling
    /// process into the cgroup. Async-signal-safe (one write(2)).
    pub fn join_fn(&self) -> impl Fn() -> io::Result<()> + Send + Sync + 'static {
        let fd = self.procs.as_raw_fd();
        move || {
            // SAFETY: write(2) of a static buffer to a descriptor that
            // outlives the spawn (the shim keeps the `Cgroup`).
            let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            if n == 1 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
    }
}

/// Kills every process in the cgroup at `path` and waits (a while) until
/// it is empty; `Ok(true)` if it is.
pub fn kill_all(path: &Path) -> io::Result<bool> {
    if !path.exists() {
        return Ok(true);
    }
    // Linux 5.14+: atomically, including processes forking meanwhile.
    let atomic = fs::OpenOptions::new()
        .write(true)
        .open(path.join("cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"))
        .is_ok();
    let deadline = Instant::now() + KILL_WAIT;
    loop {
        let pids = procs(path)?;
        if pids.is_empty() {
            return Ok(true);
        }
        if !atomic {
            for pid in pids {
                // SAFETY: kill(2) has no memory effects. A pid listed in the
                // cgroup has not been reaped, so it is not reused yet.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The processes in the cgroup at `path`.
pub fn procs(path: &Path) -> io::Result<Vec<u32>> {
    match fs::read_to_string(path.join("cgroup.procs")) {
        Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Removes the (empty) cgroup at `path`; a missing one is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Kills what is left in the cgroup recorded in a container's directory
/// (the shim may be gone) and removes it.
pub fn kill_recorded(dir: &Path) {
    let Ok(path) = fs::read_to_string(dir.join(super::state::CGROUP)) else {
        return;
    };
    let path = PathBuf::from(path.trim());
    // Only a cgroup berth made: `…/berth/<id>`.
    if path.parent().and_then(Path::file_name) != Some("berth".as_ref()) {
        return;
    }
    match kill_all(&path) {
        Ok(true) => {
            let _ = remove(&path);
        }
        Ok(false) => tracing::warn!("processes of {} survive SIGKILL", path.display()),
        Err(e) => tracing::warn!("cannot kill the processes of {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_v2_mount_in_hybrid_and_unified_layouts() {
        let hybrid = "35 25 0:30 / /sys/fs/cgroup/memory rw,relatime shared:13 - cgroup cgroup rw,memory\n\
                      40 25 0:35 / /sys/fs/cgroup/unified rw,relatime shared:18 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            v2_mount(hybrid),
            Some(("/".into(), "/sys/fs/cgroup/unified".into()))
        );
        let unified =
            "30 23 0:26 /docker/abc /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            v2_mount(unified),
            Some(("/docker/abc".into(), "/sys/fs/cgroup".into()))
        );
        assert_eq!(v2_mount("1 2 0:1 / /proc rw - proc proc rw\n"), None);
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }
}
