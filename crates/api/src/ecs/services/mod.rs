//! ECS services: CreateService, UpdateService, DeleteService,
//! DescribeServices, ListServices, ListServicesByNamespace; their
//! deployments and revisions; task sets; and the driver that keeps each
//! service's tasks running.
//!
//! A service document holds the service as DescribeServices shows it
//! (minus what is computed when asked: counts, deployments, events, task
//! sets), the reconciler's state (its deployments, throttle, steadiness),
//! the revision each deployment launches, the tasks the service started and
//! has not yet forgotten, and its events. The decisions are
//! `berth_scheduler::service::reconcile`, a pure function; `driver.rs` reads
//! the snapshot it needs, applies what it decides and wakes it when
//! something it watches changes.

mod create;
mod delete;
pub(crate) mod deployments;
mod driver;
mod observe;
mod queries;
mod task_sets;
mod update;
pub(crate) mod validate;

pub use create::create;
pub use delete::delete;
pub use deployments::{
    describe_deployments, describe_revisions, list_deployments, stop_deployment,
};
pub use driver::ServiceScheduler;
pub use queries::{describe, list, list_by_namespace};
pub use task_sets::{
    create_task_set, delete_task_set, describe_task_sets, update_primary_task_set, update_task_set,
};
pub use update::update;

use super::{clusters, Ecs};
use crate::records::{kind, load, scope, Record, Versioned};
use berth_core::service::status;
use berth_core::{arn, EcsError};
use berth_scheduler::service::State;
use berth_wire::ecs::*;
use berth_wire::{RequestContext, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many events a service keeps (ECS shows the 100 newest).
const MAX_EVENTS: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceDoc {
    pub cluster: String,
    pub name: String,
    /// As DescribeServices shows it, without the computed members.
    pub service: Service,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The reconciler's memory: deployments (or task sets), throttle.
    pub state: State,
    /// What each deployment launches, by deployment id: the live ones and
    /// the last completed one (a rollback's target).
    pub revisions: BTreeMap<String, Revision>,
    /// Tasks the service started and has not forgotten yet (live ones and
    /// those that stopped since the last pass), to their deployment.
    #[serde(default)]
    pub tasks: BTreeMap<String, String>,
    /// Newest first.
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    #[serde(default)]
    pub client_token: Option<String>,
    /// `serviceConnectConfiguration.namespace`, for ListServicesByNamespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// A failed deployment whose record waits for its rollback to complete.
    #[serde(default)]
    pub rolling_back_from: Option<String>,
    /// This document runs a daemon of the Daemon API (`ecs::daemons`), and
    /// no service operation sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backs_daemon: Option<Backing>,
}

/// What the service driver needs to know of the daemon a backing service
/// runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backing {
    /// The daemon's name.
    pub daemon: String,
    /// Names of the capacity providers whose instances it runs on.
    pub providers: Vec<String>,
    pub drain_percent: f64,
    pub bake_ms: i64,
}

/// One deployment's launch configuration, and the records that describe it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revision {
    /// As DescribeServiceRevisions shows it.
    pub revision: ServiceRevision,
    /// The ARN of its ServiceDeployment record.
    pub deployment_arn: String,
    /// EXTERNAL controller: the task set this deployment stands for.
    #[serde(default)]
    pub task_set: Option<TaskSet>,
    /// The task definition's `requiresAttributes`: which instances a
    /// DAEMON's task may run on.
    #[serde(default)]
    pub required_attributes: Option<Vec<(String, Option<String>)>>,
}

impl Record for ServiceDoc {
    const KIND: &'static str = kind::SERVICE;
    fn id(&self) -> String {
        key(&self.cluster, &self.name)
    }
    /// A daemon's backing service lists apart from the cluster's services.
    fn parent(&self) -> String {
        match self.backs_daemon {
            Some(_) => daemons_parent(&self.cluster),
            None => self.cluster.clone(),
        }
    }
    fn status(&self) -> String {
        self.service.status.clone().unwrap_or_default()
    }
}

/// The `parent` under which a cluster's daemons' backing services list.
pub fn daemons_parent(cluster: &str) -> String {
    format!("{cluster}#daemons")
}

impl ServiceDoc {
    pub fn arn(&self) -> &str {
        self.service.service_arn.as_deref().unwrap_or_default()
    }

    pub fn is(&self, s: &str) -> bool {
        self.service.status.as_deref() == Some(s)
    }

