//! Task rules that need no I/O: the order of task statuses, the effective
//! container settings once overrides apply, and what a task asks of an
//! instance.

use crate::EcsError;
use berth_wire::ecs::{
    ContainerDefinition, KeyValuePair, NetworkMode, TaskDefinition, TaskOverride, TransportProtocol,
};

/// A task's `lastStatus`/`desiredStatus` values, in lifecycle order. A task
/// only ever moves forward through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskStatus {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Provisioning,
        TaskStatus::Pending,
        TaskStatus::Activating,
        TaskStatus::Running,
        TaskStatus::Deactivating,
        TaskStatus::Stopping,
        TaskStatus::Deprovisioning,
        TaskStatus::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether a task at `self` may be reported at `next`: forward only
    /// (repeating the current status is harmless and allowed).
    pub fn may_become(self, next: TaskStatus) -> bool {
        next >= self
    }

    /// Statuses that still hold resources on an instance.
    pub fn holds_resources(self) -> bool {
        self != TaskStatus::Stopped
    }
}

/// ECS's `stoppedReason` texts for the stops berth itself decides.
pub mod stopped_reason {
    pub const ESSENTIAL_CONTAINER_EXITED: &str = "Essential container in task exited";
    pub const USER_INITIATED: &str = "Task stopped by user";
}

/// A container's settings after the task's overrides apply.
pub fn effective_container(
    def: &ContainerDefinition,
    overrides: Option<&TaskOverride>,
) -> ContainerDefinition {
    let mut c = def.clone();
    let Some(o) = overrides
        .and_then(|o| o.container_overrides.as_ref())
        .and_then(|list| list.iter().find(|o| o.name.is_some() && o.name == def.name))
    else {
        return c;
    };
    if let Some(cmd) = &o.command {
        c.command = Some(cmd.clone());
    }
    if let Some(env) = &o.environment {
        // Overrides add to and replace the definition's variables by name.
        let mut merged: Vec<KeyValuePair> = c.environment.take().unwrap_or_default();
        for kv in env {
            match merged.iter_mut().find(|e| e.name == kv.name) {
                Some(e) => e.value = kv.value.clone(),
                None => merged.push(kv.clone()),
            }
        }
        c.environment = Some(merged);
    }
    if o.cpu.is_some() {
        c.cpu = o.cpu;
    }
    if o.memory.is_some() {
        c.memory = o.memory;
    }
    if o.memory_reservation.is_some() {
        c.memory_reservation = o.memory_reservation;
    }
    c
}

/// Checks that every container override names a container of the task.
pub fn validate_overrides(
    td: &TaskDefinition,
    overrides: Option<&TaskOverride>,
) -> Result<(), EcsError> {
    let names: Vec<&str> = td
        .container_definitions
        .iter()
        .flatten()
        .filter_map(|c| c.name.as_deref())
        .collect();
    for o in overrides
        .and_then(|o| o.container_overrides.as_ref())
        .into_iter()
        .flatten()
    {
        let n = o.name.as_deref().unwrap_or("");
        if !names.contains(&n) {
            return Err(EcsError::invalid(format!(
                "Override for container named {n} is not a container in the TaskDefinition."
            )));
        }
    }
    Ok(())
}

/// What a task needs from an instance: CPU units, MiB, and fixed host ports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Needs {
    pub cpu: i64,
    pub memory: i64,
    pub host_ports: Vec<(TransportProtocol, u16)>,
}

