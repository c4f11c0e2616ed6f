//! RegisterTaskDefinition: the checks ECS makes before accepting a task
//! definition, and the defaults it fills in when it stores one.

use crate::{arn, fargate, names, EcsError};
use berth_wire::ecs::{
    Attribute, Compatibility, ContainerCondition, ContainerDefinition, NetworkMode, PortMapping,
    RegisterTaskDefinitionRequest, TaskDefinition, TaskDefinitionStatus, TransportProtocol,
};
use berth_wire::Timestamp;
use std::collections::HashSet;

/// ECS quotas that cannot be raised: containers per task definition, and
/// the size of a task definition's JSON.
pub const MAX_CONTAINERS: usize = 10;
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;

fn client(msg: impl Into<String>) -> EcsError {
    EcsError::Client(msg.into())
}

/// The network mode a task definition runs with: ECS's default is `bridge`.
pub fn effective_network_mode(mode: Option<&NetworkMode>) -> NetworkMode {
    mode.cloned().unwrap_or(NetworkMode::Bridge)
}

fn check_enum<T: AsKnown>(what: &str, v: Option<&T>) -> Result<(), EcsError> {
    match v {
        Some(v) if !v.known() => Err(EcsError::invalid(format!(
            "Invalid value '{}' for {what}. Valid values: {}",
            v.text(),
            v.allowed().join(", ")
        ))),
        _ => Ok(()),
    }
}

/// Lets validation name unknown enum values without knowing each type.
pub trait AsKnown {
    fn known(&self) -> bool;
    fn text(&self) -> &str;
    fn allowed(&self) -> &'static [&'static str];
}

macro_rules! as_known {
    ($($t:ty),*) => {$(
        impl AsKnown for $t {
            fn known(&self) -> bool { self.is_known() }
            fn text(&self) -> &str { self.as_str() }
            fn allowed(&self) -> &'static [&'static str] { <$t>::VALUES }
        }
    )*};
}
as_known!(
    NetworkMode,
    Compatibility,
    TransportProtocol,
    ContainerCondition,
    berth_wire::ecs::PidMode,
    berth_wire::ecs::IpcMode,
    berth_wire::ecs::LogDriver,
    berth_wire::ecs::TaskDefinitionStatus
);

/// A task definition's constraints: at most 10, each a `memberOf` whose
/// expression parses.
fn placement_constraints(
    list: &[berth_wire::ecs::TaskDefinitionPlacementConstraint],
) -> Result<(), EcsError> {
    if list.len() > 10 {
        return Err(EcsError::invalid("Maximum number of constraints is 10."));
    }
    for c in list {
        if c.r#type != Some(berth_wire::ecs::TaskDefinitionPlacementConstraintType::MemberOf) {
            return Err(EcsError::invalid(
                "Task definition placement constraints must be of type memberOf.",
            ));
        }
        let text = c.expression.as_deref().unwrap_or_default();
        crate::query::parse(text)
            .map_err(|e| EcsError::invalid(format!("Invalid expression '{text}': {e}.")))?;
    }
    Ok(())
}

