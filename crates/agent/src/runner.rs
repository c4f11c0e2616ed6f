//! One task on this host: pull, start its containers in `dependsOn` order,
//! watch them, stop them when an essential one exits or the control plane
//! asks, and report each step. A runner given containers that already exist
//! (after an agent restart) adopts them instead of starting them again.

use crate::endpoint::metadata::{ContainerNow, TaskFacts, TaskNow};
use crate::endpoint::{Endpoint, TASK_NETWORK_PORT};
use crate::envfile::EnvFileDirs;
use crate::logs::{self, Destination, Shipper};
use crate::spec;
use crate::{ControlPlane, LogSetupError};
use berth_core::task::{self, TaskStatus, TaskStatuses};
use berth_runtime::{
    ContainerSpec, ContainerState, ContainerStatus, Health, PortBinding, RegistryAuth, Runtime,
    RuntimeError, TaskSpec,
};
use berth_wire::agent::AssignedTask;
use berth_wire::ecs::{
    ContainerCondition, ContainerStateChange, HealthStatus, LaunchType, NetworkBinding,
    NetworkMode, SubmitTaskStateChangeRequest, TransportProtocol,
};
use berth_wire::Timestamp;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How often container states (health above all) are read while the task
/// runs. Exits need no polling: each running container has a waiter
/// ([`Runtime::wait`]) that wakes the runner.
const REFRESH: Duration = Duration::from_secs(1);

/// What every runner of an agent shares.
#[derive(Clone)]
pub struct RunnerEnv {
    pub control: Arc<dyn ControlPlane>,
    pub runtime: Arc<dyn Runtime>,
    pub cluster: String,
    pub state_dir: PathBuf,
    /// Removing exited containers is left to the agent's cleanup after
    /// this delay (zero: the runner removes them when the task stops).
    pub cleanup_wait: Duration,
    /// Run tasks as sandboxes (berth's managed capacity): see
    /// [`spec::sandbox_refusal`].
    pub sandbox: bool,
    /// Where `environmentFiles` may be read from.
    pub env_file_dirs: Arc<EnvFileDirs>,
    /// Serves tasks their metadata and credentials.
    pub endpoint: Arc<Endpoint>,
}

pub struct TaskRunner {
    stop: Arc<(AtomicBool, Notify)>,
    handle: JoinHandle<()>,
}

impl TaskRunner {
    pub fn spawn(
        env: RunnerEnv,
        assigned: AssignedTask,
        adopted: Vec<ContainerStatus>,
    ) -> TaskRunner {
        let stop = Arc::new((AtomicBool::new(false), Notify::new()));
        let run = Run::new(env, assigned, adopted, stop.clone());
        let handle = tokio::spawn(run.go());
        TaskRunner { stop, handle }
    }

