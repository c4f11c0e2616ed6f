//! The process runtime: a container's `entryPoint` + `command` run as a
//! host process (like Nomad's `raw_exec`), each supervised by a detached
//! `berth shim` that records everything in `<state_dir>/<task_id>/<container>/`
//! (see [`state`]). The runtime itself keeps no state but that directory,
//! so a new `ProcessRuntime` over it — after the agent restarted, even
//! after a SIGKILL — sees and controls every container the old one left.
//!
//! What it does not do: images (`pull` does nothing and `image` is only
//! recorded: the program must exist on the host), isolation, resource
//! limits (`cpu_units`, `memory_mib`, `memory_reservation_mib` are recorded,
//! not enforced), supplementary groups for `user`, and user names beyond
//! `/etc/passwd` and `/etc/group`. Linux only (it relies on `/proc`).

pub mod cgroup;
mod exitwatch;
mod spawn;
pub mod state;
mod stats;
mod tenancy;

pub use tenancy::{running_as_root, AccountIsolation, Tenancy};

pub(crate) use spawn::NO_COMMAND;

use crate::{
    ContainerKey, ContainerSpec, ContainerState, ContainerStatus, Health, LogChunk, Runtime,
    RuntimeError, CAPABILITY_HEALTH_CHECK,
};
use async_trait::async_trait;
use parking_lot::Mutex;
use state::{Confinement, ProcRecord, StoredSpec, EXIT, PID, SPEC};
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often `wait` and `stop` look for the `exit` file.
const POLL: Duration = Duration::from_millis(10);
/// How often they also re-read the full status (to notice a lost shim or a
/// removed container).
const FULL_CHECK_EVERY: u32 = 20;
/// How long a process may take to disappear after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(10);

pub struct ProcessRuntime {
    state_dir: PathBuf,
    shim_command: Vec<String>,
    /// Whether containers get a cgroup each (where the host has one).
    cgroups: bool,
    tenancy: Tenancy,
    /// Keys inside `start` in this runtime: their shim may not have
    /// recorded itself yet, which is not a lost shim.
    starting: Arc<Mutex<HashSet<ContainerKey>>>,
    /// Each container's last CPU sample (the next stats' `precpu_stats`).
    last_cpu: Mutex<std::collections::HashMap<ContainerKey, serde_json::Value>>,
}

impl ProcessRuntime {
    /// A runtime keeping its containers under `state_dir` (created on the
    /// first start), running `shim_command` + `<container dir>` as the shim:
    /// `berth-shim` or `[<berth binary>, "shim"]` for the agent (see
    /// [`ProcessRuntime::with_current_exe`]); this crate's tests use its
    /// `berth-test-shim` binary.
    pub fn new(state_dir: impl Into<PathBuf>, shim_command: Vec<String>) -> Self {
        ProcessRuntime {
            state_dir: state_dir.into(),
            shim_command,
            cgroups: true,
            tenancy: Tenancy::Shared,
            starting: Arc::default(),
            last_cpu: Mutex::default(),
        }
    }

    /// Containers get no cgroup of their own even where the host has
    /// them: stopping one kills the shim's process tree instead (what
    /// happens anyway on a host without a writable cgroup v2 hierarchy).
    pub fn without_cgroups(mut self) -> Self {
        self.cgroups = false;
        self
    }

    /// How tasks of different accounts run (by default: all as the
    /// agent's user).
    pub fn with_tenancy(mut self, tenancy: Tenancy) -> Self {
        self.tenancy = tenancy;
        self
    }

    pub fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    /// What isolation this runtime's containers get on this host, in a
    /// sentence, for the agent's log.
    pub fn isolation(&self) -> String {
        let cgroups = if !self.cgroups {
            Err("turned off".to_string())
        } else {
            cgroup::parent_dir().and_then(|dir| probe_cgroups(&dir).map(|()| dir))
        };
        let rest = "no namespaces; CPU and memory are not limited";
        match cgroups {
            Ok(dir) => format!(
                "each container runs in a cgroup of its own under {}, so stopping it kills \
                 every process it started; {rest}",
                dir.display()
            ),
            Err(why) => format!(
                "no cgroup per container ({why}): stopping one kills every process it \
                 started by walking its shim's process tree (a child subreaper); {rest}"
            ),
        }
    }

    fn confinement(&self) -> Confinement {
        Confinement {
            cgroup: self.cgroups,
            no_new_privs: matches!(self.tenancy, Tenancy::Isolated(_)),
        }
    }

