//! The agent: what runs tasks on a host, as ECS's container agent does.
//!
//! It registers the host as a container instance, then converges on what
//! the control plane says: it long-polls for the tasks assigned to it
//! ([`ControlPlane::poll`], also its heartbeat), starts what should run,
//! stops what should stop, and reports every state change back. Containers
//! run through a [`berth_runtime::Runtime`]; because the runtime keeps them
//! alive and labelled independently of the agent, a restarted agent adopts
//! the containers of its tasks instead of starting them again.
//!
//! The same code runs embedded in `berth server` (as berth's managed
//! capacity, talking to the control plane in-process) and as `berth agent`
//! on other hosts (over HTTP with SigV4): only the [`ControlPlane`] differs.

mod control;
pub mod endpoint;
pub mod envfile;
pub mod http;
pub mod logs;
mod runner;
pub mod secret_ref;
mod spec;

pub use control::{ControlPlane, LogSetupError};

use anyhow::Context;
use berth_core::task::{DesiredStatus, TaskStatuses};
use berth_runtime::{ContainerState, ContainerStatus, Runtime, TaskSpec, LABEL_TASK_ARN};
use berth_wire::agent::{AssignedTask, PollWorkRequest};
use berth_wire::ecs::{Attribute, RegisterContainerInstanceRequest, Resource, VersionInfo};
use parking_lot::Mutex;
use runner::{RunnerEnv, TaskRunner};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the agent registers and where it keeps its own state.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub cluster: String,
    /// Holds `instance.json` (the ARN to re-register with).
    pub state_dir: PathBuf,
    /// CPU units (1024 per core) and MiB offered to tasks.
    pub cpu_units: i32,
    pub memory_mib: i32,
    /// Host ports kept from tasks (ECS's agent reserves 22, 2375, 2376, 51678, 51679).
    pub reserved_ports: Vec<u16>,
    /// Extra attributes, e.g. `ecs.availability-zone`.
    pub attributes: BTreeMap<String, Option<String>>,
    /// How long each poll may wait for news.
    pub poll_wait: Duration,
    /// How long the containers of a stopped task are kept (for `docker
    /// logs`, `docker inspect`) before they are removed, like ECS's
    /// `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`. Zero removes them at once.
    pub cleanup_wait: Duration,
    /// The host is a sandbox for tasks of every account (berth's managed
    /// capacity): no task gets a host path, device, privilege, added
    /// capability (but `SYS_PTRACE`), Docker volume, host network or host
    /// file, whatever its task definition says; such a task fails with a
    /// ResourceInitializationError. FARGATE tasks are always treated so.
    pub sandbox: bool,
    /// The host directories whose files tasks may name in
    /// `environmentFiles` (none by default: see [`envfile`]).
    pub env_file_dirs: envfile::EnvFileDirs,
    /// The control plane's URL as tasks reach it: their `AWS_ENDPOINT_URL`
    /// (none: tasks get none).
    pub task_endpoint: Option<String>,
}

/// ECS's default `ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`.
pub const DEFAULT_CLEANUP_WAIT: Duration = Duration::from_secs(3 * 3600);

impl AgentConfig {
    /// Sizes taken from this host.
    pub fn for_host(cluster: impl Into<String>, state_dir: impl Into<PathBuf>) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as i32;
        AgentConfig {
            cluster: cluster.into(),
            state_dir: state_dir.into(),
            cpu_units: cores * 1024,
            memory_mib: host_memory_mib(),
            reserved_ports: vec![22, 2375, 2376, 51678, 51679],
            attributes: BTreeMap::new(),
            poll_wait: Duration::from_secs(10),
            cleanup_wait: DEFAULT_CLEANUP_WAIT,
            sandbox: false,
            env_file_dirs: envfile::EnvFileDirs::none(),
            task_endpoint: None,
        }
    }
}

/// Writes `data` to `path`, readable and writable by its owner only.
pub(crate) fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(data)
}

/// `dir` (and its missing parents), mode 0700 even if it existed.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

fn host_memory_mib() -> i32 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib: i64 = text
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024 * 1024);
    (kib / 1024).min(i32::MAX as i64) as i32
}

/// The attributes every berth agent advertises, as ECS agents do.
fn standard_attributes(runtime: &dyn Runtime) -> BTreeMap<String, Option<String>> {
    let mut a: BTreeMap<String, Option<String>> = BTreeMap::new();
    a.insert("ecs.os-type".into(), Some("linux".into()));
    a.insert("ecs.os-family".into(), Some("LINUX".into()));
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    };
    a.insert("ecs.cpu-architecture".into(), Some(arch.into()));
    a.insert("berth.runtime".into(), Some(runtime.name().into()));
    for n in [
        "com.amazonaws.ecs.capability.docker-remote-api.1.17",
        "com.amazonaws.ecs.capability.docker-remote-api.1.18",
        "com.amazonaws.ecs.capability.docker-remote-api.1.19",
        "com.amazonaws.ecs.capability.logging-driver.awslogs",
        "com.amazonaws.ecs.capability.task-iam-role",
        "ecs.capability.execution-role-awslogs",
        "ecs.capability.container-ordering",
        "ecs.capability.task-eni",
        "ecs.capability.secrets.ssm.environment-variables",
        "ecs.capability.secrets.asm.environment-variables",
    ] {
        a.insert(n.into(), None);
    }
    for c in runtime.capabilities() {
        a.insert(c, None);
    }
    a
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedInstance {
    cluster: String,
    container_instance_arn: String,
}

