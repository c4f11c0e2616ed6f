//! Clusters: CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
//! UpdateClusterSettings, DeleteCluster.

use super::{capacity_providers, Ecs};
use crate::records::{self, kind, load, retry, scope, Attempt, Record, Versioned};
use berth_core::pagination::page_size;
use berth_core::task::TaskStatus;
use berth_core::{arn, names, tags, EcsError};
use berth_store::Query;
use berth_wire::ecs::*;
use berth_wire::RequestContext;

pub const DEFAULT_CLUSTER: &str = "default";
const ACTIVE: &str = "ACTIVE";
const INACTIVE: &str = "INACTIVE";

impl Record for Cluster {
    const KIND: &'static str = kind::CLUSTER;
    fn id(&self) -> String {
        self.cluster_name.clone().unwrap_or_default()
    }
    fn status(&self) -> String {
        self.status.clone().unwrap_or_default()
    }
}

/// The cluster name a `cluster` parameter (name or ARN, absent meaning
/// `default`) refers to in the caller's account and region.
pub fn cluster_name(ctx: &RequestContext, cluster: Option<&str>) -> Result<String, EcsError> {
    let c = cluster.unwrap_or(DEFAULT_CLUSTER);
    if !arn::looks_like_arn(c) {
        return Ok(c.to_string());
    }
    let a = arn::Arn::parse(c)
        .ok_or_else(|| EcsError::invalid(format!("Invalid cluster ARN '{c}'.")))?;
    match a.resource_type_and_id() {
        ("cluster", name) if a.service == "ecs" && !name.is_empty() => {
            if a.account != ctx.account_id || a.region != ctx.region {
                return Err(EcsError::ClusterNotFound);
            }
            Ok(name.to_string())
        }
        _ => Err(EcsError::invalid(format!("'{c}' is not a cluster ARN."))),
    }
}

/// Loads an ACTIVE cluster, or `ClusterNotFoundException`.
pub async fn load_active(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: Option<&str>,
) -> Result<Versioned<Cluster>, EcsError> {
    let name = cluster_name(ctx, cluster)?;
    match load::<Cluster>(ecs.store(), &scope(ctx), &name).await? {
        Some(c) if c.value.status.as_deref() == Some(ACTIVE) => Ok(c),
        _ => Err(EcsError::ClusterNotFound),
    }
}

fn validate_settings(settings: &[ClusterSetting]) -> Result<(), EcsError> {
    for s in settings {
        let name = s
            .name
            .as_ref()
            .ok_or_else(|| EcsError::invalid("Cluster setting name is required."))?;
        if !name.is_known() {
            return Err(EcsError::invalid(format!(
                "Invalid cluster setting name '{name}'."
            )));
        }
        let v = s.value.as_deref().unwrap_or("");
        if !["enabled", "disabled", "enhanced"].contains(&v) {
            return Err(EcsError::invalid(format!(
                "Invalid value '{v}' for cluster setting '{name}'. Valid values: enabled, disabled, enhanced"
            )));
        }
    }
    Ok(())
}

fn merge_settings(current: &mut Vec<ClusterSetting>, new: &[ClusterSetting]) {
    for s in new {
        match current.iter_mut().find(|c| c.name == s.name) {
            Some(c) => c.value = s.value.clone(),
            None => current.push(s.clone()),
        }
    }
}

/// A cluster's providers must exist in the account (built in, or ACTIVE),
/// and its default strategy may only use them.
async fn validate_capacity_providers(
    ecs: &Ecs,
    ctx: &RequestContext,
    providers: &[String],
    strategy: &[CapacityProviderStrategyItem],
) -> Result<(), EcsError> {
    for (n, p) in providers.iter().enumerate() {
        if !capacity_providers::exists(ecs, ctx, p).await? {
            return Err(EcsError::invalid(format!(
                "The specified capacity provider '{p}' does not exist."
            )));
        }
        if providers[..n].contains(p) {
            return Err(EcsError::invalid(format!(
                "The capacity provider '{p}' is specified more than once."
            )));
        }
    }
    for item in strategy {
        if !providers.contains(&item.capacity_provider) {
            return Err(EcsError::invalid(format!(
                "The capacity provider '{}' in the default strategy is not associated with the cluster.",
                item.capacity_provider
            )));
        }
    }
    if !strategy.is_empty() {
        capacity_providers::strategy::validate(strategy, providers)?;
    }
    Ok(())
}