    /// A runtime for the `berth` binary: its shim is the one
    /// [`shim_command`] finds for this executable.
    pub fn with_current_exe(state_dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        let configured = std::env::var_os(SHIM_ENV).map(PathBuf::from);
        Ok(ProcessRuntime::new(
            state_dir,
            shim_command(&exe, configured.as_deref()),
        ))
    }

    /// The command the shim runs as (`+ <container dir>`).
    pub fn shim(&self) -> &[String] {
        &self.shim_command
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn dir(&self, key: &ContainerKey) -> Result<PathBuf, RuntimeError> {
        state::container_dir(&self.state_dir, key).ok_or(RuntimeError::NotFound)
    }

    fn read_status(&self, key: &ContainerKey) -> Result<Option<ContainerStatus>, RuntimeError> {
        let Some(dir) = state::container_dir(&self.state_dir, key) else {
            return Ok(None);
        };
        Ok(state::read_status(&dir, || {
            self.starting.lock().contains(key)
        })?)
    }

    fn remove_container_dir(&self, dir: &Path) -> std::io::Result<()> {
        fs::remove_dir_all(dir)?;
        // The task's directory goes with its last container (fails
        // otherwise), and with it the task's private directory.
        if let Some(task_dir) = dir.parent() {
            if fs::remove_dir(task_dir).is_ok() {
                if let (Tenancy::Isolated(accounts), Some(task_id)) =
                    (&self.tenancy, task_dir.file_name())
                {
                    accounts.remove_task(&task_id.to_string_lossy());
                }
            }
        }
        Ok(())
    }

    /// SIGTERM to the container's process group, SIGKILL after `timeout`;
    /// returns once the container has exited.
    async fn stop_process(
        &self,
        key: &ContainerKey,
        dir: &Path,
        timeout: Duration,
    ) -> Result<(), RuntimeError> {
        // A container still being set up gets its pid first.
        let started = Instant::now();
        loop {
            let status = self.read_status(key)?.ok_or(RuntimeError::NotFound)?;
            match status.state {
                ContainerState::Exited { .. } => return Ok(()),
                ContainerState::Running { .. } => break,
                ContainerState::Created if started.elapsed() > KILL_GRACE => {
                    return Err(RuntimeError::Io(format!("{key} did not start")));
                }
                ContainerState::Created => tokio::time::sleep(POLL).await,
            }
        }
        signal(dir, libc::SIGTERM);
        if self
            .wait_until(key, Some(Instant::now() + timeout))
            .await?
            .is_some()
        {
            return Ok(());
        }
        signal(dir, libc::SIGKILL);
        match self
            .wait_until(key, Some(Instant::now() + KILL_GRACE))
            .await?
        {
            Some(_) => Ok(()),
            None => Err(RuntimeError::Io(format!(
                "{key} still runs {}s after SIGKILL",
                KILL_GRACE.as_secs()
            ))),
        }
    }

    /// Wait until the container has exited or `deadline` passes; the final
    /// status if it exited. Woken by the shim's exit where the kernel has
    /// pidfds (a poll per container every 10 ms cost CPU and up to 10 ms of
    /// every task's stop); polls otherwise.
    async fn wait_until(
        &self,
        key: &ContainerKey,
        deadline: Option<Instant>,
    ) -> Result<Option<ContainerStatus>, RuntimeError> {
        let dir = self.dir(key)?;
        let exit_file = dir.join(EXIT);
        let mut round = 0u32;
        let mut watch = None;
        let mut watched = false;
        let mut full = true;
        loop {
            // The cheap check every round, the full one now and then.
            if full || round.is_multiple_of(FULL_CHECK_EVERY) || exit_file.exists() {
                let status = self.read_status(key)?.ok_or(RuntimeError::NotFound)?;
                if status.is_exited() {
                    return Ok(Some(status));
                }
            }
            full = false;
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            if !watched {
                watch = exitwatch::ShimExit::open(&dir);
                watched = true;
            }
            let nap = match watch {
                // Still a full check now and then: the container may be
                // removed under us.
                Some(_) => POLL * FULL_CHECK_EVERY,
                None => POLL,
            };
            let nap = deadline.map_or(nap, |d| nap.min(d - now));
            match &watch {
                Some(w) => {
                    if tokio::time::timeout(nap, w.exited()).await.is_ok() {
                        // The shim is gone: its `exit` is written (or it
                        // was lost, which the full check records). A
                        // process outliving it is polled for.
                        watch = None;
                    }
                    full = true;
                }
                None => {
                    tokio::time::sleep(nap).await;
                    round = round.wrapping_add(1);
                }
            }
        }
    }
}

/// Names the shim binary to run instead of the one beside `berth`.
pub const SHIM_ENV: &str = "BERTH_SHIM";
/// The small shim binary `berth` ships beside itself.
pub const SHIM_BIN: &str = "berth-shim";

/// The shim for the `berth` executable `exe`: `configured` (from
/// `BERTH_SHIM`) if given, else the `berth-shim` binary beside `exe` when
/// there is one, else `exe shim` — the same code, but exec'ing the whole
/// server costs milliseconds per container that the small binary does not.
pub fn shim_command(exe: &Path, configured: Option<&Path>) -> Vec<String> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    if let Some(shim) = configured.filter(|p| !p.as_os_str().is_empty()) {
        return vec![path(shim)];
    }
    let beside = exe.with_file_name(SHIM_BIN);
    let executable =
        fs::metadata(&beside).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if executable && beside != exe {
        vec![path(&beside)]
    } else {
        vec![path(exe), "shim".into()]
    }
}

