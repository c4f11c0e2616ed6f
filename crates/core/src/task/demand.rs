//! What a task asks of an instance: one type for placement (the
//! scheduler), for what a placed task reserves (stored in task and
//! assignment documents as `needs`), and for the instance views computed
//! from those reservations.

use super::overrides::effective_container;
use berth_wire::ecs::{
    ContainerDefinition, NetworkMode, TaskDefinition, TaskOverride, TransportProtocol,
};
use serde::{Deserialize, Deserializer, Serialize};

/// A host port's transport protocol, stored as `"tcp"` or `"udp"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
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

    /// Anything but UDP counts as TCP, as placement always read it.
    pub fn from_wire(p: &TransportProtocol) -> Protocol {
        match p {
            TransportProtocol::Udp => Protocol::Udp,
            _ => Protocol::Tcp,
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    /// Lenient, so that no stored reservation ever fails to decode: earlier
    /// versions stored the protocol an agent reported verbatim.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(if s.eq_ignore_ascii_case("udp") {
            Protocol::Udp
        } else {
            Protocol::Tcp
        })
    }
}

/// What one task needs from an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    /// CPU units and MiB of memory.
    pub cpu: i64,
    pub memory: i64,
    /// Host ports it takes on any instance: fixed `hostPort`s, and in
    /// `host` mode every container port. (Dynamic ones, host port 0, are
    /// not known before the task runs.)
    pub host_ports: Vec<(Protocol, u16)>,
    /// An awsvpc task's ports, which are host ports only on instances
    /// whose awsvpc tasks share the host's network (no namespaces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awsvpc_ports: Vec<(Protocol, u16)>,
    /// Attributes the instance must have (`requiresAttributes`), with a
    /// required value or any value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, Option<String>)>,
}

impl Demand {
    /// The host ports the task takes on an instance whose awsvpc tasks do
    /// (or do not) share the host's network.
    pub fn ports_on(&self, awsvpc_shares_host: bool) -> impl Iterator<Item = (Protocol, u16)> + '_ {
        self.host_ports
            .iter()
            .chain(self.awsvpc_ports.iter().filter(move |_| awsvpc_shares_host))
            .copied()
    }

    /// What the task holds once placed on such an instance: its CPU, memory
    /// and the host ports resolved for that instance.
    pub fn reservation_on(&self, awsvpc_shares_host: bool) -> Demand {
        Demand {
            cpu: self.cpu,
            memory: self.memory,
            host_ports: self.ports_on(awsvpc_shares_host).collect(),
            awsvpc_ports: Vec::new(),
            attributes: Vec::new(),
        }
    }
}

/// What a task of `td` (with `overrides`) demands: the task-level size
/// when set (after overrides), else the sum over containers (memory: the
/// reservation when set, else the hard limit); its host ports (see
/// [`Demand`]); and the revision's required attributes.
pub fn demand(td: &TaskDefinition, overrides: Option<&TaskOverride>) -> Demand {
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
    let mut host_ports = Vec::new();
    let mut awsvpc_ports = Vec::new();
    for c in &containers {
        for pm in c.port_mappings.iter().flatten() {
            let fixed = pm.host_port.filter(|h| *h > 0);
            let protocol = pm
                .protocol
                .as_ref()
                .map_or(Protocol::Tcp, Protocol::from_wire);
            let port =
                |p: Option<i32>| p.and_then(|p| u16::try_from(p).ok()).map(|p| (protocol, p));
            match mode {
                // In its own namespace an awsvpc task's ports are its ENI's,
                // not the host's; without one, each is a host port.
                NetworkMode::Awsvpc => awsvpc_ports.extend(port(fixed.or(pm.container_port))),
                NetworkMode::Host => host_ports.extend(port(fixed.or(pm.container_port))),
                _ => host_ports.extend(port(fixed)),
            }
        }
    }
    Demand {
        cpu,
        memory,
        host_ports,
        awsvpc_ports,
        attributes: td
            .requires_attributes
            .iter()
            .flatten()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::tests::td;
    use berth_wire::ecs::Attribute;

    #[test]
    fn demand_sums_containers_or_takes_the_task_size() {
        let d = demand(&td(NetworkMode::Bridge), None);
        assert_eq!((d.cpu, d.memory), (256, 128 + 64));
        assert_eq!(d.host_ports, vec![(Protocol::Tcp, 8080)]);
        assert!(d.awsvpc_ports.is_empty());
        let d = demand(&td(NetworkMode::Host), None);
        assert_eq!(d.host_ports.len(), 2);
        let mut sized = td(NetworkMode::Awsvpc);
        sized.cpu = Some("1024".into());
        sized.memory = Some("2048".into());
        sized.requires_attributes = Some(vec![Attribute {
            name: "ecs.capability.task-eni".into(),
            ..Default::default()
        }]);
        let o = TaskOverride {
            memory: Some("4096".into()),
            ..Default::default()
        };
        let d = demand(&sized, Some(&o));
        assert_eq!((d.cpu, d.memory), (1024, 4096));
        assert_eq!(
            d.attributes,
            [("ecs.capability.task-eni".to_string(), None)]
        );
    }

    #[test]
    fn awsvpc_ports_are_host_ports_only_without_a_namespace() {
        let d = demand(&td(NetworkMode::Awsvpc), None);
        assert!(d.host_ports.is_empty());
        let both = [(Protocol::Tcp, 8080), (Protocol::Tcp, 81)];
        assert_eq!(d.awsvpc_ports, both);
        assert_eq!(d.ports_on(false).count(), 0);
        assert_eq!(d.reservation_on(true).host_ports, both);
        assert!(d.reservation_on(false).host_ports.is_empty());
    }

    #[test]
    fn a_reservation_is_stored_as_earlier_versions_stored_it() {
        let stored =
            r#"{"cpu":256,"memory":512,"host_ports":[["tcp",8080],["udp",53],["sctp",9]]}"#;
        let d: Demand = serde_json::from_str(stored).unwrap();
        assert_eq!(
            d.host_ports,
            [
                (Protocol::Tcp, 8080),
                (Protocol::Udp, 53),
                (Protocol::Tcp, 9)
            ]
        );
        let again = serde_json::to_string(&d.reservation_on(false)).unwrap();
        assert_eq!(
            again,
            r#"{"cpu":256,"memory":512,"host_ports":[["tcp",8080],["udp",53],["tcp",9]]}"#
        );
    }
}