/// Checks a registration request as ECS does. Errors are `ClientException`
/// for definition problems and `InvalidParameterException` for malformed
/// parameter values, matching ECS's split.
pub fn validate(req: &RegisterTaskDefinitionRequest) -> Result<(), EcsError> {
    if !names::is_valid_name(&req.family) {
        return Err(client(
            "Family name must be 1-255 characters: letters, numbers, hyphens and underscores.",
        ));
    }
    check_enum("networkMode", req.network_mode.as_ref())?;
    check_enum("pidMode", req.pid_mode.as_ref())?;
    check_enum("ipcMode", req.ipc_mode.as_ref())?;
    for c in req.requires_compatibilities.iter().flatten() {
        check_enum("requiresCompatibilities", Some(c))?;
    }
    placement_constraints(req.placement_constraints.as_deref().unwrap_or_default())?;
    let mode = effective_network_mode(req.network_mode.as_ref());
    let fargate = requires(req, Compatibility::Fargate);

    let task_cpu = match &req.cpu {
        Some(c) => Some(
            fargate::parse_cpu(c)
                .ok_or_else(|| client(format!("Invalid 'cpu' setting for task: '{c}'.")))?,
        ),
        None => None,
    };
    let task_memory = match &req.memory {
        Some(m) => Some(
            fargate::parse_memory(m)
                .ok_or_else(|| client(format!("Invalid 'memory' setting for task: '{m}'.")))?,
        ),
        None => None,
    };
    if fargate {
        if mode != NetworkMode::Awsvpc {
            return Err(client("Fargate only supports network mode 'awsvpc'."));
        }
        let (Some(cpu), Some(memory)) = (task_cpu, task_memory) else {
            return Err(client(
                "Fargate requires that 'cpu' and 'memory' be defined at the task level.",
            ));
        };
        if !fargate::is_supported(cpu, memory) {
            return Err(client(format!(
                "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory."
            )));
        }
    }

    if req.container_definitions.is_empty() {
        return Err(client("Container list cannot be empty."));
    }
    if req.container_definitions.len() > MAX_CONTAINERS {
        return Err(client(format!(
            "Too many containers: a task definition can have at most {MAX_CONTAINERS}."
        )));
    }
    let size = serde_json::to_vec(req).map(|v| v.len()).unwrap_or(0);
    if size > MAX_DEFINITION_BYTES {
        return Err(client(format!(
            "The task definition is {size} bytes; the limit is {MAX_DEFINITION_BYTES} bytes (64 KiB)."
        )));
    }
    let mut seen = HashSet::new();
    for c in &req.container_definitions {
        let name = c.name.as_deref().unwrap_or("");
        if !names::is_valid_name(name) {
            return Err(client(format!(
                "Container name '{name}' is invalid: 1-255 letters, numbers, hyphens and underscores."
            )));
        }
        if !seen.insert(name) {
            return Err(client(format!(
                "Duplicate container name '{name}' in task definition."
            )));
        }
    }
    if !req
        .container_definitions
        .iter()
        .any(|c| c.essential.unwrap_or(true))
    {
        return Err(client(
            "Task definition does not have any essential container.",
        ));
    }

    let volume_names: HashSet<&str> = req
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.name.as_deref())
        .collect();
    for c in &req.container_definitions {
        validate_container(c, &mode, fargate, task_memory, &seen, &volume_names)?;
    }
    if let Some(vols) = &req.volumes {
        let mut seen_vols = HashSet::new();
        for v in vols {
            let n = v.name.as_deref().unwrap_or("");
            if !names::is_valid_name(n) {
                return Err(client(format!("Invalid volume name '{n}'.")));
            }
            if !seen_vols.insert(n) {
                return Err(client(format!("Duplicate volume name '{n}'.")));
            }
        }
    }
    if fargate {
        // What would reach into the host: see `fargate::sandbox`.
        fargate::check_definition(req.into())?;
    }
    if let Some(e) = &req.ephemeral_storage {
        if !(21..=200).contains(&e.size_in_gi_b) {
            return Err(client(
                "The ephemeral storage size must be between 21 and 200 GiB.",
            ));
        }
    }
    if let Some(t) = &req.tags {
        crate::tags::validate(t)?;
        if t.len() > crate::tags::MAX_TAGS {
            return Err(EcsError::invalid(
                "A task definition can have at most 50 tags.",
            ));
        }
    }
    Ok(())
}

