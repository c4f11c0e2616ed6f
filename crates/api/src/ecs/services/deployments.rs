//! Service deployments and revisions as records: ListServiceDeployments,
//! DescribeServiceDeployments, DescribeServiceRevisions and
//! StopServiceDeployment, and how a new deployment and its records are
//! made and kept in step with the reconciler.
//!
//! A revision (what a deployment launches) is immutable and numbered like
//! its deployment (`ecs-svc/<n>` ↔ `service-revision/…/<n>`); a rollback
//! makes no new one. A deployment's record moves IN_PROGRESS → SUCCESSFUL,
//! or STOPPED (superseded, or failed without rollback), or
//! ROLLBACK_IN_PROGRESS → ROLLBACK_SUCCESSFUL.

use super::*;
use crate::records::{self, retry, Attempt};
use berth_core::pagination::page_size;
use berth_core::service as rules;
use berth_scheduler::service::{failure_threshold, Event, Rollout, FAILED_REASON};
use berth_store::{Query, Write};
use rand::distributions::{Alphanumeric, DistString};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentDoc {
    /// The service's document id (`cluster/name`).
    pub service: String,
    /// The reconciler's id for it (`ecs-svc/…`).
    pub deployment_id: String,
    pub record: ServiceDeployment,
}

impl Record for DeploymentDoc {
    const KIND: &'static str = kind::SERVICE_DEPLOYMENT;
    fn id(&self) -> String {
        arn_id(
            self.record
                .service_deployment_arn
                .as_deref()
                .unwrap_or_default(),
        )
    }
    /// Newest last within a service, so a descending read is newest first.
    fn sort(&self) -> String {
        let created = self.record.created_at.map_or(0, |t| t.as_millis());
        format!("{}\t{created:015}\t{}", self.service, self.id())
    }
    fn parent(&self) -> String {
        self.service.clone()
    }
    fn status(&self) -> String {
        self.record
            .status
            .as_ref()
            .map_or(String::new(), |s| s.as_str().to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevisionDoc {
    pub service: String,
    pub revision: ServiceRevision,
}

impl Record for RevisionDoc {
    const KIND: &'static str = kind::SERVICE_REVISION;
    fn id(&self) -> String {
        arn_id(
            self.revision
                .service_revision_arn
                .as_deref()
                .unwrap_or_default(),
        )
    }
    fn parent(&self) -> String {
        self.service.clone()
    }
}

/// Whether a record belongs to a daemon's backing service (see
/// `ecs::daemons`): the Daemon API shows those, the service API does not.
fn of_a_daemon(service_key: &str) -> bool {
    service_key
        .split_once('/')
        .is_some_and(|(_, name)| name.starts_with("daemon:"))
}

/// The last `/`-separated part of an ARN.
fn arn_id(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or_default().to_string()
}

/// What a new deployment launches.
#[derive(Debug, Clone, Default)]
pub struct RevisionInput {
    pub task_definition: Option<TaskDefinition>,
    pub launch_type: Option<LaunchType>,
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    /// Resolved (`1.4.0`), for FARGATE.
    pub platform_version: Option<String>,
    pub network: Option<NetworkConfiguration>,
    pub load_balancers: Vec<LoadBalancer>,
    pub service_registries: Vec<ServiceRegistry>,
    pub service_connect: Option<ServiceConnectConfiguration>,
}

/// Starts a new deployment of `doc`: it becomes PRIMARY, its revision and
/// record are written; the one it replaces, if still in progress, is
/// STOPPED. Returns the writes that go with the service document.
pub async fn start(
    ecs: &Ecs,
    ctx: &RequestContext,
    doc: &mut ServiceDoc,
    input: RevisionInput,
) -> Result<Vec<Write>, EcsError> {
    // A service's first deployment is made with it, at the same instant.
    let now = match doc.service.created_at {
        Some(at) if doc.state.deployments.is_empty() => at,
        _ => ecs.now(),
    };
    let id = rules::deployment_id(rand::random());
    let number = id
        .trim_start_matches("ecs-svc/")
        .parse::<u64>()
        .unwrap_or(0);
    let service_key = key(&doc.cluster, &doc.name);
    let cluster_arn = doc.service.cluster_arn.clone();
    let service_arn = doc.service.service_arn.clone();
    let fargate = input.launch_type == Some(LaunchType::Fargate);
    let revision = ServiceRevision {
        service_revision_arn: Some(arn::service_revision(
            &ctx.region,
            &ctx.account_id,
            &doc.cluster,
            &doc.name,
            number,
        )),
        service_arn: service_arn.clone(),
        cluster_arn: cluster_arn.clone(),
        task_definition: input
            .task_definition
            .as_ref()
            .and_then(|t| t.task_definition_arn.clone()),
        capacity_provider_strategy: input.capacity_provider_strategy.clone(),
        launch_type: input.launch_type.clone(),
        platform_version: input.platform_version.clone(),
        platform_family: fargate.then(|| "Linux".to_string()),
        load_balancers: (!input.load_balancers.is_empty()).then(|| input.load_balancers.clone()),
        service_registries: (!input.service_registries.is_empty())
            .then(|| input.service_registries.clone()),
        network_configuration: input.network.clone(),
        container_images: input.task_definition.as_ref().map(|td| {
            td.container_definitions
                .iter()
                .flatten()
                .map(|c| ContainerImage {
                    container_name: c.name.clone(),
                    image: c.image.clone(),
                    image_digest: None,
                })
                .collect()
        }),
        guard_duty_enabled: Some(false),
        service_connect_configuration: Some(input.service_connect.clone().unwrap_or(
            ServiceConnectConfiguration {
                enabled: false,
                ..Default::default()
            },
        )),
        created_at: Some(now),
        ..Default::default()
    };
    let deployment_arn = arn::service_deployment(
        &ctx.region,
        &ctx.account_id,
        &doc.cluster,
        &doc.name,
        &Alphanumeric.sample_string(&mut rand::thread_rng(), 21),
    );
    let sources: Vec<ServiceRevisionSummary> = doc
        .state
        .deployments
        .iter()
        .filter_map(|d| doc.revisions.get(&d.id))
        .map(|r| summary(r, 0))
        .collect();
    let config = doc.service.deployment_configuration.clone();
    let record = ServiceDeployment {
        service_deployment_arn: Some(deployment_arn.clone()),
        service_arn,
        cluster_arn,
        created_at: Some(now),
        started_at: Some(now),
        updated_at: Some(now),
        source_service_revisions: Some(sources),
        target_service_revision: Some(ServiceRevisionSummary {
            arn: revision.service_revision_arn.clone(),
            requested_task_count: doc.service.desired_count,
            running_task_count: Some(0),
            pending_task_count: Some(0),
            ..Default::default()
        }),
        status: Some(ServiceDeploymentStatus::InProgress),
        deployment_configuration: config.clone(),
        deployment_circuit_breaker: Some(ServiceDeploymentCircuitBreaker {
            status: Some(match config.as_ref().and_then(rules::circuit_breaker) {
                Some(_) => ServiceDeploymentRollbackMonitorsStatus::Monitoring,
                None => ServiceDeploymentRollbackMonitorsStatus::Disabled,
            }),
            failure_count: Some(0),
            threshold: Some(
                failure_threshold(doc.service.desired_count.unwrap_or(0).max(0) as u32) as i32,
            ),
        }),
        alarms: Some(ServiceDeploymentAlarms {
            status: Some(ServiceDeploymentRollbackMonitorsStatus::Disabled),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut writes = Vec::new();
    // The deployment it replaces, if it had not finished, stops here.
    if let Some(prev) = doc
        .state
        .primary()
        .filter(|d| d.rollout == Rollout::InProgress)
    {
        if let Some(w) = finish_record(
            ecs,
            ctx,
            doc,
            &prev.id.clone(),
            ServiceDeploymentStatus::Stopped,
            Some("Stopped by a newer deployment of the service.".into()),
        )
        .await?
        {
            writes.push(w);
        }
    }
    writes.push(
        Versioned::new(RevisionDoc {
            service: service_key.clone(),
            revision: revision.clone(),
        })
        .write(),
    );
    writes.push(
        Versioned::new(DeploymentDoc {
            service: service_key,
            deployment_id: id.clone(),
            record,
        })
        .write(),
    );
    doc.revisions.insert(
        id.clone(),
        Revision {
            revision,
            deployment_arn,
            task_set: None,
            required_attributes: input.task_definition.as_ref().map(|td| {
                td.requires_attributes
                    .iter()
                    .flatten()
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect()
            }),
        },
    );
    doc.state.deploy(id, now.as_millis());
    doc.rolling_back_from = None;
    Ok(writes)
}

fn summary(r: &Revision, requested: i32) -> ServiceRevisionSummary {
    ServiceRevisionSummary {
        arn: r.revision.service_revision_arn.clone(),
        requested_task_count: Some(requested),
        running_task_count: Some(0),
        pending_task_count: Some(0),
        ..Default::default()
    }
}

async fn load_record(
    ecs: &Ecs,
    ctx: &RequestContext,
    arn: &str,
) -> Result<Option<Versioned<DeploymentDoc>>, EcsError> {
    load::<DeploymentDoc>(ecs.store(), &scope(ctx), &arn_id(arn)).await
}

/// The write that ends deployment `id`'s record with `status`.
async fn finish_record(
    ecs: &Ecs,
    ctx: &RequestContext,
    doc: &ServiceDoc,
    id: &str,
    status: ServiceDeploymentStatus,
    reason: Option<String>,
) -> Result<Option<Write>, EcsError> {
    let Some(rev) = doc.revisions.get(id) else {
        return Ok(None);
    };
    let Some(mut rec) = load_record(ecs, ctx, &rev.deployment_arn).await? else {
        return Ok(None);
    };
    let now = ecs.now();
    let r = &mut rec.value.record;
    let stopped = matches!(status, ServiceDeploymentStatus::Stopped);
    r.status = Some(status);
    r.status_reason = reason;
    r.updated_at = Some(now);
    if stopped {
        r.stopped_at = Some(now);
    } else {
        r.finished_at = Some(now);
    }
    if let Some(b) = r.deployment_circuit_breaker.as_mut() {
        if b.status == Some(ServiceDeploymentRollbackMonitorsStatus::Monitoring) {
            b.status = Some(ServiceDeploymentRollbackMonitorsStatus::MonitoringComplete);
        }
    }
    Ok(Some(rec.write()))
}

/// Brings the deployment records in line with what a reconcile pass did,
/// as its events say: a completed deployment's record → SUCCESSFUL (or,
/// when it was a rollback's target, the failed deployment's record →
/// ROLLBACK_SUCCESSFUL); a failed one's → ROLLBACK_IN_PROGRESS when it
/// rolled back, else STOPPED. Each record is written once per pass.
pub async fn follow(
    ecs: &Ecs,
    ctx: &RequestContext,
    doc: &mut ServiceDoc,
    events: &[Event],
) -> Result<Vec<Write>, EcsError> {
    let mut touched: BTreeMap<String, Versioned<DeploymentDoc>> = BTreeMap::new();
    let now = ecs.now();
    let rolled_back_to = events.iter().find_map(|e| match e {
        Event::RollingBack { to } => Some(to.clone()),
        _ => None,
    });
    for e in events {
        match e {
            Event::DeploymentFailed { deployment } => {
                let failed = doc.state.deployments.iter().find(|d| d.id == *deployment);
                let reason = failed.map_or(FAILED_REASON.to_string(), |d| d.reason.clone());
                // The breaker trips when the failures reach its threshold;
                // a deployment left with no task has already left the
                // reconciler's state, and that is then what it counted.
                let desired = doc.service.desired_count.unwrap_or(0).max(0) as u32;
                let failures = failed.map_or(failure_threshold(desired), |d| d.failed_tasks) as i32;
                let target = rolled_back_to
                    .as_ref()
                    .and_then(|to| doc.revisions.get(to))
                    .and_then(|r| r.revision.service_revision_arn.clone());
                if rolled_back_to.is_some() {
                    doc.rolling_back_from = Some(deployment.clone());
                }
                let Some(rec) = record_of(ecs, ctx, doc, deployment, &mut touched).await? else {
                    continue;
                };
                let r = &mut rec.value.record;
                r.updated_at = Some(now);
                r.status_reason = Some(reason.clone());
                if let Some(b) = r.deployment_circuit_breaker.as_mut() {
                    b.status = Some(ServiceDeploymentRollbackMonitorsStatus::Triggered);
                    // What tripped it, kept once the deployment is no
                    // longer live (and its count no longer read from it).
                    b.failure_count = Some(failures.max(b.failure_count.unwrap_or(0)));
                }
                if rolled_back_to.is_some() {
                    r.status = Some(ServiceDeploymentStatus::RollbackInProgress);
                    r.rollback = Some(Rollback {
                        reason: Some(reason),
                        started_at: Some(now),
                        service_revision_arn: target,
                    });
                } else {
                    r.status = Some(ServiceDeploymentStatus::Stopped);
                    r.stopped_at = Some(now);
                }
            }
            Event::DeploymentCompleted { deployment } => {
                let (which, status, reason) = match doc.rolling_back_from.take() {
                    Some(failed) => (
                        failed,
                        ServiceDeploymentStatus::RollbackSuccessful,
                        Some(format!("Rolled back to deployment {deployment}.")),
                    ),
                    None => (
                        deployment.clone(),
                        ServiceDeploymentStatus::Successful,
                        None,
                    ),
                };
                let Some(rec) = record_of(ecs, ctx, doc, &which, &mut touched).await? else {
                    continue;
                };
                let r = &mut rec.value.record;
                r.status = Some(status);
                if reason.is_some() {
                    r.status_reason = reason;
                }
                r.updated_at = Some(now);
                r.finished_at = Some(now);
                if let Some(b) = r.deployment_circuit_breaker.as_mut() {
                    if b.status == Some(ServiceDeploymentRollbackMonitorsStatus::Monitoring) {
                        b.status =
                            Some(ServiceDeploymentRollbackMonitorsStatus::MonitoringComplete);
                    }
                }
            }
            _ => {}
        }
    }
    // Keep the revisions still needed: live deployments and the target of
    // a future rollback.
    let keep: Vec<String> = doc
        .state
        .deployments
        .iter()
        .map(|d| d.id.clone())
        .chain(doc.state.last_completed.clone())
        .chain(doc.rolling_back_from.clone())
        .collect();
    doc.revisions.retain(|id, _| keep.contains(id));
    Ok(touched.into_values().map(|r| r.write()).collect())
}

/// The record of deployment `id`, read once per pass.
async fn record_of<'a>(
    ecs: &Ecs,
    ctx: &RequestContext,
    doc: &ServiceDoc,
    id: &str,
    touched: &'a mut BTreeMap<String, Versioned<DeploymentDoc>>,
) -> Result<Option<&'a mut Versioned<DeploymentDoc>>, EcsError> {
    let Some(arn) = doc.revisions.get(id).map(|r| r.deployment_arn.clone()) else {
        return Ok(None);
    };
    if !touched.contains_key(&arn) {
        match load_record(ecs, ctx, &arn).await? {
            Some(r) => {
                touched.insert(arn.clone(), r);
            }
            None => return Ok(None),
        }
    }
    Ok(touched.get_mut(&arn))
}

/// A record as answered: counts and the circuit breaker's failures are
/// read from the service while the deployment is in progress.
fn live_record(
    mut r: ServiceDeployment,
    doc: Option<&ServiceDoc>,
    counts: &Counts,
) -> ServiceDeployment {
    let Some(doc) = doc else { return r };
    let Some(d) = doc.state.deployments.iter().find(|d| {
        doc.revisions
            .get(&d.id)
            .is_some_and(|rev| Some(&rev.deployment_arn) == r.service_deployment_arn.as_ref())
    }) else {
        return r;
    };
    if let Some(t) = r.target_service_revision.as_mut() {
        let (running, pending) = counts.of(&d.id);
        t.running_task_count = Some(running);
        t.pending_task_count = Some(pending);
        t.requested_task_count = doc.service.desired_count;
    }
    if let Some(b) = r.deployment_circuit_breaker.as_mut() {
        b.failure_count = Some(d.failed_tasks as i32);
    }
    r
}

pub use super::queries::Counts;

pub async fn list_deployments(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListServiceDeploymentsRequest,
) -> Result<ListServiceDeploymentsResponse, EcsError> {
    let (_, doc) = find_in_cluster(ecs, ctx, input.cluster.as_deref(), &input.service).await?;
    let limit = page_size(input.max_results, 100, 20)?;
    let statuses = input.status.clone().unwrap_or_default();
    let created = input.created_at.clone().unwrap_or_default();
    let filter = format!(
        "{}|{statuses:?}|{:?}|{:?}",
        doc.value.id(),
        created.before.map(|t| t.as_millis()),
        created.after.map(|t| t.as_millis())
    );
    let pager = ecs.pager(ctx, "ListServiceDeployments", &filter, limit);
    let mut after = pager.start(input.next_token.as_deref())?;
    let mut found: Vec<DeploymentDoc> = Vec::new();
    // Newest first; filters apply while paging through the records.
    loop {
        let q = Query {
            parent: Some(doc.value.id()),
            after: after.clone(),
            descending: true,
            limit: 200,
            ..Default::default()
        };
        let batch = records::list::<DeploymentDoc>(ecs.store(), &scope(ctx), &q).await?;
        let exhausted = batch.len() < 200;
        for d in batch {
            after = Some(d.value.sort());
            let r = &d.value.record;
            let at = r.created_at.map_or(0, |t| t.as_millis());
            let keep = (statuses.is_empty()
                || r.status.as_ref().is_some_and(|s| statuses.contains(s)))
                && created.before.is_none_or(|b| at < b.as_millis())
                && created.after.is_none_or(|a| at > a.as_millis());
            if keep {
                found.push(d.value);
            }
            if found.len() > limit {
                break;
            }
        }
        if exhausted || found.len() > limit {
            break;
        }
    }
    let next_token = pager.finish(&mut found, |d| d.sort());
    Ok(ListServiceDeploymentsResponse {
        service_deployments: Some(
            found
                .into_iter()
                .map(|d| {
                    let r = d.record;
                    ServiceDeploymentBrief {
                        service_deployment_arn: r.service_deployment_arn,
                        service_arn: r.service_arn,
                        cluster_arn: r.cluster_arn,
                        started_at: r.started_at,
                        created_at: r.created_at,
                        finished_at: r.finished_at,
                        target_service_revision_arn: r.target_service_revision.and_then(|t| t.arn),
                        status: r.status,
                        status_reason: r.status_reason,
                    }
                })
                .collect(),
        ),
        next_token,
    })
}

/// The record an ARN names in the caller's account and region.
async fn record_by_arn(
    ecs: &Ecs,
    ctx: &RequestContext,
    arn_str: &str,
    kind_name: &str,
) -> Result<Option<String>, EcsError> {
    let Some(a) = arn::Arn::parse(arn_str) else {
        return Err(EcsError::invalid(format!(
            "'{arn_str}' is not a valid {kind_name} ARN."
        )));
    };
    let (t, rest) = a.resource_type_and_id();
    if a.service != "ecs" || t != kind_name || rest.split('/').count() != 3 {
        return Err(EcsError::invalid(format!(
            "'{arn_str}' is not a valid {kind_name} ARN."
        )));
    }
    let _ = ecs;
    Ok((a.account == ctx.account_id && a.region == ctx.region).then(|| arn_id(arn_str)))
}

fn missing(arn: &str) -> Failure {
    Failure {
        arn: Some(arn.to_string()),
        reason: Some("MISSING".into()),
        detail: None,
    }
}

pub async fn describe_deployments(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeServiceDeploymentsRequest,
) -> Result<DescribeServiceDeploymentsResponse, EcsError> {
    let arns = &input.service_deployment_arns;
    if arns.is_empty() || arns.len() > 20 {
        return Err(EcsError::invalid(
            "serviceDeploymentArns must have between 1 and 20 items.",
        ));
    }
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for a in arns {
        let found = match record_by_arn(ecs, ctx, a, "service-deployment").await? {
            Some(id) => load::<DeploymentDoc>(ecs.store(), &scope(ctx), &id)
                .await?
                .filter(|d| !of_a_daemon(&d.value.service)),
            None => None,
        };
        let Some(d) = found else {
            failures.push(missing(a));
            continue;
        };
        let service = load::<ServiceDoc>(ecs.store(), &scope(ctx), &d.value.service).await?;
        let counts = match &service {
            Some(s) => Counts::read(ecs, ctx, &s.value).await?,
            None => Counts::default(),
        };
        out.push(live_record(
            d.value.record,
            service.as_ref().map(|s| &s.value),
            &counts,
        ));
    }
    Ok(DescribeServiceDeploymentsResponse {
        service_deployments: Some(out),
        failures: Some(failures),
    })
}

pub async fn describe_revisions(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeServiceRevisionsRequest,
) -> Result<DescribeServiceRevisionsResponse, EcsError> {
    let arns = &input.service_revision_arns;
    if arns.is_empty() || arns.len() > 20 {
        return Err(EcsError::invalid(
            "serviceRevisionArns must have between 1 and 20 items.",
        ));
    }
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for a in arns {
        let found = match record_by_arn(ecs, ctx, a, "service-revision").await? {
            Some(id) => load::<RevisionDoc>(ecs.store(), &scope(ctx), &id)
                .await?
                .filter(|r| !of_a_daemon(&r.value.service)),
            None => None,
        };
        match found {
            Some(r) => out.push(r.value.revision),
            None => failures.push(missing(a)),
        }
    }
    Ok(DescribeServiceRevisionsResponse {
        service_revisions: Some(out),
        failures: Some(failures),
    })
}

/// StopServiceDeployment: only ROLLBACK of an in-progress deployment, to
/// the last completed one (ABORT is not modeled by berth, as ECS's own
/// documentation lists ROLLBACK as the valid value).
pub async fn stop_deployment(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: StopServiceDeploymentRequest,
) -> Result<StopServiceDeploymentResponse, EcsError> {
    let arn_str = input.service_deployment_arn.clone();
    let stop_type = input
        .stop_type
        .clone()
        .unwrap_or(StopServiceDeploymentStopType::Rollback);
    if stop_type != StopServiceDeploymentStopType::Rollback {
        return Err(EcsError::invalid(format!(
            "stopType {stop_type} is not supported; the valid value is ROLLBACK."
        )));
    }
    let not_found = || {
        EcsError::ServiceDeploymentNotFound(format!(
            "The service deployment {arn_str} does not exist."
        ))
    };
    let id = record_by_arn(ecs, ctx, &arn_str, "service-deployment")
        .await?
        .ok_or_else(not_found)?;
    let record = load::<DeploymentDoc>(ecs.store(), &scope(ctx), &id)
        .await?
        .filter(|d| !of_a_daemon(&d.value.service))
        .ok_or_else(not_found)?;
    let service_key = record.value.service.clone();
    let deployment = record.value.deployment_id.clone();
    let now = ecs.now();
    retry(ecs.store(), async || {
        let Some(mut doc) = load::<ServiceDoc>(ecs.store(), &scope(ctx), &service_key).await? else {
            return Err(not_found());
        };
        let primary = doc.value.state.primary().cloned();
        let in_progress = primary
            .as_ref()
            .is_some_and(|p| p.id == deployment && p.rollout == Rollout::InProgress);
        if !in_progress || !doc.value.is(status::ACTIVE) {
            return Err(EcsError::Conflict(format!(
                "The service deployment {arn_str} is not in progress, so it cannot be rolled back."
            )));
        }
        let Some(to) = doc
            .value
            .state
            .roll_back(now.as_millis(), "Rolled back by StopServiceDeployment.")
        else {
            return Err(EcsError::Conflict(format!(
                "The service has no completed deployment to roll back to, so {arn_str} cannot be rolled back."
            )));
        };
        // The service runs what it ran before again, as after a circuit
        // breaker's rollback (the driver does the same for those).
        if let Some(r) = doc.value.revisions.get(&to).map(|r| r.revision.clone()) {
            let s = &mut doc.value.service;
            s.task_definition = r.task_definition;
            s.network_configuration = r.network_configuration;
            if r.launch_type.is_some() {
                s.launch_type = r.launch_type;
            }
        }
        let message = format!("(service {}) rolling back to deployment {to}.", doc.value.name);
        doc.value.say(message, now);
        let mut writes = vec![doc.write()];
        let mut rec = record.clone();
        rec.value.record.status = Some(ServiceDeploymentStatus::RollbackRequested);
        rec.value.record.updated_at = Some(now);
        rec.value.record.rollback = Some(Rollback {
            reason: Some("Rolled back by StopServiceDeployment.".into()),
            started_at: Some(now),
            service_revision_arn: doc
                .value
                .revisions
                .get(&to)
                .and_then(|r| r.revision.service_revision_arn.clone()),
        });
        writes.push(rec.write());
        doc.value.rolling_back_from = Some(deployment.clone());
        writes[0] = doc.write();
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes,
            value: (),
        })
    })
    .await?;
    ecs.services.wake(ctx, &record.value.service);
    Ok(StopServiceDeploymentResponse {
        service_deployment_arn: Some(arn_str),
    })
}
