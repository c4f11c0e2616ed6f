//! Container instances: RegisterContainerInstance,
//! DeregisterContainerInstance, DescribeContainerInstances,
//! ListContainerInstances, UpdateContainerInstancesState, the attribute
//! operations and DiscoverPollEndpoint.
//!
//! Remaining resources and task counts are never stored: they are computed
//! from the instance's registration and the tasks on it that have not
//! stopped, so they are exact at every moment and cannot drift.

use super::tasks::{AssignmentDoc, TaskDoc};
use super::{clusters, Ecs};
use crate::records::{
    self, kind, load, retry, scope, too_contended, try_commit, Attempt, Record, Versioned,
};
use berth_core::pagination::{page_size, PageKey};
use berth_core::task::{Protocol, TaskStatus};
use berth_core::{arn, tags, EcsError};
use berth_store::Query;
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub const ACTIVE: &str = "ACTIVE";
pub const DRAINING: &str = "DRAINING";
pub const INACTIVE: &str = "INACTIVE";
/// Custom attributes per container instance (ECS's limit).
const MAX_CUSTOM_ATTRIBUTES: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceDoc {
    pub id: String,
    pub cluster: String,
    /// The registration as DescribeContainerInstances shows it, minus the
    /// live fields (remaining resources, counts, agentConnected).
    #[serde(rename = "containerInstance")]
    pub instance: ContainerInstance,
}

/// The attribute a `berth agent` sets to join a capacity provider.
pub const CAPACITY_PROVIDER_ATTRIBUTE: &str = "berth.capacity-provider";

impl Record for InstanceDoc {
    const KIND: &'static str = kind::CONTAINER_INSTANCE;
    fn id(&self) -> String {
        self.id.clone()
    }
    fn parent(&self) -> String {
        self.cluster.clone()
    }
    fn status(&self) -> String {
        self.instance.status.clone().unwrap_or_default()
    }
}

impl InstanceDoc {
    pub fn arn(&self) -> &str {
        self.instance
            .container_instance_arn
            .as_deref()
            .unwrap_or_default()
    }

    /// Registered CPU units, MiB, and reserved ports.
    pub fn registered(&self) -> (i64, i64, Vec<(Protocol, u16)>) {
        let mut cpu = 0;
        let mut memory = 0;
        let mut ports = Vec::new();
        for r in self.instance.registered_resources.iter().flatten() {
            match r.name.as_deref() {
                Some("CPU") => cpu = i64::from(r.integer_value.unwrap_or(0)),
                Some("MEMORY") => memory = i64::from(r.integer_value.unwrap_or(0)),
                Some(p @ ("PORTS" | "PORTS_UDP")) => {
                    let proto = if p == "PORTS" {
                        Protocol::Tcp
                    } else {
                        Protocol::Udp
                    };
                    for v in r.string_set_value.iter().flatten() {
                        if let Ok(n) = v.parse() {
                            ports.push((proto, n));
                        }
                    }
                }
                _ => {}
            }
        }
        (cpu, memory, ports)
    }
}

fn integer_resource(name: &str, v: i64) -> Resource {
    Resource {
        name: Some(name.into()),
        r#type: Some("INTEGER".into()),
        double_value: Some(0.0),
        long_value: Some(0),
        integer_value: Some(v as i32),
        string_set_value: None,
    }
}

fn ports_resource(name: &str, ports: Vec<String>) -> Resource {
    Resource {
        name: Some(name.into()),
        r#type: Some("STRINGSET".into()),
        double_value: Some(0.0),
        long_value: Some(0),
        integer_value: Some(0),
        string_set_value: Some(ports),
    }
}

/// Whether the instance's agent is connected now.
pub fn connected(ecs: &Ecs, doc: &InstanceDoc) -> bool {
    ecs.liveness.silence(doc.arn()) < ecs.timings.agent_disconnect_grace
}