fn validate_container(
    c: &ContainerDefinition,
    mode: &NetworkMode,
    fargate: bool,
    task_memory: Option<u32>,
    containers: &HashSet<&str>,
    volumes: &HashSet<&str>,
) -> Result<(), EcsError> {
    let name = c.name.as_deref().unwrap_or("");
    if c.image.as_deref().unwrap_or("").trim().is_empty() {
        return Err(client(format!(
            "Container.image should not be null or empty (container '{name}')."
        )));
    }
    if let Some(m) = c.memory {
        if m < 6 {
            return Err(client(format!(
                "Invalid 'memory' setting for container '{name}'. The minimum is 6 MiB."
            )));
        }
        if let Some(r) = c.memory_reservation {
            if r > m {
                return Err(client(format!(
                    "Invalid 'memoryReservation' setting for container '{name}'. It must not be greater than 'memory'."
                )));
            }
        }
        if let Some(t) = task_memory {
            if m as u32 > t {
                return Err(client(format!(
                    "Invalid 'memory' setting for container '{name}'. It is greater than the task's memory."
                )));
            }
        }
    }
    if let Some(r) = c.memory_reservation {
        if r < 4 {
            return Err(client(format!(
                "Invalid 'memoryReservation' setting for container '{name}'. The minimum is 4 MiB."
            )));
        }
    }
    if task_memory.is_none() && !fargate && c.memory.is_none() && c.memory_reservation.is_none() {
        return Err(client(format!(
            "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
        )));
    }
    if *mode == NetworkMode::Awsvpc && c.hostname.is_some() {
        return Err(client(format!(
            "Container '{name}': the hostname parameter is not supported in the awsvpc network mode."
        )));
    }
    if c.cpu.is_some_and(|cpu| cpu < 0) {
        return Err(client(format!(
            "Invalid 'cpu' setting for container '{name}'."
        )));
    }
    if (fargate || *mode == NetworkMode::Awsvpc) && c.links.as_ref().is_some_and(|l| !l.is_empty())
    {
        return Err(client("Links are not supported when networkMode=awsvpc."));
    }
    for pm in c.port_mappings.iter().flatten() {
        validate_port_mapping(name, pm, mode)?;
    }
    for d in c.depends_on.iter().flatten() {
        check_enum("dependsOn.condition", Some(&d.condition))?;
        if d.container_name == name {
            return Err(client(format!(
                "Container '{name}' cannot depend on itself."
            )));
        }
        if !containers.contains(d.container_name.as_str()) {
            return Err(client(format!(
                "Container '{name}' depends on unknown container '{}'.",
                d.container_name
            )));
        }
    }
    for m in c.mount_points.iter().flatten() {
        let src = m.source_volume.as_deref().unwrap_or("");
        if !volumes.contains(src) {
            return Err(client(format!(
                "Invalid 'mountPoints' setting for container '{name}': unknown volume '{src}'."
            )));
        }
    }
    for v in c.volumes_from.iter().flatten() {
        let src = v.source_container.as_deref().unwrap_or("");
        if !containers.contains(src) || src == name {
            return Err(client(format!(
                "Invalid 'volumesFrom' setting for container '{name}': unknown container '{src}'."
            )));
        }
    }
    if let Some(h) = &c.health_check {
        if h.command.is_empty() {
            return Err(client(format!(
                "Health check command for container '{name}' is empty."
            )));
        }
        let within = |v: Option<i32>, lo: i32, hi: i32| v.is_none_or(|v| (lo..=hi).contains(&v));
        if !within(h.interval, 5, 300)
            || !within(h.timeout, 2, 120)
            || !within(h.retries, 1, 10)
            || !within(h.start_period, 0, 300)
        {
            return Err(client(format!(
                "Invalid health check for container '{name}': interval 5-300, timeout 2-120, retries 1-10, startPeriod 0-300."
            )));
        }
    }
    if let Some(l) = &c.log_configuration {
        check_enum("logConfiguration.logDriver", Some(&l.log_driver))?;
    }
    Ok(())
}

fn validate_port_mapping(name: &str, pm: &PortMapping, mode: &NetworkMode) -> Result<(), EcsError> {
    check_enum("portMappings.protocol", pm.protocol.as_ref())?;
    let in_range = |p: i32| (1..=65535).contains(&p);
    match (pm.container_port, &pm.container_port_range) {
        (Some(p), _) if !in_range(p) => {
            return Err(client(format!(
                "Invalid 'containerPort' {p} for container '{name}': must be 1-65535."
            )))
        }
        (None, None) => {
            return Err(client(format!(
                "Container '{name}': a port mapping needs 'containerPort' or 'containerPortRange'."
            )))
        }
        _ => {}
    }
    if let Some(h) = pm.host_port {
        if !(0..=65535).contains(&h) {
            return Err(client(format!(
                "Invalid 'hostPort' {h} for container '{name}'."
            )));
        }
        if matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host)
            && h != 0
            && Some(h) != pm.container_port
        {
            return Err(client(format!(
                "When networkMode={}, the host ports and container ports in port mappings must match.",
                mode.as_str()
            )));
        }
    }
    Ok(())
}

fn requires(req: &RegisterTaskDefinitionRequest, c: Compatibility) -> bool {
    req.requires_compatibilities
        .iter()
        .flatten()
        .any(|x| *x == c)
}

/// Where a registered definition comes from and when.
pub struct Registration<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub revision: i32,
    pub registered_by: &'a str,
    pub now: Timestamp,
}