/// Signal the process group of the container in `dir`, if its leader is
/// still the process the shim started.
fn signal(dir: &Path, signal: i32) {
    if let Some(proc) = state::read_json::<ProcRecord>(&dir.join(PID)) {
        if proc.is_alive() {
            // SAFETY: kill(2) has no memory effects.
            unsafe {
                // A process that made itself a group of its own (setsid)
                // is signalled alone.
                if libc::kill(-(proc.pid as i32), signal) != 0 {
                    libc::kill(proc.pid as i32, signal);
                }
            }
        }
    }
}

/// Kills what is left in the container's cgroup, if it had one (which
/// may take a moment: not on the async threads).
async fn kill_leftovers(dir: &Path) {
    let dir = dir.to_owned();
    let _ = tokio::task::spawn_blocking(move || cgroup::kill_recorded(&dir)).await;
}

/// Whether cgroups can be made under `dir`: one is made and removed.
fn probe_cgroups(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!("probe-{}", uuid::Uuid::new_v4().simple()));
    let made = fs::create_dir(dir)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
        .and_then(|()| fs::create_dir(&probe));
    match made {
        Ok(()) => {
            let _ = fs::remove_dir(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "cannot create cgroups under {}: {e}",
            dir.display()
        )),
    }
}

/// Removes a key from `starting` however `start` ends.
struct Starting<'a>(&'a Mutex<HashSet<ContainerKey>>, ContainerKey);

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut attempts = 0;
    loop {
        match fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            // `remove` of the task's last other container may have taken
            // the task directory between our two mkdirs.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
            result => return result,
        }
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn capabilities(&self) -> Vec<String> {
        vec![CAPABILITY_HEALTH_CHECK.into()]
    }

    fn isolation_note(&self) -> Option<String> {
        Some(format!(
            "no sandbox (host processes); {}; {}",
            self.isolation(),
            self.tenancy.describe()
        ))
    }

    /// Nothing to do: the process runtime runs programs from the host and
    /// does not use images.
    async fn pull(&self, _spec: &ContainerSpec) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<ContainerStatus, RuntimeError> {
        if let Tenancy::Refused(reason) = &self.tenancy {
            return Err(RuntimeError::CannotStart(reason.clone()));
        }
        // SAFETY: geteuid(2) cannot fail and has no memory effects.
        let euid = unsafe { libc::geteuid() };
        spawn::validate(spec, euid).map_err(RuntimeError::CannotStart)?;
        let confined;
        let spec = match &self.tenancy {
            Tenancy::Isolated(accounts) => {
                confined = accounts.confine(spec).map_err(RuntimeError::CannotStart)?;
                &confined
            }
            _ => spec,
        };
        let key = &spec.key;
        let dir = state::container_dir(&self.state_dir, key).ok_or_else(|| {
            RuntimeError::CannotStart(format!("{key} cannot name a container directory"))
        })?;
        if !self.starting.lock().insert(key.clone()) {
            return Err(RuntimeError::AlreadyExists);
        }
        let _starting = Starting(&self.starting, key.clone());
        if dir.join(SPEC).exists() {
            return Err(RuntimeError::AlreadyExists);
        }
        // Without spec.json it is debris of a start interrupted by a crash.
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        create_dir(&dir)?;
        // Readable by no one else, even if it existed before.
        fs::set_permissions(&self.state_dir, fs::Permissions::from_mode(0o700))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (stored, input) = StoredSpec::new(id, spec, self.confinement());
        state::write_json(&dir.join(SPEC), &stored)?;

        match spawn::run_shim(&self.shim_command, &dir, &input).await {
            Ok((pid, started_at_ms)) => Ok(ContainerStatus {
                key: key.clone(),
                id: stored.id,
                labels: spec.labels.clone(),
                state: ContainerState::Running {
                    pid: Some(pid),
                    started_at: state::from_ms(started_at_ms),
                },
                health: Health::Unknown,
                ports: spec.host_bindings(),
            }),
            Err(reason) => {
                // A failed start leaves nothing behind.
                spawn::kill_orphan(&dir);
                if let Err(e) = self.remove_container_dir(&dir) {
                    tracing::warn!(%key, "cannot remove {}: {e}", dir.display());
                }
                Err(RuntimeError::CannotStart(reason))
            }
        }
    }

    async fn status(&self, key: &ContainerKey) -> Result<Option<ContainerStatus>, RuntimeError> {
        self.read_status(key)
    }

    async fn stats(&self, key: &ContainerKey) -> Result<Option<serde_json::Value>, RuntimeError> {
        let Some(status) = self.read_status(key)? else {
            return Ok(None);
        };
        let dir = self.dir(key)?;
        let previous = self.last_cpu.lock().get(key).cloned();
        let name = format!("/{}", key.container);
        let stats =
            tokio::task::spawn_blocking(move || stats::read(&dir, &name, &status.id, previous))
                .await
                .map_err(|e| RuntimeError::Io(e.to_string()))?;
        let mut last = self.last_cpu.lock();
        match &stats {
            Some(s) => {
                last.insert(key.clone(), s["cpu_stats"].clone());
            }
            None => {
                last.remove(key);
            }
        }
        Ok(stats)
    }

    async fn list(&self) -> Result<Vec<ContainerStatus>, RuntimeError> {
        let state_dir = self.state_dir.clone();
        let starting = self.starting.clone();
        let list = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut list = Vec::new();
            let tasks = match fs::read_dir(&state_dir) {
                Ok(tasks) => tasks,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(list),
                Err(e) => return Err(e),
            };
            for task in tasks {
                let task = task?;
                if !task.file_type()?.is_dir() {
                    continue;
                }
                for container in fs::read_dir(task.path())? {
                    let dir = container?.path();
                    let key = ContainerKey::new(
                        task.file_name().to_string_lossy(),
                        dir.file_name().unwrap_or_default().to_string_lossy(),
                    );
                    if let Some(status) =
                        state::read_status(&dir, || starting.lock().contains(&key))?
                    {
                        list.push(status);
                    }
                }
            }
            list.sort_by(|a: &ContainerStatus, b| a.key.cmp(&b.key));
            Ok(list)
        });
        list.await
            .map_err(|e| RuntimeError::Io(e.to_string()))?
            .map_err(Into::into)
    }

    async fn wait(&self, key: &ContainerKey) -> Result<ContainerStatus, RuntimeError> {
        let status = self.wait_until(key, None).await?;
        Ok(status.expect("waiting without a deadline ends with an exit"))
    }

    async fn stop(&self, key: &ContainerKey, timeout: Duration) -> Result<(), RuntimeError> {
        let dir = self.dir(key)?;
        let stopped = self.stop_process(key, &dir, timeout).await;
        // A shim that died cannot end the rest of the container: its
        // cgroup, if it had one, can.
        kill_leftovers(&dir).await;
        stopped
    }

    async fn logs(
        &self,
        key: &ContainerKey,
        offset: u64,
        max_lines: usize,
    ) -> Result<LogChunk, RuntimeError> {
        let dir = self.dir(key)?;
        if !dir.join(SPEC).exists() {
            return Err(RuntimeError::NotFound);
        }
        let chunk =
            tokio::task::spawn_blocking(move || state::read_logs(&dir, offset, max_lines)).await;
        chunk
            .map_err(|e| RuntimeError::Io(e.to_string()))?
            .map_err(Into::into)
    }

    async fn remove(&self, key: &ContainerKey) -> Result<(), RuntimeError> {
        let dir = self.dir(key)?;
        let status = self.read_status(key)?.ok_or(RuntimeError::NotFound)?;
        if !status.is_exited() {
            return Err(RuntimeError::StillRunning);
        }
        kill_leftovers(&dir).await;
        Ok(self.remove_container_dir(&dir)?)
    }

    /// awsvpc tasks run on the host network here, so the address their
    /// interface shows is the host's own.
    async fn prepare_task(
        &self,
        task: &crate::TaskSpec,
    ) -> Result<crate::TaskNetwork, RuntimeError> {
        if task.network != crate::NetworkMode::Awsvpc {
            return Ok(crate::TaskNetwork::default());
        }
        let ip = host_ipv4();
        Ok(crate::TaskNetwork {
            private_ipv4: Some(ip.to_string()),
            mac_address: interface_mac(ip),
        })
    }
}