/// The tasks on one of `ctx`'s instances that have not stopped: those its
/// assignments list (an index range of the instance, not the cluster's tasks).
async fn tasks_on(
    ecs: &Ecs,
    ctx: &RequestContext,
    instance_id: &str,
) -> Result<Vec<TaskDoc>, EcsError> {
    let q = Query {
        parent: Some(instance_id.to_string()),
        limit: 1_000_000,
        ..Default::default()
    };
    let mut out = Vec::new();
    for a in records::list::<AssignmentDoc>(ecs.store(), &scope(ctx), &q).await? {
        let task_scope = berth_store::Scope::new(&a.value.account, &a.value.region);
        if let Some(t) = load::<TaskDoc>(ecs.store(), &task_scope, &a.value.task_id).await? {
            out.push(t.value);
        }
    }
    Ok(out)
}

/// The instance as DescribeContainerInstances shows it, with the live
/// fields computed from `active` (its tasks that have not stopped).
pub fn live_view(
    ecs: &Ecs,
    doc: &InstanceDoc,
    active: &[&TaskDoc],
    include_tags: bool,
) -> ContainerInstance {
    let (cpu, memory, reserved) = doc.registered();
    let mut used_cpu = 0;
    let mut used_memory = 0;
    let mut ports: BTreeSet<(Protocol, u16)> = reserved.into_iter().collect();
    let (mut running, mut pending) = (0, 0);
    for t in active {
        used_cpu += t.reserved.cpu;
        used_memory += t.reserved.memory;
        ports.extend(t.reserved.host_ports.iter().copied());
        match t.last_status() {
            TaskStatus::Running => running += 1,
            TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating => pending += 1,
            _ => {}
        }
    }
    let list = |proto: Protocol| {
        ports
            .iter()
            .filter(|(p, _)| *p == proto)
            .map(|(_, n)| n.to_string())
            .collect()
    };
    let mut ci = doc.instance.clone();
    ci.remaining_resources = Some(vec![
        integer_resource("CPU", cpu - used_cpu),
        integer_resource("MEMORY", memory - used_memory),
        ports_resource("PORTS", list(Protocol::Tcp)),
        ports_resource("PORTS_UDP", list(Protocol::Udp)),
    ]);
    ci.running_tasks_count = Some(running);
    ci.pending_tasks_count = Some(pending);
    ci.agent_connected =
        Some(doc.instance.status.as_deref() != Some(INACTIVE) && connected(ecs, doc));
    if !include_tags {
        ci.tags = None;
    }
    ci
}

fn validate_resources(resources: &[Resource]) -> Result<(), EcsError> {
    for name in ["CPU", "MEMORY"] {
        let r = resources.iter().find(|r| r.name.as_deref() == Some(name));
        if r.and_then(|r| r.integer_value).is_none_or(|v| v < 0) {
            return Err(EcsError::invalid(format!(
                "totalResources must include {name} as a non-negative INTEGER resource."
            )));
        }
    }
    Ok(())
}

fn validate_attributes(attrs: &[Attribute]) -> Result<(), EcsError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_./\\@:".contains(c);
    for a in attrs {
        if a.name.is_empty() || a.name.len() > 128 || !a.name.chars().all(ok_char) {
            return Err(EcsError::invalid(format!(
                "Invalid attribute name '{}'.",
                a.name
            )));
        }
        if a.value
            .as_ref()
            .is_some_and(|v| v.is_empty() || v.len() > 128)
        {
            return Err(EcsError::invalid(format!(
                "Invalid value for attribute '{}'.",
                a.name
            )));
        }
    }
    Ok(())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// What ECS reads of an EC2 instance identity document: the instance it
/// is (`ec2InstanceId`), and the attributes ECS derives from it. The
/// document's signature is AWS's and cannot be checked here; the instance
/// ID only names the instance within the caller's own account.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    instance_id: Option<String>,
    availability_zone: Option<String>,
    instance_type: Option<String>,
    image_id: Option<String>,
}

impl Identity {
    /// `ecs.availability-zone`, `ecs.instance-type`, `ecs.ami-id`, unless
    /// the registration gives them itself.
    fn add_attributes(&self, attributes: &mut Vec<Attribute>) {
        for (name, value) in [
            ("ecs.availability-zone", &self.availability_zone),
            ("ecs.instance-type", &self.instance_type),
            ("ecs.ami-id", &self.image_id),
        ] {
            if let Some(v) = value {
                if !attributes.iter().any(|a| a.name == name) {
                    attributes.push(Attribute {
                        name: name.into(),
                        value: Some(v.clone()),
                        ..Default::default()
                    });
                }
            }
        }
    }
}

