//! berth's container runtimes.
//!
//! The agent on each host runs a task's containers through a [`Runtime`]:
//! pull, start, watch (status, wait, health), stop, read logs, remove. Every
//! container is identified on its host by a [`ContainerKey`] (task id and
//! container name) and carries ownership labels ([`LABEL_CLUSTER`],
//! [`LABEL_TASK_ARN`], [`LABEL_CONTAINER`]) so an agent that restarts can
//! adopt what it started before through [`Runtime::list`].
//!
//! Implementations:
//!
//! - [`process::ProcessRuntime`] runs a container's `entryPoint` + `command`
//!   as a plain host process, like Nomad's `raw_exec`. **It does not use
//!   images**: `image` is recorded but nothing is pulled or unpacked, and
//!   the program must exist on the host. It is not a sandbox: no
//!   namespaces, so the process sees the host's files, processes and
//!   network as its user may; `cpu`, `memory` and `memoryReservation` are
//!   recorded and not enforced. What it does confine: each container runs
//!   in a cgroup (v2) of its own where the host has a writable hierarchy,
//!   and its shim is a child subreaper, so stopping a container kills
//!   every process it started, even those that left its session; `user`
//!   switches uid/gid (only when the agent runs as root), and
//!   [`process::Tenancy`] runs each account's tasks as a uid of its own
//!   on a host shared by several accounts. The process gets `PATH`, `HOME`, `HOSTNAME` and the
//!   container's environment — not the agent's environment, which may hold
//!   credentials — and that environment is never written to disk (it may
//!   hold secrets). Each container is supervised by a detached `berth shim`
//!   process that records everything in a directory, so containers keep
//!   running and are adopted when the agent restarts.
//! - `fake::FakeRuntime`, an in-memory, scriptable double for the agent's
//!   tests.
//! - A Docker runtime comes later.

pub mod docker;
pub mod fake;
pub mod process;
pub mod shim;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

/// The cluster a container belongs to (ownership label).
pub const LABEL_CLUSTER: &str = "berth.cluster";
/// The ARN of the task a container belongs to (ownership label).
pub const LABEL_TASK_ARN: &str = "berth.task-arn";
/// The container's name in its task definition (ownership label).
pub const LABEL_CONTAINER: &str = "berth.container";

/// The ECS attribute for container health checks.
pub const CAPABILITY_HEALTH_CHECK: &str = "ecs.capability.container-health-check";

/// Identifies a container on a host: unique among the containers a runtime
/// manages there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContainerKey {
    pub task_id: String,
    pub container: String,
}

impl ContainerKey {
    pub fn new(task_id: impl Into<String>, container: impl Into<String>) -> Self {
        ContainerKey {
            task_id: task_id.into(),
            container: container.into(),
        }
    }
}

impl fmt::Display for ContainerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.task_id, self.container)
    }
}

/// What to run: the parts of an ECS container definition a runtime needs.
/// (`serde(default)` so specs a runtime saved before a field existed still
/// load.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    pub key: ContainerKey,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub entry_point: Vec<String>,
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub working_directory: Option<String>,
    /// `uid`, `uid:gid`, `name` or `name:group`.
    pub user: Option<String>,
    pub stop_timeout: Duration,
    pub health_check: Option<HealthCheckSpec>,
    pub cpu_units: Option<u32>,
    pub memory_mib: Option<u32>,
    pub memory_reservation_mib: Option<u32>,
    /// The network the container joins (the task's `networkMode`).
    pub network: NetworkMode,
    /// `portMappings`; a `host_port` of `None` (or 0) asks for a dynamic
    /// port in `bridge` mode.
    pub ports: Vec<PortSpec>,
    /// `mountPoints`, resolved against the task's volumes.
    pub mounts: Vec<MountSpec>,
    /// `volumesFrom`: (container name in the same task, read-only).
    pub volumes_from: Vec<(String, bool)>,
    pub ulimits: Vec<UlimitSpec>,
    pub linux: LinuxSpec,
    pub readonly_root_filesystem: bool,
    pub privileged: bool,
    pub interactive: bool,
    pub pseudo_terminal: bool,
    /// `dockerLabels`: put on the container beside the ownership labels.
    pub docker_labels: BTreeMap<String, String>,
    /// `extraHosts`: (hostname, IP).
    pub extra_hosts: Vec<(String, String)>,
    pub dns_servers: Vec<String>,
    pub dns_search_domains: Vec<String>,
    pub hostname: Option<String>,
    /// A log driver other than `awslogs` (which the agent ships itself),
    /// handed to the runtime as is.
    pub log_driver: Option<LogDriverSpec>,
    /// Credentials for the image's registry (`repositoryCredentials`,
    /// already resolved by the agent).
    pub registry_auth: Option<RegistryAuth>,
}

/// A task's `networkMode` as the runtime applies it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// Docker's default bridge (ECS's `bridge`, and the default on Linux).
    #[default]
    Bridge,
    Host,
    None,
    /// The task's own network namespace, shared by its containers
    /// (set up by [`Runtime::prepare_task`]).
    Awsvpc,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub container_port: u16,
    pub host_port: Option<u16>,
    pub protocol: Protocol,
}