    /// Asks the task to stop (the control plane set desiredStatus STOPPED).
    pub fn request_stop(&self) {
        self.stop.0.store(true, Ordering::SeqCst);
        self.stop.1.notify_one();
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum SlotState {
    Waiting,
    Running {
        runtime_id: String,
    },
    Exited {
        exit_code: Option<i32>,
        reason: Option<String>,
        runtime_id: Option<String>,
    },
    /// Never started: a dependency can no longer be met, or the task ended first.
    Skipped {
        reason: String,
    },
}

struct Slot {
    name: String,
    essential: bool,
    depends_on: Vec<(String, ContainerCondition)>,
    spec: ContainerSpec,
    state: SlotState,
    health: Health,
    /// The container status last reported.
    reported: task::ContainerStatus,
    /// Where its output goes, for the `awslogs` driver.
    logs: Option<Destination>,
    /// The health last reported to the control plane.
    health_reported: Health,
    /// Published ports as the runtime bound them.
    ports: Vec<PortBinding>,
    /// `secrets` as `(name, valueFrom)`: fetched just before the start.
    secrets: Vec<(String, String)>,
    /// `environmentFiles`: paths of local files, read just before the start.
    environment_files: Vec<String>,
    /// `repositoryCredentials.credentialsParameter`: fetched before the
    /// pull into `spec.registry_auth`.
    credentials_parameter: Option<String>,
}

impl Slot {
    fn wire_status(&self) -> task::ContainerStatus {
        match self.state {
            SlotState::Waiting => task::ContainerStatus::Pending,
            SlotState::Running { .. } => task::ContainerStatus::Running,
            SlotState::Exited { .. } | SlotState::Skipped { .. } => task::ContainerStatus::Stopped,
        }
    }

    fn change(&self) -> ContainerStateChange {
        let (exit_code, reason, runtime_id) = match &self.state {
            SlotState::Running { runtime_id } => (None, None, Some(runtime_id.clone())),
            SlotState::Exited {
                exit_code,
                reason,
                runtime_id,
            } => (*exit_code, reason.clone(), runtime_id.clone()),
            SlotState::Skipped { reason } => (None, Some(reason.clone()), None),
            SlotState::Waiting => (None, None, None),
        };
        let bindings = match self.state {
            SlotState::Running { .. } => self.ports.iter().map(network_binding).collect(),
            _ => Vec::new(),
        };
        ContainerStateChange {
            container_name: Some(self.name.clone()),
            runtime_id,
            exit_code,
            reason,
            status: Some(self.wire_status().as_str().into()),
            network_bindings: (!bindings.is_empty()).then_some(bindings),
            ..Default::default()
        }
    }
}

fn network_binding(p: &PortBinding) -> NetworkBinding {
    NetworkBinding {
        bind_ip: Some(p.bind_ip.clone()),
        container_port: Some(p.container_port as i32),
        host_port: Some(p.host_port as i32),
        protocol: Some(match p.protocol {
            berth_runtime::Protocol::Udp => TransportProtocol::Udp,
            berth_runtime::Protocol::Tcp => TransportProtocol::Tcp,
        }),
        ..Default::default()
    }
}

enum Dependency {
    Met,
    Pending,
    Impossible(String),
}

struct Run {
    control: Arc<dyn ControlPlane>,
    runtime: Arc<dyn Runtime>,
    cluster_arn: String,
    task_arn: String,
    awsvpc: bool,
    task_spec: TaskSpec,
    /// Removing exited containers is left to the agent's cleanup after
    /// this delay (zero: the runner removes them when the task stops).
    cleanup_wait: Duration,
    /// The task status last reported (or assigned with).
    last_status: TaskStatus,
    slots: Vec<Slot>,
    stop: Arc<(AtomicBool, Notify)>,
    pull_started_at: Option<Timestamp>,
    pull_stopped_at: Option<Timestamp>,
    state_dir: PathBuf,
    shippers: Vec<Shipper>,
    /// Woken when a watched container exits.
    exits: Arc<Notify>,
    /// Waiters on running containers, by container name.
    waiters: Vec<(String, JoinHandle<()>)>,
    /// Why the task may not run here at all (a sandbox's refusal).
    refused: Option<String>,
    env_file_dirs: Arc<EnvFileDirs>,
    endpoint: Arc<Endpoint>,
    /// The runtime gives the task's containers a network of their own:
    /// the endpoint listens inside it.
    own_network: bool,
    /// The awsvpc task's address, for its metadata.
    ipv4: Option<String>,
}

impl Run {
    fn new(
        env: RunnerEnv,
        a: AssignedTask,
        adopted: Vec<ContainerStatus>,
        stop: Arc<(AtomicBool, Notify)>,
    ) -> Run {
        let RunnerEnv {
            control,
            runtime,
            cluster,
            state_dir,
            cleanup_wait,
            sandbox,
            env_file_dirs,
            endpoint,
        } = env;
        let task = &a.task;
        let td = &a.task_definition;
        let slots: Vec<Slot> = spec::containers(task, td)
            .into_iter()
            .map(|c| {
                let name = c.name.clone().unwrap_or_default();
                let spec = spec::container_spec(task, &cluster, td, &c);
                let existing = adopted.iter().find(|s| s.key == spec.key);
                let state = match existing.map(|s| &s.state) {
                    Some(ContainerState::Running { .. }) => SlotState::Running {
                        runtime_id: existing.unwrap().id.clone(),
                    },
                    Some(ContainerState::Exited {
                        exit_code, reason, ..
                    }) => SlotState::Exited {
                        exit_code: *exit_code,
                        reason: reason.clone(),
                        runtime_id: existing.map(|s| s.id.clone()),
                    },
                    _ => SlotState::Waiting,
                };
                let task_id =
                    spec::task_id(task.task_arn.as_deref().unwrap_or_default()).to_string();
                Slot {
                    ports: existing.map(|s| s.ports.clone()).unwrap_or_default(),
                    secrets: c
                        .secrets
                        .iter()
                        .flatten()
                        .map(|s| (s.name.clone(), s.value_from.clone()))
                        .collect(),
                    environment_files: c
                        .environment_files
                        .iter()
                        .flatten()
                        .map(|f| f.value.clone())
                        .collect(),
                    credentials_parameter: c
                        .repository_credentials
                        .as_ref()
                        .map(|r| r.credentials_parameter.clone()),
                    health_reported: Health::Unknown,
                    logs: logs::destination(&c, &task_id),
                    name,
                    essential: c.essential.unwrap_or(true),
                    depends_on: c
                        .depends_on
                        .iter()
                        .flatten()
                        .map(|d| (d.container_name.clone(), d.condition.clone()))
                        .collect(),
                    spec,
                    // (Not a stopped container's: see `refresh`.)
                    health: existing
                        .filter(|s| s.is_running())
                        .map_or(Health::Unknown, |s| s.health),
                    reported: if existing.is_some() {
                        task::ContainerStatus::Running
                    } else {
                        task::ContainerStatus::Pending
                    },
                    state,
                }
            })
            .collect();
        let task_spec = spec::task_spec(task, &cluster, td);
        // FARGATE tasks are sandboxes wherever they land.
        let refused = (sandbox || task.launch_type == Some(LaunchType::Fargate))
            .then(|| {
                spec::sandbox_refusal(
                    task,
                    &task_spec,
                    slots
                        .iter()
                        .map(|s| (&s.spec, s.environment_files.as_slice())),
                )
            })
            .flatten();
        if let Some(reason) = &refused {
            tracing::warn!(task = %task.task_arn.as_deref().unwrap_or_default(), %reason, "refusing a task");
        }
        let specs: Vec<ContainerSpec> = slots.iter().map(|s| s.spec.clone()).collect();
        let has_role = task
            .overrides
            .as_ref()
            .and_then(|o| o.task_role_arn.as_deref())
            .or(td.task_role_arn.as_deref())
            .is_some_and(|r| !r.is_empty());
        let own_network = runtime.own_network(task_spec.network);
        endpoint.register(TaskFacts::new(&a, &specs), has_role, own_network);
        Run {
            control,
            runtime,
            task_spec,
            cleanup_wait,
            cluster_arn: task.cluster_arn.clone().unwrap_or(cluster),
            task_arn: task.task_arn.clone().unwrap_or_default(),
            awsvpc: a.task_definition.network_mode == Some(NetworkMode::Awsvpc),
            last_status: task.status(),
            slots,
            stop,
            pull_started_at: task.pull_started_at,
            pull_stopped_at: task.pull_stopped_at,
            state_dir,
            shippers: Vec::new(),
            exits: Arc::new(Notify::new()),
            waiters: Vec::new(),
            refused,
            env_file_dirs,
            endpoint,
            own_network,
            ipv4: None,
        }
    }

    /// Opens the endpoint inside the network of the task (`None`: its
    /// awsvpc namespace) or of one container, and a way from there to a
    /// control plane on the host's loopback.
    async fn listen_in(&self, key: Option<&berth_runtime::ContainerKey>) {
        if !self.own_network {
            return;
        }
        let rt = &self.runtime;
        match rt
            .listen_in_network(&self.task_spec, key, TASK_NETWORK_PORT)
            .await
        {
            Ok(Some(l)) => self.endpoint.serve_task(&self.task_arn, l),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(task = %self.task_arn, error = %e, "no metadata endpoint for the task")
            }
        }
        if let Some((port, target)) = self.endpoint.loopback_control_plane() {
            match rt.listen_in_network(&self.task_spec, key, port).await {
                Ok(Some(l)) => self.endpoint.proxy_task(&self.task_arn, l, target),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(task = %self.task_arn, error = %e, "no way to the control plane for the task")
                }
            }
        }
    }

