//! DescribeDaemon, ListDaemons, DescribeDaemonDeployments,
//! ListDaemonDeployments, DescribeDaemonRevisions: views made from the
//! daemon's document, its backing service's deployment and revision
//! records, and its tasks as they are now.

use super::*;
use crate::ecs::container_instances::InstanceDoc;
use crate::ecs::services::deployments::{DeploymentDoc, RevisionDoc};
use crate::ecs::tasks::TaskDoc;
use berth_core::pagination::page_size;
use berth_core::task::{TaskStatus, TaskStatuses};
use berth_scheduler::service::Rollout;

/// The last `/`-separated part of an ARN.
fn tail(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or_default()
}

/// Running daemon tasks, by backing deployment id and provider name.
type Running = BTreeMap<(String, String), i32>;

async fn running(
    ecs: &Ecs,
    ctx: &RequestContext,
    service: &ServiceDoc,
) -> Result<Running, EcsError> {
    let sc = scope(ctx);
    let mut providers: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut out = Running::new();
    for (id, deployment) in &service.tasks {
        let Some(t) = load::<TaskDoc>(ecs.store(), &sc, id).await? else {
            continue;
        };
        if t.value.task.status() != TaskStatus::Running {
            continue;
        }
        let Some(instance) = t.value.instance_id.clone() else {
            continue;
        };
        if !providers.contains_key(&instance) {
            let doc = load::<InstanceDoc>(ecs.store(), &sc, &instance).await?;
            let p = doc
                .as_ref()
                .and_then(|d| instance_capacity_provider(&d.value));
            providers.insert(instance.clone(), p);
        }
        if let Some(Some(p)) = providers.get(&instance) {
            *out.entry((deployment.clone(), p.clone())).or_default() += 1;
        }
    }
    Ok(out)
}

/// The provider ARN a daemon names for provider `name`.
fn provider_arns(ctx: &RequestContext, d: &DaemonDoc) -> Vec<(String, String)> {
    d.providers
        .iter()
        .map(|p| {
            let name = tail(p).to_string();
            let arn = if arn::looks_like_arn(p) {
                p.clone()
            } else {
                arn::capacity_provider(&ctx.region, &ctx.account_id, p)
            };
            (name, arn)
        })
        .collect()
}

fn revision_arn(ctx: &RequestContext, d: &DaemonDoc, service_revision_arn: &str) -> String {
    arn::daemon_revision(
        &ctx.region,
        &ctx.account_id,
        &d.cluster,
        &d.name,
        tail(service_revision_arn),
    )
}

