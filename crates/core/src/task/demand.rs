//! What a task asks of an instance.

use super::overrides::effective_container;
use berth_wire::ecs::{
    ContainerDefinition, NetworkMode, TaskDefinition, TaskOverride, TransportProtocol,
};

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
    use crate::task::tests::td;

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
}
