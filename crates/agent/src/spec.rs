//! From an ECS container definition (after the task's overrides) to what a
//! runtime runs.

use berth_core::task::effective_container;
use berth_runtime::{
    ContainerKey, ContainerSpec, DeviceSpec, HealthCheckSpec, LinuxSpec, LogDriverSpec,
    MountSource, MountSpec, NetworkMode, PortSpec, Protocol, TaskSpec, TmpfsSpec, UlimitSpec,
    VolumeSpec, DEFAULT_STOP_TIMEOUT, LABEL_CLUSTER, LABEL_CONTAINER, LABEL_TASK_ARN,
};
use berth_wire::ecs::{
    ContainerDefinition, LogDriver, NetworkMode as WireNetworkMode, Scope, Task, TaskDefinition,
    TransportProtocol,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// The task id: the last segment of its ARN.
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// The task's containers with overrides applied, in definition order.
pub fn containers(task: &Task, td: &TaskDefinition) -> Vec<ContainerDefinition> {
    td.container_definitions
        .iter()
        .flatten()
        .map(|c| effective_container(c, task.overrides.as_ref()))
        .collect()
}

/// ECS's `networkMode`: `bridge` when absent (on Linux EC2 instances).
pub fn network_mode(td: &TaskDefinition) -> NetworkMode {
    match td.network_mode {
        Some(WireNetworkMode::Host) => NetworkMode::Host,
        Some(WireNetworkMode::None) => NetworkMode::None,
        Some(WireNetworkMode::Awsvpc) => NetworkMode::Awsvpc,
        _ => NetworkMode::Bridge,
    }
}

fn ownership_labels(task: &Task, cluster: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_CLUSTER.into(), cluster.into());
    labels.insert(
        LABEL_TASK_ARN.into(),
        task.task_arn.clone().unwrap_or_default(),
    );
    labels
}

/// The runtime's name for a task volume: shared Docker volumes keep their
/// own name (other tasks use them too); every other volume is the task's.
fn volume_runtime_name(task: &Task, td: &TaskDefinition, volume: &str) -> String {
    let shared = td
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.as_deref() == Some(volume))
        .and_then(|v| v.docker_volume_configuration.as_ref())
        .is_some_and(|d| d.scope == Some(Scope::Shared));
    if shared {
        volume.to_string()
    } else {
        let id = task_id(task.task_arn.as_deref().unwrap_or_default());
        format!("berth-{id}-{volume}")
    }
}

/// What the task's containers share: its network and the volumes the
/// runtime must provide (host paths need nothing).
pub fn task_spec(task: &Task, cluster: &str, td: &TaskDefinition) -> TaskSpec {
    let volumes = td
        .volumes
        .iter()
        .flatten()
        .filter(|v| {
            v.host
                .as_ref()
                .and_then(|h| h.source_path.as_ref())
                .is_none()
        })
        .filter_map(|v| {
            let name = v.name.clone()?;
            let docker = v.docker_volume_configuration.clone().unwrap_or_default();
            let shared = docker.scope == Some(Scope::Shared);
            Some(VolumeSpec {
                name: volume_runtime_name(task, td, &name),
                shared,
                // ECS: autoprovision defaults to false, and only applies to shared volumes.
                autoprovision: !shared || docker.autoprovision.unwrap_or(false),
                driver: docker.driver,
                driver_opts: docker.driver_opts.unwrap_or_default(),
                labels: docker.labels.unwrap_or_default(),
            })
        })
        .collect();
    TaskSpec {
        task_id: task_id(task.task_arn.as_deref().unwrap_or_default()).to_string(),
        labels: ownership_labels(task, cluster),
        network: network_mode(td),
        volumes,
    }
}