pub async fn describe(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeDaemonRequest,
) -> Result<DescribeDaemonResponse, EcsError> {
    let (doc, service) = find(ecs, ctx, &input.daemon_arn).await?;
    let (d, s) = (&doc.value, &service.value);
    let counts = running(ecs, ctx, s).await?;
    let providers = provider_arns(ctx, d);
    let current_revisions = s
        .state
        .deployments
        .iter()
        .filter_map(|dep| s.revisions.get(&dep.id).map(|r| (dep, r)))
        .map(|(dep, r)| {
            let per: Vec<DaemonCapacityProvider> = providers
                .iter()
                .map(|(name, arn)| DaemonCapacityProvider {
                    arn: Some(arn.clone()),
                    running_count: Some(
                        counts
                            .get(&(dep.id.clone(), name.clone()))
                            .copied()
                            .unwrap_or(0),
                    ),
                })
                .collect();
            DaemonRevisionDetail {
                arn: r
                    .revision
                    .service_revision_arn
                    .as_deref()
                    .map(|a| revision_arn(ctx, d, a)),
                total_running_count: Some(per.iter().filter_map(|p| p.running_count).sum()),
                capacity_providers: Some(per),
            }
        })
        .collect();
    Ok(DescribeDaemonResponse {
        daemon: Some(DaemonDetail {
            daemon_arn: Some(d.arn.clone()),
            cluster_arn: Some(d.cluster_arn.clone()),
            status: Some(d.status.clone()),
            current_revisions: Some(current_revisions),
            deployment_arn: Some(d.deployment_arn.clone()),
            created_at: Some(d.created_at),
            updated_at: Some(d.updated_at),
        }),
    })
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListDaemonsRequest,
) -> Result<ListDaemonsResponse, EcsError> {
    let limit = page_size(input.max_results, 100, 100)?;
    let cluster = match &input.cluster_arn {
        Some(c) => Some(
            crate::ecs::clusters::load_active(ecs, ctx, Some(c))
                .await?
                .value
                .cluster_name
                .unwrap_or_default(),
        ),
        None => None,
    };
    let mut wanted = Vec::new();
    for p in input.capacity_provider_arns.iter().flatten() {
        wanted.push(resolve_capacity_provider(ecs, ctx, p).await?);
    }
    let filter = format!("{cluster:?}|{wanted:?}");
    let pager = ecs.pager(ctx, "ListDaemons", &filter, limit);
    let mut after = pager.start(input.next_token.as_deref())?;
    let mut found: Vec<DaemonDoc> = Vec::new();
    loop {
        let q = Query {
            parent: cluster.clone(),
            after: after.clone(),
            limit: 200,
            ..Default::default()
        };
        let batch = records::list::<DaemonDoc>(ecs.store(), &scope(ctx), &q).await?;
        let exhausted = batch.len() < 200;
        for d in batch {
            after = Some(d.value.sort());
            let names: Vec<String> = d
                .value
                .providers
                .iter()
                .map(|p| tail(p).to_string())
                .collect();
            if !wanted.is_empty() && !wanted.iter().any(|w| names.contains(w)) {
                continue;
            }
            let live = load::<ServiceDoc>(ecs.store(), &scope(ctx), &d.value.backing_id())
                .await?
                .is_some_and(|b| !b.value.is(berth_core::service::status::INACTIVE));
            if live {
                found.push(d.value);
            }
        }
        if exhausted || found.len() > limit {
            break;
        }
    }
    let next_token = pager.finish(&mut found, |d| d.sort());
    Ok(ListDaemonsResponse {
        daemon_summaries_list: Some(
            found
                .into_iter()
                .map(|d| DaemonSummary {
                    daemon_arn: Some(d.arn),
                    status: Some(d.status),
                    created_at: Some(d.created_at),
                    updated_at: Some(d.updated_at),
                })
                .collect(),
        ),
        next_token,
    })
}

/// A backing deployment record as a daemon deployment.
fn deployment_view(
    ctx: &RequestContext,
    d: &DaemonDoc,
    s: &ServiceDoc,
    rec: &DeploymentDoc,
    counts: &Running,
) -> DaemonDeployment {
    let r = &rec.record;
    let id = tail(r.service_deployment_arn.as_deref().unwrap_or_default()).to_string();
    let providers = provider_arns(ctx, d);
    let live = s
        .state
        .deployments
        .iter()
        .find(|x| x.id == rec.deployment_id);
    let revision_detail = |service_revision: Option<&str>, deployment: Option<&str>| {
        let per: Vec<DaemonDeploymentCapacityProvider> = providers
            .iter()
            .map(|(name, arn)| DaemonDeploymentCapacityProvider {
                arn: Some(arn.clone()),
                running_instance_count: Some(
                    deployment
                        .and_then(|dep| counts.get(&(dep.to_string(), name.clone())))
                        .copied()
                        .unwrap_or(0),
                ),
                draining_instance_count: Some(0),
            })
            .collect();
        DaemonDeploymentRevisionDetail {
            arn: service_revision.map(|a| revision_arn(ctx, d, a)),
            total_running_instance_count: Some(
                per.iter().filter_map(|p| p.running_instance_count).sum(),
            ),
            total_draining_instance_count: Some(0),
            capacity_providers: Some(per),
        }
    };
    // The deployment a source revision belongs to, if it is still live.
    let deployment_of = |revision_arn: &str| {
        s.revisions
            .iter()
            .find(|(_, r)| r.revision.service_revision_arn.as_deref() == Some(revision_arn))
            .map(|(id, _)| id.clone())
    };
    let breaker = r.deployment_circuit_breaker.as_ref();
    let failures = live
        .filter(|x| x.rollout == Rollout::InProgress)
        .map(|x| x.failed_tasks as i32);
    DaemonDeployment {
        daemon_deployment_arn: Some(arn::daemon_deployment(
            &ctx.region,
            &ctx.account_id,
            &d.cluster,
            &d.name,
            &id,
        )),
        cluster_arn: Some(d.cluster_arn.clone()),
        status: r
            .status
            .as_ref()
            .map(|st| DaemonDeploymentStatus::from(st.as_str())),
        status_reason: r.status_reason.clone(),
        target_daemon_revision: Some(revision_detail(
            r.target_service_revision
                .as_ref()
                .and_then(|t| t.arn.as_deref()),
            Some(rec.deployment_id.as_str()),
        )),
        source_daemon_revisions: Some(
            r.source_service_revisions
                .iter()
                .flatten()
                .filter_map(|x| x.arn.as_deref())
                .map(|a| revision_detail(Some(a), deployment_of(a).as_deref()))
                .collect(),
        ),
        circuit_breaker: breaker.map(|b| DaemonCircuitBreaker {
            failure_count: failures.or(b.failure_count),
            status: b
                .status
                .as_ref()
                .map(|st| DaemonDeploymentRollbackMonitorsStatus::from(st.as_str())),
            threshold: b.threshold,
        }),
        alarms: Some(DaemonDeploymentAlarms {
            status: Some(DaemonDeploymentRollbackMonitorsStatus::Disabled),
            alarm_names: None,
            triggered_alarm_names: None,
        }),
        rollback: r.rollback.as_ref().map(|rb| DaemonRollback {
            reason: rb.reason.clone(),
            started_at: rb.started_at,
            rollback_target_daemon_revision_arn: rb
                .service_revision_arn
                .as_deref()
                .map(|a| revision_arn(ctx, d, a)),
            rollback_capacity_providers: Some(providers.iter().map(|(_, a)| a.clone()).collect()),
        }),
        deployment_configuration: Some(d.configs.get(&id).cloned().unwrap_or_default()),
        created_at: r.created_at,
        started_at: r.started_at,
        stopped_at: r.stopped_at,
        finished_at: r.finished_at,
    }
}

