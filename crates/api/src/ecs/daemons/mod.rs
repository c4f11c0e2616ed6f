//! ECS's Daemon API: daemon task definitions, and daemons that run one
//! task on every container instance of their capacity providers.
//!
//! A daemon is driven by the service machinery, not a reconciler of its
//! own: each daemon has a *backing* DAEMON service document (id
//! `cluster/daemon:NAME`, a name no service can have) that the service
//! driver reconciles like any other — the pure `reconcile` over the
//! cluster's instances, with the instances of the daemon's providers as
//! the eligible ones and `drainPercent`/`bakeTimeInMinutes` as its rollout
//! (`berth_scheduler::service::DaemonRollout`). The backing document is
//! hidden from the service operations (`ServiceDoc::backs_daemon`); the
//! Daemon API's views are made here from the `DaemonDoc` and from the
//! backing service's deployment and revision records, whose ids the
//! daemon deployment and revision ARNs carry.

mod lifecycle;
mod queries;
pub mod task_definitions;

pub use lifecycle::{create, delete, update};
pub use queries::{describe, describe_deployments, describe_revisions, list, list_deployments};

use super::services::{self, ServiceDoc};
use super::{Ecs, InstanceDoc};
use crate::records::{self, kind, load, scope, Record, Versioned};
use berth_core::{arn, EcsError};
use berth_store::Query;
use berth_wire::ecs::*;
use berth_wire::{RequestContext, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// ECS's default `drainPercent`.
pub const DEFAULT_DRAIN_PERCENT: f64 = 25.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DaemonDoc {
    pub cluster: String,
    pub name: String,
    pub arn: String,
    pub cluster_arn: String,
    pub status: DaemonStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The daemon task definition ARN it runs now.
    pub task_definition: String,
    /// Capacity provider ARNs, as given.
    pub providers: Vec<String>,
    pub config: DaemonDeploymentConfiguration,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub client_token: Option<String>,
    pub propagate_tags: Option<DaemonPropagateTags>,
    pub enable_ecs_managed_tags: bool,
    pub enable_execute_command: bool,
    /// The newest daemon deployment's ARN.
    pub deployment_arn: String,
    /// Each deployment's configuration, by deployment id.
    #[serde(default)]
    pub configs: BTreeMap<String, DaemonDeploymentConfiguration>,
}

impl Record for DaemonDoc {
    const KIND: &'static str = kind::DAEMON;
    fn id(&self) -> String {
        services::key(&self.cluster, &self.name)
    }
    fn parent(&self) -> String {
        self.cluster.clone()
    }
    fn status(&self) -> String {
        self.status.as_str().to_string()
    }
}

impl DaemonDoc {
    /// The id of the service document that runs it.
    pub fn backing_id(&self) -> String {
        backing_id(&self.cluster, &self.name)
    }
}

pub fn backing_id(cluster: &str, name: &str) -> String {
    services::key(cluster, &backing_name(name))
}

/// The backing service's name: `daemon:NAME` (no service name has a colon).
pub fn backing_name(daemon: &str) -> String {
    format!("daemon:{daemon}")
}

// ---- Capacity providers ----------------------------------------------

/// The name of the capacity provider a container instance belongs to.
pub fn instance_capacity_provider(doc: &InstanceDoc) -> Option<String> {
    doc.instance.capacity_provider_name.clone()
}

/// The name of the capacity provider a `capacityProviderArns` entry names:
/// an ACTIVE provider of the caller's account and region. ECS allows
/// daemons on Managed Instances providers only; berth will also allow its
/// agent-pool (auto-scaling group) providers, whose hosts are berth agents.
/// FARGATE and FARGATE_SPOT run no container instance, so no daemon.
pub async fn resolve_capacity_provider(
    ecs: &Ecs,
    ctx: &RequestContext,
    arn_or_name: &str,
) -> Result<String, EcsError> {
    let name = if arn::looks_like_arn(arn_or_name) {
        let a = arn::Arn::parse(arn_or_name).filter(|a| a.service == "ecs");
        match a.as_ref().map(|a| (a, a.resource_type_and_id())) {
            Some((a, ("capacity-provider", name)))
                if a.account == ctx.account_id && a.region == ctx.region =>
            {
                name.to_string()
            }
            _ => {
                return Err(EcsError::invalid(format!(
                    "The specified capacity provider '{arn_or_name}' is not valid."
                )))
            }
        }
    } else {
        arn_or_name.to_string()
    };
    if !berth_core::names::is_valid_name(&name) {
        return Err(EcsError::invalid(format!(
            "The specified capacity provider '{arn_or_name}' is not valid."
        )));
    }
    if name == "FARGATE" || name == "FARGATE_SPOT" {
        return Err(EcsError::invalid(format!(
            "The capacity provider '{name}' is not supported for daemons. Daemons run on container instances of Managed Instances (or berth agent pool) capacity providers."
        )));
    }
    if super::capacity_providers::load_active(ecs, ctx, &name)
        .await?
        .is_none()
    {
        return Err(EcsError::invalid(format!(
            "The specified capacity provider '{arn_or_name}' does not exist."
        )));
    }
    Ok(name)
}

// ----------------------------------------------------------------------

/// What a backing service document knows of its daemon.
pub fn backing(
    name: &str,
    providers: Vec<String>,
    config: &DaemonDeploymentConfiguration,
) -> services::Backing {
    services::Backing {
        daemon: name.to_string(),
        providers,
        drain_percent: config.drain_percent.unwrap_or(DEFAULT_DRAIN_PERCENT),
        bake_ms: i64::from(config.bake_time_in_minutes.unwrap_or(0)) * 60_000,
    }
}

/// Checks a `deploymentConfiguration` as ECS documents it.
fn check_config(c: &DaemonDeploymentConfiguration) -> Result<(), EcsError> {
    if let Some(p) = c.drain_percent {
        if !(1.0..=100.0).contains(&p) {
            return Err(EcsError::invalid(
                "drainPercent must be between 1.0 and 100.0.",
            ));
        }
    }
    if let Some(b) = c.bake_time_in_minutes {
        if !(0..=1440).contains(&b) {
            return Err(EcsError::invalid(
                "bakeTimeInMinutes must be between 0 and 1440.",
            ));
        }
    }
    if c.alarms.as_ref().is_some_and(|a| a.enable == Some(true)) {
        return Err(EcsError::UnsupportedFeature(
            "CloudWatch alarms are not available in berth: deployment alarms can not be enabled."
                .into(),
        ));
    }
    Ok(())
}

/// The cluster and name a daemon ARN names in the caller's account and
/// region, or `None`.
fn parse_daemon_arn(ctx: &RequestContext, s: &str) -> Option<(String, String)> {
    let a = arn::Arn::parse(s)?;
    if a.service != "ecs" || a.account != ctx.account_id || a.region != ctx.region {
        return None;
    }
    match a.resource_type_and_id() {
        ("daemon", rest) => {
            let (c, n) = rest.split_once('/')?;
            Some((c.to_string(), n.to_string()))
        }
        _ => None,
    }
}

/// `(cluster, daemon, id)` of a daemon deployment or revision ARN of the
/// caller's, `kind` being `daemon-deployment` or `daemon-revision`.
fn parse_child_arn(ctx: &RequestContext, s: &str, kind: &str) -> Option<(String, String, String)> {
    let a = arn::Arn::parse(s)?;
    if a.service != "ecs" || a.account != ctx.account_id || a.region != ctx.region {
        return None;
    }
    let (k, rest) = a.resource_type_and_id();
    if k != kind {
        return None;
    }
    let mut parts = rest.splitn(3, '/');
    let (c, n, id) = (parts.next()?, parts.next()?, parts.next()?);
    Some((c.to_string(), n.to_string(), id.to_string()))
}

fn not_found(reference: &str) -> EcsError {
    EcsError::DaemonNotFound(format!("The daemon '{reference}' was not found."))
}

/// The daemon and its backing service; a daemon whose deletion has
/// finished (its backing service is INACTIVE) is gone.
pub async fn find(
    ecs: &Ecs,
    ctx: &RequestContext,
    daemon_arn: &str,
) -> Result<(Versioned<DaemonDoc>, Versioned<ServiceDoc>), EcsError> {
    if !arn::looks_like_arn(daemon_arn) {
        return Err(EcsError::invalid(format!(
            "Invalid daemon ARN '{daemon_arn}'."
        )));
    }
    let (cluster, name) = parse_daemon_arn(ctx, daemon_arn).ok_or_else(|| not_found(daemon_arn))?;
    let sc = scope(ctx);
    let doc = load::<DaemonDoc>(ecs.store(), &sc, &services::key(&cluster, &name))
        .await?
        .ok_or_else(|| not_found(daemon_arn))?;
    let backing = load::<ServiceDoc>(ecs.store(), &sc, &doc.value.backing_id())
        .await?
        .filter(|b| !b.value.is(berth_core::service::status::INACTIVE))
        .ok_or_else(|| not_found(daemon_arn))?;
    Ok((doc, backing))
}

/// Whether a live daemon of the account runs `definition`: any revision
/// its backing service still keeps (live deployments, a rollback's target).
pub async fn uses_definition(
    ecs: &Ecs,
    ctx: &RequestContext,
    definition: &str,
) -> Result<bool, EcsError> {
    let q = Query {
        limit: 1_000_000,
        ..Default::default()
    };
    for d in records::list::<DaemonDoc>(ecs.store(), &scope(ctx), &q).await? {
        let backing = load::<ServiceDoc>(ecs.store(), &scope(ctx), &d.value.backing_id()).await?;
        let Some(b) = backing.filter(|b| !b.value.is(berth_core::service::status::INACTIVE)) else {
            continue;
        };
        let runs = b
            .value
            .revisions
            .values()
            .any(|r| r.revision.task_definition.as_deref() == Some(definition));
        if runs || d.value.task_definition == definition {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The task definition a backing service's revision launches (a daemon
/// task definition, by ARN), for the service driver.
pub async fn launchable(
    ecs: &Ecs,
    ctx: &RequestContext,
    definition_arn: &str,
) -> Result<TaskDefinition, EcsError> {
    let doc = task_definitions::resolve(ecs, ctx, definition_arn)
        .await?
        .ok_or_else(|| EcsError::client("The specified daemon task definition does not exist."))?;
    let mut td = doc.launchable;
    // A daemon keeps running its revision once the revision is deleted.
    td.status = Some(TaskDefinitionStatus::Active);
    Ok(td)
}

/// The tags a daemon's tasks get (`propagateTags` DAEMON).
pub async fn task_tags(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    name: &str,
) -> Result<Vec<Tag>, EcsError> {
    let doc = load::<DaemonDoc>(ecs.store(), &scope(ctx), &services::key(cluster, name)).await?;
    Ok(doc
        .map(|d| d.value)
        .filter(|d| d.propagate_tags == Some(DaemonPropagateTags::Daemon))
        .map(|d| d.tags)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext::for_account("111122223333", "us-east-1")
    }

    #[test]
    fn daemon_arns_name_cluster_and_daemon_of_the_caller_only() {
        let a = arn::daemon("us-east-1", "111122223333", "prod", "agent");
        assert_eq!(
            parse_daemon_arn(&ctx(), &a),
            Some(("prod".into(), "agent".into()))
        );
        let foreign = arn::daemon("us-east-1", "444455556666", "prod", "agent");
        assert_eq!(parse_daemon_arn(&ctx(), &foreign), None);
        let other_region = arn::daemon("eu-west-1", "111122223333", "prod", "agent");
        assert_eq!(parse_daemon_arn(&ctx(), &other_region), None);
        let d = arn::daemon_deployment("us-east-1", "111122223333", "prod", "agent", "x1");
        assert_eq!(
            parse_child_arn(&ctx(), &d, "daemon-deployment"),
            Some(("prod".into(), "agent".into(), "x1".into()))
        );
        assert_eq!(parse_child_arn(&ctx(), &d, "daemon-revision"), None);
    }

    #[test]
    fn deployment_configuration_is_checked_as_documented() {
        let ok = DaemonDeploymentConfiguration {
            drain_percent: Some(20.0),
            bake_time_in_minutes: Some(5),
            alarms: None,
        };
        assert!(check_config(&ok).is_ok());
        for bad in [
            DaemonDeploymentConfiguration {
                drain_percent: Some(0.5),
                ..Default::default()
            },
            DaemonDeploymentConfiguration {
                bake_time_in_minutes: Some(1441),
                ..Default::default()
            },
        ] {
            assert!(matches!(
                check_config(&bad),
                Err(EcsError::InvalidParameter(_))
            ));
        }
    }

    #[test]
    fn a_backing_service_is_named_apart_from_every_service() {
        assert_eq!(backing_id("prod", "agent"), "prod/daemon:agent");
        assert!(!berth_core::names::is_valid_name(&backing_name("agent")));
    }
}