pub fn container_spec(
    task: &Task,
    cluster: &str,
    td: &TaskDefinition,
    c: &ContainerDefinition,
) -> ContainerSpec {
    let task_arn = task.task_arn.clone().unwrap_or_default();
    let name = c.name.clone().unwrap_or_default();
    let mut spec = ContainerSpec::new(
        ContainerKey::new(task_id(&task_arn), &name),
        c.image.clone().unwrap_or_default(),
    );
    spec.labels = ownership_labels(task, cluster);
    spec.labels.insert(LABEL_CONTAINER.into(), name);
    spec.entry_point = c.entry_point.clone().unwrap_or_default();
    spec.command = c.command.clone().unwrap_or_default();
    spec.environment = c
        .environment
        .iter()
        .flatten()
        .filter_map(|kv| Some((kv.name.clone()?, kv.value.clone().unwrap_or_default())))
        .collect();
    spec.working_directory = c.working_directory.clone();
    spec.user = c.user.clone();
    spec.stop_timeout = c
        .stop_timeout
        .map(|s| Duration::from_secs(s.max(0) as u64))
        .unwrap_or(DEFAULT_STOP_TIMEOUT);
    spec.health_check = c.health_check.as_ref().map(|h| HealthCheckSpec {
        command: h.command.clone(),
        interval: Duration::from_secs(h.interval.unwrap_or(30) as u64),
        timeout: Duration::from_secs(h.timeout.unwrap_or(5) as u64),
        retries: h.retries.unwrap_or(3) as u32,
        start_period: Duration::from_secs(h.start_period.unwrap_or(0) as u64),
    });
    spec.cpu_units = c.cpu.map(|v| v.max(0) as u32);
    spec.memory_mib = c.memory.map(|v| v.max(0) as u32);
    spec.memory_reservation_mib = c.memory_reservation.map(|v| v.max(0) as u32);
    spec.network = network_mode(td);
    spec.ports = c
        .port_mappings
        .iter()
        .flatten()
        .filter_map(|p| {
            let container_port = u16::try_from(p.container_port?).ok()?;
            Some(PortSpec {
                container_port,
                host_port: p
                    .host_port
                    .and_then(|h| u16::try_from(h).ok())
                    .filter(|h| *h != 0),
                protocol: match p.protocol {
                    Some(TransportProtocol::Udp) => Protocol::Udp,
                    _ => Protocol::Tcp,
                },
            })
        })
        .collect();
    spec.mounts = c
        .mount_points
        .iter()
        .flatten()
        .filter_map(|m| {
            let volume = m.source_volume.as_deref()?;
            let def = td
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name.as_deref() == Some(volume))?;
            let source = match def.host.as_ref().and_then(|h| h.source_path.clone()) {
                Some(path) => MountSource::HostPath(path),
                None => MountSource::Volume(volume_runtime_name(task, td, volume)),
            };
            Some(MountSpec {
                source,
                container_path: m.container_path.clone()?,
                read_only: m.read_only.unwrap_or(false),
            })
        })
        .collect();
    spec.volumes_from = c
        .volumes_from
        .iter()
        .flatten()
        .filter_map(|v| Some((v.source_container.clone()?, v.read_only.unwrap_or(false))))
        .collect();
    spec.ulimits = c
        .ulimits
        .iter()
        .flatten()
        .map(|u| UlimitSpec {
            name: u.name.as_str().to_string(),
            soft: u.soft_limit as i64,
            hard: u.hard_limit as i64,
        })
        .collect();
    if let Some(l) = &c.linux_parameters {
        let caps = l.capabilities.clone().unwrap_or_default();
        spec.linux = LinuxSpec {
            cap_add: caps.add.unwrap_or_default(),
            cap_drop: caps.drop.unwrap_or_default(),
            init_process_enabled: l.init_process_enabled.unwrap_or(false),
            shared_memory_size_mib: l.shared_memory_size.map(|v| v.max(0) as u32),
            tmpfs: l
                .tmpfs
                .iter()
                .flatten()
                .map(|t| TmpfsSpec {
                    container_path: t.container_path.clone(),
                    size_mib: t.size.max(0) as u32,
                    options: t.mount_options.clone().unwrap_or_default(),
                })
                .collect(),
            devices: l
                .devices
                .iter()
                .flatten()
                .map(|d| DeviceSpec {
                    host_path: d.host_path.clone(),
                    container_path: d.container_path.clone(),
                    permissions: d
                        .permissions
                        .iter()
                        .flatten()
                        .map(|p| p.as_str().to_string())
                        .collect(),
                })
                .collect(),
        };
    }
    spec.readonly_root_filesystem = c.readonly_root_filesystem.unwrap_or(false);
    spec.privileged = c.privileged.unwrap_or(false);
    spec.interactive = c.interactive.unwrap_or(false);
    spec.pseudo_terminal = c.pseudo_terminal.unwrap_or(false);
    spec.docker_labels = c
        .docker_labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    spec.extra_hosts = c
        .extra_hosts
        .iter()
        .flatten()
        .map(|h| (h.hostname.clone(), h.ip_address.clone()))
        .collect();
    spec.dns_servers = c.dns_servers.clone().unwrap_or_default();
    spec.dns_search_domains = c.dns_search_domains.clone().unwrap_or_default();
    spec.hostname = c.hostname.clone();
    spec.log_driver = c
        .log_configuration
        .as_ref()
        .filter(|l| l.log_driver != LogDriver::Awslogs)
        .map(|l| LogDriverSpec {
            driver: l.log_driver.as_str().to_string(),
            options: l.options.clone().unwrap_or_default(),
        });
    spec
}