fn identity(document: Option<&str>) -> Result<Identity, EcsError> {
    match document.map(str::trim).filter(|d| !d.is_empty()) {
        None => Ok(Identity::default()),
        Some(d) => serde_json::from_str(d).map_err(|_| {
            EcsError::invalid("instanceIdentityDocument is not a valid instance identity document.")
        }),
    }
}

pub async fn register(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: RegisterContainerInstanceRequest,
) -> Result<RegisterContainerInstanceResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value;
    let cluster_name = cluster.id();
    let resources = input.total_resources.clone().unwrap_or_default();
    validate_resources(&resources)?;
    let mut attributes = input.attributes.clone().unwrap_or_default();
    validate_attributes(&attributes)?;
    let identity = identity(input.instance_identity_document.as_deref())?;
    identity.add_attributes(&mut attributes);
    let instance_tags = tags::initial(input.tags.as_ref())?;
    // `berth agent --capacity-provider NAME` joins an Auto Scaling group
    // provider of the account (ECS learns it from the instance's group).
    let provider = attributes
        .iter()
        .find(|a| a.name == CAPACITY_PROVIDER_ATTRIBUTE)
        .and_then(|a| a.value.clone());
    if let Some(p) = &provider {
        if super::capacity_providers::load_active(ecs, ctx, p)
            .await?
            .is_none()
        {
            return Err(EcsError::client(format!(
                "The capacity provider '{p}' does not exist or is not ACTIVE in this account and region."
            )));
        }
    }
    let sc = scope(ctx);
    // Re-registration names the instance it was before: keep its identity.
    let existing =
        match &input.container_instance_arn {
            Some(a) => Some(find(ecs, ctx, &cluster_name, a).await?.ok_or_else(|| {
                EcsError::invalid(format!("Unknown containerInstanceArn '{a}'."))
            })?),
            None => None,
        };
    let id = existing
        .as_ref()
        .map_or_else(new_id, |e| e.value.id.clone());
    let instance_arn = arn::container_instance(&ctx.region, &ctx.account_id, &cluster_name, &id);
    let registered = ContainerInstance {
        container_instance_arn: Some(instance_arn.clone()),
        version: Some(
            existing
                .as_ref()
                .and_then(|e| e.value.instance.version)
                .unwrap_or(0)
                + 1,
        ),
        version_info: input.version_info.clone(),
        registered_resources: Some(resources),
        status: Some(ACTIVE.into()),
        attributes: Some(
            attributes
                .into_iter()
                .map(|a| Attribute {
                    target_type: None,
                    target_id: None,
                    ..a
                })
                .collect(),
        ),
        registered_at: Some(
            existing
                .as_ref()
                .and_then(|e| e.value.instance.registered_at)
                .unwrap_or_else(|| ecs.now()),
        ),
        tags: Some(instance_tags),
        attachments: Some(vec![]),
        ec2_instance_id: identity.instance_id,
        capacity_provider_name: provider,
        ..Default::default()
    };
    let doc = Versioned {
        value: InstanceDoc {
            id,
            cluster: cluster_name.clone(),
            instance: registered,
        },
        version: existing.map_or(0, |e| e.version),
    };
    if !try_commit(ecs.store(), &sc, vec![doc.write()]).await? {
        return Err(too_contended());
    }
    ecs.liveness.seen(&instance_arn);
    let active = tasks_on(ecs, ctx, &doc.value.id).await?;
    let on_it: Vec<&TaskDoc> = active.iter().collect();
    // A DAEMON service follows its cluster's instances; any service may
    // now place what it could not.
    ecs.wake_services_of_cluster(ctx, &cluster_name).await?;
    Ok(RegisterContainerInstanceResponse {
        container_instance: Some(live_view(ecs, &doc.value, &on_it, true)),
    })
}