pub async fn create(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: CreateClusterRequest,
) -> Result<CreateClusterResponse, EcsError> {
    let name = input
        .cluster_name
        .clone()
        .unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
    if !names::is_valid_name(&name) {
        return Err(EcsError::invalid(
            "Cluster name must be 1-255 characters: letters, numbers, hyphens and underscores.",
        ));
    }
    let cluster_tags = tags::initial(input.tags.as_ref())?;
    let mut settings = vec![ClusterSetting {
        name: Some(ClusterSettingName::ContainerInsights),
        value: Some(
            super::account_settings::effective_value(ecs, ctx, &SettingName::ContainerInsights)
                .await?,
        ),
    }];
    if let Some(s) = &input.settings {
        validate_settings(s)?;
        merge_settings(&mut settings, s);
    }
    let providers = input.capacity_providers.clone().unwrap_or_default();
    let strategy = input
        .default_capacity_provider_strategy
        .clone()
        .unwrap_or_default();
    validate_capacity_providers(ecs, ctx, &providers, &strategy).await?;
    let sc = scope(ctx);
    let _serialized = ecs.lock(ctx, kind::CLUSTER, &name).await;
    let cluster = retry(ecs.store(), async || {
        let existing = load::<Cluster>(ecs.store(), &sc, &name).await?;
        if let Some(c) = &existing {
            if c.value.status.as_deref() == Some(ACTIVE) {
                // ECS answers CreateCluster for an existing cluster with that cluster.
                return Ok(Attempt::Done(c.value.clone()));
            }
        }
        let cluster = Cluster {
            cluster_arn: Some(arn::cluster(&ctx.region, &ctx.account_id, &name)),
            cluster_name: Some(name.clone()),
            configuration: input.configuration.clone(),
            status: Some(ACTIVE.into()),
            tags: Some(cluster_tags.clone()),
            settings: Some(settings.clone()),
            capacity_providers: Some(providers.clone()),
            default_capacity_provider_strategy: Some(strategy.clone()),
            service_connect_defaults: input.service_connect_defaults.as_ref().map(|d| {
                ClusterServiceConnectDefaults {
                    namespace: Some(d.namespace.clone()),
                }
            }),
            ..Default::default()
        };
        let rec = Versioned {
            value: cluster,
            version: existing.map_or(0, |e| e.version),
        };
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![rec.write()],
            value: rec.value,
        })
    })
    .await?;
    let include = [ClusterField::Tags, ClusterField::Settings];
    let out = describe_one(ecs, ctx, cluster, &include).await?;
    Ok(CreateClusterResponse { cluster: Some(out) })
}

async fn count(
    ecs: &Ecs,
    ctx: &RequestContext,
    kind: &'static str,
    cluster: &str,
    status: &str,
) -> Result<i32, EcsError> {
    let n = ecs
        .store()
        .count(&scope(ctx), kind, Some(cluster), Some(status))
        .await
        .map_err(records::store_error)?;
    Ok(n as i32)
}

/// The stored cluster with live counts, and the optional parts the caller asked for.
async fn describe_one(
    ecs: &Ecs,
    ctx: &RequestContext,
    mut c: Cluster,
    include: &[ClusterField],
) -> Result<Cluster, EcsError> {
    let name = c.cluster_name.clone().unwrap_or_default();
    let instances = count(ecs, ctx, kind::CONTAINER_INSTANCE, &name, "ACTIVE").await?
        + count(ecs, ctx, kind::CONTAINER_INSTANCE, &name, "DRAINING").await?;
    let running = count(ecs, ctx, kind::TASK, &name, TaskStatus::Running.as_str()).await?;
    let pending = count(ecs, ctx, kind::TASK, &name, TaskStatus::Pending.as_str()).await?;
    let services = count(ecs, ctx, kind::SERVICE, &name, "ACTIVE").await?;
    c.registered_container_instances_count = Some(instances);
    c.running_tasks_count = Some(running);
    c.pending_tasks_count = Some(pending);
    c.active_services_count = Some(services);
    let has = |f: ClusterField| include.contains(&f);
    c.statistics = Some(if has(ClusterField::Statistics) {
        let live = super::tasks::active_in_cluster(ecs, ctx, &name).await?;
        let by_type = super::services::counts_by_launch_type(ecs, ctx, &name).await?;
        statistics(&live, &by_type)
    } else {
        vec![]
    });
    if !has(ClusterField::Tags) {
        c.tags = Some(vec![]);
    }
    if !has(ClusterField::Settings) {
        c.settings = Some(vec![]);
    }
    if !has(ClusterField::Configurations) {
        c.configuration = None;
    }
    if has(ClusterField::Attachments) {
        c.attachments.get_or_insert_with(Vec::new);
    } else {
        c.attachments = None;
        c.attachments_status = None;
    }
    c.capacity_providers.get_or_insert_with(Vec::new);
    c.default_capacity_provider_strategy
        .get_or_insert_with(Vec::new);
    Ok(c)
}