    /// Tells the endpoint what the task is now.
    fn publish(&self) {
        let desired = if self.stop_requested() {
            "STOPPED"
        } else {
            "RUNNING"
        };
        let now = TaskNow {
            known_status: self.last_status.as_str().to_string(),
            desired_status: desired.to_string(),
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            ipv4: self.ipv4.clone(),
            containers: self
                .slots
                .iter()
                .map(|s| {
                    let (docker_id, exit_code) = match &s.state {
                        SlotState::Running { runtime_id } => (Some(runtime_id.clone()), None),
                        SlotState::Exited {
                            exit_code,
                            runtime_id,
                            ..
                        } => (runtime_id.clone(), *exit_code),
                        _ => (None, None),
                    };
                    let c = ContainerNow {
                        docker_id,
                        known_status: s.wire_status().as_str().to_string(),
                        exit_code,
                        ports: s.ports.clone(),
                    };
                    (s.name.clone(), c)
                })
                .collect(),
        };
        self.endpoint.update(&self.task_arn, now);
    }

    /// Starts shipping a container's output, if it uses `awslogs`.
    fn ship_logs(&mut self, i: usize) {
        let Some(dest) = self.slots[i].logs.clone() else {
            return;
        };
        let key = self.slots[i].spec.key.clone();
        let dir = self.state_dir.join("log-offsets");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{}.{}", key.task_id, key.container));
        self.shippers.push(Shipper::spawn(
            self.control.clone(),
            self.runtime.clone(),
            key,
            self.task_arn.clone(),
            dest,
            file,
        ));
    }