/// Builds the stored task definition from a validated request, filling the
/// defaults ECS fills (essential, cpu, empty lists, port protocol and host
/// ports) and computing `compatibilities` and `requiresAttributes`.
pub fn build(req: RegisterTaskDefinitionRequest, reg: &Registration) -> TaskDefinition {
    let mode = effective_network_mode(req.network_mode.as_ref());
    let containers: Vec<ContainerDefinition> = req
        .container_definitions
        .into_iter()
        .map(|c| with_container_defaults(c, mode.clone()))
        .collect();
    let cpu = req
        .cpu
        .as_deref()
        .and_then(fargate::parse_cpu)
        .map(|v| v.to_string());
    let memory = req
        .memory
        .as_deref()
        .and_then(fargate::parse_memory)
        .map(|v| v.to_string());
    let fargate_ok = mode == NetworkMode::Awsvpc
        && matches!((cpu.as_deref(), memory.as_deref()), (Some(c), Some(m))
            if fargate::is_supported(c.parse().unwrap_or(0), m.parse().unwrap_or(0)))
        && fargate::check_definition(fargate::Definition {
            network_mode: Some(&mode),
            pid_mode: req.pid_mode.as_ref(),
            ipc_mode: req.ipc_mode.as_ref(),
            containers: &containers,
            volumes: req.volumes.as_deref().unwrap_or_default(),
        })
        .is_ok();
    let mut compatibilities = Vec::new();
    if mode != NetworkMode::Awsvpc {
        compatibilities.push(Compatibility::External);
    }
    compatibilities.push(Compatibility::Ec2);
    if fargate_ok {
        compatibilities.push(Compatibility::Fargate);
    }
    let requires_attributes = required_attributes(
        &containers,
        &mode,
        req.task_role_arn.is_some(),
        req.execution_role_arn.is_some(),
    );
    TaskDefinition {
        task_definition_arn: Some(arn::task_definition(
            reg.region,
            reg.account,
            &req.family,
            reg.revision,
        )),
        container_definitions: Some(containers),
        family: Some(req.family),
        task_role_arn: req.task_role_arn,
        execution_role_arn: req.execution_role_arn,
        network_mode: req.network_mode,
        revision: Some(reg.revision),
        volumes: Some(req.volumes.unwrap_or_default()),
        status: Some(TaskDefinitionStatus::Active),
        requires_attributes: Some(requires_attributes),
        placement_constraints: Some(req.placement_constraints.unwrap_or_default()),
        compatibilities: Some(compatibilities),
        runtime_platform: req.runtime_platform,
        requires_compatibilities: req.requires_compatibilities,
        cpu,
        memory,
        inference_accelerators: req.inference_accelerators,
        pid_mode: req.pid_mode,
        ipc_mode: req.ipc_mode,
        proxy_configuration: req.proxy_configuration,
        registered_at: Some(reg.now),
        deregistered_at: None,
        delete_requested_at: None,
        registered_by: Some(reg.registered_by.to_string()),
        ephemeral_storage: req.ephemeral_storage,
        enable_fault_injection: req.enable_fault_injection,
    }
}

fn with_container_defaults(mut c: ContainerDefinition, mode: NetworkMode) -> ContainerDefinition {
    c.essential.get_or_insert(true);
    c.cpu.get_or_insert(0);
    c.environment.get_or_insert_with(Vec::new);
    c.mount_points.get_or_insert_with(Vec::new);
    c.volumes_from.get_or_insert_with(Vec::new);
    c.system_controls.get_or_insert_with(Vec::new);
    for pm in c.port_mappings.get_or_insert_with(Vec::new) {
        pm.protocol.get_or_insert(TransportProtocol::Tcp);
        if pm.host_port.is_none() && pm.container_port_range.is_none() {
            pm.host_port = match mode {
                NetworkMode::Awsvpc | NetworkMode::Host => pm.container_port,
                _ => Some(0),
            };
        }
    }
    c
}

fn required_attributes(
    containers: &[ContainerDefinition],
    mode: &NetworkMode,
    task_role: bool,
    execution_role: bool,
) -> Vec<Attribute> {
    let mut names: Vec<String> = vec!["com.amazonaws.ecs.capability.docker-remote-api.1.18".into()];
    if *mode == NetworkMode::Awsvpc {
        names.push("ecs.capability.task-eni".into());
    }
    if task_role {
        names.push("com.amazonaws.ecs.capability.task-iam-role".into());
    }
    for c in containers {
        if let Some(l) = &c.log_configuration {
            names.push(format!(
                "com.amazonaws.ecs.capability.logging-driver.{}",
                l.log_driver.as_str()
            ));
            if execution_role && l.log_driver.as_str() == "awslogs" {
                names.push("ecs.capability.execution-role-awslogs".into());
            }
        }
        if c.health_check.is_some() {
            names.push("ecs.capability.container-health-check".into());
        }
        if c.depends_on.as_ref().is_some_and(|d| !d.is_empty()) {
            names.push("ecs.capability.container-ordering".into());
        }
        if c.secrets.as_ref().is_some_and(|s| !s.is_empty()) {
            names.push("ecs.capability.secrets.ssm.environment-variables".into());
        }
    }
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
        .into_iter()
        .map(|name| Attribute {
            name,
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests;