    pub fn external(&self) -> bool {
        self.service
            .deployment_controller
            .as_ref()
            .is_some_and(|c| c.r#type == DeploymentControllerType::External)
    }

    /// The backing service of a daemon (see `ecs::daemons`).
    pub fn new_backing(cluster: &str, service: Service, backing: Backing) -> Self {
        ServiceDoc {
            cluster: cluster.to_string(),
            name: service.service_name.clone().unwrap_or_default(),
            service,
            tags: Vec::new(),
            state: Default::default(),
            revisions: BTreeMap::new(),
            tasks: BTreeMap::new(),
            events: Vec::new(),
            client_token: None,
            namespace: None,
            rolling_back_from: None,
            backs_daemon: Some(backing),
        }
    }

    pub fn daemon(&self) -> bool {
        self.service.scheduling_strategy == Some(SchedulingStrategy::Daemon)
    }

    /// Adds an event, newest first, keeping ECS's hundred.
    pub fn say(&mut self, message: String, now: Timestamp) {
        self.events.insert(
            0,
            ServiceEvent {
                id: Some(uuid::Uuid::new_v4().to_string()),
                created_at: Some(now),
                message: Some(message),
            },
        );
        self.events.truncate(MAX_EVENTS);
    }
}

/// A cluster's ACTIVE and DRAINING services by launch type, for its
/// statistics: `(status, launch type) → count`.
pub async fn counts_by_launch_type(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
) -> Result<BTreeMap<(&'static str, LaunchType), i32>, EcsError> {
    let mut out = BTreeMap::new();
    for s in [status::ACTIVE, status::DRAINING] {
        let q = berth_store::Query {
            parent: Some(cluster.to_string()),
            status: Some(s.into()),
            limit: 1_000_000,
            ..Default::default()
        };
        for d in crate::records::list::<ServiceDoc>(ecs.store(), &scope(ctx), &q).await? {
            let svc = &d.value.service;
            let lt = match &svc.launch_type {
                Some(lt) => lt.clone(),
                None if svc
                    .capacity_provider_strategy
                    .iter()
                    .flatten()
                    .any(|c| c.capacity_provider.starts_with("FARGATE")) =>
                {
                    LaunchType::Fargate
                }
                None => LaunchType::Ec2,
            };
            *out.entry((s, lt)).or_default() += 1;
        }
    }
    Ok(out)
}

/// The document id of a service: its cluster and name.
pub fn key(cluster: &str, name: &str) -> String {
    format!("{cluster}/{name}")
}

/// The service name a `service` parameter (name or ARN) names in `cluster`,
/// or `None` when it names another cluster, account or region.
pub fn service_name(ctx: &RequestContext, cluster: &str, reference: &str) -> Option<String> {
    if !arn::looks_like_arn(reference) {
        return Some(reference.to_string());
    }
    let a = arn::Arn::parse(reference)?;
    if a.service != "ecs" || a.account != ctx.account_id || a.region != ctx.region {
        return None;
    }
    match a.resource_type_and_id() {
        ("service", rest) => match rest.split_once('/') {
            Some((c, name)) if c == cluster => Some(name.to_string()),
            Some(_) => None,
            None => Some(rest.to_string()),
        },
        _ => None,
    }
}

/// Loads the service `reference` names in `cluster`, in any status.
pub async fn find(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    reference: &str,
) -> Result<Option<Versioned<ServiceDoc>>, EcsError> {
    let Some(name) = service_name(ctx, cluster, reference) else {
        return Ok(None);
    };
    // A daemon's backing service is no service of the caller's.
    Ok(
        load::<ServiceDoc>(ecs.store(), &scope(ctx), &key(cluster, &name))
            .await?
            .filter(|d| d.value.backs_daemon.is_none()),
    )
}

/// The ACTIVE cluster and the service in it, or ECS's not-found errors.
pub async fn find_in_cluster(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: Option<&str>,
    reference: &str,
) -> Result<(Cluster, Versioned<ServiceDoc>), EcsError> {
    let c = clusters::load_active(ecs, ctx, cluster).await?.value;
    let name = c.cluster_name.clone().unwrap_or_default();
    let doc = find(ecs, ctx, &name, reference)
        .await?
        .ok_or(EcsError::ServiceNotFound)?;
    Ok((c, doc))
}

/// Like [`find_in_cluster`], but only an ACTIVE service will do.
pub async fn find_active(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: Option<&str>,
    reference: &str,
) -> Result<(Cluster, Versioned<ServiceDoc>), EcsError> {
    let (c, doc) = find_in_cluster(ecs, ctx, cluster, reference).await?;
    if !doc.value.is(status::ACTIVE) {
        return Err(EcsError::ServiceNotActive);
    }
    Ok((c, doc))
}
