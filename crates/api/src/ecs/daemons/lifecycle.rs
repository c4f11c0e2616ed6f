//! CreateDaemon, UpdateDaemon, DeleteDaemon: each commits the daemon's
//! document together with its backing service document (and, for a new
//! deployment, the deployment's records), then wakes the service driver.

use super::*;
use crate::ecs::clusters;
use crate::ecs::services::deployments::{self, RevisionInput};
use crate::records::{retry, Attempt};
use berth_core::service::status;
use berth_store::{Expect, Write};

/// What a create or update asks the daemon to run, checked.
struct Wanted {
    definition: task_definitions::DaemonTaskDefinitionDoc,
    /// Provider names, for instance selection.
    providers: Vec<String>,
}

async fn check(
    ecs: &Ecs,
    ctx: &RequestContext,
    definition: &str,
    providers: &[String],
    config: Option<&DaemonDeploymentConfiguration>,
) -> Result<Wanted, EcsError> {
    if providers.is_empty() {
        return Err(EcsError::invalid("capacityProviderArns can not be empty."));
    }
    let mut names = Vec::new();
    for p in providers {
        let n = resolve_capacity_provider(ecs, ctx, p).await?;
        if !names.contains(&n) {
            names.push(n);
        }
    }
    if let Some(c) = config {
        check_config(c)?;
    }
    let definition = task_definitions::resolve(ecs, ctx, definition)
        .await?
        .filter(|d| d.is_active())
        .ok_or_else(|| {
            EcsError::client(format!(
                "The daemon task definition '{definition}' was not found or is not ACTIVE."
            ))
        })?;
    Ok(Wanted {
        definition,
        providers: names,
    })
}

/// The revision a daemon's deployment launches.
fn revision(w: &Wanted) -> RevisionInput {
    RevisionInput {
        task_definition: Some(w.definition.launchable.clone()),
        launch_type: Some(LaunchType::Ec2),
        ..Default::default()
    }
}

/// The backing service's configuration: a DAEMON service whose circuit
/// breaker rolls back, as a daemon deployment does.
fn backing_service(
    ctx: &RequestContext,
    cluster: &Cluster,
    name: &str,
    w: &Wanted,
    now: Timestamp,
) -> Service {
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let backing = backing_name(name);
    Service {
        service_arn: Some(arn::service(
            &ctx.region,
            &ctx.account_id,
            &cluster_name,
            &backing,
        )),
        service_name: Some(backing),
        cluster_arn: cluster.cluster_arn.clone(),
        status: Some(status::ACTIVE.into()),
        desired_count: Some(0),
        launch_type: Some(LaunchType::Ec2),
        task_definition: w.definition.definition.daemon_task_definition_arn.clone(),
        deployment_configuration: Some(DeploymentConfiguration {
            minimum_healthy_percent: Some(0),
            maximum_percent: Some(100),
            deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                enable: true,
                rollback: true,
            }),
            ..Default::default()
        }),
        created_at: Some(now),
        placement_constraints: Some(vec![]),
        placement_strategy: Some(vec![]),
        scheduling_strategy: Some(SchedulingStrategy::Daemon),
        deployment_controller: Some(DeploymentController {
            r#type: DeploymentControllerType::Ecs,
        }),
        created_by: Some(ctx.principal_arn.clone()),
        ..Default::default()
    }
}