/// The host's primary IPv4 address: the source address the kernel picks
/// for a route off the host. Connecting a UDP socket sends nothing; the
/// address is non-routable, so no real peer is involved. Loopback when
/// there is no such route.
fn host_ipv4() -> std::net::Ipv4Addr {
    let probe = || -> std::io::Result<std::net::SocketAddr> {
        let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
        s.connect("10.255.255.255:1")?;
        s.local_addr()
    };
    match probe() {
        Ok(std::net::SocketAddr::V4(a)) if !a.ip().is_unspecified() => *a.ip(),
        _ => std::net::Ipv4Addr::LOCALHOST,
    }
}

/// The MAC address of the interface that has `ip`, from
/// `/sys/class/net/<interface>/address`; none for loopback or when it
/// cannot be read.
fn interface_mac(ip: std::net::Ipv4Addr) -> Option<String> {
    let name = interface_with(ip)?;
    // An alias (`eth0:1`) belongs to its device.
    let device = name.split(':').next().unwrap_or(&name);
    let mac = fs::read_to_string(Path::new("/sys/class/net").join(device).join("address")).ok()?;
    let mac = mac.trim().to_ascii_lowercase();
    let valid = mac.len() == 17
        && mac.split(':').count() == 6
        && mac
            .split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    (valid && mac != "00:00:00:00:00:00").then_some(mac)
}

