//! TagResource, UntagResource, ListTagsForResource for every taggable
//! resource berth keeps: clusters, task definitions, services, task sets,
//! tasks and container instances.

use super::services::{self, ServiceDoc};
use super::tasks::TaskDoc;
use super::Ecs;
use super::{capacity_providers, clusters, container_instances, task_definitions};
use crate::records::{kind, load, retry, scope, Attempt, Versioned};
use berth_core::service::status;
use berth_core::{arn::Arn, tags, EcsError};
use berth_wire::ecs::*;
use berth_wire::RequestContext;

/// A taggable resource named by an ARN.
enum Target {
    Cluster(String),
    TaskDefinition(String, i32),
    /// Cluster and service name.
    Service(String, String),
    /// Cluster, service name and task set id.
    TaskSet(String, String, String),
    /// Cluster (absent in the old ARN format `task/ID`) and task id.
    Task(Option<String>, String),
    /// Cluster and container instance id.
    ContainerInstance(String, String),
    /// A stored (Auto Scaling group) capacity provider, by name.
    CapacityProvider(String),
}

fn target(ctx: &RequestContext, resource_arn: &str) -> Result<Target, EcsError> {
    let a = Arn::parse(resource_arn)
        .filter(|a| a.service == "ecs")
        .ok_or_else(|| {
            EcsError::invalid(format!(
                "The ARN '{resource_arn}' is not a valid ECS resource ARN."
            ))
        })?;
    if a.account != ctx.account_id || a.region != ctx.region {
        return Err(EcsError::invalid(format!(
            "The ARN '{resource_arn}' does not belong to this account and region."
        )));
    }
    match a.resource_type_and_id() {
        ("cluster", name) if !name.is_empty() => Ok(Target::Cluster(name.to_string())),
        ("task-definition", rest) => {
            let parsed = rest
                .rsplit_once(':')
                .and_then(|(f, r)| Some((f.to_string(), r.parse().ok()?)));
            parsed
                .map(|(f, r)| Target::TaskDefinition(f, r))
                .ok_or_else(|| {
                    EcsError::invalid(format!(
                        "The ARN '{resource_arn}' does not name a task definition revision."
                    ))
                })
        }
        // `service/CLUSTER/NAME`, or the old `service/NAME` (default cluster).
        ("service", rest) => {
            let (cluster, name) = rest.split_once('/').unwrap_or(("default", rest));
            if cluster.is_empty() || name.is_empty() || name.contains('/') {
                return Err(EcsError::invalid(format!(
                    "The ARN '{resource_arn}' does not name a service."
                )));
            }
            Ok(Target::Service(cluster.to_string(), name.to_string()))
        }
        // The id is `ecs-svc/NNN`: it has a slash of its own.
        ("task-set", rest) => {
            match rest.splitn(3, '/').collect::<Vec<_>>()[..] {
                [c, s, id] if !c.is_empty() && !s.is_empty() && !id.is_empty() => Ok(
                    Target::TaskSet(c.to_string(), s.to_string(), id.to_string()),
                ),
                _ => Err(EcsError::invalid(format!(
                    "The ARN '{resource_arn}' does not name a task set."
                ))),
            }
        }
        ("task", rest) => match rest.split('/').collect::<Vec<_>>()[..] {
            [id] if !id.is_empty() => Ok(Target::Task(None, id.to_string())),
            [c, id] if !c.is_empty() && !id.is_empty() => {
                Ok(Target::Task(Some(c.to_string()), id.to_string()))
            }
            _ => Err(EcsError::invalid(format!(
                "The ARN '{resource_arn}' does not name a task."
            ))),
        },
        ("container-instance", rest) => match rest.split('/').collect::<Vec<_>>()[..] {
            [c, id] if !c.is_empty() && !id.is_empty() => {
                Ok(Target::ContainerInstance(c.to_string(), id.to_string()))
            }
            _ => Err(EcsError::invalid(format!(
                "The ARN '{resource_arn}' does not name a container instance."
            ))),
        },
        ("capacity-provider", name) if !name.is_empty() && !name.contains('/') => {
            Ok(Target::CapacityProvider(name.to_string()))
        }
        (t, _) => Err(EcsError::invalid(format!(
            "Tagging is not supported for resources of type '{t}'."
        ))),
    }
}

