//! CreateService: checked as ECS checks it, recorded with its first
//! deployment, then left to the driver.

use super::deployments::{self, RevisionInput};
use super::validate::{self, LATEST_PLATFORM};
use super::*;
use crate::ecs::task_definitions;
use crate::ecs::tasks::launch::{self, LaunchSpec};
use crate::records::{self, retry, Attempt};
use berth_core::service::{self as rules, Kind};
use berth_core::tags;
use berth_store::Expect;

/// The service-linked role ECS shows as a service's `roleArn`.
pub fn service_linked_role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS")
}

/// The deployment controller a request asks for; CODE_DEPLOY needs AWS
/// CodeDeploy, which berth does not have.
pub fn controller(c: Option<&DeploymentController>) -> Result<DeploymentControllerType, EcsError> {
    match c.map(|c| c.r#type.clone()) {
        None | Some(DeploymentControllerType::Ecs) => Ok(DeploymentControllerType::Ecs),
        Some(DeploymentControllerType::External) => Ok(DeploymentControllerType::External),
        Some(DeploymentControllerType::CodeDeploy) => Err(EcsError::invalid(
            "The CODE_DEPLOY deployment controller hands deployments to AWS CodeDeploy, which berth does not have. Use the ECS controller (its BLUE_GREEN, LINEAR and CANARY strategies run without CodeDeploy) or EXTERNAL with task sets.",
        )),
        Some(other) => Err(EcsError::invalid(format!(
            "Invalid deployment controller type '{other}'."
        ))),
    }
}

/// The task definition a service or task set runs, checked for its launch
/// type and network configuration.
pub async fn task_definition(
    ecs: &Ecs,
    ctx: &RequestContext,
    reference: &str,
    launch_type: &LaunchType,
    network: Option<&NetworkConfiguration>,
) -> Result<TaskDefinition, EcsError> {
    if reference.is_empty() {
        return Err(EcsError::invalid("TaskDefinition can not be blank."));
    }
    let td = task_definitions::resolve(ecs, ctx, reference)
        .await?
        .ok_or_else(|| EcsError::client("TaskDefinition not found."))?
        .value
        .task_definition;
    if td.status != Some(TaskDefinitionStatus::Active) {
        return Err(EcsError::client("TaskDefinition is inactive"));
    }
    let compatible = match launch_type {
        LaunchType::Fargate => Compatibility::Fargate,
        LaunchType::External => Compatibility::External,
        _ => Compatibility::Ec2,
    };
    if !td
        .compatibilities
        .iter()
        .flatten()
        .any(|c| *c == compatible)
    {
        return Err(EcsError::client(format!(
            "Task definition does not support launch_type {}.",
            launch_type.as_str()
        )));
    }
    validate::network(&td, network)?;
    if let Some(vpc) = network.and_then(|n| n.awsvpc_configuration.as_ref()) {
        let groups = vpc.security_groups.as_deref().unwrap_or_default();
        crate::ec2::check_awsvpc(ecs.store.as_ref(), ctx, &vpc.subnets, groups).await?;
    }
    Ok(td)
}