/// A published port as the runtime really bound it (ECS `networkBindings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub bind_ip: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: Protocol,
}

/// Where a mount's data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSource {
    /// A host directory (`host.sourcePath`).
    HostPath(String),
    /// A named runtime volume (`dockerVolumeConfiguration`, or a task
    /// volume with neither `host` nor a docker configuration, which the
    /// runtime creates per task); see [`VolumeSpec`].
    Volume(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub source: MountSource,
    pub container_path: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UlimitSpec {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `linuxParameters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxSpec {
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub init_process_enabled: bool,
    pub shared_memory_size_mib: Option<u32>,
    pub tmpfs: Vec<TmpfsSpec>,
    pub devices: Vec<DeviceSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsSpec {
    pub container_path: String,
    pub size_mib: u32,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    pub host_path: String,
    pub container_path: Option<String>,
    /// `read`, `write`, `mknod`.
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogDriverSpec {
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegistryAuth({}, ***)", self.username)
    }
}

/// What a task needs from the runtime before its containers start: its
/// network namespace (`awsvpc`) and its volumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task_id: String,
    /// Ownership labels, as on the task's containers.
    pub labels: BTreeMap<String, String>,
    pub network: NetworkMode,
    pub volumes: Vec<VolumeSpec>,
}

/// A task volume the runtime provides (host paths need nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// The volume's name in the task definition.
    pub name: String,
    /// `true` for a `shared` Docker volume, which outlives the task and is
    /// named as given; `false` for a task-scoped one, named per task and
    /// removed with it.
    pub shared: bool,
    /// Create a shared volume that does not exist (`autoprovision`);
    /// without it a missing shared volume fails the task.
    pub autoprovision: bool,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// The task's network as the runtime set it up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNetwork {
    /// For `awsvpc`: the address the task's namespace really has.
    pub private_ipv4: Option<String>,
    pub mac_address: Option<String>,
}

/// The default time between SIGTERM and SIGKILL (ECS's default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl ContainerSpec {
    /// A spec with nothing to run yet and ECS's defaults.
    pub fn new(key: ContainerKey, image: impl Into<String>) -> Self {
        ContainerSpec {
            key,
            labels: BTreeMap::new(),
            image: image.into(),
            entry_point: Vec::new(),
            command: Vec::new(),
            environment: Vec::new(),
            working_directory: None,
            user: None,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            health_check: None,
            cpu_units: None,
            memory_mib: None,
            memory_reservation_mib: None,
            network: NetworkMode::default(),
            ports: Vec::new(),
            mounts: Vec::new(),
            volumes_from: Vec::new(),
            ulimits: Vec::new(),
            linux: LinuxSpec::default(),
            readonly_root_filesystem: false,
            privileged: false,
            interactive: false,
            pseudo_terminal: false,
            docker_labels: BTreeMap::new(),
            extra_hosts: Vec::new(),
            dns_servers: Vec::new(),
            dns_search_domains: Vec::new(),
            hostname: None,
            log_driver: None,
            registry_auth: None,
        }
    }

    /// The ports as a runtime without network isolation binds them: each
    /// on the host, at its host port or else its container port.
    pub fn host_bindings(&self) -> Vec<PortBinding> {
        self.ports
            .iter()
            .map(|p| PortBinding {
                bind_ip: "0.0.0.0".into(),
                container_port: p.container_port,
                host_port: p.host_port.filter(|h| *h != 0).unwrap_or(p.container_port),
                protocol: p.protocol,
            })
            .collect()
    }

    /// `entryPoint` followed by `command`: the argv to run.
    pub fn argv(&self) -> Vec<String> {
        self.entry_point
            .iter()
            .chain(&self.command)
            .cloned()
            .collect()
    }
}

/// An ECS container health check (values already defaulted by the caller).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckSpec {
    /// `["CMD", program, args…]` or `["CMD-SHELL", script]`; `["NONE"]`
    /// disables the check.
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures (after the start period) that make the
    /// container unhealthy.
    pub retries: u32,
    /// Failures during this time after start are not counted.
    pub start_period: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Being set up; no process yet.
    Created,
    Running {
        pid: Option<u32>,
        started_at: SystemTime,
    },
    Exited {
        /// The exit status; for a process killed by a signal, 128 + the
        /// signal as Docker reports it (137 for SIGKILL). `None` when the
        /// runtime does not know (see `reason`).
        exit_code: Option<i32>,
        /// The signal that killed the process, if one did.
        signal: Option<i32>,
        started_at: Option<SystemTime>,
        finished_at: SystemTime,
        /// Why the runtime cannot report a normal exit, if it cannot.
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// No check result yet, or no health check.
    Unknown,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub key: ContainerKey,
    /// The runtime's own id for this container.
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub health: Health,
    /// Published ports as bound (empty when none, or not yet running).
    #[serde(default)]
    pub ports: Vec<PortBinding>,
}

impl ContainerStatus {
    pub fn is_running(&self) -> bool {
        matches!(self.state, ContainerState::Running { .. })
    }

    pub fn is_exited(&self) -> bool {
        matches!(self.state, ContainerState::Exited { .. })
    }

    /// The exit code, once the container has exited with a known one.
    pub fn exit_code(&self) -> Option<i32> {
        match self.state {
            ContainerState::Exited { exit_code, .. } => exit_code,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line of output, without its newline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub timestamp_ms: i64,
    pub stream: LogStream,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogChunk {
    pub lines: Vec<LogLine>,
    /// Pass this as `offset` to read what follows.
    pub next_offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The container could not be started (ECS `CannotStartContainerError`).
    #[error("cannot start container: {0}")]
    CannotStart(String),
    /// The image could not be prepared (ECS `CannotPullContainerError`).
    #[error("cannot pull image: {0}")]
    CannotPull(String),
    #[error("no such container")]
    NotFound,
    /// `start` of a key the runtime already has (remove it first).
    #[error("a container with this key already exists")]
    AlreadyExists,
    /// `remove` of a container that has not exited (stop it first).
    #[error("the container is still running")]
    StillRunning,
    #[error("runtime i/o error: {0}")]
    Io(String),
}

impl From<std::io::Error> for RuntimeError {
    fn from(e: std::io::Error) -> Self {
        RuntimeError::Io(e.to_string())
    }
}

/// A container runtime on one host. All methods are safe to call
/// concurrently for different keys.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// `"process"`, `"docker"`, …
    fn name(&self) -> &'static str;
    /// Attributes the agent advertises for this runtime
    /// (e.g. [`CAPABILITY_HEALTH_CHECK`]).
    fn capabilities(&self) -> Vec<String>;

    /// What isolation containers get from this runtime on this host, in a
    /// sentence for the operator, where it is worth saying.
    fn isolation_note(&self) -> Option<String> {
        None
    }
    /// Prepare the image.
    async fn pull(&self, spec: &ContainerSpec) -> Result<(), RuntimeError>;
    /// Create and start; returns once the process is running (or failed to
    /// start).
    async fn start(&self, spec: &ContainerSpec) -> Result<ContainerStatus, RuntimeError>;
    async fn status(&self, key: &ContainerKey) -> Result<Option<ContainerStatus>, RuntimeError>;
    /// All containers this runtime manages on the host (running and exited,
    /// not yet removed): what an agent adopts after a restart.
    async fn list(&self) -> Result<Vec<ContainerStatus>, RuntimeError>;
    /// Resolves when the container has exited (at once if it already has).
    async fn wait(&self, key: &ContainerKey) -> Result<ContainerStatus, RuntimeError>;
    /// SIGTERM, then SIGKILL after `timeout`; returns when the process is
    /// gone.
    async fn stop(&self, key: &ContainerKey, timeout: Duration) -> Result<(), RuntimeError>;
    /// Output captured since `offset` (0 = from the start), at most
    /// `max_lines` lines. Offsets are the runtime's own (bytes of the
    /// process runtime's output file, line indexes of the fake): pass back
    /// `next_offset` to read on.
    async fn logs(
        &self,
        key: &ContainerKey,
        offset: u64,
        max_lines: usize,
    ) -> Result<LogChunk, RuntimeError>;
    /// Forget an exited container and delete what it left.
    async fn remove(&self, key: &ContainerKey) -> Result<(), RuntimeError>;
    /// Sets up what the task's containers share (an `awsvpc` network
    /// namespace, task-scoped volumes). Idempotent: an agent that restarts
    /// calls it again for the tasks it adopts.
    async fn prepare_task(&self, _task: &TaskSpec) -> Result<TaskNetwork, RuntimeError> {
        Ok(TaskNetwork::default())
    }
    /// Releases what [`Runtime::prepare_task`] set up, once the task's
    /// containers are gone or stopped. Idempotent.
    async fn release_task(&self, _task: &TaskSpec) -> Result<(), RuntimeError> {
        Ok(())
    }
    /// Resource usage of a running container in the shape of Docker's
    /// stats (what ECS's task metadata endpoint serves at `/stats`);
    /// `None` when it does not run.
    async fn stats(&self, _key: &ContainerKey) -> Result<Option<serde_json::Value>, RuntimeError> {
        Ok(None)
    }
    /// Whether containers of a task in `mode` get a network namespace of
    /// their own, where the host's loopback is not theirs.
    fn own_network(&self, _mode: NetworkMode) -> bool {
        false
    }
    /// A TCP listener on `port` of the loopback of the network namespace
    /// the container `key` (started) or, with `None`, the task's own
    /// (`awsvpc`, once prepared) runs in, where that is not the agent's:
    /// how the agent serves a task its metadata and credentials at an
    /// address only that task reaches. `None` when the container shares
    /// the agent's network (the process runtime, `host` mode).
    async fn listen_in_network(
        &self,
        _task: &TaskSpec,
        _key: Option<&ContainerKey>,
        _port: u16,
    ) -> Result<Option<std::net::TcpListener>, RuntimeError> {
        Ok(None)
    }
}