/// The daemon a deployment or revision ARN belongs to, with its backing
/// service, or `None` when it is not the caller's (or not there).
async fn owner(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    name: &str,
) -> Result<Option<(DaemonDoc, ServiceDoc)>, EcsError> {
    let sc = scope(ctx);
    let Some(d) = load::<DaemonDoc>(ecs.store(), &sc, &services::key(cluster, name)).await? else {
        return Ok(None);
    };
    let Some(s) = load::<ServiceDoc>(ecs.store(), &sc, &d.value.backing_id()).await? else {
        return Ok(None);
    };
    Ok(Some((d.value, s.value)))
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
    input: DescribeDaemonDeploymentsRequest,
) -> Result<DescribeDaemonDeploymentsResponse, EcsError> {
    let arns = &input.daemon_deployment_arns;
    if arns.is_empty() || arns.len() > 20 {
        return Err(EcsError::invalid(
            "daemonDeploymentArns must contain between 1 and 20 items.",
        ));
    }
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for a in arns {
        let Some((cluster, name, id)) = parse_child_arn(ctx, a, "daemon-deployment") else {
            failures.push(missing(a));
            continue;
        };
        let Some((d, s)) = owner(ecs, ctx, &cluster, &name).await? else {
            failures.push(missing(a));
            continue;
        };
        let rec = load::<DeploymentDoc>(ecs.store(), &scope(ctx), &id)
            .await?
            .filter(|r| r.value.service == d.backing_id());
        let Some(rec) = rec else {
            failures.push(missing(a));
            continue;
        };
        let counts = running(ecs, ctx, &s).await?;
        out.push(deployment_view(ctx, &d, &s, &rec.value, &counts));
    }
    Ok(DescribeDaemonDeploymentsResponse {
        daemon_deployments: Some(out),
        failures: Some(failures),
    })
}