/// The daemon deployment ARN of the backing service's newest deployment.
fn newest_deployment_arn(ctx: &RequestContext, d: &DaemonDoc, s: &ServiceDoc) -> String {
    let id = s
        .state
        .primary()
        .and_then(|p| s.revisions.get(&p.id))
        .map(|r| {
            r.deployment_arn
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();
    arn::daemon_deployment(&ctx.region, &ctx.account_id, &d.cluster, &d.name, &id)
}

fn deployment_id(daemon_deployment_arn: &str) -> String {
    daemon_deployment_arn
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn put(value: &impl Record, existing: Option<i64>) -> Write {
    Write::Put {
        doc: records::to_doc(value, 0),
        expect: existing.map_or(Expect::Absent, Expect::Version),
    }
}

pub async fn create(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: CreateDaemonRequest,
) -> Result<CreateDaemonResponse, EcsError> {
    let name = input.daemon_name.clone();
    if !berth_core::names::is_valid_name(&name) {
        return Err(EcsError::invalid(
            "Daemon name must be 1-255 characters: letters, numbers, hyphens and underscores.",
        ));
    }
    crate::ecs::services::validate::client_token(input.client_token.as_deref())?;
    let cluster = clusters::load_active(ecs, ctx, input.cluster_arn.as_deref())
        .await?
        .value;
    let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
    let wanted = check(
        ecs,
        ctx,
        &input.daemon_task_definition_arn,
        &input.capacity_provider_arns,
        input.deployment_configuration.as_ref(),
    )
    .await?;
    if let Some(p) = input.propagate_tags.as_ref().filter(|p| !p.is_known()) {
        return Err(EcsError::invalid(format!("Invalid propagateTags '{p}'.")));
    }
    let tags = berth_core::tags::initial(input.tags.as_ref())?;
    let config = input.deployment_configuration.clone().unwrap_or_default();
    let now = ecs.now();
    let mut service = ServiceDoc::new_backing(
        &cluster_name,
        backing_service(ctx, &cluster, &name, &wanted, now),
        backing(&name, wanted.providers.clone(), &config),
    );
    let mut writes = deployments::start(ecs, ctx, &mut service, revision(&wanted)).await?;
    let mut doc = DaemonDoc {
        cluster: cluster_name.clone(),
        name: name.clone(),
        arn: arn::daemon(&ctx.region, &ctx.account_id, &cluster_name, &name),
        cluster_arn: cluster.cluster_arn.clone().unwrap_or_default(),
        status: DaemonStatus::Active,
        created_at: now,
        updated_at: now,
        task_definition: wanted.definition.arn(),
        providers: input.capacity_provider_arns.clone(),
        config: config.clone(),
        tags,
        client_token: input.client_token.clone(),
        propagate_tags: input.propagate_tags.clone(),
        enable_ecs_managed_tags: input.enable_ecs_managed_tags.unwrap_or(false),
        enable_execute_command: input.enable_execute_command.unwrap_or(false),
        deployment_arn: String::new(),
        configs: BTreeMap::new(),
    };
    doc.deployment_arn = newest_deployment_arn(ctx, &doc, &service);
    doc.configs
        .insert(deployment_id(&doc.deployment_arn), config.clone());
    let sc = scope(ctx);
    let _serialized = ecs.lock(ctx, kind::DAEMON, &doc.id()).await;
    let stored = retry(ecs.store(), async || {
        let existing = load::<DaemonDoc>(ecs.store(), &sc, &doc.id()).await?;
        let old_backing = load::<ServiceDoc>(ecs.store(), &sc, &doc.backing_id()).await?;
        let live = old_backing
            .as_ref()
            .is_some_and(|b| !b.value.is(status::INACTIVE));
        if let (Some(e), true) = (&existing, live) {
            if e.value.status == DaemonStatus::Active
                && input.client_token.is_some()
                && e.value.client_token == input.client_token
            {
                // A retried request with the same token gets the daemon.
                return Ok(Attempt::Done(e.value.clone()));
            }
            return Err(match e.value.status {
                DaemonStatus::Active => EcsError::invalid("Creation of daemon was not idempotent."),
                _ => EcsError::invalid("Unable to create a daemon that is still being deleted."),
            });
        }
        let mut all = vec![
            put(&doc, existing.as_ref().map(|e| e.version)),
            put(&service, old_backing.as_ref().map(|b| b.version)),
        ];
        all.append(&mut writes.clone());
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: all,
            value: doc.clone(),
        })
    })
    .await?;
    writes.clear();
    ecs.services.wake(ctx, &stored.backing_id());
    Ok(CreateDaemonResponse {
        daemon_arn: Some(stored.arn.clone()),
        status: Some(stored.status.clone()),
        created_at: Some(stored.created_at),
        deployment_arn: Some(stored.deployment_arn.clone()),
    })
}

pub async fn update(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UpdateDaemonRequest,
) -> Result<UpdateDaemonResponse, EcsError> {
    let (found, _) = find(ecs, ctx, &input.daemon_arn).await?;
    if found.value.status != DaemonStatus::Active {
        return Err(not_active(&input.daemon_arn));
    }
    clusters::load_active(ecs, ctx, Some(&found.value.cluster)).await?;
    let wanted = check(
        ecs,
        ctx,
        &input.daemon_task_definition_arn,
        &input.capacity_provider_arns,
        input.deployment_configuration.as_ref(),
    )
    .await?;
    if let Some(p) = input.propagate_tags.as_ref().filter(|p| !p.is_known()) {
        return Err(EcsError::invalid(format!("Invalid propagateTags '{p}'.")));
    }
    let _serialized = ecs.lock(ctx, kind::DAEMON, &found.value.id()).await;
    let stored = retry(ecs.store(), async || {
        let (mut doc, mut service) = find(ecs, ctx, &input.daemon_arn).await?;
        if doc.value.status != DaemonStatus::Active {
            return Err(not_active(&input.daemon_arn));
        }
        let d = &mut doc.value;
        if let Some(c) = &input.deployment_configuration {
            d.config = c.clone();
        }
        d.task_definition = wanted.definition.arn();
        d.providers = input.capacity_provider_arns.clone();
        if input.propagate_tags.is_some() {
            d.propagate_tags = input.propagate_tags.clone();
        }
        if let Some(e) = input.enable_ecs_managed_tags {
            d.enable_ecs_managed_tags = e;
        }
        if let Some(e) = input.enable_execute_command {
            d.enable_execute_command = e;
        }
        d.updated_at = ecs.now();
        let s = &mut service.value;
        s.backs_daemon = Some(backing(&d.name, wanted.providers.clone(), &d.config));
        s.service.task_definition = wanted
            .definition
            .definition
            .daemon_task_definition_arn
            .clone();
        // Every update is a new deployment, as on ECS.
        let mut writes = deployments::start(ecs, ctx, s, revision(&wanted)).await?;
        d.deployment_arn = newest_deployment_arn(ctx, d, s);
        d.configs
            .insert(deployment_id(&d.deployment_arn), d.config.clone());
        let mut all = vec![doc.write(), service.write()];
        all.append(&mut writes);
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: all,
            value: doc.value,
        })
    })
    .await?;
    ecs.services.wake(ctx, &stored.backing_id());
    Ok(UpdateDaemonResponse {
        daemon_arn: Some(stored.arn.clone()),
        status: Some(stored.status.clone()),
        created_at: Some(stored.created_at),
        updated_at: Some(stored.updated_at),
        deployment_arn: Some(stored.deployment_arn.clone()),
    })
}

