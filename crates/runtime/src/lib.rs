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
//!   the program must exist on the host. There is no isolation: no
//!   namespaces, no cgroups, so `cpu`, `memory` and `memoryReservation` are
//!   recorded and not enforced. The process gets `PATH`, `HOME`,
//!   `HOSTNAME` and the container's environment — not the agent's
//!   environment, which may hold credentials. `user` switches uid/gid
//!   (only when the agent runs as root). Each container is supervised by a
//!   detached `berth shim` process that records everything in a directory,
//!   so containers keep running and are adopted when the agent restarts.
//! - `fake::FakeRuntime`, an in-memory, scriptable double for the agent's
//!   tests.
//! - A Docker runtime comes later.

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
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        }
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}