pub async fn list_deployments(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListDaemonDeploymentsRequest,
) -> Result<ListDaemonDeploymentsResponse, EcsError> {
    // ListDaemonDeployments models no DaemonNotFoundException.
    let (doc, _) = find(ecs, ctx, &input.daemon_arn)
        .await
        .map_err(|e| match e {
            EcsError::DaemonNotFound(m) => EcsError::Client(m),
            e => e,
        })?;
    let d = doc.value;
    let limit = page_size(input.max_results, 20, 100)?;
    let statuses: Vec<String> = input
        .status
        .iter()
        .flatten()
        .map(|s| s.as_str().to_string())
        .collect();
    let created = input.created_at.clone().unwrap_or_default();
    let filter = format!(
        "{}|{statuses:?}|{:?}|{:?}",
        d.id(),
        created.before.map(|t| t.as_millis()),
        created.after.map(|t| t.as_millis())
    );
    let pager = ecs.pager(ctx, "ListDaemonDeployments", &filter, limit);
    let mut after = pager.start(input.next_token.as_deref())?;
    let mut found: Vec<DeploymentDoc> = Vec::new();
    loop {
        let q = Query {
            parent: Some(d.backing_id()),
            after: after.clone(),
            descending: true,
            limit: 200,
            ..Default::default()
        };
        let batch = records::list::<DeploymentDoc>(ecs.store(), &scope(ctx), &q).await?;
        let exhausted = batch.len() < 200;
        for rec in batch {
            after = Some(rec.value.sort());
            let r = &rec.value.record;
            let at = r.created_at.map_or(0, |t| t.as_millis());
            let keep = (statuses.is_empty()
                || r.status
                    .as_ref()
                    .is_some_and(|s| statuses.iter().any(|w| w == s.as_str())))
                && created.before.is_none_or(|b| at < b.as_millis())
                && created.after.is_none_or(|a| at > a.as_millis());
            if keep {
                found.push(rec.value);
            }
        }
        if exhausted || found.len() > limit {
            break;
        }
    }
    let next_token = pager.finish(&mut found, |r| r.sort());
    Ok(ListDaemonDeploymentsResponse {
        daemon_deployments: Some(
            found
                .into_iter()
                .map(|rec| {
                    let r = rec.record;
                    let id = tail(r.service_deployment_arn.as_deref().unwrap_or_default());
                    DaemonDeploymentSummary {
                        daemon_deployment_arn: Some(arn::daemon_deployment(
                            &ctx.region,
                            &ctx.account_id,
                            &d.cluster,
                            &d.name,
                            id,
                        )),
                        daemon_arn: Some(d.arn.clone()),
                        cluster_arn: Some(d.cluster_arn.clone()),
                        status: r.status.map(|s| DaemonDeploymentStatus::from(s.as_str())),
                        status_reason: r.status_reason,
                        target_daemon_revision_arn: r
                            .target_service_revision
                            .and_then(|t| t.arn)
                            .map(|a| revision_arn(ctx, &d, &a)),
                        created_at: r.created_at,
                        started_at: r.started_at,
                        stopped_at: r.stopped_at,
                        finished_at: r.finished_at,
                    }
                })
                .collect(),
        ),
        next_token,
    })
}

pub async fn describe_revisions(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeDaemonRevisionsRequest,
) -> Result<DescribeDaemonRevisionsResponse, EcsError> {
    let arns = &input.daemon_revision_arns;
    if arns.is_empty() || arns.len() > 20 {
        return Err(EcsError::invalid(
            "daemonRevisionArns must contain between 1 and 20 items.",
        ));
    }
    let mut out = Vec::new();
    let mut failures = Vec::new();
    for a in arns {
        let Some((cluster, name, id)) = parse_child_arn(ctx, a, "daemon-revision") else {
            failures.push(missing(a));
            continue;
        };
        let Some((d, _)) = owner(ecs, ctx, &cluster, &name).await? else {
            failures.push(missing(a));
            continue;
        };
        let rev = load::<RevisionDoc>(ecs.store(), &scope(ctx), &id)
            .await?
            .filter(|r| r.value.service == d.backing_id());
        let Some(rev) = rev else {
            failures.push(missing(a));
            continue;
        };
        let r = rev.value.revision;
        out.push(DaemonRevision {
            daemon_revision_arn: Some(a.clone()),
            cluster_arn: Some(d.cluster_arn.clone()),
            daemon_arn: Some(d.arn.clone()),
            daemon_task_definition_arn: r.task_definition,
            created_at: r.created_at,
            container_images: Some(
                r.container_images
                    .into_iter()
                    .flatten()
                    .map(|c| DaemonContainerImage {
                        container_name: c.container_name,
                        image_digest: c.image_digest,
                        image: c.image,
                    })
                    .collect(),
            ),
            propagate_tags: Some(
                d.propagate_tags
                    .clone()
                    .unwrap_or(DaemonPropagateTags::None),
            ),
            enable_ecs_managed_tags: Some(d.enable_ecs_managed_tags),
            enable_execute_command: Some(d.enable_execute_command),
        });
    }
    Ok(DescribeDaemonRevisionsResponse {
        daemon_revisions: Some(out),
        failures: Some(failures),
    })
}