/// Resolves a container instance given by ARN or id within a cluster.
pub async fn find(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    reference: &str,
) -> Result<Option<Versioned<InstanceDoc>>, EcsError> {
    let id = if arn::looks_like_arn(reference) {
        match arn::Arn::parse(reference) {
            Some(a) if a.account == ctx.account_id && a.region == ctx.region => {
                match a.resource_type_and_id() {
                    ("container-instance", rest) => {
                        rest.rsplit('/').next().unwrap_or_default().to_string()
                    }
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        }
    } else {
        reference.to_string()
    };
    let doc = load::<InstanceDoc>(ecs.store(), &scope(ctx), &id).await?;
    Ok(doc.filter(|d| d.value.cluster == cluster))
}

pub async fn describe(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeContainerInstancesRequest,
) -> Result<DescribeContainerInstancesResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    if input.container_instances.len() > 100 {
        return Err(EcsError::invalid(
            "At most 100 container instances can be described at a time.",
        ));
    }
    let include = input.include.unwrap_or_default();
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for r in &input.container_instances {
        match find(ecs, ctx, &cluster, r).await? {
            Some(doc) => {
                let active = tasks_on(ecs, ctx, &doc.value.id).await?;
                let on_it: Vec<&TaskDoc> = active.iter().collect();
                let mut ci = live_view(
                    ecs,
                    &doc.value,
                    &on_it,
                    include.contains(&ContainerInstanceField::Tags),
                );
                if include.contains(&ContainerInstanceField::ContainerInstanceHealth) {
                    ci.health_status = Some(ContainerInstanceHealthStatus {
                        overall_status: Some(if ci.agent_connected == Some(true) {
                            InstanceHealthCheckState::Ok
                        } else {
                            InstanceHealthCheckState::Impaired
                        }),
                        details: Some(vec![]),
                    });
                }
                out.push(ci);
            }
            None => failures.push(Failure {
                arn: Some(if arn::looks_like_arn(r) {
                    r.clone()
                } else {
                    arn::container_instance(&ctx.region, &ctx.account_id, &cluster, r)
                }),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeContainerInstancesResponse {
        container_instances: Some(out),
        failures: Some(failures),
    })
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListContainerInstancesRequest,
) -> Result<ListContainerInstancesResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    let filter_expr = match input.filter.as_deref() {
        Some(text) => Some(crate::ecs::tasks::launch::expression(Some(text))?),
        None => None,
    };
    let limit = page_size(input.max_results, 100, 100)?;
    if let Some(s) = input.status.as_ref().filter(|s| !s.is_known()) {
        return Err(EcsError::invalid(format!("Invalid status '{s}'.")));
    }
    let status = input.status.as_ref().map(|s| s.as_str().to_string());
    let filter = format!(
        "{cluster}|{status:?}|{}",
        input.filter.as_deref().unwrap_or_default()
    );
    let pager = ecs.pager(ctx, "ListContainerInstances", &filter, limit);
    let q = Query {
        parent: Some(cluster.clone()),
        status: status.clone(),
        after: pager.start(input.next_token.as_deref())?,
        // A filter may pass few: read on, so that a page is never cut short.
        limit: if filter_expr.is_some() { 100_000 } else { 1000 },
        ..Default::default()
    };
    let mut docs = records::list::<InstanceDoc>(ecs.store(), &scope(ctx), &q).await?;
    // Without a status filter ECS lists every state but INACTIVE.
    if status.is_none() {
        docs.retain(|d| d.value.instance.status.as_deref() != Some(INACTIVE));
    }
    if let Some(expr) = &filter_expr {
        let on_them = records::list::<AssignmentDoc>(
            ecs.store(),
            &scope(ctx),
            &Query {
                sort_prefix: Some(AssignmentDoc::cluster_prefix(&cluster)),
                limit: 1_000_000,
                ..Default::default()
            },
        )
        .await?
        .into_iter()
        .map(|a| a.value)
        .collect::<Vec<_>>();
        docs.retain(|d| {
            let seen = crate::ecs::tasks::launch::scheduler_instance(ecs, &d.value, &on_them);
            expr.matches(&seen)
        });
    }
    let next_token = pager.finish(&mut docs, |d| d.value.sort());
    Ok(ListContainerInstancesResponse {
        container_instance_arns: Some(
            docs.into_iter()
                .map(|d| d.value.arn().to_string())
                .collect(),
        ),
        next_token,
    })
}

/// Applies `change` to one instance with optimistic retries.
async fn modify(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    reference: &str,
    change: impl Fn(&mut InstanceDoc) -> Result<(), EcsError>,
) -> Result<Option<InstanceDoc>, EcsError> {
    retry(ecs.store(), async || {
        let Some(mut doc) = find(ecs, ctx, cluster, reference).await? else {
            return Ok(Attempt::Done(None));
        };
        change(&mut doc.value)?;
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![doc.write()],
            value: Some(doc.value),
        })
    })
    .await
}

pub async fn update_state(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UpdateContainerInstancesStateRequest,
) -> Result<UpdateContainerInstancesStateResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    let status = match input.status {
        ContainerInstanceStatus::Active => ACTIVE,
        ContainerInstanceStatus::Draining => DRAINING,
        other => {
            return Err(EcsError::invalid(format!(
                "Container instances can only be set to ACTIVE or DRAINING, not {other}."
            )))
        }
    };
    if input.container_instances.len() > 10 {
        return Err(EcsError::invalid(
            "At most 10 container instances can be updated at a time.",
        ));
    }
    let _serialized = ecs.lock(ctx, kind::CLUSTER, &cluster).await;
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for r in &input.container_instances {
        let updated = modify(ecs, ctx, &cluster, r, |d| {
            if d.instance.status.as_deref() == Some(INACTIVE) {
                return Err(EcsError::invalid("The container instance is deregistered."));
            }
            d.instance.status = Some(status.to_string());
            d.instance.version = Some(d.instance.version.unwrap_or(0) + 1);
            Ok(())
        })
        .await?;
        match updated {
            Some(d) => {
                let active = tasks_on(ecs, ctx, &d.id).await?;
                let on_it: Vec<&TaskDoc> = active.iter().collect();
                out.push(live_view(ecs, &d, &on_it, false));
            }
            None => failures.push(Failure {
                arn: Some(r.clone()),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    // A DAEMON service follows its cluster's instances; any service may
    // now place what it could not.
    ecs.wake_services_of_cluster(ctx, &cluster).await?;
    Ok(UpdateContainerInstancesStateResponse {
        container_instances: Some(out),
        failures: Some(failures),
    })
}

pub async fn deregister(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeregisterContainerInstanceRequest,
) -> Result<DeregisterContainerInstanceResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    let _serialized = ecs.lock(ctx, kind::CLUSTER, &cluster).await;
    let doc = find(ecs, ctx, &cluster, &input.container_instance)
        .await?
        .ok_or_else(|| {
            EcsError::invalid(format!(
                "Unknown container instance '{}'.",
                input.container_instance
            ))
        })?;
    let active = tasks_on(ecs, ctx, &doc.value.id).await?;
    let on_it: Vec<&TaskDoc> = active.iter().collect();
    if !on_it.is_empty() && input.force != Some(true) {
        return Err(EcsError::invalid(
            "Found running tasks on the instance: stop them first, or deregister with force.",
        ));
    }
    let updated = modify(ecs, ctx, &cluster, &input.container_instance, |d| {
        d.instance.status = Some(INACTIVE.into());
        d.instance.version = Some(d.instance.version.unwrap_or(0) + 1);
        Ok(())
    })
    .await?
    .ok_or_else(|| EcsError::invalid("Unknown container instance."))?;
    ecs.liveness.forget(updated.arn());
    // A DAEMON service follows its cluster's instances; any service may
    // now place what it could not.
    ecs.wake_services_of_cluster(ctx, &cluster).await?;
    Ok(DeregisterContainerInstanceResponse {
        container_instance: Some(live_view(ecs, &updated, &on_it, false)),
    })
}

/// Resolves an attribute's target (a container instance of the cluster).
fn target_of(a: &Attribute) -> Result<&str, EcsError> {
    if a.target_type
        .as_ref()
        .is_some_and(|t| *t != TargetType::ContainerInstance)
    {
        return Err(EcsError::invalid(
            "Attributes can only target container instances.",
        ));
    }
    a.target_id
        .as_deref()
        .ok_or_else(|| EcsError::invalid(format!("Attribute '{}' needs a targetId.", a.name)))
}

pub async fn put_attributes(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: PutAttributesRequest,
) -> Result<PutAttributesResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    validate_attributes(&input.attributes)?;
    for a in &input.attributes {
        let target = target_of(a)?;
        let found = modify(ecs, ctx, &cluster, target, |d| {
            let attrs = d.instance.attributes.get_or_insert_with(Vec::new);
            match attrs.iter_mut().find(|x| x.name == a.name) {
                Some(x) => x.value = a.value.clone(),
                None => {
                    let custom = attrs.iter().filter(|x| !x.name.starts_with("ecs.") && !x.name.starts_with("com.amazonaws.")).count();
                    if custom >= MAX_CUSTOM_ATTRIBUTES {
                        return Err(EcsError::AttributeLimitExceeded(format!(
                            "A container instance can have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes."
                        )));
                    }
                    attrs.push(Attribute { name: a.name.clone(), value: a.value.clone(), target_type: None, target_id: None });
                }
            }
            Ok(())
        })
        .await?;
        if found.is_none() {
            return Err(EcsError::TargetNotFound(format!(
                "Could not find {target}."
            )));
        }
    }
    // A DAEMON service follows its cluster's instances; any service may
    // now place what it could not.
    ecs.wake_services_of_cluster(ctx, &cluster).await?;
    Ok(PutAttributesResponse {
        attributes: Some(input.attributes),
    })
}

pub async fn delete_attributes(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeleteAttributesRequest,
) -> Result<DeleteAttributesResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    for a in &input.attributes {
        let target = target_of(a)?;
        let found = modify(ecs, ctx, &cluster, target, |d| {
            d.instance
                .attributes
                .get_or_insert_with(Vec::new)
                .retain(|x| x.name != a.name);
            Ok(())
        })
        .await?;
        if found.is_none() {
            return Err(EcsError::TargetNotFound(format!(
                "Could not find {target}."
            )));
        }
    }
    // A DAEMON service follows its cluster's instances; any service may
    // now place what it could not.
    ecs.wake_services_of_cluster(ctx, &cluster).await?;
    Ok(DeleteAttributesResponse {
        attributes: Some(input.attributes),
    })
}

pub async fn list_attributes(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListAttributesRequest,
) -> Result<ListAttributesResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    if input.target_type != TargetType::ContainerInstance {
        return Err(EcsError::invalid("targetType must be container-instance."));
    }
    if input.attribute_value.is_some() && input.attribute_name.is_none() {
        return Err(EcsError::invalid("attributeValue requires attributeName."));
    }
    let limit = page_size(input.max_results, 100, 100)?;
    let q = Query {
        parent: Some(cluster.clone()),
        limit: 10_000,
        ..Default::default()
    };
    let docs = records::list::<InstanceDoc>(ecs.store(), &scope(ctx), &q).await?;
    let mut all = Vec::new();
    for d in docs
        .iter()
        .filter(|d| d.value.instance.status.as_deref() != Some(INACTIVE))
    {
        for a in d.value.instance.attributes.iter().flatten() {
            let name_ok = input.attribute_name.as_ref().is_none_or(|n| *n == a.name);
            let value_ok = input
                .attribute_value
                .as_ref()
                .is_none_or(|v| Some(v) == a.value.as_ref());
            if name_ok && value_ok {
                all.push(Attribute {
                    name: a.name.clone(),
                    value: a.value.clone(),
                    target_type: Some(TargetType::ContainerInstance),
                    target_id: Some(d.value.arn().to_string()),
                });
            }
        }
    }
    let filter = format!(
        "{cluster}|{:?}|{:?}",
        input.attribute_name, input.attribute_value
    );
    let page = PageKey {
        operation: "ListAttributes",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &filter,
    };
    let position =
        |a: &Attribute| format!("{}\t{}", a.target_id.as_deref().unwrap_or_default(), a.name);
    if let Some(t) = &input.next_token {
        let after = ecs.tokens.decode(&page, t)?;
        all.retain(|a| position(a) > after);
    }
    all.sort_by_key(position);
    let next_token = (all.len() > limit).then(|| {
        all.truncate(limit);
        ecs.tokens.encode(&page, &position(&all[limit - 1]))
    });
    Ok(ListAttributesResponse {
        attributes: Some(all),
        next_token,
    })
}

/// The agent channel is on the same endpoint as the API; the server
/// reports its own URL.
pub fn discover_poll_endpoint(endpoint: &str) -> DiscoverPollEndpointResponse {
    DiscoverPollEndpointResponse {
        endpoint: Some(endpoint.to_string()),
        telemetry_endpoint: Some(endpoint.to_string()),
        service_connect_endpoint: None,
    }
}
