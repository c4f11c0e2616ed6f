//! Tasks without I/O: their lifecycle (statuses, desired status, stops,
//! and the transitions reports and requests make), what a task demands of
//! an instance, and its containers' settings once overrides apply.

mod demand;
pub mod lifecycle;
mod overrides;
pub mod status;
pub mod stop;

pub use demand::{demand, Demand, Protocol};
pub use lifecycle::{container_status, TaskStatuses};
pub use overrides::{effective_container, validate_overrides};
pub use status::{ContainerStatus, DesiredStatus, TaskStatus};
pub use stop::{Stop, TaskStopCode};

#[cfg(test)]
pub(crate) mod tests {
    use berth_wire::ecs::{
        ContainerDefinition, KeyValuePair, NetworkMode, PortMapping, TaskDefinition,
    };

    /// Two containers: `web` (ports 80 -> 8080 and 81 -> dynamic), `side`.
    pub(crate) fn td(mode: NetworkMode) -> TaskDefinition {
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
}