/// Why a task may not run on a sandbox (berth's managed capacity, where
/// FARGATE tasks of every account share the server's host), read from what
/// the agent would hand the runtime rather than from the document: even a
/// task definition stored before the control plane checked FARGATE ones
/// gets no host path, device, privilege, added capability (but
/// `SYS_PTRACE`), Docker volume, host network or host file. `None` when it
/// may run; otherwise the task's stop reason.
pub fn sandbox_refusal<'a>(
    task: &Task,
    task_spec: &TaskSpec,
    containers: impl IntoIterator<Item = (&'a ContainerSpec, &'a [String])>,
) -> Option<String> {
    let refuse = |what: String| {
        Some(format!(
            "ResourceInitializationError: berth's FARGATE capacity gives tasks no way into its \
             host: {what}"
        ))
    };
    if task_spec.network != NetworkMode::Awsvpc {
        return refuse(format!(
            "the task asks for the {:?} network mode (FARGATE is awsvpc only)",
            task_spec.network
        ));
    }
    if let Some(v) = task_spec.volumes.iter().find(|v| {
        v.shared || v.driver.is_some() || !v.driver_opts.is_empty() || !v.labels.is_empty()
    }) {
        return refuse(format!("the task asks for the Docker volume {}", v.name));
    }
    for (spec, environment_files) in containers {
        let name = &spec.key.container;
        if let Some(path) = spec.mounts.iter().find_map(|m| match &m.source {
            MountSource::HostPath(p) => Some(p),
            MountSource::Volume(_) => None,
        }) {
            return refuse(format!(
                "container '{name}' would mount the host path {path}"
            ));
        }
        if spec.privileged {
            return refuse(format!("container '{name}' asks to run privileged"));
        }
        // awslogs is read back by the agent (no driver is handed to the
        // Engine); any other driver would be, and could reach a host socket.
        if let Some(d) = &spec.log_driver {
            return refuse(format!(
                "container '{name}' asks for the {} log driver",
                d.driver
            ));
        }
        if let Some(d) = spec.linux.devices.first() {
            return refuse(format!(
                "container '{name}' asks for the host device {}",
                d.host_path
            ));
        }
        if let Some(cap) = spec
            .linux
            .cap_add
            .iter()
            .find(|c| !berth_core::fargate::may_add_capability(c))
        {
            return refuse(format!("container '{name}' adds the capability {cap}"));
        }
        if let Some(reason) = environment_files
            .iter()
            .find_map(|f| environment_file_refusal(name, f))
        {
            return Some(reason);
        }
    }
    // Overrides' environment files are not applied to containers (see
    // `effective_container`), but none may name a host file either.
    let overridden = task
        .overrides
        .iter()
        .flat_map(|o| o.container_overrides.iter().flatten())
        .flat_map(|o| {
            o.environment_files
                .iter()
                .flatten()
                .map(move |f| (o.name.as_deref().unwrap_or_default(), f.value.as_str()))
        });
    for (name, f) in overridden {
        if let Some(reason) = environment_file_refusal(name, f) {
            return Some(reason);
        }
    }
    None
}

/// Every environment file is refused on the sandbox: a host path would be
/// read with the agent's own privileges (the server's config, its keys),
/// and S3, where FARGATE ones live, is not something berth has.
fn environment_file_refusal(container: &str, value: &str) -> Option<String> {
    Some(if berth_core::fargate::is_s3_object_arn(value) {
        format!(
            "ResourceInitializationError: failed to download env files: berth cannot fetch \
             environment files from Amazon S3 ({value} of container '{container}')"
        )
    } else {
        format!(
            "ResourceInitializationError: berth's FARGATE capacity gives tasks no way into its \
             host: container '{container}' names the host file {value} as an environment file"
        )
    })
}