/// Applies `change` to the tags of the resource, with optimistic retries.
async fn modify_tags(
    ecs: &Ecs,
    ctx: &RequestContext,
    resource_arn: &str,
    change: impl Fn(&mut Vec<Tag>) -> Result<(), EcsError>,
) -> Result<(), EcsError> {
    let t = target(ctx, resource_arn)?;
    let _serialized = match &t {
        Target::Cluster(name) => ecs.lock(ctx, kind::CLUSTER, name).await,
        Target::TaskDefinition(family, _) => {
            ecs.lock(ctx, kind::TASK_DEFINITION_FAMILY, family).await
        }
        Target::Service(cluster, name) | Target::TaskSet(cluster, name, _) => {
            ecs.lock(ctx, kind::SERVICE, &services::key(cluster, name))
                .await
        }
        Target::Task(_, id) => ecs.lock(ctx, kind::TASK, id).await,
        Target::ContainerInstance(_, id) => ecs.lock(ctx, kind::CONTAINER_INSTANCE, id).await,
        // Capacity providers' writers share one lock (see capacity_providers).
        Target::CapacityProvider(_) => ecs.lock(ctx, kind::CAPACITY_PROVIDER, "").await,
    };
    retry(ecs.store(), async || {
        let write = match &t {
            Target::Cluster(name) => {
                let mut c = clusters::load_active(ecs, ctx, Some(name)).await?;
                change(c.value.tags.get_or_insert_with(Vec::new))?;
                c.write()
            }
            Target::TaskDefinition(f, r) => {
                let mut d = task_definitions::load_revision(ecs, ctx, f, *r)
                    .await?
                    .ok_or_else(not_found)?;
                change(&mut d.value.tags)?;
                d.write()
            }
            Target::Service(cluster, name) => {
                let mut d = live_service(ecs, ctx, cluster, name)
                    .await?
                    .ok_or_else(not_found)?;
                change(&mut d.value.tags)?;
                d.write()
            }
            Target::TaskSet(cluster, name, id) => {
                let mut d = live_service(ecs, ctx, cluster, name)
                    .await?
                    .ok_or_else(not_found)?;
                let ts = task_set_mut(&mut d.value, id).ok_or_else(not_found)?;
                let mut t = ts.tags.take().unwrap_or_default();
                change(&mut t)?;
                ts.tags = (!t.is_empty()).then_some(t);
                d.write()
            }
            Target::Task(cluster, id) => {
                let mut d = task(ecs, ctx, cluster.as_deref(), id)
                    .await?
                    .ok_or_else(not_found)?;
                change(&mut d.value.tags)?;
                d.write()
            }
            Target::ContainerInstance(cluster, id) => {
                let mut d = container_instances::find(ecs, ctx, cluster, id)
                    .await?
                    .ok_or_else(not_found)?;
                change(d.value.instance.tags.get_or_insert_with(Vec::new))?;
                d.write()
            }
            Target::CapacityProvider(name) => {
                let mut d = capacity_providers::load_active(ecs, ctx, name)
                    .await?
                    .ok_or_else(not_found)?;
                change(d.value.tags.get_or_insert_with(Vec::new))?;
                d.write()
            }
        };
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![write],
            value: (),
        })
    })
    .await
}

/// A service that has not gone INACTIVE (an INACTIVE one is only a
/// record of what was).
async fn live_service(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    name: &str,
) -> Result<Option<Versioned<ServiceDoc>>, EcsError> {
    Ok(services::find(ecs, ctx, cluster, name)
        .await?
        .filter(|d| !d.value.is(status::INACTIVE)))
}

/// A task of this account and region, in `cluster` when the ARN names one.
async fn task(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: Option<&str>,
    id: &str,
) -> Result<Option<Versioned<TaskDoc>>, EcsError> {
    Ok(load::<TaskDoc>(ecs.store(), &scope(ctx), id)
        .await?
        .filter(|d| cluster.is_none_or(|c| d.value.cluster == c)))
}

/// A live (not deleted) task set of the service.
fn task_set_mut<'a>(doc: &'a mut ServiceDoc, id: &str) -> Option<&'a mut TaskSet> {
    doc.revisions
        .values_mut()
        .filter_map(|r| r.task_set.as_mut())
        .find(|ts| ts.id.as_deref() == Some(id) && ts.status.as_deref() != Some("DELETED"))
}

/// TagResource and UntagResource model `ResourceNotFoundException`;
/// ListTagsForResource does not, so it reports a missing resource as an
/// invalid parameter.
fn not_found() -> EcsError {
    EcsError::ResourceNotFound("The specified resource could not be found.".into())
}

fn not_found_for_list() -> EcsError {
    EcsError::invalid("The specified resource could not be found.")
}

pub async fn tag(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: TagResourceRequest,
) -> Result<TagResourceResponse, EcsError> {
    tags::validate(&input.tags)?;
    modify_tags(ecs, ctx, &input.resource_arn, |t| {
        tags::merge(t, &input.tags)
    })
    .await?;
    Ok(TagResourceResponse {})
}

pub async fn untag(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UntagResourceRequest,
) -> Result<UntagResourceResponse, EcsError> {
    tags::validate_keys(&input.tag_keys)?;
    modify_tags(ecs, ctx, &input.resource_arn, |t| {
        tags::remove(t, &input.tag_keys);
        Ok(())
    })
    .await?;
    Ok(UntagResourceResponse {})
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, EcsError> {
    let tags = match target(ctx, &input.resource_arn)? {
        Target::Cluster(name) => clusters::load_active(ecs, ctx, Some(&name))
            .await?
            .value
            .tags
            .unwrap_or_default(),
        Target::TaskDefinition(f, r) => {
            task_definitions::load_revision(ecs, ctx, &f, r)
                .await?
                .ok_or_else(not_found_for_list)?
                .value
                .tags
        }
        Target::Service(cluster, name) => {
            live_service(ecs, ctx, &cluster, &name)
                .await?
                .ok_or_else(not_found_for_list)?
                .value
                .tags
        }
        Target::TaskSet(cluster, name, id) => {
            let mut d = live_service(ecs, ctx, &cluster, &name)
                .await?
                .ok_or_else(not_found_for_list)?;
            task_set_mut(&mut d.value, &id)
                .ok_or_else(not_found_for_list)?
                .tags
                .take()
                .unwrap_or_default()
        }
        Target::Task(cluster, id) => {
            task(ecs, ctx, cluster.as_deref(), &id)
                .await?
                .ok_or_else(not_found_for_list)?
                .value
                .tags
        }
        Target::ContainerInstance(cluster, id) => {
            container_instances::find(ecs, ctx, &cluster, &id)
                .await?
                .ok_or_else(not_found_for_list)?
                .value
                .instance
                .tags
                .unwrap_or_default()
        }
        Target::CapacityProvider(name) => capacity_providers::load_active(ecs, ctx, &name)
            .await?
            .ok_or_else(not_found_for_list)?
            .value
            .tags
            .unwrap_or_default(),
    };
    Ok(ListTagsForResourceResponse { tags: Some(tags) })
}
