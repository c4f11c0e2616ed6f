//! Task sets, for services whose deployments someone else controls (the
//! EXTERNAL deployment controller): CreateTaskSet, UpdateTaskSet,
//! DeleteTaskSet, DescribeTaskSets, UpdateServicePrimaryTaskSet. Each task
//! set is a deployment of the reconciler with a fixed size: ⌈desired count
//! × scale %⌉ tasks.

use super::create::task_definition;
use super::queries::Counts;
use super::validate;
use super::*;
use crate::ecs::tasks::launch;
use crate::records::{retry, Attempt};
use berth_core::service as rules;
use berth_core::tags;
use berth_scheduler::service::Deployment as Dep;

/// ECS's limit on task sets per service.
const MAX_TASK_SETS: usize = 5;

const NOT_EXTERNAL: &str = "Amazon ECS only supports task set management on services configured to use external deployment controllers.";

/// ⌈desired × scale / 100⌉, always rounded up as ECS does.
pub fn computed_count(desired: i32, scale: Option<&Scale>) -> u32 {
    let pct = scale.and_then(|s| s.value).unwrap_or(0.0);
    ((f64::from(desired.max(0)) * pct / 100.0) - 1e-9)
        .ceil()
        .max(0.0) as u32
}

/// Recomputes every task set's size from its scale and the service's
/// desired count (which UpdateService may change).
pub fn refresh_targets(doc: &mut ServiceDoc) {
    let desired = doc.service.desired_count.unwrap_or(0);
    for d in &mut doc.state.deployments {
        let scale = doc
            .revisions
            .get(&d.id)
            .and_then(|r| r.task_set.as_ref())
            .and_then(|t| t.scale.clone());
        d.target = Some(if d.deleted {
            0
        } else {
            computed_count(desired, scale.as_ref())
        });
    }
}

fn scale_of(input: Option<&Scale>) -> Result<Scale, EcsError> {
    let s = input.cloned().unwrap_or(Scale {
        value: Some(0.0),
        unit: Some(ScaleUnit::Percent),
    });
    if s.value.is_some_and(|v| !(0.0..=100.0).contains(&v)) {
        return Err(EcsError::invalid("scale value must be between 0 and 100."));
    }
    if s.unit.as_ref().is_some_and(|u| *u != ScaleUnit::Percent) {
        return Err(EcsError::invalid("scale unit must be PERCENT."));
    }
    Ok(Scale {
        value: Some(s.value.unwrap_or(0.0)),
        unit: Some(ScaleUnit::Percent),
    })
}

/// The task set id a reference (id or ARN) names.
fn task_set_id(reference: &str) -> String {
    match reference.find("ecs-svc/") {
        Some(i) => reference[i..].to_string(),
        None => reference.to_string(),
    }
}

fn not_found(reference: &str) -> EcsError {
    EcsError::TaskSetNotFound(format!(
        "The specified task set {reference} does not exist."
    ))
}

/// The task set as answered, with its counts.
fn shown(doc: &ServiceDoc, id: &str, counts: &Counts) -> Option<TaskSet> {
    let d = doc.state.deployments.iter().find(|d| d.id == id)?;
    let mut ts = doc.revisions.get(id)?.task_set.clone()?;
    let (r, p) = counts.of(id);
    ts.running_count = Some(r);
    ts.pending_count = Some(p);
    ts.computed_desired_count = Some(d.target.unwrap_or(0) as i32);
    let steady = d.target.unwrap_or(0) as i32 == r && p == 0;
    ts.stability_status = Some(if steady {
        StabilityStatus::SteadyState
    } else {
        StabilityStatus::Stabilizing
    });
    Some(ts)
}

/// Loads the EXTERNAL service, applies `change` and commits; answers the
/// task set `id` as it then is.
async fn modify(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    service: &str,
    id: Option<&str>,
    change: impl Fn(&mut ServiceDoc, &Cluster) -> Result<String, EcsError>,
) -> Result<TaskSet, EcsError> {
    let (_, found) = find_active(ecs, ctx, Some(cluster), service).await?;
    if !found.value.external() {
        return Err(EcsError::invalid(NOT_EXTERNAL));
    }
    let _serialized = ecs.lock(ctx, kind::SERVICE, &found.value.id()).await;
    let _ = id;
    let (doc, id) = retry(ecs.store(), async || {
        let (c, mut current) = find_active(ecs, ctx, Some(cluster), service).await?;
        let id = change(&mut current.value, &c)?;
        refresh_targets(&mut current.value);
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![current.write()],
            value: (current.value, id),
        })
    })
    .await?;
    ecs.services.wake(ctx, &doc.id());
    let counts = Counts::read(ecs, ctx, &doc).await?;
    shown(&doc, &id, &counts).ok_or_else(|| not_found(&id))
}