/// The name of the interface that has `ip` (getifaddrs(3)).
fn interface_with(ip: std::net::Ipv4Addr) -> Option<String> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: on success getifaddrs points `list` at a list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list, valid until freeifaddrs; an
        // AF_INET address is a sockaddr_in, and the name a C string.
        unsafe {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET {
                let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                if std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)) == ip {
                    found = Some(
                        std::ffi::CStr::from_ptr(ifa.ifa_name)
                            .to_string_lossy()
                            .into_owned(),
                    );
                    break;
                }
            }
            cur = ifa.ifa_next;
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

#[cfg(test)]
mod shim_command_tests {
    use super::*;

    #[test]
    fn the_small_shim_beside_berth_wins_and_a_configured_one_wins_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("berth");
        fs::write(&exe, "").unwrap();
        let s = |p: &Path| p.to_string_lossy().into_owned();
        assert_eq!(shim_command(&exe, None), vec![s(&exe), "shim".into()]);
        // Present but not executable: not used.
        let small = dir.path().join(SHIM_BIN);
        fs::write(&small, "").unwrap();
        assert_eq!(shim_command(&exe, None), vec![s(&exe), "shim".into()]);
        fs::set_permissions(&small, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(shim_command(&exe, None), vec![s(&small)]);
        let other = Path::new("/opt/shim");
        assert_eq!(shim_command(&exe, Some(other)), vec![s(other)]);
        assert_eq!(shim_command(&exe, Some(Path::new(""))), vec![s(&small)]);
    }
}

#[cfg(test)]
mod prepare_task_tests {
    use super::*;

    fn task(network: crate::NetworkMode) -> crate::TaskSpec {
        crate::TaskSpec {
            task_id: "t".into(),
            labels: Default::default(),
            network,
            volumes: vec![],
        }
    }

    #[tokio::test]
    async fn awsvpc_tasks_get_the_hosts_address_and_others_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let rt = ProcessRuntime::new(dir.path(), vec![]);
        let net = rt
            .prepare_task(&task(crate::NetworkMode::Awsvpc))
            .await
            .unwrap();
        let ip: std::net::Ipv4Addr = net.private_ipv4.unwrap().parse().unwrap();
        assert_eq!(ip, host_ipv4());
        // Bound to the address, a socket proves the host really has it.
        std::net::UdpSocket::bind((ip, 0)).unwrap();
        if let Some(mac) = net.mac_address {
            assert_eq!(mac.len(), 17, "{mac}");
            assert_ne!(mac, "00:00:00:00:00:00");
        }
        let bridge = rt
            .prepare_task(&task(crate::NetworkMode::Bridge))
            .await
            .unwrap();
        assert_eq!(bridge, crate::TaskNetwork::default());
    }

    #[test]
    fn loopback_has_no_mac() {
        assert_eq!(interface_mac(std::net::Ipv4Addr::LOCALHOST), None);
    }
}
