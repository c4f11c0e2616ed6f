//! UpdateService. What changes the tasks themselves (task definition,
//! network configuration, platform version, load balancers, service
//! registries, Service Connect, or `forceNewDeployment`) starts a new
//! deployment; the rest (desired count, deployment configuration,
//! placement, grace period, tags and execute-command settings, capacity
//! provider strategy) applies to the running service and its next tasks,
//! as on ECS.

use super::create::{controller, task_definition};
use super::deployments::{self, RevisionInput};
use super::validate;
use super::*;
use crate::ecs::tasks::launch;
use crate::records::{retry, Attempt};
use berth_core::service::{self as rules, Kind};

pub async fn update(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UpdateServiceRequest,
) -> Result<UpdateServiceResponse, EcsError> {
    let (cluster, found) = find_active(ecs, ctx, input.cluster.as_deref(), &input.service).await?;
    let service_key = found.value.id();
    let _serialized = ecs.lock(ctx, kind::SERVICE, &service_key).await;
    let stored = retry(ecs.store(), async || {
        let (_, current) = find_active(ecs, ctx, input.cluster.as_deref(), &input.service).await?;
        let mut doc = current.value.clone();
        let writes = apply(ecs, ctx, &cluster, &mut doc, &input).await?;
        let mut all = vec![Versioned {
            value: doc.clone(),
            version: current.version,
        }
        .write()];
        all.extend(writes);
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: all,
            value: doc,
        })
    })
    .await?;
    ecs.services.wake(ctx, &service_key);
    Ok(UpdateServiceResponse {
        service: Some(queries::view(ecs, ctx, &stored, false).await?),
    })
}

