//! The agent against a fake control plane and the runtime's FakeRuntime:
//! lifecycle reports, dependsOn ordering, essential exits, stops, adoption.

use async_trait::async_trait;
use berth_agent::{Agent, AgentConfig, ControlPlane, LogSetupError};
use berth_runtime::fake::{Call, FakeRuntime, Script};
use berth_runtime::{ContainerKey, ContainerSpec, ContainerState, Health, Runtime, LABEL_TASK_ARN};
use berth_wire::agent::{AssignedTask, PollWorkRequest, PollWorkResponse, SubmitHealthRequest};
use berth_wire::ecs::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Default)]
struct FakeControl {
    reports: Mutex<Vec<SubmitTaskStateChangeRequest>>,
    /// Shipped log lines by stream.
    logs: Mutex<Vec<(String, String)>>,
    groups: Mutex<Vec<String>>,
    health: Mutex<Vec<SubmitHealthRequest>>,
}

#[async_trait]
impl ControlPlane for FakeControl {
    async fn register(
        &self,
        _req: RegisterContainerInstanceRequest,
    ) -> anyhow::Result<ContainerInstance> {
        Ok(ContainerInstance {
            container_instance_arn: Some("arn:aws:ecs:us-east-1:1:container-instance/c/i1".into()),
            ..Default::default()
        })
    }
    async fn poll(&self, _req: PollWorkRequest) -> anyhow::Result<PollWorkResponse> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(PollWorkResponse::default())
    }
    async fn submit_task_state(&self, req: SubmitTaskStateChangeRequest) -> anyhow::Result<()> {
        self.reports.lock().push(req);
        Ok(())
    }
    async fn submit_health(&self, req: SubmitHealthRequest) -> anyhow::Result<()> {
        self.health.lock().push(req);
        Ok(())
    }
    async fn prepare_log_stream(
        &self,
        _task: &str,
        group: &str,
        _stream: &str,
        create: bool,
    ) -> Result<(), LogSetupError> {
        let mut groups = self.groups.lock();
        if create && !groups.iter().any(|g| g == group) {
            groups.push(group.into());
        }
        if groups.iter().any(|g| g == group) {
            Ok(())
        } else {
            Err(LogSetupError::GroupMissing)
        }
    }
    async fn put_log_events(
        &self,
        _task: &str,
        _group: &str,
        stream: &str,
        events: Vec<(i64, String)>,
    ) -> anyhow::Result<()> {
        self.logs
            .lock()
            .extend(events.into_iter().map(|(_, m)| (stream.to_string(), m)));
        Ok(())
    }
}

impl FakeControl {
    fn statuses(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.reports.lock().iter() {
            let s = r.status.clone().unwrap();
            if out.last() != Some(&s) {
                out.push(s);
            }
        }
        out
    }

    fn last(&self) -> SubmitTaskStateChangeRequest {
        self.reports.lock().last().cloned().unwrap()
    }

    fn container(&self, name: &str) -> ContainerStateChange {
        self.last()
            .containers
            .unwrap()
            .into_iter()
            .find(|c| c.container_name.as_deref() == Some(name))
            .unwrap()
    }
}

const TASK_ARN: &str = "arn:aws:ecs:us-east-1:1:task/c/t1";

fn container(
    name: &str,
    essential: bool,
    depends: &[(&str, ContainerCondition)],
) -> ContainerDefinition {
    ContainerDefinition {
        name: Some(name.into()),
        image: Some("img".into()),
        essential: Some(essential),
        command: Some(vec!["run".into()]),
        stop_timeout: Some(2),
        depends_on: (!depends.is_empty()).then(|| {
            depends
                .iter()
                .map(|(n, c)| ContainerDependency {
                    container_name: (*n).into(),
                    condition: c.clone(),
                })
                .collect()
        }),
        ..Default::default()
    }
}

fn assigned(containers: Vec<ContainerDefinition>, desired: &str) -> AssignedTask {
    AssignedTask {
        task: Task {
            task_arn: Some(TASK_ARN.into()),
            cluster_arn: Some("arn:aws:ecs:us-east-1:1:cluster/c".into()),
            last_status: Some("PENDING".into()),
            desired_status: Some(desired.into()),
            ..Default::default()
        },
        task_definition: TaskDefinition {
            container_definitions: Some(containers),
            ..Default::default()
        },
    }
}