pub async fn create_task_set(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: CreateTaskSetRequest,
) -> Result<CreateTaskSetResponse, EcsError> {
    let (cluster, found) = find_active(ecs, ctx, Some(&input.cluster), &input.service).await?;
    if !found.value.external() {
        return Err(EcsError::invalid(NOT_EXTERNAL));
    }
    validate::client_token(input.client_token.as_deref())?;
    let launch_type = launch::launch_type_of(
        input.launch_type.as_ref(),
        input.capacity_provider_strategy.as_ref(),
        &cluster,
    )?;
    let (_, platform) = validate::platform(&launch_type, input.platform_version.as_deref())?;
    let td = task_definition(
        ecs,
        ctx,
        &input.task_definition,
        &launch_type,
        input.network_configuration.as_ref(),
    )
    .await?;
    let load_balancers = input.load_balancers.clone().unwrap_or_default();
    let registries = input.service_registries.clone().unwrap_or_default();
    validate::traffic(Some(&td), &load_balancers, &registries)?;
    let scale = scale_of(input.scale.as_ref())?;
    let set_tags = tags::initial(input.tags.as_ref())?;
    // ECS fills in assignPublicIp (DISABLED) when it is not given.
    let network = input.network_configuration.clone().map(|mut n| {
        if let Some(v) = n.awsvpc_configuration.as_mut() {
            v.assign_public_ip.get_or_insert(AssignPublicIp::Disabled);
        }
        n
    });
    let now = ecs.now();
    let mut task_set = modify(ecs, ctx, &input.cluster, &input.service, None, |doc, _| {
        let live = doc.state.deployments.iter().filter(|d| !d.deleted).count();
        if live >= MAX_TASK_SETS {
            return Err(EcsError::invalid(format!(
                "{MAX_TASK_SETS} deployments exist on the service. Unable to create new TaskSet since this exceeds the maximum limit."
            )));
        }
        let id = rules::deployment_id(rand::random());
        let ts = TaskSet {
            id: Some(id.clone()),
            task_set_arn: Some(arn::task_set(&ctx.region, &ctx.account_id, &doc.cluster, &doc.name, &id)),
            service_arn: doc.service.service_arn.clone(),
            cluster_arn: doc.service.cluster_arn.clone(),
            external_id: input.external_id.clone(),
            status: Some("ACTIVE".into()),
            task_definition: td.task_definition_arn.clone(),
            created_at: Some(now),
            updated_at: Some(now),
            launch_type: input
                .capacity_provider_strategy
                .is_none()
                .then(|| launch_type.clone()),
            capacity_provider_strategy: input.capacity_provider_strategy.clone(),
            platform_version: platform.clone(),
            platform_family: platform.as_ref().map(|_| "Linux".to_string()),
            network_configuration: network.clone(),
            load_balancers: Some(load_balancers.clone()),
            service_registries: Some(registries.clone()),
            scale: Some(scale.clone()),
            stability_status: Some(StabilityStatus::Stabilizing),
            stability_status_at: Some(now),
            tags: (!set_tags.is_empty()).then(|| set_tags.clone()),
            ..Default::default()
        };
        let revision = ServiceRevision {
            task_definition: td.task_definition_arn.clone(),
            launch_type: ts.launch_type.clone(),
            capacity_provider_strategy: ts.capacity_provider_strategy.clone(),
            platform_version: platform.clone(),
            network_configuration: network.clone(),
            created_at: Some(now),
            ..Default::default()
        };
        doc.revisions.insert(
            id.clone(),
            Revision {
                revision,
                deployment_arn: String::new(),
                task_set: Some(ts),
                required_attributes: Some(
                    td.requires_attributes
                        .iter()
                        .flatten()
                        .map(|a| (a.name.clone(), a.value.clone()))
                        .collect(),
                ),
            },
        );
        doc.state
            .deployments
            .insert(0, Dep::new(id.clone(), now.as_millis()));
        doc.state.steady = false;
        Ok(id)
    })
    .await?;
    // Nothing has been scheduled for it yet: ECS answers STABILIZING, as of
    // its creation, even for a set scaled to nothing.
    task_set.stability_status = Some(StabilityStatus::Stabilizing);
    task_set.stability_status_at = Some(now);
    Ok(CreateTaskSetResponse {
        task_set: Some(task_set),
    })
}

