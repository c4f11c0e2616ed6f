//! The placement steps of a launch: read a [`Snapshot`] of the candidate
//! instances and their reservations, then [`place`] tasks on it (the pure
//! scheduler).

use super::super::*;
use super::Launch;
use crate::ecs::MANAGED_CLUSTER;
use berth_core::task::Demand;

/// How to place a launch's tasks.
#[derive(Debug, Clone)]
pub(crate) struct PlacementRequest {
    pub count: usize,
    /// Applied in order: later strategies break ties of earlier ones.
    pub strategies: Vec<scheduler::Strategy>,
    /// `distinctInstance`: no two of these tasks on one instance.
    pub distinct_instance: bool,
    /// StartTask: only the instances with these ids.
    pub only: Option<Vec<String>>,
    /// Seeds the scheduler's random choices.
    pub seed: u64,
}

impl PlacementRequest {
    /// `count` tasks placed by ECS's `placementStrategy` (spread over
    /// instances when there is none) and `placementConstraints`.
    pub fn new(
        count: usize,
        strategies: Option<&[PlacementStrategy]>,
        constraints: Option<&[PlacementConstraint]>,
    ) -> Result<PlacementRequest, EcsError> {
        Ok(PlacementRequest {
            count,
            strategies: scheduler_strategies(strategies)?,
            distinct_instance: distinct_instance(constraints)?,
            only: None,
            seed: rand::random(),
        })
    }
}

pub(crate) fn scheduler_strategies(
    input: Option<&[PlacementStrategy]>,
) -> Result<Vec<scheduler::Strategy>, EcsError> {
    let Some(list) = input.filter(|l| !l.is_empty()) else {
        return Ok(vec![scheduler::Strategy::Spread("instanceId".into())]);
    };
    list.iter()
        .map(|s| {
            let field = s.field.clone().unwrap_or_default();
            match s.r#type.as_ref() {
                Some(PlacementStrategyType::Random) => Ok(scheduler::Strategy::Random),
                Some(PlacementStrategyType::Spread) if !field.is_empty() => {
                    Ok(scheduler::Strategy::Spread(field))
                }
                Some(PlacementStrategyType::Binpack) if field.eq_ignore_ascii_case("cpu") => {
                    Ok(scheduler::Strategy::Binpack(scheduler::BinpackField::Cpu))
                }
                Some(PlacementStrategyType::Binpack) if field.eq_ignore_ascii_case("memory") => Ok(
                    scheduler::Strategy::Binpack(scheduler::BinpackField::Memory),
                ),
                _ => Err(EcsError::invalid(format!(
                    "Invalid placement strategy {:?} with field '{field}'.",
                    s.r#type
                ))),
            }
        })
        .collect()
}

fn distinct_instance(constraints: Option<&[PlacementConstraint]>) -> Result<bool, EcsError> {
    let mut distinct = false;
    for c in constraints.into_iter().flatten() {
        match c.r#type.as_ref() {
            Some(PlacementConstraintType::DistinctInstance) => distinct = true,
            Some(PlacementConstraintType::MemberOf) => {
                return Err(EcsError::invalid(
                    "memberOf placement constraints are not supported by berth yet.",
                ))
            }
            _ => return Err(EcsError::invalid("Invalid placement constraint type.")),
        }
    }
    Ok(distinct)
}

/// The instances a launch may use, as read: the cluster's, or for FARGATE
/// berth's managed capacity's.
pub(crate) struct Snapshot {
    /// Where the instances (and their assignments) live.
    pub scope: Scope,
    /// The instances that are not INACTIVE, with the versions read: the
    /// commit re-writes those it uses at these versions.
    pub instances: Vec<Versioned<InstanceDoc>>,
    /// The same instances as the scheduler sees them, live reservations
    /// counted.
    pub pool: Vec<scheduler::Instance>,
}

impl Snapshot {
    pub fn instance(&self, id: &str) -> Option<&Versioned<InstanceDoc>> {
        self.instances.iter().find(|d| d.value.id == id)
    }
}

/// Whether awsvpc tasks on this instance use the host's network: on the
/// process runtime they do (no namespaces); Docker gives each its own.
pub(super) fn awsvpc_shares_host(d: &InstanceDoc) -> bool {
    !d.instance
        .attributes
        .iter()
        .flatten()
        .any(|a| a.name == "berth.runtime" && a.value.as_deref() == Some("docker"))
}

/// Reads the instances `launch` may use (only those in `only`, if given)
/// and the reservations of the live tasks on them. No usable instance at
/// all is an error, as on ECS.
pub(crate) async fn snapshot(
    ecs: &Ecs,
    ctx: &RequestContext,
    launch: &Launch,
    only: Option<&[String]>,
) -> Result<Snapshot, EcsError> {
    let managed = launch.is_managed();
    let scope = if managed { managed_scope() } else { scope(ctx) };
    let parent = if managed {
        MANAGED_CLUSTER.to_string()
    } else {
        launch.cluster_name()
    };
    let q = Query {
        parent: Some(parent),
        limit: 100_000,
        ..Default::default()
    };
    let mut instances: Vec<Versioned<InstanceDoc>> = records::list(ecs.store(), &scope, &q).await?;
    if let Some(ids) = only {
        instances.retain(|d| ids.contains(&d.value.id));
    }
    instances.retain(|d| d.value.instance.status.as_deref() != Some(INACTIVE));
    if instances.is_empty() {
        return Err(if managed {
            EcsError::client("No managed capacity is registered to run FARGATE tasks (start berth server with its embedded agent).")
        } else {
            EcsError::invalid("No Container Instances were found in your cluster.")
        });
    }
    let aq = Query {
        limit: 1_000_000,
        ..Default::default()
    };
    let reservations: Vec<(String, Demand)> =
        records::list::<AssignmentDoc>(ecs.store(), &scope, &aq)
            .await?
            .into_iter()
            .map(|a| (a.value.instance_id, a.value.reserved))
            .collect();
    let pool = instances
        .iter()
        .map(|d| scheduler_instance(ecs, &d.value, &reservations))
        .collect();
    Ok(Snapshot {
        scope,
        instances,
        pool,
    })
}

/// An instance as the scheduler sees it, with its tasks' reservations.
fn scheduler_instance(
    ecs: &Ecs,
    d: &InstanceDoc,
    reservations: &[(String, Demand)],
) -> scheduler::Instance {
    let (cpu, memory, ports) = d.registered();
    let mut inst = scheduler::Instance {
        id: d.id.clone(),
        active: d.instance.status.as_deref() == Some(container_instances::ACTIVE),
        connected: container_instances::connected(ecs, d),
        cpu,
        memory,
        ports: ports.into_iter().collect(),
        attributes: d
            .instance
            .attributes
            .iter()
            .flatten()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect(),
        tasks: 0,
        awsvpc_shares_host: awsvpc_shares_host(d),
    };
    for (_, r) in reservations.iter().filter(|(i, _)| *i == d.id) {
        inst.reserve(r);
    }
    inst
}

/// Where each of the request's tasks goes (pure: the scheduler over the
/// snapshot).
pub(crate) fn place(
    snapshot: &Snapshot,
    launch: &Launch,
    request: &PlacementRequest,
) -> Vec<Placement> {
    scheduler::place(
        &snapshot.pool,
        &scheduler::Request {
            demand: launch.demand.clone(),
            count: request.count,
            strategies: request.strategies.clone(),
            distinct_instance: request.distinct_instance,
            seed: request.seed,
        },
    )
}
