//! DescribeServices, ListServices, ListServicesByNamespace, and the view
//! of a service they (and the mutations) answer with: the stored service
//! with its counts, deployments, task sets and events computed from its
//! tasks as they are now.

use super::*;
use crate::ecs::tasks::TaskDoc;
use crate::records;
use berth_core::pagination::page_size;
use berth_core::task::{DesiredStatus, TaskStatus, TaskStatuses};
use berth_scheduler::service::Rollout;
use berth_store::Query;

/// Running and pending tasks of each deployment, from the tasks' documents.
#[derive(Debug, Default)]
pub struct Counts {
    by_deployment: BTreeMap<String, (i32, i32)>,
}

impl Counts {
    pub fn of_tasks<'a>(tasks: impl IntoIterator<Item = &'a TaskDoc>, doc: &ServiceDoc) -> Counts {
        let mut by_deployment: BTreeMap<String, (i32, i32)> = BTreeMap::new();
        for t in tasks {
            let deployment = t
                .service
                .as_ref()
                .map(|o| o.deployment_id.clone())
                .or_else(|| doc.tasks.get(&t.id).cloned())
                .unwrap_or_default();
            let e = by_deployment.entry(deployment).or_default();
            match t.last_status() {
                TaskStatus::Running => e.0 += 1,
                s if s < TaskStatus::Running && t.task.desired() == DesiredStatus::Running => {
                    e.1 += 1
                }
                _ => {}
            }
        }
        Counts { by_deployment }
    }

    pub async fn read(
        ecs: &Ecs,
        ctx: &RequestContext,
        doc: &ServiceDoc,
    ) -> Result<Counts, EcsError> {
        let mut tasks = Vec::with_capacity(doc.tasks.len());
        for id in doc.tasks.keys() {
            if let Some(t) = load::<TaskDoc>(ecs.store(), &scope(ctx), id).await? {
                tasks.push(t.value);
            }
        }
        Ok(Counts::of_tasks(&tasks, doc))
    }

    /// (running, pending) of one deployment.
    pub fn of(&self, deployment: &str) -> (i32, i32) {
        self.by_deployment
            .get(deployment)
            .copied()
            .unwrap_or((0, 0))
    }

    fn total(&self) -> (i32, i32) {
        self.by_deployment
            .values()
            .fold((0, 0), |(r, p), (r2, p2)| (r + r2, p + p2))
    }
}

/// The service as DescribeServices shows it.
pub async fn view(
    ecs: &Ecs,
    ctx: &RequestContext,
    doc: &ServiceDoc,
    include_tags: bool,
) -> Result<Service, EcsError> {
    let counts = Counts::read(ecs, ctx, doc).await?;
    Ok(render(doc, &counts, include_tags))
}

pub fn render(doc: &ServiceDoc, counts: &Counts, include_tags: bool) -> Service {
    let mut s = doc.service.clone();
    let (running, pending) = counts.total();
    s.running_count = Some(running);
    s.pending_count = Some(pending);
    s.events = Some(doc.events.clone());
    s.tags = include_tags.then(|| doc.tags.clone());
    let desired = s.desired_count.unwrap_or(0);
    if doc.external() {
        s.deployments = Some(vec![]);
        s.task_sets = Some(
            doc.state
                .deployments
                .iter()
                .filter_map(|d| {
                    let rev = doc.revisions.get(&d.id)?;
                    let mut ts = rev.task_set.clone()?;
                    let (r, p) = counts.of(&d.id);
                    ts.running_count = Some(r);
                    ts.pending_count = Some(p);
                    ts.computed_desired_count = d.target.map(|t| t as i32);
                    let steady = d.target.is_some_and(|t| t as i32 == r) && p == 0;
                    ts.stability_status = Some(if steady {
                        StabilityStatus::SteadyState
                    } else {
                        StabilityStatus::Stabilizing
                    });
                    Some(ts)
                })
                .collect(),
        );
        return s;
    }
    let mut deployments = Vec::new();
    let mut revisions = Vec::new();
    for (i, d) in doc.state.deployments.iter().enumerate() {
        let Some(rev) = doc.revisions.get(&d.id) else {
            continue;
        };
        let (r, p) = counts.of(&d.id);
        let primary = i == 0;
        // As of the last pass; a deployment no pass has seen asks for 0.
        let requested = d.requested.map_or(0, |n| n as i32);
        let _ = (primary, desired);
        let rv = &rev.revision;
        deployments.push(Deployment {
            id: Some(d.id.clone()),
            status: Some(
                if primary {
                    berth_core::service::deployment_status::PRIMARY
                } else {
                    berth_core::service::deployment_status::ACTIVE
                }
                .into(),
            ),
            task_definition: rv.task_definition.clone(),
            desired_count: Some(requested),
            pending_count: Some(p),
            running_count: Some(r),
            failed_tasks: Some(d.failed_tasks as i32),
            created_at: Some(Timestamp::from_millis(d.created_at)),
            updated_at: Some(Timestamp::from_millis(d.updated_at)),
            capacity_provider_strategy: rv.capacity_provider_strategy.clone(),
            launch_type: rv.launch_type.clone(),
            platform_version: rv.platform_version.clone(),
            platform_family: rv.platform_family.clone(),
            network_configuration: rv.network_configuration.clone(),
            rollout_state: Some(match d.rollout {
                Rollout::InProgress => DeploymentRolloutState::InProgress,
                Rollout::Completed => DeploymentRolloutState::Completed,
                Rollout::Failed => DeploymentRolloutState::Failed,
            }),
            rollout_state_reason: Some(d.reason.clone()),
            ..Default::default()
        });
        revisions.push(ServiceCurrentRevisionSummary {
            arn: rv.service_revision_arn.clone(),
            requested_task_count: Some(requested),
            running_task_count: Some(r),
            pending_task_count: Some(p),
        });
    }
    s.current_service_deployment = doc
        .state
        .primary()
        .and_then(|p| doc.revisions.get(&p.id))
        .map(|r| r.deployment_arn.clone());
    s.deployments = Some(deployments);
    s.current_service_revisions = Some(revisions);
    s
}