/// Tasks by launch type, counted from the cluster's live tasks, and
/// services by status and launch type.
fn statistics(
    live: &[super::tasks::TaskDoc],
    services: &std::collections::BTreeMap<(&'static str, LaunchType), i32>,
) -> Vec<KeyValuePair> {
    let svc =
        |status: &'static str, lt: LaunchType| services.get(&(status, lt)).copied().unwrap_or(0);
    let count = |lt: LaunchType, running: bool| {
        live.iter()
            .filter(|t| t.task.launch_type.as_ref() == Some(&lt))
            .filter(|t| (t.last_status() == TaskStatus::Running) == running)
            .filter(|t| running || t.last_status() < TaskStatus::Running)
            .count() as i32
    };
    let kv = |k: &str, v: i32| KeyValuePair {
        name: Some(k.into()),
        value: Some(v.to_string()),
    };
    vec![
        kv("runningEC2TasksCount", count(LaunchType::Ec2, true)),
        kv("runningFargateTasksCount", count(LaunchType::Fargate, true)),
        kv("pendingEC2TasksCount", count(LaunchType::Ec2, false)),
        kv(
            "pendingFargateTasksCount",
            count(LaunchType::Fargate, false),
        ),
        kv(
            "runningExternalTasksCount",
            count(LaunchType::External, true),
        ),
        kv(
            "pendingExternalTasksCount",
            count(LaunchType::External, false),
        ),
        kv("activeEC2ServiceCount", svc("ACTIVE", LaunchType::Ec2)),
        kv(
            "activeFargateServiceCount",
            svc("ACTIVE", LaunchType::Fargate),
        ),
        kv("drainingEC2ServiceCount", svc("DRAINING", LaunchType::Ec2)),
        kv(
            "drainingFargateServiceCount",
            svc("DRAINING", LaunchType::Fargate),
        ),
        kv(
            "activeExternalServiceCount",
            svc("ACTIVE", LaunchType::External),
        ),
        kv(
            "drainingExternalServiceCount",
            svc("DRAINING", LaunchType::External),
        ),
    ]
}

pub async fn describe(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeClustersRequest,
) -> Result<DescribeClustersResponse, EcsError> {
    let wanted = input
        .clusters
        .unwrap_or_else(|| vec![DEFAULT_CLUSTER.to_string()]);
    if wanted.len() > 100 {
        return Err(EcsError::invalid(
            "At most 100 clusters can be described at a time.",
        ));
    }
    let include = input.include.unwrap_or_default();
    if let Some(bad) = include.iter().find(|f| !f.is_known()) {
        return Err(EcsError::invalid(format!("Invalid include field '{bad}'.")));
    }
    let sc = scope(ctx);
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for w in &wanted {
        let name = match cluster_name(ctx, Some(w)) {
            Ok(n) => n,
            Err(_) => {
                failures.push(Failure {
                    arn: Some(w.clone()),
                    reason: Some("MISSING".into()),
                    detail: None,
                });
                continue;
            }
        };
        match load::<Cluster>(ecs.store(), &sc, &name).await? {
            Some(c) => clusters.push(describe_one(ecs, ctx, c.value, &include).await?),
            None => failures.push(Failure {
                arn: Some(arn::cluster(&ctx.region, &ctx.account_id, &name)),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeClustersResponse {
        clusters: Some(clusters),
        failures: Some(failures),
    })
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListClustersRequest,
) -> Result<ListClustersResponse, EcsError> {
    let limit = page_size(input.max_results, 100, 100)?;
    let pager = ecs.pager(ctx, "ListClusters", "", limit);
    let q = Query {
        status: Some(ACTIVE.into()),
        after: pager.start(input.next_token.as_deref())?,
        limit: limit + 1,
        ..Default::default()
    };
    let mut docs = records::list::<Cluster>(ecs.store(), &scope(ctx), &q).await?;
    let next_token = pager.finish(&mut docs, |d| d.value.id());
    Ok(ListClustersResponse {
        cluster_arns: Some(
            docs.into_iter()
                .filter_map(|d| d.value.cluster_arn)
                .collect(),
        ),
        next_token,
    })
}

/// Applies `change` to an ACTIVE cluster with optimistic retries.
async fn modify(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    change: impl Fn(&mut Cluster) -> Result<(), EcsError>,
) -> Result<Cluster, EcsError> {
    let name = cluster_name(ctx, Some(cluster))?;
    let _serialized = ecs.lock(ctx, kind::CLUSTER, &name).await;
    retry(ecs.store(), async || {
        let mut c = load_active(ecs, ctx, Some(cluster)).await?;
        change(&mut c.value)?;
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![c.write()],
            value: c.value,
        })
    })
    .await
}

pub async fn update(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UpdateClusterRequest,
) -> Result<UpdateClusterResponse, EcsError> {
    if let Some(s) = &input.settings {
        validate_settings(s)?;
    }
    let c = modify(ecs, ctx, &input.cluster, |c| {
        if let Some(s) = &input.settings {
            merge_settings(c.settings.get_or_insert_with(Vec::new), s);
        }
        if let Some(conf) = &input.configuration {
            c.configuration = Some(conf.clone());
        }
        if let Some(d) = &input.service_connect_defaults {
            c.service_connect_defaults = Some(ClusterServiceConnectDefaults {
                namespace: Some(d.namespace.clone()),
            });
        }
        Ok(())
    })
    .await?;
    let all = [
        ClusterField::Settings,
        ClusterField::Configurations,
        ClusterField::Tags,
    ];
    Ok(UpdateClusterResponse {
        cluster: Some(describe_one(ecs, ctx, c, &all).await?),
    })
}

pub async fn update_settings(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UpdateClusterSettingsRequest,
) -> Result<UpdateClusterSettingsResponse, EcsError> {
    validate_settings(&input.settings)?;
    let c = modify(ecs, ctx, &input.cluster, |c| {
        merge_settings(c.settings.get_or_insert_with(Vec::new), &input.settings);
        Ok(())
    })
    .await?;
    Ok(UpdateClusterSettingsResponse {
        cluster: Some(describe_one(ecs, ctx, c, &[ClusterField::Settings]).await?),
    })
}

pub async fn delete(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeleteClusterRequest,
) -> Result<DeleteClusterResponse, EcsError> {
    let name = cluster_name(ctx, Some(&input.cluster))?;
    let _serialized = ecs.lock(ctx, kind::CLUSTER, &name).await;
    let deleted = retry(ecs.store(), async || {
        let mut c = load_active(ecs, ctx, Some(&input.cluster)).await?;
        let name = c.value.id();
        let instances = count(ecs, ctx, kind::CONTAINER_INSTANCE, &name, "ACTIVE").await?
            + count(ecs, ctx, kind::CONTAINER_INSTANCE, &name, "DRAINING").await?;
        if instances > 0 {
            return Err(EcsError::ClusterContainsContainerInstances);
        }
        if count(ecs, ctx, kind::SERVICE, &name, "ACTIVE").await?
            + count(ecs, ctx, kind::SERVICE, &name, "DRAINING").await?
            > 0
        {
            return Err(EcsError::ClusterContainsServices);
        }
        if count(ecs, ctx, kind::TASK, &name, TaskStatus::Running.as_str()).await?
            + count(ecs, ctx, kind::TASK, &name, TaskStatus::Pending.as_str()).await?
            > 0
        {
            return Err(EcsError::ClusterContainsTasks);
        }
        c.value.status = Some(INACTIVE.into());
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![c.write()],
            value: c.value,
        })
    })
    .await?;
    Ok(DeleteClusterResponse {
        cluster: Some(describe_one(ecs, ctx, deleted, &[]).await?),
    })
}