pub async fn create(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: CreateServiceRequest,
) -> Result<CreateServiceResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let name = input.service_name.clone();
    validate::service_name(&name)?;
    validate::client_token(input.client_token.as_deref())?;
    let controller = controller(input.deployment_controller.as_ref())?;
    let external = controller == DeploymentControllerType::External;
    let scheduling = input
        .scheduling_strategy
        .clone()
        .unwrap_or(SchedulingStrategy::Replica);
    let daemon = scheduling == SchedulingStrategy::Daemon;
    if daemon && external {
        return Err(EcsError::invalid(
            "The daemon scheduling strategy is not supported with the EXTERNAL deployment controller.",
        ));
    }
    if daemon && input.desired_count.is_some() {
        return Err(EcsError::invalid(
            "The daemon scheduling strategy does not support a desired count for services. Remove the desired count value and try again",
        ));
    }
    if !daemon {
        match input.desired_count {
            None if !external => return Err(EcsError::invalid("DesiredCount is missing")),
            Some(n) if n < 0 => return Err(EcsError::invalid("desiredCount must be at least 0.")),
            _ => {}
        }
    }
    let cluster_default = cluster
        .default_capacity_provider_strategy
        .clone()
        .unwrap_or_default();
    let given_providers = input
        .capacity_provider_strategy
        .as_ref()
        .is_some_and(|s| !s.is_empty());
    if daemon && (given_providers || (input.launch_type.is_none() && !cluster_default.is_empty())) {
        return Err(EcsError::invalid(
            "Specifying a capacity provider strategy is not supported when you create a service using the DAEMON scheduling strategy.",
        ));
    }
    // A service runs by a capacity provider strategy (its own, else the
    // cluster's default) unless it names a launch type.
    let providers = match (&input.launch_type, given_providers) {
        (Some(_), _) => None,
        (None, true) => input.capacity_provider_strategy.clone(),
        (None, false) => (!cluster_default.is_empty()).then(|| cluster_default.clone()),
    };
    let launch_type = launch::launch_type_of(
        input.launch_type.as_ref(),
        input.capacity_provider_strategy.as_ref(),
        &cluster,
    )?;
    if daemon && launch_type == LaunchType::Fargate {
        return Err(EcsError::invalid(
            "The daemon scheduling strategy is not supported with the FARGATE launch type: Fargate runs no container instances for a daemon to run on.",
        ));
    }
    let (platform_shown, platform_resolved) =
        validate::platform(&launch_type, input.platform_version.as_deref())?;
    validate::placement(
        &launch_type,
        daemon,
        input.placement_strategy.as_deref(),
        input.placement_constraints.as_deref(),
    )?;
    validate::grace(input.health_check_grace_period_seconds)?;
    validate::unsupported(
        input.volume_configurations.as_deref(),
        input.vpc_lattice_configurations.as_deref(),
    )?;
    let kind = if external {
        Kind::External
    } else if daemon {
        Kind::Daemon
    } else {
        Kind::Replica
    };
    let config =
        rules::deployment_configuration(input.deployment_configuration.as_ref(), kind, None)?;
    let rebalancing = match (&input.availability_zone_rebalancing, daemon) {
        (Some(AvailabilityZoneRebalancing::Enabled), true) => {
            return Err(EcsError::invalid(
                "The service couldn't be created because Availability Zone Rebalancing does not support DAEMON as scheduling strategy. Update scheduling strategy and try again.",
            ))
        }
        (Some(r), _) => r.clone(),
        (None, true) => AvailabilityZoneRebalancing::Disabled,
        (None, false) => AvailabilityZoneRebalancing::Enabled,
    };
    let load_balancers = input.load_balancers.clone().unwrap_or_default();
    let registries = input.service_registries.clone().unwrap_or_default();
    let td = if external {
        if input.task_definition.is_some() {
            return Err(EcsError::invalid("TaskDefinition must be blank."));
        }
        if !load_balancers.is_empty() {
            return Err(EcsError::invalid("LoadBalancers must be empty or null."));
        }
        None
    } else {
        let reference = input.task_definition.as_deref().unwrap_or_default();
        Some(
            task_definition(
                ecs,
                ctx,
                reference,
                &launch_type,
                input.network_configuration.as_ref(),
            )
            .await?,
        )
    };
    validate::traffic(td.as_ref(), &load_balancers, &registries)?;
    let service_tags = tags::initial(input.tags.as_ref())?;
    let propagate = input.propagate_tags.clone().unwrap_or(PropagateTags::None);
    if !propagate.is_known() {
        return Err(EcsError::invalid(format!(
            "Invalid propagateTags '{propagate}'."
        )));
    }
    // Its tasks must be launchable as RunTask would launch them.
    if let Some(td) = &td {
        launch::prepare(
            ecs,
            ctx,
            LaunchSpec {
                cluster: Some(cluster_name.clone()),
                task_definition: td.task_definition_arn.clone().unwrap_or_default(),
                launch_type: launch_type.clone(),
                network: input.network_configuration.clone(),
                enable_execute_command: input.enable_execute_command.unwrap_or(false),
                owner: Some(crate::ecs::tasks::TaskOwner {
                    service_name: name.clone(),
                    deployment_id: "ecs-svc/0".into(),
                }),
                ..Default::default()
            },
        )
        .await?;
    }
    let now = ecs.now();
    let service = Service {
        service_arn: Some(arn::service(
            &ctx.region,
            &ctx.account_id,
            &cluster_name,
            &name,
        )),
        service_name: Some(name.clone()),
        cluster_arn: cluster.cluster_arn.clone(),
        load_balancers: Some(load_balancers.clone()),
        service_registries: Some(registries.clone()),
        status: Some(status::ACTIVE.into()),
        desired_count: Some(input.desired_count.unwrap_or(0)),
        launch_type: providers.is_none().then(|| launch_type.clone()),
        capacity_provider_strategy: providers.clone(),
        platform_version: platform_shown,
        platform_family: platform_resolved.as_ref().map(|_| "Linux".to_string()),
        task_definition: td.as_ref().and_then(|t| t.task_definition_arn.clone()),
        deployment_configuration: Some(config),
        role_arn: Some(
            input
                .role
                .clone()
                .unwrap_or_else(|| service_linked_role(&ctx.account_id)),
        ),
        created_at: Some(now),
        placement_constraints: Some(input.placement_constraints.clone().unwrap_or_default()),
        placement_strategy: Some(input.placement_strategy.clone().unwrap_or_default()),
        network_configuration: input.network_configuration.clone(),
        health_check_grace_period_seconds: Some(
            input.health_check_grace_period_seconds.unwrap_or(0),
        ),
        scheduling_strategy: Some(scheduling),
        deployment_controller: Some(DeploymentController { r#type: controller }),
        created_by: Some(ctx.principal_arn.clone()),
        enable_ecs_managed_tags: Some(input.enable_ecs_managed_tags.unwrap_or(false)),
        propagate_tags: Some(propagate),
        enable_execute_command: Some(input.enable_execute_command.unwrap_or(false)),
        availability_zone_rebalancing: Some(rebalancing),
        resource_management_type: Some(ResourceManagementType::Customer),
        ..Default::default()
    };
    let mut doc = ServiceDoc {
        cluster: cluster_name.clone(),
        name: name.clone(),
        service,
        tags: service_tags,
        state: Default::default(),
        revisions: BTreeMap::new(),
        tasks: BTreeMap::new(),
        events: Vec::new(),
        client_token: input.client_token.clone(),
        namespace: input
            .service_connect_configuration
            .as_ref()
            .and_then(|c| c.namespace.clone())
            .or_else(|| {
                cluster
                    .service_connect_defaults
                    .as_ref()
                    .and_then(|d| d.namespace.clone())
                    .filter(|_| {
                        input
                            .service_connect_configuration
                            .as_ref()
                            .is_some_and(|c| c.enabled)
                    })
            }),
        rolling_back_from: None,
    };
    if let Some(note) = validate::traffic_note(
        &name,
        &load_balancers,
        &registries,
        input.service_connect_configuration.as_ref(),
    ) {
        doc.say(note, now);
    }
    let mut writes = Vec::new();
    if !external {
        let revision = RevisionInput {
            task_definition: td.clone(),
            launch_type: doc.service.launch_type.clone(),
            capacity_provider_strategy: doc.service.capacity_provider_strategy.clone(),
            platform_version: platform_resolved
                .clone()
                .or_else(|| (launch_type == LaunchType::Fargate).then(|| LATEST_PLATFORM.into())),
            network: input.network_configuration.clone(),
            load_balancers: load_balancers.clone(),
            service_registries: registries.clone(),
            service_connect: input.service_connect_configuration.clone(),
        };
        writes = deployments::start(ecs, ctx, &mut doc, revision).await?;
    }
    let sc = scope(ctx);
    let _serialized = ecs.lock(ctx, kind::SERVICE, &doc.id()).await;
    let stored = retry(ecs.store(), async || {
        let existing = load::<ServiceDoc>(ecs.store(), &sc, &doc.id()).await?;
        let expect = match &existing {
            Some(e) if e.value.is(status::ACTIVE) => {
                // A retried request with the same token gets the service.
                if input.client_token.is_some() && e.value.client_token == input.client_token {
                    return Ok(Attempt::Done(e.value.clone()));
                }
                return Err(EcsError::invalid("Creation of service was not idempotent."));
            }
            Some(e) if e.value.is(status::DRAINING) => {
                return Err(EcsError::invalid(
                    "Unable to Start a service that is still Draining.",
                ))
            }
            Some(e) => Expect::Version(e.version),
            None => Expect::Absent,
        };
        let mut all = vec![berth_store::Write::Put {
            doc: records::to_doc(&doc, 0),
            expect,
        }];
        all.extend(writes.iter().cloned());
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: all,
            value: doc.clone(),
        })
    })
    .await?;
    ecs.services.wake(ctx, &stored.id());
    let include_tags = !stored.tags.is_empty();
    Ok(CreateServiceResponse {
        service: Some(queries::view(ecs, ctx, &stored, include_tags).await?),
    })
}