    fn stop_requested(&self) -> bool {
        self.stop.0.load(Ordering::SeqCst)
    }

    async fn go(mut self) {
        let reason = self.run_until_done().await;
        self.finish(reason).await;
    }

    /// Runs the task until it must stop; returns the task-level stop reason
    /// the agent knows (none for an essential exit or a requested stop,
    /// which the control plane names itself).
    async fn run_until_done(&mut self) -> Option<String> {
        if self.stop_requested() && self.slots.iter().all(|s| s.state == SlotState::Waiting) {
            return None;
        }
        // Before any pull or start; an adopted container of such a task
        // (started before the check existed) is stopped by `finish`.
        if let Some(reason) = self.refused.take() {
            self.skip_waiting(&reason);
            return Some(reason);
        }
        for i in 0..self.slots.len() {
            if self.slots[i].state != SlotState::Waiting {
                self.ship_logs(i); // adopted: continue where the last agent stopped
            }
        }
        if !self.awsvpc {
            for key in self
                .slots
                .iter()
                .filter(|s| matches!(s.state, SlotState::Running { .. }))
                .map(|s| s.spec.key.clone())
                .collect::<Vec<_>>()
            {
                self.listen_in(Some(&key)).await;
            }
        }
        if self.awsvpc {
            self.report(TaskStatus::Pending, None, false).await;
        }
        if self.pull_started_at.is_none() {
            self.pull_started_at = Some(Timestamp::now());
            for i in 0..self.slots.len() {
                if self.slots[i].state != SlotState::Waiting {
                    continue;
                }
                match self.registry_auth(i).await {
                    Ok(auth) => self.slots[i].spec.registry_auth = auth,
                    Err(reason) => {
                        self.skip_waiting(&reason);
                        return Some(reason);
                    }
                }
                if let Err(e) = self.runtime.pull(&self.slots[i].spec).await {
                    let reason = format!("CannotPullContainerError: {e}");
                    self.skip_waiting(&reason);
                    return Some(reason);
                }
            }
            self.pull_stopped_at = Some(Timestamp::now());
        }
        if let Err(reason) = self.prepare_task().await {
            self.skip_waiting(&reason);
            return Some(reason);
        }
        if self.awsvpc && self.last_status != TaskStatus::Activating {
            self.report(TaskStatus::Activating, None, false).await;
        }
        loop {
            if self.stop_requested() {
                return None;
            }
            self.refresh().await;
            self.report_health().await;
            let waiting = self.waiting();
            if let Some(reason) = self.start_ready().await {
                return Some(reason);
            }
            self.watch_exits();
            // A start or skip may unblock others (dependsOn START): no wait.
            let progressed = self.waiting() != waiting;
            if self.slots.iter().any(|s| {
                s.essential
                    && matches!(
                        s.state,
                        SlotState::Exited { .. } | SlotState::Skipped { .. }
                    )
            }) {
                return None;
            }
            let all_essential_up = self
                .slots
                .iter()
                .filter(|s| s.essential)
                .all(|s| s.state != SlotState::Waiting);
            if all_essential_up && self.last_status != TaskStatus::Running {
                self.report(TaskStatus::Running, None, false).await;
            } else if self.slots.iter().any(|s| s.reported != s.wire_status()) {
                self.report(self.last_status, None, false).await;
            }
            if self
                .slots
                .iter()
                .all(|s| !matches!(s.state, SlotState::Waiting | SlotState::Running { .. }))
            {
                return None;
            }
            if progressed {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(REFRESH) => {}
                _ = self.exits.notified() => {}
                _ = self.stop.1.notified() => {}
            }
        }
    }