/// PutClusterCapacityProviders: the cluster's providers and default
/// strategy, replaced. A provider that a service of the cluster uses, or
/// that runs tasks of it, cannot be removed, as on ECS.
pub async fn put_capacity_providers(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: PutClusterCapacityProvidersRequest,
) -> Result<PutClusterCapacityProvidersResponse, EcsError> {
    let providers = input.capacity_providers.clone();
    let strategy = input.default_capacity_provider_strategy.clone();
    validate_capacity_providers(ecs, ctx, &providers, &strategy).await?;
    let current = load_active(ecs, ctx, Some(&input.cluster)).await?.value;
    let name = current.id();
    let live = super::tasks::active_in_cluster(ecs, ctx, &name).await?;
    for removed in current
        .capacity_providers
        .iter()
        .flatten()
        .filter(|p| !providers.contains(p))
    {
        let by_tasks = live
            .iter()
            .any(|t| t.task.capacity_provider_name.as_deref() == Some(removed.as_str()));
        let by_services = !capacity_providers::services_using(ecs, ctx, Some(&name), removed)
            .await?
            .is_empty();
        if by_tasks || by_services {
            return Err(EcsError::ResourceInUse(format!(
                "The specified capacity provider {removed} is in use and cannot be removed."
            )));
        }
    }
    let c = modify(ecs, ctx, &input.cluster, |c| {
        c.capacity_providers = Some(providers.clone());
        c.default_capacity_provider_strategy = Some(strategy.clone());
        Ok(())
    })
    .await?;
    let include = [ClusterField::Tags, ClusterField::Settings];
    let out = describe_one(ecs, ctx, c, &include).await?;
    Ok(PutClusterCapacityProvidersResponse { cluster: Some(out) })
}
