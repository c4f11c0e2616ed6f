//! What the reconciler is given: the service's spec from its document,
//! its tasks from their documents, its cluster's instances.

use super::*;
use crate::ecs::container_instances::{self, InstanceDoc, ACTIVE};
use crate::ecs::tasks::{self, TaskDoc};
use crate::records;
use berth_core::service as rules;
use berth_core::task::{stop, DesiredStatus, TaskStatus, TaskStatuses};
use berth_scheduler::service::{
    default_placement, Controller, DaemonRollout, DeploymentStrategy, Health, InstanceView,
    Observed, Rules, Scheduling, Spec, StopCause, TaskView,
};
use berth_store::Query;

/// The reconciler's view of what the service asks for.
pub fn spec(doc: &ServiceDoc, seed: u64, settle: std::time::Duration) -> Spec {
    let s = &doc.service;
    let config = s
        .deployment_configuration
        .clone()
        .unwrap_or_else(|| rules::defaults(rules::Kind::Replica));
    let t = rules::timings(&config);
    let strategy = match config
        .strategy
        .clone()
        .unwrap_or(DeploymentStrategy_::Rolling)
    {
        DeploymentStrategy_::BlueGreen => DeploymentStrategy::BlueGreen { bake_ms: t.bake_ms },
        DeploymentStrategy_::Linear => DeploymentStrategy::Linear {
            step_percent: t.linear_step_percent,
            step_bake_ms: t.linear_step_bake_ms,
            bake_ms: t.bake_ms,
        },
        DeploymentStrategy_::Canary => DeploymentStrategy::Canary {
            percent: t.canary_percent,
            canary_bake_ms: t.canary_bake_ms,
            bake_ms: t.bake_ms,
        },
        _ => DeploymentStrategy::Rolling,
    };
    let placement = s
        .placement_strategy
        .as_deref()
        .filter(|p| !p.is_empty())
        .and_then(|p| tasks::launch::scheduler_strategies(Some(p)).ok())
        .unwrap_or_else(default_placement);
    Spec {
        name: doc.name.clone(),
        scheduling: if doc.daemon() {
            Scheduling::Daemon
        } else {
            Scheduling::Replica {
                desired: s.desired_count.unwrap_or(0).max(0) as u32,
            }
        },
        controller: if doc.external() {
            Controller::External
        } else {
            Controller::Ecs
        },
        rules: Rules {
            minimum_healthy_percent: config.minimum_healthy_percent.unwrap_or(100).max(0) as u32,
            maximum_percent: config.maximum_percent.unwrap_or(200).max(0) as u32,
            circuit_breaker: rules::circuit_breaker(&config),
            strategy,
            health_grace_ms: i64::from(s.health_check_grace_period_seconds.unwrap_or(0)) * 1000,
            settle_ms: settle.as_millis() as i64,
            daemon_rollout: doc.backs_daemon.as_ref().map(|b| DaemonRollout {
                drain_percent: b.drain_percent,
                bake_ms: b.bake_ms,
            }),
        },
        draining: doc.is(status::DRAINING),
        placement,
        seed,
    }
}

use berth_wire::ecs::DeploymentStrategy as DeploymentStrategy_;

/// Why a task stopped, as the reconciler counts it.
fn stop_cause(d: &TaskDoc) -> StopCause {
    match d.task.stop_code.as_ref() {
        Some(TaskStopCode::TaskFailedToStart) => StopCause::FailedToStart,
        Some(TaskStopCode::EssentialContainerExited) => StopCause::Exited,
        Some(TaskStopCode::UserInitiated) => StopCause::User,
        Some(TaskStopCode::TerminationNotice | TaskStopCode::SpotInterruption) => StopCause::Lost,
        Some(TaskStopCode::ServiceSchedulerInitiated)
            if d.task.stopped_reason.as_deref() == Some(stop::reason::FAILED_HEALTH_CHECKS) =>
        {
            StopCause::Unhealthy
        }
        _ => StopCause::Scheduler,
    }
}

/// A task as the reconciler sees it.
pub fn task_view(d: &TaskDoc, deployment: &str) -> TaskView {
    let t = &d.task;
    let health_checked = d
        .task_definition
        .container_definitions
        .iter()
        .flatten()
        .any(|c| c.essential.unwrap_or(true) && c.health_check.is_some());
    let stopped = t.status() == TaskStatus::Stopped;
    TaskView {
        id: d.id.clone(),
        deployment: d
            .service
            .as_ref()
            .map_or(deployment.to_string(), |o| o.deployment_id.clone()),
        status: t.status(),
        stopping: t.desired() == DesiredStatus::Stopped,
        health: match t.health_status.as_ref() {
            Some(HealthStatus::Healthy) => Health::Healthy,
            Some(HealthStatus::Unhealthy) => Health::Unhealthy,
            _ => Health::Unknown,
        },
        health_checked,
        started_at: t.started_at.map(|s| s.as_millis()),
        stopped_at: t
            .execution_stopped_at
            .or(t.stopped_at)
            .map(|s| s.as_millis()),
        stop_cause: stopped.then(|| stop_cause(d)),
        protected_until: d.protected_until.map(|p| p.as_millis()),
        instance: d.instance_id.clone().filter(|_| d.instance_scope_is_own()),
        zone: t.availability_zone.clone(),
    }
}