    fn waiting(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state == SlotState::Waiting)
            .count()
    }

    /// Starts a waiter for each running container that has none.
    fn watch_exits(&mut self) {
        for s in &self.slots {
            if !matches!(s.state, SlotState::Running { .. })
                || self.waiters.iter().any(|(n, _)| *n == s.name)
            {
                continue;
            }
            let (runtime, key, exits) =
                (self.runtime.clone(), s.spec.key.clone(), self.exits.clone());
            let handle = tokio::spawn(async move {
                if let Err(e) = runtime.wait(&key).await {
                    tracing::debug!(container = %key, error = %e, "waiting for an exit failed");
                }
                exits.notify_one();
            });
            self.waiters.push((s.name.clone(), handle));
        }
    }

    /// Sets up what the containers share (idempotent, so an adopted task
    /// does it again) and, for awsvpc, tells the control plane the address
    /// the task got, together with its move to ACTIVATING (one write).
    async fn prepare_task(&mut self) -> Result<(), String> {
        let net = self
            .runtime
            .prepare_task(&self.task_spec)
            .await
            .map_err(|e| format!("ResourceInitializationError: {e}"))?;
        if self.awsvpc {
            self.ipv4 = net.private_ipv4.clone();
            self.listen_in(None).await;
        }
        if !self.awsvpc || net.private_ipv4.is_none() {
            return Ok(());
        }
        let activating = matches!(
            self.last_status,
            TaskStatus::Provisioning | TaskStatus::Pending
        );
        let req = berth_wire::agent::SubmitTaskNetworkRequest {
            cluster: self.cluster_arn.clone(),
            task: self.task_arn.clone(),
            private_ipv4_address: net.private_ipv4,
            mac_address: net.mac_address,
            task_state: activating.then(|| self.state_request(TaskStatus::Activating, None, false)),
        };
        let mut backoff = Duration::from_millis(100);
        for _ in 0..8 {
            match self.control.submit_task_network(req.clone()).await {
                Ok(()) => {
                    if activating {
                        self.mark_reported(TaskStatus::Activating);
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(task = %self.task_arn, error = %e, "reporting the task's network failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        Ok(())
    }

    /// Reads the runtime's view of every running container.
    async fn refresh(&mut self) {
        for s in self.slots.iter_mut() {
            if !matches!(s.state, SlotState::Running { .. }) {
                continue;
            }
            match self.runtime.status(&s.spec.key).await {
                Ok(Some(st)) => {
                    s.ports = st.ports.clone();
                    if let ContainerState::Exited {
                        exit_code, reason, ..
                    } = st.state
                    {
                        // Its health stays what its checks last said:
                        // Docker marks every stopped container unhealthy,
                        // and the exit, reported as such, is what ends it.
                        s.state = SlotState::Exited {
                            exit_code,
                            reason,
                            runtime_id: Some(st.id),
                        };
                    } else {
                        s.health = st.health;
                    }
                }
                Ok(None) => {
                    s.state = SlotState::Exited {
                        exit_code: None,
                        reason: Some("The container disappeared from the runtime.".into()),
                        runtime_id: None,
                    };
                }
                Err(e) => {
                    tracing::warn!(container = %s.spec.key, error = %e, "reading container status failed")
                }
            }
        }
    }

    fn dependency(&self, name: &str, condition: &ContainerCondition) -> Dependency {
        let Some(dep) = self.slots.iter().find(|s| s.name == name) else {
            return Dependency::Impossible(format!("dependency {name} does not exist"));
        };
        let impossible = |why: &str| Dependency::Impossible(format!("dependency {name} {why}"));
        match (condition, &dep.state) {
            (_, SlotState::Skipped { .. }) => impossible("never started"),
            (ContainerCondition::Start, SlotState::Running { .. } | SlotState::Exited { .. }) => {
                Dependency::Met
            }
            (ContainerCondition::Complete, SlotState::Exited { .. }) => Dependency::Met,
            (
                ContainerCondition::Success,
                SlotState::Exited {
                    exit_code: Some(0), ..
                },
            ) => Dependency::Met,
            (ContainerCondition::Success, SlotState::Exited { .. }) => {
                impossible("did not exit successfully")
            }
            (ContainerCondition::Healthy, SlotState::Running { .. })
                if dep.health == Health::Healthy =>
            {
                Dependency::Met
            }
            (ContainerCondition::Healthy, SlotState::Running { .. })
                if dep.health == Health::Unhealthy =>
            {
                impossible("is unhealthy")
            }
            (ContainerCondition::Healthy, SlotState::Exited { .. }) => {
                impossible("exited before it was healthy")
            }
            _ => Dependency::Pending,
        }
    }

    /// Starts every waiting container whose dependencies are met; returns a
    /// task stop reason if an essential container cannot start.
    async fn start_ready(&mut self) -> Option<String> {
        for i in 0..self.slots.len() {
            if self.slots[i].state != SlotState::Waiting {
                continue;
            }
            let mut verdict = Dependency::Met;
            for (name, cond) in &self.slots[i].depends_on {
                match self.dependency(name, cond) {
                    Dependency::Met => {}
                    Dependency::Pending => verdict = Dependency::Pending,
                    d @ Dependency::Impossible(_) => {
                        verdict = d;
                        break;
                    }
                }
            }
            match verdict {
                Dependency::Pending => {}
                Dependency::Impossible(why) => {
                    self.slots[i].state = SlotState::Skipped {
                        reason: format!("DependencyFailed: {why}"),
                    };
                }
                Dependency::Met => match self.start_container(i).await {
                    Ok(st) => {
                        self.slots[i].ports = st.ports;
                        self.slots[i].state = SlotState::Running { runtime_id: st.id };
                        self.ship_logs(i);
                        if !self.awsvpc {
                            let key = self.slots[i].spec.key.clone();
                            self.listen_in(Some(&key)).await;
                        }
                    }
                    Err(RuntimeError::AlreadyExists) => {
                        // Started before a restart but not adopted: pick it up.
                        if let Ok(Some(st)) = self.runtime.status(&self.slots[i].spec.key).await {
                            self.slots[i].ports = st.ports;
                            self.slots[i].state = SlotState::Running { runtime_id: st.id };
                        }
                    }
                    Err(e) => {
                        let reason = match e {
                            RuntimeError::CannotPull(m) => format!("CannotPullContainerError: {m}"),
                            RuntimeError::Io(m) if m.starts_with("ResourceInitializationError") => {
                                m
                            }
                            other => format!("CannotStartContainerError: {other}"),
                        };
                        self.slots[i].state = SlotState::Exited {
                            exit_code: None,
                            reason: Some(reason.clone()),
                            runtime_id: None,
                        };
                        if self.slots[i].essential {
                            return Some(reason);
                        }
                    }
                },
            }
        }
        None
    }

    /// Sends containers' health when it changed since the last report. Best
    /// effort: a failed report is sent again on the next change or tick.
    async fn report_health(&mut self) {
        if self.slots.iter().all(|s| s.health == s.health_reported) {
            return;
        }
        let wire = |h: Health| match h {
            Health::Healthy => HealthStatus::Healthy,
            Health::Unhealthy => HealthStatus::Unhealthy,
            Health::Unknown => HealthStatus::UnknownValue,
        };
        let req = berth_wire::agent::SubmitHealthRequest {
            cluster: self.cluster_arn.clone(),
            task: self.task_arn.clone(),
            containers: self
                .slots
                .iter()
                .filter(|s| s.spec.health_check.is_some())
                .map(|s| berth_wire::agent::ContainerHealth {
                    container_name: s.name.clone(),
                    health_status: wire(s.health).as_str().into(),
                })
                .collect(),
        };
        match self.control.submit_health(req).await {
            Ok(()) => self
                .slots
                .iter_mut()
                .for_each(|s| s.health_reported = s.health),
            Err(e) => tracing::warn!(task = %self.task_arn, error = %e, "reporting health failed"),
        }
    }

    /// Sets up the container's logs and environment, then starts it.
    async fn start_container(&self, i: usize) -> Result<ContainerStatus, RuntimeError> {
        self.prepare_logs(i).await?;
        let spec = self.environment(i).await?;
        self.runtime.start(&spec).await
    }

    /// The spec to start: its environment completed, as ECS's agent does,
    /// from `environmentFiles` (overridden by `environment`) and `secrets`
    /// (which win over both). Secret values live only in the returned spec.
    async fn environment(&self, i: usize) -> Result<ContainerSpec, RuntimeError> {
        let slot = &self.slots[i];
        let mut spec = slot.spec.clone();
        if spec.registry_auth.is_none() {
            // Adopted after a restart, past the pull: fetch them again.
            spec.registry_auth = self.registry_auth(i).await.map_err(RuntimeError::Io)?;
        }
        // What ECS sets: defaults the definition may override first,
        // the names ECS reserves last (they win).
        let (reserved, defaults) = self.endpoint.environment(&self.task_arn, &slot.name);
        let mut env: Vec<(String, String)> = defaults;
        for f in &slot.environment_files {
            let vars = crate::envfile::read(f, &self.env_file_dirs)
                .map_err(|e| RuntimeError::Io(format!("ResourceInitializationError: {e}")))?;
            env.extend(vars);
        }
        env.append(&mut spec.environment);
        if !slot.secrets.is_empty() {
            let values = self
                .control
                .resolve_secrets(&self.task_arn, &slot.secrets)
                .await
                .map_err(|e| {
                    RuntimeError::Io(format!(
                        "ResourceInitializationError: unable to pull secrets or registry auth: {e}"
                    ))
                })?;
            env.extend(values);
        }
        env.extend(reserved);
        // Later entries win; keep each name once, at its first position.
        let mut merged: Vec<(String, String)> = Vec::new();
        for (k, v) in env {
            match merged.iter_mut().find(|(n, _)| *n == k) {
                Some(slot) => slot.1 = v,
                None => merged.push((k, v)),
            }
        }
        spec.environment = merged;
        Ok(spec)
    }

    /// The registry credentials `repositoryCredentials` names, fetched as
    /// ECS's agent does before the pull; the error is the stop reason.
    async fn registry_auth(&self, i: usize) -> Result<Option<RegistryAuth>, String> {
        let Some(parameter) = &self.slots[i].credentials_parameter else {
            return Ok(None);
        };
        crate::secret_ref::resolve_registry_auth(self.control.as_ref(), &self.task_arn, parameter)
            .await
            .map(Some)
            .map_err(|e| {
                format!("ResourceInitializationError: unable to pull secrets or registry auth: {e}")
            })
    }

    /// Creates the container's log stream before it starts, as ECS's agent
    /// does: a missing group (without `awslogs-create-group`) fails the start.
    async fn prepare_logs(&self, i: usize) -> Result<(), RuntimeError> {
        let Some(d) = &self.slots[i].logs else {
            return Ok(());
        };
        match self.control.prepare_log_stream(&self.task_arn, &d.group, &d.stream, d.create_group).await {
            Ok(()) => Ok(()),
            Err(LogSetupError::GroupMissing) => Err(RuntimeError::Io(format!(
                "ResourceInitializationError: failed to validate logger args: The specified log group does not exist: {}",
                d.group
            ))),
            Err(LogSetupError::Other(m)) => Err(RuntimeError::Io(format!(
                "ResourceInitializationError: failed to create the log stream {}: {m}",
                d.stream
            ))),
        }
    }

    fn skip_waiting(&mut self, reason: &str) {
        for s in self
            .slots
            .iter_mut()
            .filter(|s| s.state == SlotState::Waiting)
        {
            s.state = SlotState::Skipped {
                reason: reason.to_string(),
            };
        }
    }

    /// Stops what still runs (each container with its own stop timeout),
    /// reports STOPPED with every container's outcome, and cleans up.
    async fn finish(mut self, reason: Option<String>) {
        for (_, w) in std::mem::take(&mut self.waiters) {
            w.abort();
        }
        if self
            .slots
            .iter()
            .any(|s| matches!(s.state, SlotState::Running { .. }))
        {
            self.report_stopping().await;
            let stops = self
                .slots
                .iter()
                .filter(|s| matches!(s.state, SlotState::Running { .. }))
                .map(|s| {
                    let rt = self.runtime.clone();
                    let key = s.spec.key.clone();
                    let timeout = s.spec.stop_timeout;
                    async move { rt.stop(&key, timeout).await }
                });
            for r in futures_join(stops).await {
                if let Err(e) = r {
                    tracing::warn!(task = %self.task_arn, error = %e, "stopping a container failed");
                }
            }
            self.refresh().await;
        }
        self.skip_waiting("The task stopped before this container started.");
        // Ship every line before reporting STOPPED, so a client that waits
        // for the task to stop then reads complete logs.
        for s in std::mem::take(&mut self.shippers) {
            s.finish(Duration::from_secs(30)).await;
        }
        if self.awsvpc {
            // An awsvpc task passes every stage ECS shows, even one that
            // ended by itself.
            self.report_stopping().await;
            self.report(TaskStatus::Deprovisioning, None, false).await;
        }
        self.report(TaskStatus::Stopped, reason, true).await;
        // Without a cleanup wait the containers go now; otherwise the
        // agent's cleanup removes them later.
        if self.cleanup_wait.is_zero() {
            for s in &self.slots {
                if s.state != SlotState::Waiting && !matches!(s.state, SlotState::Skipped { .. }) {
                    if let Err(e) = self.runtime.remove(&s.spec.key).await {
                        tracing::debug!(container = %s.spec.key, error = %e, "removing a container failed");
                    }
                }
            }
        }
        // The namespace goes now; task volumes go once no container uses
        // them (now, or when the cleanup releases the task again).
        if let Err(e) = self.runtime.release_task(&self.task_spec).await {
            tracing::warn!(task = %self.task_arn, error = %e, "releasing the task's resources failed");
        }
        // Its metadata and credentials are no longer served.
        self.endpoint.forget(&self.task_arn);
    }

    /// DEACTIVATING (awsvpc) and STOPPING, once each.
    async fn report_stopping(&mut self) {
        if self.awsvpc
            && !matches!(
                self.last_status,
                TaskStatus::Deactivating | TaskStatus::Stopping | TaskStatus::Deprovisioning
            )
        {
            self.report(TaskStatus::Deactivating, None, false).await;
        }
        if !matches!(
            self.last_status,
            TaskStatus::Stopping | TaskStatus::Deprovisioning
        ) {
            self.report(TaskStatus::Stopping, None, false).await;
        }
    }

    /// Sends a SubmitTaskStateChange, retrying until the control plane
    /// acknowledges it: reports are idempotent (statuses only go forward).
    async fn report(&mut self, status: TaskStatus, reason: Option<String>, stopped: bool) {
        let req = self.state_request(status, reason, stopped);
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.control.submit_task_state(req.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(task = %self.task_arn, %status, error = %e, "reporting task state failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.mark_reported(status);
    }

    fn state_request(
        &self,
        status: TaskStatus,
        reason: Option<String>,
        stopped: bool,
    ) -> SubmitTaskStateChangeRequest {
        SubmitTaskStateChangeRequest {
            cluster: Some(self.cluster_arn.clone()),
            task: Some(self.task_arn.clone()),
            status: Some(status.as_str().into()),
            reason,
            containers: Some(self.slots.iter().map(Slot::change).collect()),
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            execution_stopped_at: stopped.then(Timestamp::now),
            ..Default::default()
        }
    }

    fn mark_reported(&mut self, status: TaskStatus) {
        self.last_status = status;
        for s in self.slots.iter_mut() {
            s.reported = s.wire_status();
        }
        self.publish();
    }
}

/// Runs futures concurrently and collects their results in order.
async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}