pub async fn describe(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeServicesRequest,
) -> Result<DescribeServicesResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value;
    let name = cluster.cluster_name.clone().unwrap_or_default();
    if input.services.is_empty() {
        return Err(EcsError::invalid("Services cannot be empty."));
    }
    if input.services.len() > 10 {
        return Err(EcsError::invalid(
            "service names can have at most 10 items.",
        ));
    }
    let include = input.include.unwrap_or_default();
    if let Some(bad) = include.iter().find(|f| !f.is_known()) {
        return Err(EcsError::invalid(format!(
            "include should be one of [TAGS], but was {bad}"
        )));
    }
    let include_tags = include.contains(&ServiceField::Tags);
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for r in &input.services {
        match find(ecs, ctx, &name, r).await? {
            Some(d) => services.push(view(ecs, ctx, &d.value, include_tags).await?),
            None => failures.push(Failure {
                arn: Some(if arn::looks_like_arn(r) {
                    r.clone()
                } else {
                    format!("arn:aws:ecs:{}:{}:service/{r}", ctx.region, ctx.account_id)
                }),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeServicesResponse {
        services: Some(services),
        failures: Some(failures),
    })
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListServicesRequest,
) -> Result<ListServicesResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value;
    let name = cluster.cluster_name.clone().unwrap_or_default();
    let limit = page_size(input.max_results, 100, 10)?;
    let unknown = input
        .launch_type
        .as_ref()
        .filter(|l| !l.is_known())
        .map(|l| l.to_string())
        .or_else(|| {
            input
                .scheduling_strategy
                .as_ref()
                .filter(|s| !s.is_known())
                .map(|s| s.to_string())
        });
    if let Some(bad) = unknown {
        return Err(EcsError::invalid(format!("Invalid filter value '{bad}'.")));
    }
    let filter = format!(
        "{name}|{:?}|{:?}|{:?}",
        input.launch_type, input.scheduling_strategy, input.resource_management_type
    );
    let pager = ecs.pager(ctx, "ListServices", &filter, limit);
    let mut after = pager.start(input.next_token.as_deref())?;
    let keep = |d: &ServiceDoc| {
        input
            .launch_type
            .as_ref()
            .is_none_or(|l| d.service.launch_type.as_ref() == Some(l))
            && input
                .scheduling_strategy
                .as_ref()
                .is_none_or(|s| d.service.scheduling_strategy.as_ref() == Some(s))
            && input
                .resource_management_type
                .as_ref()
                .is_none_or(|r| *r == ResourceManagementType::Customer)
    };
    let mut found: Vec<ServiceDoc> = Vec::new();
    loop {
        let q = Query {
            parent: Some(name.clone()),
            status: Some(status::ACTIVE.into()),
            after: after.clone(),
            limit: 500,
            ..Default::default()
        };
        let batch = records::list::<ServiceDoc>(ecs.store(), &scope(ctx), &q).await?;
        let exhausted = batch.len() < 500;
        for d in batch {
            after = Some(d.value.sort());
            if keep(&d.value) {
                found.push(d.value);
            }
        }
        if exhausted || found.len() > limit {
            break;
        }
    }
    let next_token = pager.finish(&mut found, |d| d.sort());
    Ok(ListServicesResponse {
        service_arns: Some(found.iter().map(|d| d.arn().to_string()).collect()),
        next_token,
    })
}

/// The namespace's name, from a name or a Cloud Map namespace ARN.
fn namespace_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

pub async fn list_by_namespace(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListServicesByNamespaceRequest,
) -> Result<ListServicesByNamespaceResponse, EcsError> {
    let limit = page_size(input.max_results, 100, 10)?;
    let wanted = namespace_name(&input.namespace).to_string();
    if wanted.is_empty() {
        return Err(EcsError::invalid("namespace can not be blank."));
    }
    let pager = ecs.pager(ctx, "ListServicesByNamespace", &wanted, limit);
    let mut after = pager.start(input.next_token.as_deref())?;
    let mut found: Vec<ServiceDoc> = Vec::new();
    loop {
        let q = Query {
            status: Some(status::ACTIVE.into()),
            after: after.clone(),
            limit: 500,
            ..Default::default()
        };
        let batch = records::list::<ServiceDoc>(ecs.store(), &scope(ctx), &q).await?;
        let exhausted = batch.len() < 500;
        for d in batch {
            after = Some(d.value.sort());
            if d.value.namespace.as_deref().map(namespace_name) == Some(wanted.as_str()) {
                found.push(d.value);
            }
        }
        if exhausted || found.len() > limit {
            break;
        }
    }
    // berth keeps no Cloud Map of its own: a namespace no service names
    // is simply empty, not unknown.
    let next_token = pager.finish(&mut found, |d| d.sort());
    Ok(ListServicesByNamespaceResponse {
        service_arns: Some(found.iter().map(|d| d.arn().to_string()).collect()),
        next_token,
    })
}