pub async fn update_task_set(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UpdateTaskSetRequest,
) -> Result<UpdateTaskSetResponse, EcsError> {
    let scale = scale_of(Some(&input.scale))?;
    let id = task_set_id(&input.task_set);
    let now = ecs.now();
    let task_set = modify(
        ecs,
        ctx,
        &input.cluster,
        &input.service,
        Some(&id),
        |doc, _| {
            let ts = doc
                .revisions
                .get_mut(&id)
                .and_then(|r| r.task_set.as_mut())
                .filter(|t| t.status.as_deref() != Some("DRAINING"))
                .ok_or_else(|| not_found(&input.task_set))?;
            ts.scale = Some(scale.clone());
            ts.updated_at = Some(now);
            Ok(id.clone())
        },
    )
    .await?;
    Ok(UpdateTaskSetResponse {
        task_set: Some(task_set),
    })
}

pub async fn delete_task_set(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeleteTaskSetRequest,
) -> Result<DeleteTaskSetResponse, EcsError> {
    let id = task_set_id(&input.task_set);
    let force = input.force.unwrap_or(false);
    let now = ecs.now();
    let task_set = modify(ecs, ctx, &input.cluster, &input.service, Some(&id), |doc, _| {
        let desired = doc.service.desired_count.unwrap_or(0);
        let d = doc
            .state
            .deployments
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or_else(|| not_found(&input.task_set))?;
        let ts = doc
            .revisions
            .get_mut(&id)
            .and_then(|r| r.task_set.as_mut())
            .ok_or_else(|| not_found(&input.task_set))?;
        if !force && computed_count(desired, ts.scale.as_ref()) > 0 {
            return Err(EcsError::invalid(
                "The task set cannot be deleted while it is scaled above 0. Scale it to 0 or use force.",
            ));
        }
        d.deleted = true;
        ts.status = Some("DRAINING".into());
        ts.updated_at = Some(now);
        Ok(id.clone())
    })
    .await?;
    Ok(DeleteTaskSetResponse {
        task_set: Some(task_set),
    })
}

pub async fn describe_task_sets(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeTaskSetsRequest,
) -> Result<DescribeTaskSetsResponse, EcsError> {
    let (_, found) = find_active(ecs, ctx, Some(&input.cluster), &input.service).await?;
    if !found.value.external() {
        return Err(EcsError::invalid(NOT_EXTERNAL));
    }
    let wanted = input
        .task_sets
        .clone()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| EcsError::invalid("TaskSets cannot be empty."))?;
    let include_tags = input
        .include
        .unwrap_or_default()
        .contains(&TaskSetField::Tags);
    let counts = Counts::read(ecs, ctx, &found.value).await?;
    let mut sets = Vec::new();
    let mut failures = Vec::new();
    for r in &wanted {
        match shown(&found.value, &task_set_id(r), &counts) {
            Some(mut ts) => {
                if !include_tags {
                    ts.tags = None;
                }
                sets.push(ts)
            }
            None => failures.push(Failure {
                arn: Some(r.clone()),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeTaskSetsResponse {
        task_sets: Some(sets),
        failures: Some(failures),
    })
}

pub async fn update_primary_task_set(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UpdateServicePrimaryTaskSetRequest,
) -> Result<UpdateServicePrimaryTaskSetResponse, EcsError> {
    let id = task_set_id(&input.primary_task_set);
    let now = ecs.now();
    let task_set = modify(
        ecs,
        ctx,
        &input.cluster,
        &input.service,
        Some(&id),
        |doc, _| {
            let primary = doc
                .revisions
                .get(&id)
                .and_then(|r| r.task_set.clone())
                .filter(|t| t.status.as_deref() != Some("DRAINING"))
                .ok_or_else(|| not_found(&input.primary_task_set))?;
            for r in doc.revisions.values_mut() {
                if let Some(ts) = r.task_set.as_mut() {
                    if ts.status.as_deref() == Some("PRIMARY") {
                        ts.status = Some("ACTIVE".into());
                        ts.updated_at = Some(now);
                    }
                }
            }
            if let Some(ts) = doc.revisions.get_mut(&id).and_then(|r| r.task_set.as_mut()) {
                ts.status = Some("PRIMARY".into());
                ts.updated_at = Some(now);
            }
            // What the primary task set runs becomes the service's.
            let s = &mut doc.service;
            s.task_definition = primary.task_definition.clone();
            s.launch_type = primary.launch_type.clone();
            s.capacity_provider_strategy = primary.capacity_provider_strategy.clone();
            s.platform_version = primary.platform_version.clone();
            s.platform_family = primary.platform_family.clone();
            s.network_configuration = primary.network_configuration.clone();
            s.load_balancers = primary.load_balancers.clone();
            s.service_registries = primary.service_registries.clone();
            Ok(id.clone())
        },
    )
    .await?;
    Ok(UpdateServicePrimaryTaskSetResponse {
        task_set: Some(task_set),
    })
}