/// The resources a task reserves: the task-level size when set (after
/// overrides), else the sum over containers (memory: the reservation when
/// set, else the hard limit). Host ports: fixed `hostPort`s, and in `host`
/// mode (or when the runtime gives awsvpc tasks no namespace of their own)
/// every container port.
pub fn needs(
    td: &TaskDefinition,
    overrides: Option<&TaskOverride>,
    awsvpc_shares_host: bool,
) -> Needs {
    let containers: Vec<ContainerDefinition> = td
        .container_definitions
        .iter()
        .flatten()
        .map(|c| effective_container(c, overrides))
        .collect();
    let task_cpu = overrides
        .and_then(|o| o.cpu.as_deref())
        .or(td.cpu.as_deref())
        .and_then(crate::fargate::parse_cpu);
    let task_memory = overrides
        .and_then(|o| o.memory.as_deref())
        .or(td.memory.as_deref())
        .and_then(crate::fargate::parse_memory);
    let cpu = task_cpu.map(i64::from).unwrap_or_else(|| {
        containers
            .iter()
            .map(|c| i64::from(c.cpu.unwrap_or(0)))
            .sum()
    });
    let memory = task_memory.map(i64::from).unwrap_or_else(|| {
        containers
            .iter()
            .map(|c| i64::from(c.memory_reservation.or(c.memory).unwrap_or(0)))
            .sum()
    });
    let mode = td.network_mode.clone().unwrap_or(NetworkMode::Bridge);
    let all_ports =
        mode == NetworkMode::Host || (mode == NetworkMode::Awsvpc && awsvpc_shares_host);
    let mut host_ports = Vec::new();
    // In its own namespace an awsvpc task's ports are its ENI's, not the host's.
    let isolated = mode == NetworkMode::Awsvpc && !awsvpc_shares_host;
    for c in containers.iter().filter(|_| !isolated) {
        for pm in c.port_mappings.iter().flatten() {
            let port = match pm.host_port {
                Some(h) if h > 0 => Some(h),
                _ if all_ports => pm.container_port,
                _ => None,
            };
            if let Some(p) = port.and_then(|p| u16::try_from(p).ok()) {
                host_ports.push((pm.protocol.clone().unwrap_or(TransportProtocol::Tcp), p));
            }
        }
    }
    Needs {
        cpu,
        memory,
        host_ports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::ecs::{ContainerOverride, PortMapping};

    fn td(mode: NetworkMode) -> TaskDefinition {
        TaskDefinition {
            network_mode: Some(mode),
            container_definitions: Some(vec![
                ContainerDefinition {
                    name: Some("web".into()),
                    cpu: Some(256),
                    memory: Some(512),
                    memory_reservation: Some(128),
                    port_mappings: Some(vec![
                        PortMapping {
                            container_port: Some(80),
                            host_port: Some(8080),
                            ..Default::default()
                        },
                        PortMapping {
                            container_port: Some(81),
                            host_port: Some(0),
                            ..Default::default()
                        },
                    ]),
                    environment: Some(vec![KeyValuePair {
                        name: Some("A".into()),
                        value: Some("1".into()),
                    }]),
                    ..Default::default()
                },
                ContainerDefinition {
                    name: Some("side".into()),
                    cpu: Some(0),
                    memory: Some(64),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn statuses_only_move_forward() {
        assert!(TaskStatus::Pending.may_become(TaskStatus::Running));
        assert!(TaskStatus::Running.may_become(TaskStatus::Running));
        assert!(!TaskStatus::Stopped.may_become(TaskStatus::Running));
        assert_eq!(
            TaskStatus::parse("DEPROVISIONING"),
            Some(TaskStatus::Deprovisioning)
        );
        assert!(TaskStatus::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn needs_sum_containers_or_take_the_task_size() {
        let n = needs(&td(NetworkMode::Bridge), None, false);
        assert_eq!((n.cpu, n.memory), (256, 128 + 64));
        assert_eq!(n.host_ports, vec![(TransportProtocol::Tcp, 8080)]);
        let n = needs(&td(NetworkMode::Host), None, false);
        assert_eq!(n.host_ports.len(), 2);
        let mut sized = td(NetworkMode::Awsvpc);
        sized.cpu = Some("1024".into());
        sized.memory = Some("2048".into());
        let o = TaskOverride {
            memory: Some("4096".into()),
            ..Default::default()
        };
        let n = needs(&sized, Some(&o), false);
        assert_eq!((n.cpu, n.memory), (1024, 4096));
    }

    #[test]
    fn awsvpc_ports_are_host_ports_only_without_a_namespace() {
        let awsvpc = td(NetworkMode::Awsvpc);
        assert!(needs(&awsvpc, None, false).host_ports.is_empty());
        assert_eq!(
            needs(&awsvpc, None, true).host_ports,
            [(TransportProtocol::Tcp, 8080), (TransportProtocol::Tcp, 81)]
        );
    }

    #[test]
    fn overrides_apply_by_container_name() {
        let t = td(NetworkMode::Bridge);
        let o = TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: Some("web".into()),
                command: Some(vec!["echo".into(), "hi".into()]),
                environment: Some(vec![
                    KeyValuePair {
                        name: Some("A".into()),
                        value: Some("2".into()),
                    },
                    KeyValuePair {
                        name: Some("B".into()),
                        value: Some("3".into()),
                    },
                ]),
                memory: Some(1024),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let web = effective_container(&t.container_definitions.as_ref().unwrap()[0], Some(&o));
        assert_eq!(
            web.command.as_deref(),
            Some(&["echo".to_string(), "hi".to_string()][..])
        );
        let env = web.environment.unwrap();
        assert_eq!(env.len(), 2);
        assert_eq!(env[0].value.as_deref(), Some("2"));
        assert_eq!(web.memory, Some(1024));
        let side = effective_container(&t.container_definitions.as_ref().unwrap()[1], Some(&o));
        assert_eq!(side.command, None);
        assert!(validate_overrides(&t, Some(&o)).is_ok());
        let bad = TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: Some("nope".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            validate_overrides(&t, Some(&bad)).unwrap_err().aws_code(),
            "InvalidParameterException"
        );
    }
}
