//! The checks CreateService, UpdateService and CreateTaskSet share, with
//! ECS's error texts.

use super::*;
use berth_core::names;

/// ECS's Fargate platform versions; `LATEST` resolves to the newest.
const PLATFORM_VERSIONS: &[&str] = &["1.4.0", "1.3.0"];
pub const LATEST_PLATFORM: &str = "1.4.0";

pub fn service_name(name: &str) -> Result<(), EcsError> {
    if names::is_valid_name(name) {
        Ok(())
    } else {
        Err(EcsError::invalid(format!(
            "ServiceName must match ^[a-zA-Z0-9\\-_]{{1,255}}$, but was {name}"
        )))
    }
}

/// `clientToken`: up to 36 ASCII characters from 33 to 126.
pub fn client_token(token: Option<&str>) -> Result<(), EcsError> {
    match token {
        Some(t) if t.is_empty() || t.len() > 36 || !t.bytes().all(|b| (33..=126).contains(&b)) => {
            Err(EcsError::invalid(
                "clientToken must be 1 to 36 ASCII characters in the range 33-126.",
            ))
        }
        _ => Ok(()),
    }
}

/// The platform version a service shows (`LATEST` unless given) and the
/// one its tasks run (resolved), for FARGATE; none otherwise.
pub fn platform(
    launch_type: &LaunchType,
    requested: Option<&str>,
) -> Result<(Option<String>, Option<String>), EcsError> {
    if *launch_type != LaunchType::Fargate {
        return match requested {
            Some(_) => Err(EcsError::invalid(format!(
                "The platform version must be null when specifying an {} launch type.",
                launch_type.as_str()
            ))),
            None => Ok((None, None)),
        };
    }
    let shown = requested.unwrap_or("LATEST");
    let resolved = match shown {
        "LATEST" => LATEST_PLATFORM,
        v if PLATFORM_VERSIONS.contains(&v) => v,
        v => {
            return Err(EcsError::PlatformUnknown(format!(
                "The specified platform version ({v}) doesn't exist."
            )))
        }
    };
    Ok((Some(shown.to_string()), Some(resolved.to_string())))
}

/// Placement strategies and constraints as ECS accepts them for a service.
pub fn placement(
    launch_type: &LaunchType,
    daemon: bool,
    strategies: Option<&[PlacementStrategy]>,
    constraints: Option<&[PlacementConstraint]>,
) -> Result<(), EcsError> {
    let strategies = strategies.unwrap_or_default();
    let constraints = constraints.unwrap_or_default();
    if *launch_type == LaunchType::Fargate && !constraints.is_empty() {
        return Err(EcsError::invalid(
            "Placement constraints are not supported with FARGATE launch type.",
        ));
    }
    if *launch_type == LaunchType::Fargate && !strategies.is_empty() {
        return Err(EcsError::invalid(
            "Placement strategies are not supported with FARGATE launch type.",
        ));
    }
    if daemon && !strategies.is_empty() {
        return Err(EcsError::invalid(
            "The daemon scheduling strategy does not support placement strategies. Remove the placement strategy and try again",
        ));
    }
    if strategies.len() > 5 {
        return Err(EcsError::invalid("Maximum number of strategies is 5."));
    }
    if constraints.len() > 10 {
        return Err(EcsError::invalid("Maximum number of constraints is 10."));
    }
    for s in strategies {
        let field = s.field.as_deref();
        match s.r#type.as_ref() {
            Some(PlacementStrategyType::Random) if field.is_some_and(|f| !f.is_empty()) => {
                return Err(EcsError::invalid("random field should not be specified."))
            }
            Some(PlacementStrategyType::Binpack)
                if !field.is_some_and(|f| {
                    f.eq_ignore_ascii_case("cpu") || f.eq_ignore_ascii_case("memory")
                }) =>
            {
                return Err(EcsError::invalid(format!(
                    "binpack field '{}' is invalid.",
                    field.unwrap_or_default()
                )))
            }
            Some(PlacementStrategyType::Spread) if field.is_none_or(str::is_empty) => {
                return Err(EcsError::invalid("spread field must be specified."))
            }
            None => return Err(EcsError::invalid("Placement strategy type is required.")),
            _ => {}
        }
    }
    crate::ecs::tasks::launch::constraints_of(Some(constraints))?;
    Ok(())
}