async fn agent(rt: &FakeRuntime) -> (Arc<Agent>, Arc<FakeControl>, tempfile::TempDir) {
    agent_with_cleanup(rt, Duration::ZERO).await
}

async fn agent_with_cleanup(
    rt: &FakeRuntime,
    cleanup_wait: Duration,
) -> (Arc<Agent>, Arc<FakeControl>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let control = Arc::new(FakeControl::default());
    let mut config = AgentConfig::for_host("c", dir.path());
    config.cleanup_wait = cleanup_wait;
    let a = Agent::register(control.clone(), Arc::new(rt.clone()), config)
        .await
        .unwrap();
    (Arc::new(a), control, dir)
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn key(name: &str) -> ContainerKey {
    ContainerKey::new("t1", name)
}

#[tokio::test]
async fn essential_exit_stops_the_task_with_its_exit_code() {
    let rt = FakeRuntime::new();
    rt.script("main", Script::exits(3, Duration::from_millis(50)));
    let (a, control, _d) = agent(&rt).await;
    a.converge(vec![assigned(
        vec![container("main", true, &[]), container("side", false, &[])],
        "RUNNING",
    )])
    .await;
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    assert_eq!(control.statuses(), ["RUNNING", "STOPPING", "STOPPED"]);
    assert_eq!(control.container("main").exit_code, Some(3));
    assert_eq!(control.container("side").status.as_deref(), Some("STOPPED"));
    assert!(control.last().execution_stopped_at.is_some());
    assert!(rt
        .calls()
        .contains(&Call::Stop(key("side"), Duration::from_secs(2))));
    until("removed", || {
        rt.calls().contains(&Call::Remove(key("main")))
    })
    .await;
}

#[tokio::test]
async fn stopped_tasks_containers_are_removed_after_the_cleanup_wait() {
    let rt = FakeRuntime::new();
    rt.script("main", Script::exits(0, Duration::from_millis(20)));
    let (a, control, _d) = agent_with_cleanup(&rt, Duration::from_millis(300)).await;
    a.converge(vec![assigned(
        vec![container("main", true, &[])],
        "RUNNING",
    )])
    .await;
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    // The control plane no longer assigns the task: its container stays
    // (for inspection) until the wait has passed.
    a.converge(vec![]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!rt.calls().contains(&Call::Remove(key("main"))));
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.converge(vec![]).await;
    until("removed", || {
        rt.calls().contains(&Call::Remove(key("main")))
    })
    .await;
}

#[tokio::test]
async fn orphaned_running_containers_are_stopped_and_removed() {
    let rt = FakeRuntime::new();
    let (a, _control, _d) = agent_with_cleanup(&rt, Duration::from_secs(3600)).await;
    let mut spec = ContainerSpec::new(key("lost"), "img");
    spec.labels.insert(LABEL_TASK_ARN.into(), TASK_ARN.into());
    rt.start(&spec).await.unwrap();
    // No task is assigned: the container is an orphan.
    a.converge(vec![]).await;
    until("stopped", || {
        rt.calls()
            .iter()
            .any(|c| matches!(c, Call::Stop(k, _) if *k == key("lost")))
    })
    .await;
    until("removed", || {
        rt.calls().contains(&Call::Remove(key("lost")))
    })
    .await;
}

#[tokio::test]
async fn non_essential_exit_does_not_stop_the_task() {
    let rt = FakeRuntime::new();
    rt.script("side", Script::exits(1, Duration::from_millis(20)));
    let (a, control, _d) = agent(&rt).await;
    a.converge(vec![assigned(
        vec![container("main", true, &[]), container("side", false, &[])],
        "RUNNING",
    )])
    .await;
    until("side reported stopped", || {
        control.reports.lock().iter().any(|r| {
            r.containers
                .iter()
                .flatten()
                .any(|c| c.container_name.as_deref() == Some("side") && c.exit_code == Some(1))
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(control.statuses(), ["RUNNING"]);
}

#[tokio::test]
async fn depends_on_healthy_waits_for_health() {
    let rt = FakeRuntime::new();
    rt.script(
        "db",
        Script::runs().health_after(Duration::from_millis(200), Health::Healthy),
    );
    let (a, control, _d) = agent(&rt).await;
    a.converge(vec![assigned(
        vec![
            container("db", true, &[]),
            container("app", true, &[("db", ContainerCondition::Healthy)]),
        ],
        "RUNNING",
    )])
    .await;
    until("app started", || {
        rt.calls().contains(&Call::Start(key("app")))
    })
    .await;
    let calls = rt.calls();
    let db = calls
        .iter()
        .position(|c| *c == Call::Start(key("db")))
        .unwrap();
    let app = calls
        .iter()
        .position(|c| *c == Call::Start(key("app")))
        .unwrap();
    assert!(db < app);
    let db_status = rt.status(&key("db")).await.unwrap().unwrap();
    assert_eq!(
        db_status.health,
        Health::Healthy,
        "app only starts once db is healthy"
    );
    until("RUNNING", || {
        control.statuses().contains(&"RUNNING".to_string())
    })
    .await;
}

#[tokio::test]
async fn depends_on_success_that_fails_stops_the_task() {
    let rt = FakeRuntime::new();
    rt.script("init", Script::exits(2, Duration::from_millis(20)));
    let (a, control, _d) = agent(&rt).await;
    a.converge(vec![assigned(
        vec![
            container("init", false, &[]),
            container("app", true, &[("init", ContainerCondition::Success)]),
        ],
        "RUNNING",
    )])
    .await;
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    assert!(!rt.calls().contains(&Call::Start(key("app"))));
    assert!(control
        .container("app")
        .reason
        .unwrap()
        .starts_with("DependencyFailed"));
}

#[tokio::test]
async fn start_failure_is_reported_as_cannot_start() {
    let rt = FakeRuntime::new();
    rt.script("main", Script::fails_to_start("no such file"));
    let (a, control, _d) = agent(&rt).await;
    a.converge(vec![assigned(
        vec![container("main", true, &[])],
        "RUNNING",
    )])
    .await;
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    assert!(control
        .last()
        .reason
        .unwrap()
        .starts_with("CannotStartContainerError"));
}

#[tokio::test]
async fn desired_stop_uses_each_containers_stop_timeout() {
    let rt = FakeRuntime::new();
    rt.script("stubborn", Script::runs().ignoring_sigterm());
    let (a, control, _d) = agent(&rt).await;
    a.converge(vec![assigned(
        vec![container("stubborn", true, &[])],
        "RUNNING",
    )])
    .await;
    until("RUNNING", || {
        control.statuses().contains(&"RUNNING".to_string())
    })
    .await;
    let begun = Instant::now();
    a.converge(vec![assigned(
        vec![container("stubborn", true, &[])],
        "STOPPED",
    )])
    .await;
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    assert!(
        begun.elapsed() >= Duration::from_secs(2),
        "SIGKILL only after stopTimeout"
    );
    assert_eq!(control.container("stubborn").exit_code, Some(137));
}

#[tokio::test]
async fn a_restarted_agent_adopts_running_containers_instead_of_starting_them() {
    let rt = FakeRuntime::new();
    let mut spec = ContainerSpec::new(key("main"), "img");
    spec.labels.insert(LABEL_TASK_ARN.into(), TASK_ARN.into());
    rt.preload(
        &spec,
        ContainerState::Running {
            pid: Some(42),
            started_at: SystemTime::now(),
        },
        Health::Unknown,
    );
    let (a, control, _d) = agent(&rt).await;
    let mut t = assigned(vec![container("main", true, &[])], "RUNNING");
    t.task.last_status = Some("RUNNING".into());
    a.converge(vec![t]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !rt.calls()
            .iter()
            .any(|c| matches!(c, Call::Start(_) | Call::Pull(_))),
        "{:?}",
        rt.calls()
    );
    assert!(rt.exit(&key("main"), 0));
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    assert_eq!(control.container("main").exit_code, Some(0));
}

fn health_checked(mut c: ContainerDefinition) -> ContainerDefinition {
    c.health_check = Some(HealthCheck {
        command: vec!["CMD-SHELL".into(), "true".into()],
        ..Default::default()
    });
    c
}

/// Every health the agent reported for `container`, in order.
fn reported_health(control: &FakeControl, container: &str) -> Vec<String> {
    control
        .health
        .lock()
        .iter()
        .flat_map(|r| r.containers.iter())
        .filter(|c| c.container_name == container)
        .map(|c| c.health_status.clone())
        .collect()
}

#[tokio::test]
async fn a_container_that_dies_is_reported_exited_not_unhealthy() {
    // Docker marks every stopped container that has a health check
    // unhealthy, whatever its checks said: that is its exit, not a failed
    // check, and the task must not look RUNNING and UNHEALTHY meanwhile
    // (a service would replace it for failing its health checks).
    let rt = FakeRuntime::new();
    rt.script(
        "main",
        Script::exits(137, Duration::from_millis(300))
            .health_after(Duration::from_millis(50), Health::Healthy)
            .unhealthy_when_stopped(),
    );
    let (a, control, _d) = agent(&rt).await;
    a.converge(vec![assigned(
        vec![health_checked(container("main", true, &[]))],
        "RUNNING",
    )])
    .await;
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    assert_eq!(control.container("main").exit_code, Some(137));
    assert!(
        !reported_health(&control, "main").contains(&"UNHEALTHY".to_string()),
        "{:?}",
        reported_health(&control, "main")
    );
}

#[tokio::test]
async fn an_adopted_container_that_had_died_is_reported_exited_not_unhealthy() {
    let rt = FakeRuntime::new();
    let mut spec = ContainerSpec::new(key("main"), "img");
    spec.labels.insert(LABEL_TASK_ARN.into(), TASK_ARN.into());
    rt.preload(
        &spec,
        ContainerState::Exited {
            exit_code: Some(1),
            signal: None,
            started_at: Some(SystemTime::now()),
            finished_at: SystemTime::now(),
            reason: None,
        },
        Health::Unhealthy,
    );
    let (a, control, _d) = agent(&rt).await;
    let mut t = assigned(
        vec![health_checked(container("main", true, &[]))],
        "RUNNING",
    );
    t.task.last_status = Some("RUNNING".into());
    a.converge(vec![t]).await;
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    assert_eq!(control.container("main").exit_code, Some(1));
    assert!(
        !reported_health(&control, "main").contains(&"UNHEALTHY".to_string()),
        "{:?}",
        reported_health(&control, "main")
    );
}

fn with_awslogs(mut c: ContainerDefinition, create_group: bool) -> ContainerDefinition {
    let mut options = std::collections::BTreeMap::new();
    options.insert("awslogs-group".to_string(), "g".to_string());
    options.insert("awslogs-stream-prefix".to_string(), "web".to_string());
    if create_group {
        options.insert("awslogs-create-group".to_string(), "true".to_string());
    }
    c.log_configuration = Some(LogConfiguration {
        log_driver: LogDriver::Awslogs,
        options: Some(options),
        secret_options: None,
    });
    c
}

#[tokio::test]
async fn awslogs_output_is_shipped_before_stopped_is_reported() {
    let rt = FakeRuntime::new();
    let mut script = Script::exits(0, Duration::from_millis(50));
    for i in 0..5 {
        script = script.output(berth_runtime::LogStream::Stdout, format!("line {i}"));
    }
    rt.script("main", script);
    let (a, control, _d) = agent(&rt).await;
    a.converge(vec![assigned(
        vec![with_awslogs(container("main", true, &[]), true)],
        "RUNNING",
    )])
    .await;
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    let logs = control.logs.lock().clone();
    assert_eq!(logs.len(), 5);
    assert!(logs.iter().all(|(s, _)| s == "web/main/t1"));
    assert_eq!(logs[4].1, "line 4");
}

#[tokio::test]
async fn a_missing_log_group_fails_the_start() {
    let rt = FakeRuntime::new();
    let (a, control, _d) = agent(&rt).await;
    a.converge(vec![assigned(
        vec![with_awslogs(container("main", true, &[]), false)],
        "RUNNING",
    )])
    .await;
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    assert!(control
        .last()
        .reason
        .unwrap()
        .starts_with("ResourceInitializationError"));
    assert!(!rt.calls().contains(&Call::Start(key("main"))));
}

// -- the sandbox (berth's managed capacity, where FARGATE tasks run) --------

async fn sandbox_agent(
    rt: &FakeRuntime,
    sandbox: bool,
) -> (Arc<Agent>, Arc<FakeControl>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let control = Arc::new(FakeControl::default());
    let mut config = AgentConfig::for_host("c", dir.path());
    config.cleanup_wait = Duration::ZERO;
    config.sandbox = sandbox;
    let a = Agent::register(control.clone(), Arc::new(rt.clone()), config)
        .await
        .unwrap();
    (Arc::new(a), control, dir)
}

/// An awsvpc task of one container, `main`, changed by `f`.
fn awsvpc_task(f: impl FnOnce(&mut AssignedTask)) -> AssignedTask {
    let mut t = assigned(vec![container("main", true, &[])], "RUNNING");
    t.task_definition.network_mode = Some(NetworkMode::Awsvpc);
    f(&mut t);
    t
}

fn main_of(t: &mut AssignedTask) -> &mut ContainerDefinition {
    &mut t.task_definition.container_definitions.as_mut().unwrap()[0]
}

fn mounting(t: &mut AssignedTask, volume: Volume) {
    let name = volume.name.clone();
    t.task_definition.volumes = Some(vec![volume]);
    main_of(t).mount_points = Some(vec![MountPoint {
        source_volume: name,
        container_path: Some("/data".into()),
        ..Default::default()
    }]);
}

fn linux_params(t: &mut AssignedTask, f: impl FnOnce(&mut LinuxParameters)) {
    let mut l = LinuxParameters::default();
    f(&mut l);
    main_of(t).linux_parameters = Some(l);
}

async fn stop_reason(control: &FakeControl) -> String {
    until("STOPPED", || {
        control.statuses().last().map(String::as_str) == Some("STOPPED")
    })
    .await;
    control.last().reason.unwrap_or_default()
}

#[tokio::test]
async fn a_sandbox_gives_no_task_a_way_into_the_host() {
    type Spoil = fn(&mut AssignedTask);
    let cases: Vec<(&str, Spoil)> = vec![
        ("would mount the host path /var/lib/berth", |t| {
            mounting(
                t,
                Volume {
                    name: Some("data".into()),
                    host: Some(HostVolumeProperties {
                        source_path: Some("/var/lib/berth".into()),
                    }),
                    ..Default::default()
                },
            )
        }),
        ("asks for the Docker volume data", |t| {
            mounting(
                t,
                Volume {
                    name: Some("data".into()),
                    docker_volume_configuration: Some(DockerVolumeConfiguration {
                        scope: Some(Scope::Shared),
                        driver: Some("local".into()),
                        driver_opts: Some(
                            [
                                ("o", "bind"),
                                ("type", "none"),
                                ("device", "/var/lib/berth"),
                            ]
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        ),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
        }),
        ("asks for the host device /dev/mem", |t| {
            linux_params(t, |l| {
                l.devices = Some(vec![Device {
                    host_path: "/dev/mem".into(),
                    ..Default::default()
                }])
            })
        }),
        ("asks to run privileged", |t| {
            main_of(t).privileged = Some(true)
        }),
        ("adds the capability SYS_ADMIN", |t| {
            linux_params(t, |l| {
                l.capabilities = Some(KernelCapabilities {
                    add: Some(vec!["SYS_PTRACE".into(), "SYS_ADMIN".into()]),
                    drop: None,
                })
            })
        }),
        ("names the host file /etc/berth/berth.toml", |t| {
            main_of(t).environment_files = Some(vec![EnvironmentFile {
                value: "/etc/berth/berth.toml".into(),
                r#type: EnvironmentFileType::S3,
            }])
        }),
        ("cannot fetch environment files from Amazon S3", |t| {
            main_of(t).environment_files = Some(vec![EnvironmentFile {
                value: "arn:aws:s3:::bucket/app.env".into(),
                r#type: EnvironmentFileType::S3,
            }])
        }),
        ("names the host file /etc/shadow", |t| {
            t.task.overrides = Some(TaskOverride {
                container_overrides: Some(vec![ContainerOverride {
                    name: Some("main".into()),
                    environment_files: Some(vec![EnvironmentFile {
                        value: "/etc/shadow".into(),
                        r#type: EnvironmentFileType::S3,
                    }]),
                    ..Default::default()
                }]),
                ..Default::default()
            })
        }),
        ("asks for the Host network mode", |t| {
            t.task_definition.network_mode = Some(NetworkMode::Host)
        }),
    ];
    for (what, spoil) in cases {
        let rt = FakeRuntime::new();
        let (a, control, _d) = sandbox_agent(&rt, true).await;
        a.converge(vec![awsvpc_task(spoil)]).await;
        let reason = stop_reason(&control).await;
        assert!(
            reason.starts_with("ResourceInitializationError: "),
            "{what}: {reason}"
        );
        assert!(reason.contains(what), "{what}: {reason}");
        assert!(
            !rt.calls()
                .iter()
                .any(|c| matches!(c, Call::Pull(_) | Call::Start(_))),
            "{what}: nothing is pulled or started: {:?}",
            rt.calls()
        );
        assert_eq!(control.container("main").status.as_deref(), Some("STOPPED"));
    }
}

#[tokio::test]
async fn a_sandbox_runs_what_fargate_allows() {
    let rt = FakeRuntime::new();
    rt.script("main", Script::exits(0, Duration::from_millis(20)));
    let (a, control, _d) = sandbox_agent(&rt, true).await;
    a.converge(vec![awsvpc_task(|t| {
        // A task-scoped volume, SYS_PTRACE, drops, tmpfs, nofile.
        mounting(
            t,
            Volume {
                name: Some("scratch".into()),
                host: Some(HostVolumeProperties { source_path: None }),
                ..Default::default()
            },
        );
        linux_params(t, |l| {
            l.capabilities = Some(KernelCapabilities {
                add: Some(vec!["SYS_PTRACE".into()]),
                drop: Some(vec!["ALL".into()]),
            });
            l.tmpfs = Some(vec![Tmpfs {
                container_path: "/run".into(),
                size: 16,
                ..Default::default()
            }]);
        });
    })])
    .await;
    let reason = stop_reason(&control).await;
    assert!(!reason.contains("ResourceInitializationError"), "{reason}");
    assert!(rt.calls().contains(&Call::Start(key("main"))));
}

#[tokio::test]
async fn fargate_tasks_are_sandboxed_on_any_agent_and_ec2_ones_keep_the_host() {
    let host_mount = |t: &mut AssignedTask| {
        mounting(
            t,
            Volume {
                name: Some("data".into()),
                host: Some(HostVolumeProperties {
                    source_path: Some("/srv/data".into()),
                }),
                ..Default::default()
            },
        )
    };
    let rt = FakeRuntime::new();
    let (a, control, _d) = sandbox_agent(&rt, false).await;
    a.converge(vec![awsvpc_task(|t| {
        host_mount(t);
        t.task.launch_type = Some(LaunchType::Fargate);
    })])
    .await;
    assert!(stop_reason(&control)
        .await
        .contains("would mount the host path /srv/data"));

    // The operator's own instance (EC2) mounts its own paths.
    let rt = FakeRuntime::new();
    rt.script("main", Script::exits(0, Duration::from_millis(20)));
    let (a, control, _d) = sandbox_agent(&rt, false).await;
    a.converge(vec![awsvpc_task(|t| {
        host_mount(t);
        t.task.launch_type = Some(LaunchType::Ec2);
    })])
    .await;
    let reason = stop_reason(&control).await;
    assert!(!reason.contains("ResourceInitializationError"), "{reason}");
    assert!(rt.calls().contains(&Call::Start(key("main"))));
}

/// A task started before the check existed (its container adopted after a
/// restart) is stopped, not left running with the host path.
#[tokio::test]
async fn an_adopted_task_that_breaks_the_sandbox_is_stopped() {
    let rt = FakeRuntime::new();
    let mut spec = ContainerSpec::new(key("main"), "img");
    spec.labels.insert(LABEL_TASK_ARN.into(), TASK_ARN.into());
    rt.preload(
        &spec,
        ContainerState::Running {
            pid: Some(42),
            started_at: SystemTime::now(),
        },
        Health::Unknown,
    );
    let (a, control, _d) = sandbox_agent(&rt, true).await;
    let t = awsvpc_task(|t| {
        t.task.last_status = Some("RUNNING".into());
        main_of(t).privileged = Some(true);
    });
    a.converge(vec![t]).await;
    let reason = stop_reason(&control).await;
    assert!(reason.contains("asks to run privileged"), "{reason}");
    assert!(rt
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Stop(k, _) if *k == key("main"))));
    assert!(!rt.calls().iter().any(|c| matches!(c, Call::Start(_))));
}