/// A task the store no longer has (expired): gone, to be forgotten.
fn vanished(id: &str, deployment: &str) -> TaskView {
    TaskView {
        id: id.to_string(),
        deployment: deployment.to_string(),
        status: TaskStatus::Stopped,
        stopping: true,
        health: Health::Unknown,
        health_checked: false,
        started_at: None,
        stopped_at: None,
        stop_cause: Some(StopCause::Lost),
        protected_until: None,
        instance: None,
        zone: None,
    }
}

/// The service's tasks, with their documents (for counts and events).
pub async fn tasks_of(
    ecs: &Ecs,
    ctx: &RequestContext,
    doc: &ServiceDoc,
) -> Result<Vec<(TaskView, Option<TaskDoc>)>, EcsError> {
    let mut out = Vec::with_capacity(doc.tasks.len());
    for (id, deployment) in &doc.tasks {
        match load::<TaskDoc>(ecs.store(), &scope(ctx), id).await? {
            Some(d) => out.push((task_view(&d.value, deployment), Some(d.value))),
            None => out.push((vanished(id, deployment), None)),
        }
    }
    Ok(out)
}

/// The cluster's instances, for DAEMON services and for balancing a
/// scale-in; FARGATE services have none (their tasks name a zone).
pub async fn instances(
    ecs: &Ecs,
    ctx: &RequestContext,
    doc: &ServiceDoc,
    spec: &Spec,
) -> Result<Vec<InstanceView>, EcsError> {
    let fargate = doc.service.launch_type == Some(LaunchType::Fargate)
        || doc
            .service
            .capacity_provider_strategy
            .iter()
            .flatten()
            .any(|c| c.capacity_provider.starts_with("FARGATE"));
    // A replica service needs its instances only to weigh a scale-in by
    // what its tasks do not carry themselves (their zone and instance id
    // they do): binpack room, or another attribute to spread on.
    let needed = doc.daemon()
        || spec.placement.iter().any(|s| match s {
            berth_scheduler::Strategy::Binpack(_) => true,
            berth_scheduler::Strategy::Spread(f) => !matches!(
                f.as_str(),
                "instanceId" | "host" | "attribute:ecs.availability-zone"
            ),
            berth_scheduler::Strategy::Random => false,
        });
    if fargate || !needed {
        return Ok(vec![]);
    }
    let q = Query {
        parent: Some(doc.cluster.clone()),
        limit: 1_000_000,
        ..Default::default()
    };
    let docs: Vec<InstanceDoc> = records::list::<InstanceDoc>(ecs.store(), &scope(ctx), &q)
        .await?
        .into_iter()
        .map(|d| d.value)
        .filter(|d| d.instance.status.as_deref() != Some(container_instances::INACTIVE))
        .collect();
    let required: Vec<(String, Option<String>)> = doc
        .state
        .primary()
        .and_then(|p| doc.revisions.get(&p.id))
        .and_then(|r| r.required_attributes.clone())
        .unwrap_or_default();
    let binpack = spec
        .placement
        .iter()
        .any(|s| matches!(s, berth_scheduler::Strategy::Binpack(_)));
    let reservations = if binpack {
        tasks::reservations_by_instance(ecs, &scope(ctx), &doc.cluster).await?
    } else {
        Default::default()
    };
    Ok(docs
        .iter()
        .map(|d| {
            let attributes: BTreeMap<String, Option<String>> = d
                .instance
                .attributes
                .iter()
                .flatten()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect();
            let eligible = required
                .iter()
                .all(|(name, want)| match attributes.get(name) {
                    None => false,
                    Some(have) => want.is_none() || want == have,
                })
                // A daemon runs on the instances of its capacity providers.
                && doc.backs_daemon.as_ref().is_none_or(|b| {
                    crate::ecs::daemons::instance_capacity_provider(d)
                        .is_some_and(|p| b.providers.contains(&p))
                });
            let (cpu, memory, _) = d.registered();
            let (used_cpu, used_memory) = reservations.get(&d.id).copied().unwrap_or((0, 0));
            InstanceView {
                id: d.id.clone(),
                active: d.instance.status.as_deref() == Some(ACTIVE),
                connected: container_instances::connected(ecs, d),
                eligible,
                attributes,
                cpu: cpu - used_cpu,
                memory: memory - used_memory,
            }
        })
        .collect())
}

/// Everything one pass needs.
pub async fn observe(
    ecs: &Ecs,
    ctx: &RequestContext,
    doc: &ServiceDoc,
    spec: &Spec,
) -> Result<(Observed, Vec<Option<TaskDoc>>), EcsError> {
    let (views, docs): (Vec<TaskView>, Vec<Option<TaskDoc>>) =
        tasks_of(ecs, ctx, doc).await?.into_iter().unzip();
    let instances = instances(ecs, ctx, doc, spec).await?;
    Ok((
        Observed {
            now: ecs.now().as_millis(),
            tasks: views,
            instances,
        },
        docs,
    ))
}
