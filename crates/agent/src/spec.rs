//! From an ECS container definition (after the task's overrides) to what a
//! runtime runs.

use berth_core::task::effective_container;
use berth_runtime::{
    ContainerKey, ContainerSpec, HealthCheckSpec, DEFAULT_STOP_TIMEOUT, LABEL_CLUSTER,
    LABEL_CONTAINER, LABEL_TASK_ARN,
};
use berth_wire::ecs::{ContainerDefinition, Task, TaskDefinition};
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

pub fn container_spec(task: &Task, cluster: &str, c: &ContainerDefinition) -> ContainerSpec {
    let task_arn = task.task_arn.clone().unwrap_or_default();
    let name = c.name.clone().unwrap_or_default();
    let mut spec = ContainerSpec::new(
        ContainerKey::new(task_id(&task_arn), &name),
        c.image.clone().unwrap_or_default(),
    );
    spec.labels.insert(LABEL_CLUSTER.into(), cluster.into());
    spec.labels.insert(LABEL_TASK_ARN.into(), task_arn);
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
    spec
}