fn not_active(reference: &str) -> EcsError {
    EcsError::DaemonNotActive(format!("The daemon '{reference}' is not ACTIVE."))
}

/// ACTIVE → DELETE_IN_PROGRESS: the backing service drains (the driver
/// stops every task), and once it has no task left the daemon is gone.
pub async fn delete(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeleteDaemonRequest,
) -> Result<DeleteDaemonResponse, EcsError> {
    let (found, _) = find(ecs, ctx, &input.daemon_arn).await?;
    let _serialized = ecs.lock(ctx, kind::DAEMON, &found.value.id()).await;
    let stored = retry(ecs.store(), async || {
        let (mut doc, mut service) = find(ecs, ctx, &input.daemon_arn).await?;
        if doc.value.status != DaemonStatus::Active {
            return Err(not_active(&input.daemon_arn));
        }
        doc.value.status = DaemonStatus::DeleteInProgress;
        doc.value.updated_at = ecs.now();
        let s = &mut service.value;
        s.service.status = Some(status::DRAINING.into());
        s.service.desired_count = Some(0);
        s.state.steady = false;
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![doc.write(), service.write()],
            value: doc.value,
        })
    })
    .await?;
    ecs.services.wake(ctx, &stored.backing_id());
    Ok(DeleteDaemonResponse {
        daemon_arn: Some(stored.arn.clone()),
        status: Some(stored.status.clone()),
        created_at: Some(stored.created_at),
        updated_at: Some(stored.updated_at),
        deployment_arn: Some(stored.deployment_arn.clone()),
    })
}