/// Applies the update to `doc`; returns the records a new deployment
/// writes, if it starts one.
async fn apply(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &Cluster,
    doc: &mut ServiceDoc,
    input: &UpdateServiceRequest,
) -> Result<Vec<berth_store::Write>, EcsError> {
    let daemon = doc.daemon();
    let external = doc.external();
    if input.deployment_controller.is_some() {
        let wanted = controller(input.deployment_controller.as_ref())?;
        let current = doc
            .service
            .deployment_controller
            .as_ref()
            .map_or(DeploymentControllerType::Ecs, |c| c.r#type.clone());
        if wanted != current {
            return Err(EcsError::invalid(format!(
                "Changing the deployment controller of a service from {current} to {wanted} is not supported by berth."
            )));
        }
    }
    if daemon && input.desired_count.is_some() {
        return Err(EcsError::invalid(
            "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again",
        ));
    }
    if input.desired_count.is_some_and(|n| n < 0) {
        return Err(EcsError::invalid("desiredCount must be at least 0."));
    }
    let redeploys = input.task_definition.is_some()
        || input.network_configuration.is_some()
        || input.platform_version.is_some()
        || input.load_balancers.is_some()
        || input.service_registries.is_some()
        || input.service_connect_configuration.is_some()
        || input.force_new_deployment == Some(true);
    if external && redeploys {
        return Err(EcsError::invalid(
            "Services with the EXTERNAL deployment controller change their tasks through task sets (CreateTaskSet); only desiredCount, placement, healthCheckGracePeriodSeconds, enableECSManagedTags and propagateTags can be updated.",
        ));
    }
    validate::unsupported(
        input.volume_configurations.as_deref(),
        input.vpc_lattice_configurations.as_deref(),
    )?;
    validate::grace(input.health_check_grace_period_seconds)?;
    let s = &mut doc.service;
    // Capacity: a new strategy (or launch type) applies to new tasks.
    let launch_type = match &input.capacity_provider_strategy {
        Some(list) if list.is_empty() => {
            // An empty list goes back to the launch type.
            s.capacity_provider_strategy = None;
            s.launch_type.clone().unwrap_or(LaunchType::Ec2)
        }
        Some(list) => {
            if daemon {
                return Err(EcsError::invalid(
                    "Specifying a capacity provider strategy is not supported when you create a service using the DAEMON scheduling strategy.",
                ));
            }
            let lt = launch::launch_type_of(None, Some(list), cluster)?;
            s.capacity_provider_strategy = Some(list.clone());
            s.launch_type = None;
            lt
        }
        None => launch::launch_type_of(
            s.launch_type.as_ref(),
            s.capacity_provider_strategy.as_ref(),
            cluster,
        )?,
    };
    let placement_strategy = input
        .placement_strategy
        .clone()
        .or_else(|| s.placement_strategy.clone());
    let placement_constraints = input
        .placement_constraints
        .clone()
        .or_else(|| s.placement_constraints.clone());
    validate::placement(
        &launch_type,
        daemon,
        input.placement_strategy.as_deref(),
        placement_constraints.as_deref(),
    )?;
    let kind = if external {
        Kind::External
    } else if daemon {
        Kind::Daemon
    } else {
        Kind::Replica
    };
    let config = rules::deployment_configuration(
        input.deployment_configuration.as_ref(),
        kind,
        s.deployment_configuration.as_ref(),
    )?;
    let (platform_shown, platform_resolved) = validate::platform(
        &launch_type,
        input
            .platform_version
            .as_deref()
            .or(s.platform_version.as_deref()),
    )?;
    // Everything checked: apply.
    if let Some(n) = input.desired_count {
        s.desired_count = Some(n);
    }
    s.deployment_configuration = Some(config);
    s.placement_strategy = placement_strategy;
    s.placement_constraints = placement_constraints;
    if let Some(g) = input.health_check_grace_period_seconds {
        s.health_check_grace_period_seconds = Some(g);
    }
    if let Some(e) = input.enable_execute_command {
        s.enable_execute_command = Some(e);
    }
    if let Some(e) = input.enable_ecs_managed_tags {
        s.enable_ecs_managed_tags = Some(e);
    }
    if let Some(p) = &input.propagate_tags {
        if !p.is_known() {
            return Err(EcsError::invalid(format!("Invalid propagateTags '{p}'.")));
        }
        s.propagate_tags = Some(p.clone());
    }
    if let Some(r) = &input.availability_zone_rebalancing {
        if daemon && *r == AvailabilityZoneRebalancing::Enabled {
            return Err(EcsError::invalid(
                "Availability Zone Rebalancing does not support DAEMON as scheduling strategy.",
            ));
        }
        s.availability_zone_rebalancing = Some(r.clone());
    }
    if external {
        // Each task set's size is a share of the desired count (and an
        // EXTERNAL service never redeploys: refused above).
        super::task_sets::refresh_targets(doc);
        return Ok(Vec::new());
    }
    if !redeploys {
        return Ok(Vec::new());
    }
    let reference = input
        .task_definition
        .clone()
        .or_else(|| s.task_definition.clone())
        .unwrap_or_default();
    let network = input
        .network_configuration
        .clone()
        .or_else(|| s.network_configuration.clone());
    let td = task_definition(ecs, ctx, &reference, &launch_type, network.as_ref()).await?;
    let load_balancers = input
        .load_balancers
        .clone()
        .or_else(|| s.load_balancers.clone())
        .unwrap_or_default();
    let registries = input
        .service_registries
        .clone()
        .or_else(|| s.service_registries.clone())
        .unwrap_or_default();
    validate::traffic(Some(&td), &load_balancers, &registries)?;
    s.task_definition = td.task_definition_arn.clone();
    s.network_configuration = network.clone();
    s.platform_version = platform_shown;
    s.platform_family = platform_resolved.as_ref().map(|_| "Linux".to_string());
    s.load_balancers = Some(load_balancers.clone());
    s.service_registries = Some(registries.clone());
    if let Some(c) = &input.service_connect_configuration {
        doc.namespace = c.namespace.clone().or(doc.namespace.clone());
    }
    let revision = RevisionInput {
        task_definition: Some(td),
        launch_type: doc.service.launch_type.clone(),
        capacity_provider_strategy: doc.service.capacity_provider_strategy.clone(),
        platform_version: platform_resolved,
        network,
        load_balancers: load_balancers.clone(),
        service_registries: registries.clone(),
        service_connect: input.service_connect_configuration.clone(),
    };
    let now = ecs.now();
    if let Some(note) = validate::traffic_note(
        &doc.name,
        &load_balancers,
        &registries,
        input.service_connect_configuration.as_ref(),
    ) {
        doc.say(note, now);
    }
    deployments::start(ecs, ctx, doc, revision).await
}