/// `networkConfiguration` only for awsvpc task definitions, and required
/// for them.
pub fn network(
    td: &TaskDefinition,
    network: Option<&NetworkConfiguration>,
) -> Result<(), EcsError> {
    let awsvpc = td.network_mode == Some(NetworkMode::Awsvpc);
    match (
        awsvpc,
        network.and_then(|n| n.awsvpc_configuration.as_ref()),
    ) {
        (false, Some(_)) => Err(EcsError::invalid(
            "Network Configuration is not valid for the given networkMode of this task definition.",
        )),
        (true, None) => Err(EcsError::invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        )),
        (true, Some(vpc)) if vpc.subnets.is_empty() => {
            Err(EcsError::invalid("subnets can not be empty."))
        }
        _ => Ok(()),
    }
}

/// Load balancers name containers and ports of the task definition; at
/// most one service registry.
pub fn traffic(
    td: Option<&TaskDefinition>,
    load_balancers: &[LoadBalancer],
    registries: &[ServiceRegistry],
) -> Result<(), EcsError> {
    if registries.len() > 1 {
        return Err(EcsError::invalid(
            "service registries can have at most 1 items.",
        ));
    }
    for lb in load_balancers {
        if lb.load_balancer_name.is_some() && lb.target_group_arn.is_some() {
            return Err(EcsError::invalid(
                "loadBalancerName and targetGroupArn cannot both be specified. You must specify either a loadBalancerName or a targetGroupArn in all loadBalancer entries",
            ));
        }
        let Some(td) = td else { continue };
        let name = lb.container_name.as_deref().unwrap_or_default();
        let Some(c) = td
            .container_definitions
            .iter()
            .flatten()
            .find(|c| c.name.as_deref() == Some(name))
        else {
            return Err(EcsError::invalid(format!(
                "The container {name} does not exist in the task definition."
            )));
        };
        if let Some(port) = lb.container_port {
            let mapped = c
                .port_mappings
                .iter()
                .flatten()
                .any(|p| p.container_port == Some(port));
            if !mapped {
                return Err(EcsError::invalid(format!(
                    "The container {name} did not have a container port {port} defined."
                )));
            }
        }
    }
    Ok(())
}

/// What berth cannot provide at all is refused rather than recorded and
/// silently ignored.
pub fn unsupported(
    volumes: Option<&[ServiceVolumeConfiguration]>,
    lattice: Option<&[VpcLatticeConfiguration]>,
) -> Result<(), EcsError> {
    if volumes.is_some_and(|v| !v.is_empty()) {
        return Err(EcsError::invalid(
            "volumeConfigurations configure Amazon EBS volumes, which berth does not have; use task definition volumes instead.",
        ));
    }
    if lattice.is_some_and(|v| !v.is_empty()) {
        return Err(EcsError::invalid(
            "vpcLatticeConfigurations need Amazon VPC Lattice, which berth does not have.",
        ));
    }
    Ok(())
}

/// `healthCheckGracePeriodSeconds`: 0 to 2,147,483,647.
pub fn grace(seconds: Option<i32>) -> Result<(), EcsError> {
    if seconds.is_some_and(|s| s < 0) {
        return Err(EcsError::invalid(
            "healthCheckGracePeriodSeconds must be at least 0.",
        ));
    }
    Ok(())
}

/// The event that says what berth records but does not do yet.
pub fn traffic_note(
    service: &str,
    load_balancers: &[LoadBalancer],
    registries: &[ServiceRegistry],
    connect: Option<&ServiceConnectConfiguration>,
) -> Option<String> {
    let mut parts = Vec::new();
    if !load_balancers.is_empty() {
        parts.push("loadBalancers (no targets are registered and no traffic is routed)");
    }
    if !registries.is_empty() {
        parts.push("serviceRegistries (no tasks are registered for discovery)");
    }
    if connect.is_some_and(|c| c.enabled) {
        parts.push("serviceConnectConfiguration (no Service Connect proxy runs)");
    }
    (!parts.is_empty()).then(|| {
        format!(
            "(service {service}) berth records {} but does not act on them yet; tasks are counted healthy by their own status and health checks.",
            parts.join(", ")
        )
    })
}