pub struct Agent {
    control: Arc<dyn ControlPlane>,
    runtime: Arc<dyn Runtime>,
    config: AgentConfig,
    instance_arn: String,
    runners: Mutex<HashMap<String, TaskRunner>>,
    /// When the runtime's containers were last listed (for adoption and
    /// cleanup): not on every poll, since a host keeps a stopped task's
    /// containers for hours and listing them all is not free.
    inventory_at: Mutex<Option<std::time::Instant>>,
    env_file_dirs: Arc<envfile::EnvFileDirs>,
    endpoint: Arc<endpoint::Endpoint>,
}

/// How often, at most, the cleanup looks at every container.
const INVENTORY_EVERY: Duration = Duration::from_secs(30);

impl Agent {
    /// Registers (or re-registers, with the ARN saved in the state dir) the
    /// host as a container instance.
    pub async fn register(
        control: Arc<dyn ControlPlane>,
        runtime: Arc<dyn Runtime>,
        config: AgentConfig,
    ) -> anyhow::Result<Agent> {
        // Its containers' state is under it: readable by no one else.
        for dir in [
            config.state_dir.clone(),
            config.state_dir.join("log-offsets"),
        ] {
            create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let saved_path = config.state_dir.join("instance.json");
        let saved: Option<SavedInstance> = std::fs::read(&saved_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &SavedInstance| s.cluster == config.cluster);
        let mut attributes = standard_attributes(runtime.as_ref());
        attributes.extend(config.attributes.clone());
        let int = |name: &str, v: i32| Resource {
            name: Some(name.into()),
            r#type: Some("INTEGER".into()),
            integer_value: Some(v),
            double_value: Some(0.0),
            long_value: Some(0),
            string_set_value: None,
        };
        let ports = Resource {
            name: Some("PORTS".into()),
            r#type: Some("STRINGSET".into()),
            string_set_value: Some(
                config
                    .reserved_ports
                    .iter()
                    .map(|p| p.to_string())
                    .collect(),
            ),
            double_value: Some(0.0),
            long_value: Some(0),
            integer_value: Some(0),
        };
        let ports_udp = Resource {
            name: Some("PORTS_UDP".into()),
            string_set_value: Some(vec![]),
            ..ports.clone()
        };
        let req = RegisterContainerInstanceRequest {
            cluster: Some(config.cluster.clone()),
            total_resources: Some(vec![
                int("CPU", config.cpu_units),
                int("MEMORY", config.memory_mib),
                ports,
                ports_udp,
            ]),
            version_info: Some(VersionInfo {
                agent_version: Some(env!("CARGO_PKG_VERSION").into()),
                agent_hash: Some(format!("berth-{}", runtime.name())),
                docker_version: Some(format!("berth {} runtime", runtime.name())),
            }),
            attributes: Some(
                attributes
                    .into_iter()
                    .map(|(name, value)| Attribute {
                        name,
                        value,
                        ..Default::default()
                    })
                    .collect(),
            ),
            container_instance_arn: saved.map(|s| s.container_instance_arn),
            ..Default::default()
        };
        let instance = control.register(req).await?;
        let instance_arn = instance
            .container_instance_arn
            .context("registration returned no ARN")?;
        let saved = SavedInstance {
            cluster: config.cluster.clone(),
            container_instance_arn: instance_arn.clone(),
        };
        write_private(&saved_path, &serde_json::to_vec(&saved)?)?;
        tracing::info!(instance = %instance_arn, cluster = %config.cluster, runtime = runtime.name(), "agent registered");
        let endpoint = endpoint::Endpoint::start(
            control.clone(),
            runtime.clone(),
            instance_arn.clone(),
            config.task_endpoint.clone(),
            &config.state_dir,
        )
        .await
        .context("starting the task metadata endpoint")?;
        Ok(Agent {
            endpoint,
            env_file_dirs: Arc::new(config.env_file_dirs.clone()),
            control,
            runtime,
            config,
            instance_arn,
            runners: Mutex::new(HashMap::new()),
            inventory_at: Mutex::new(None),
        })
    }

    pub fn instance_arn(&self) -> &str {
        &self.instance_arn
    }

    /// Polls and converges until the process ends. Errors reaching the
    /// control plane are retried with backoff; they never stop the tasks.
    pub async fn run(self: Arc<Self>) {
        let mut known = 0;
        let mut backoff = Duration::from_millis(200);
        loop {
            let req = PollWorkRequest {
                cluster: self.config.cluster.clone(),
                container_instance_arn: self.instance_arn.clone(),
                known_version: known,
                wait_seconds: self.config.poll_wait.as_secs() as u32,
            };
            match self.control.poll(req).await {
                Ok(work) => {
                    backoff = Duration::from_millis(200);
                    known = work.version;
                    self.converge(work.tasks).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "polling the control plane failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One step of convergence: start runners for new tasks (adopting any
    /// containers they already have), tell runners their desired status,
    /// and forget runners whose tasks are no longer assigned.
    pub async fn converge(self: &Arc<Self>, tasks: Vec<AssignedTask>) {
        // The first converge adopts what an earlier agent left; later ones
        // only start new tasks, which have no containers yet. The listing
        // is repeated now and then for the cleanup.
        let due = match *self.inventory_at.lock() {
            None => true,
            Some(at) => at.elapsed() >= INVENTORY_EVERY.min(self.config.cleanup_wait),
        };
        let existing = if due {
            match self.runtime.list().await {
                Ok(list) => {
                    *self.inventory_at.lock() = Some(std::time::Instant::now());
                    Some(list)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing the runtime's containers failed");
                    None
                }
            }
        } else {
            None
        };
        let mut runners = self.runners.lock();
        let assigned: Vec<String> = tasks
            .iter()
            .filter_map(|t| t.task.task_arn.clone())
            .collect();
        for t in tasks {
            let Some(arn) = t.task.task_arn.clone() else {
                continue;
            };
            let desired_stop = t.task.desired() == DesiredStatus::Stopped;
            match runners.get(&arn) {
                Some(r) => {
                    if desired_stop {
                        r.request_stop();
                    }
                }
                None => {
                    let adopted: Vec<_> = existing
                        .iter()
                        .flatten()
                        .filter(|c| c.labels.get(LABEL_TASK_ARN) == Some(&arn))
                        .cloned()
                        .collect();
                    let env = RunnerEnv {
                        control: self.control.clone(),
                        runtime: self.runtime.clone(),
                        cluster: self.config.cluster.clone(),
                        state_dir: self.config.state_dir.clone(),
                        cleanup_wait: self.config.cleanup_wait,
                        sandbox: self.config.sandbox,
                        env_file_dirs: self.env_file_dirs.clone(),
                        endpoint: self.endpoint.clone(),
                    };
                    let runner = TaskRunner::spawn(env, t, adopted);
                    if desired_stop {
                        runner.request_stop();
                    }
                    runners.insert(arn, runner);
                }
            }
        }
        // A task no longer assigned was stopped without this agent (say,
        // while it was cut off): stop whatever of it still runs here.
        for (arn, r) in runners.iter() {
            if !assigned.contains(arn) {
                r.request_stop();
            }
        }
        runners.retain(|arn, r| assigned.contains(arn) || !r.is_finished());
        if let Some(existing) = existing {
            self.clean_up(&runners, existing);
        }
    }

    /// Removes what no runner owns: containers of tasks stopped more than
    /// `cleanup_wait` ago, and orphans (containers of tasks this host no
    /// longer has, left by a crash or a task stopped while the agent was
    /// away), which are stopped first if they still run.
    fn clean_up(&self, runners: &HashMap<String, TaskRunner>, existing: Vec<ContainerStatus>) {
        let now = SystemTime::now();
        let mut by_task: BTreeMap<String, Vec<ContainerStatus>> = BTreeMap::new();
        for c in existing {
            let Some(arn) = c.labels.get(LABEL_TASK_ARN) else {
                continue;
            };
            if !runners.contains_key(arn) {
                by_task.entry(arn.clone()).or_default().push(c);
            }
        }
        for (_, containers) in by_task {
            // A task's containers go together, once the last one is due.
            let due = containers.iter().all(|c| match c.state {
                ContainerState::Exited { finished_at, .. } => {
                    finished_at + self.config.cleanup_wait <= now
                }
                _ => true,
            });
            if !due {
                continue;
            }
            let runtime = self.runtime.clone();
            tokio::spawn(async move {
                for c in &containers {
                    if !c.is_exited() {
                        tracing::info!(container = %c.key, "stopping an orphaned container");
                        if let Err(e) = runtime.stop(&c.key, Duration::from_secs(30)).await {
                            tracing::warn!(container = %c.key, error = %e, "stopping an orphan failed");
                        }
                    }
                    if let Err(e) = runtime.remove(&c.key).await {
                        tracing::debug!(container = %c.key, error = %e, "removing a container failed");
                    }
                }
                // Task-scoped volumes can go only once no container uses them.
                let task = TaskSpec {
                    task_id: containers[0].key.task_id.clone(),
                    labels: containers[0].labels.clone(),
                    network: Default::default(),
                    volumes: Vec::new(),
                };
                if let Err(e) = runtime.release_task(&task).await {
                    tracing::debug!(task = %task.task_id, error = %e, "releasing a task failed");
                }
            });
        }
    }
}
