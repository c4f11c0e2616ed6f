//! The placement steps of a launch: read a [`Snapshot`] of the candidate
//! instances and their reservations, then [`place`] tasks on it (the pure
//! scheduler).

use super::super::*;
use super::index::Pool;
use super::Launch;
use crate::ecs::MANAGED_CLUSTER;
use berth_core::query;
use std::sync::Arc;

/// How to place a launch's tasks.
#[derive(Debug, Clone)]
pub(crate) struct PlacementRequest {
    pub count: usize,
    /// Applied in order: later strategies break ties of earlier ones.
    pub strategies: Vec<scheduler::Strategy>,
    /// `distinctInstance`: no two of these tasks on one instance.
    pub distinct_instance: bool,
    /// `memberOf` expressions of the request (the task definition's are
    /// added at placement).
    pub member_of: Vec<query::Expr>,
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
        let (distinct_instance, member_of) = constraints_of(constraints)?;
        Ok(PlacementRequest {
            count,
            strategies: scheduler_strategies(strategies)?,
            distinct_instance,
            member_of,
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
    if list.len() > 5 {
        return Err(EcsError::invalid("Maximum number of strategies is 5."));
    }
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

/// ECS's limit on placement constraints of one task, the task
/// definition's included.
pub(crate) const MAX_CONSTRAINTS: usize = 10;

/// `distinctInstance` and the parsed `memberOf` expressions of `constraints`.
pub(crate) fn constraints_of(
    constraints: Option<&[PlacementConstraint]>,
) -> Result<(bool, Vec<query::Expr>), EcsError> {
    let list = constraints.unwrap_or_default();
    if list.len() > MAX_CONSTRAINTS {
        return Err(EcsError::invalid(format!(
            "Maximum number of constraints is {MAX_CONSTRAINTS}."
        )));
    }
    let mut distinct = false;
    let mut member_of = Vec::new();
    for c in list {
        match c.r#type.as_ref() {
            Some(PlacementConstraintType::DistinctInstance) if c.expression.is_some() => {
                return Err(EcsError::invalid(
                    "distinctInstance expression should not be specified.",
                ))
            }
            Some(PlacementConstraintType::DistinctInstance) => distinct = true,
            Some(PlacementConstraintType::MemberOf) => {
                member_of.push(expression(c.expression.as_deref())?)
            }
            _ => return Err(EcsError::invalid("Invalid placement constraint type.")),
        }
    }
    Ok((distinct, member_of))
}

/// A `memberOf` constraint's expression, parsed.
pub(crate) fn expression(text: Option<&str>) -> Result<query::Expr, EcsError> {
    let text = text
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| EcsError::invalid("memberOf constraint must have an expression."))?;
    query::parse(text).map_err(|e| EcsError::invalid(format!("Invalid expression '{text}': {e}.")))
}

/// The `memberOf` expressions of a task definition's `placementConstraints`.
fn task_definition_member_of(td: &TaskDefinition) -> Vec<query::Expr> {
    td.placement_constraints
        .iter()
        .flatten()
        .filter(|c| c.r#type == Some(TaskDefinitionPlacementConstraintType::MemberOf))
        .filter_map(|c| query::parse(c.expression.as_deref()?).ok())
        .collect()
}

/// The instances a launch may use, as read: the cluster's, or for FARGATE
/// berth's managed capacity's.
pub(crate) struct Snapshot {
    /// Where the instances (and their assignments) live.
    pub scope: Scope,
    /// The instances that are not INACTIVE, with the versions read (the
    /// commit re-writes those it uses at these versions), and as the
    /// scheduler sees them, live reservations counted.
    pub index: Arc<Pool>,
    /// The scope's generation when it was read (see `index`).
    pub generation: u64,
    /// The cluster whose instances these are (berth's managed one for FARGATE).
    pub cluster: String,
}

impl Snapshot {
    pub fn instance(&self, id: &str) -> Option<&Versioned<InstanceDoc>> {
        self.index.instance(id)
    }

    /// The instances as the scheduler sees them.
    pub fn pool(&self) -> &[scheduler::Instance] {
        &self.index.pool
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

/// The instances `launch` may use (only those in `only`, if given) and the
/// reservations of the live tasks on them: from the placement index when
/// nothing wrote since it was read, else from the store. No usable
/// instance at all is an error, as on ECS.
pub(crate) async fn snapshot(
    ecs: &Ecs,
    ctx: &RequestContext,
    launch: &Launch,
    only: Option<&[String]>,
) -> Result<Snapshot, EcsError> {
    let managed = launch.is_managed();
    let scope = if managed { managed_scope() } else { scope(ctx) };
    let cluster = if managed {
        MANAGED_CLUSTER.to_string()
    } else {
        launch.cluster_name()
    };
    let generation = ecs.placement.generation(&scope);
    let cached = ecs.placement.get(ecs, &scope, &cluster);
    let index = match (cached, only) {
        (Some(p), None) => p,
        (cached, only) => {
            let p = match cached {
                Some(p) => (*p).clone(),
                None => read_pool(ecs, &scope, &cluster).await?,
            };
            let p = Arc::new(p);
            match only {
                None => {
                    ecs.placement
                        .put(ecs, &scope, &cluster, generation, p.clone());
                    p
                }
                Some(ids) => Arc::new(p.only(ids)),
            }
        }
    };
    // A capacity provider's tasks go only to the instances that joined it.
    let index = match launch.instance_provider() {
        Some(provider) => Arc::new(
            index.filtered(|d| d.instance.capacity_provider_name.as_deref() == Some(provider)),
        ),
        None => index,
    };
    if index.instances.is_empty() {
        return Err(if managed {
            EcsError::client("No managed capacity is registered to run FARGATE tasks (start berth server with its embedded agent).")
        } else {
            EcsError::invalid("No Container Instances were found in your cluster.")
        });
    }
    Ok(Snapshot {
        scope,
        index,
        generation,
        cluster,
    })
}

/// Reads a cluster's instances that are not INACTIVE and the reservations
/// on them from the store.
async fn read_pool(ecs: &Ecs, scope: &Scope, cluster: &str) -> Result<Pool, EcsError> {
    let q = Query {
        parent: Some(cluster.to_string()),
        limit: 100_000,
        ..Default::default()
    };
    let mut instances: Vec<Versioned<InstanceDoc>> = records::list(ecs.store(), scope, &q).await?;
    instances.retain(|d| d.value.instance.status.as_deref() != Some(INACTIVE));
    // Only this cluster's reservations: an index range, not the scope.
    let aq = Query {
        sort_prefix: Some(AssignmentDoc::cluster_prefix(cluster)),
        limit: 10_000_000,
        ..Default::default()
    };
    let reservations = records::list::<AssignmentDoc>(ecs.store(), scope, &aq)
        .await?
        .into_iter()
        .map(|a| a.value)
        .collect::<Vec<_>>();
    Ok(Pool::new(ecs, instances, &reservations))
}

/// An instance as the scheduler (and the cluster query language) sees it,
/// with its tasks' reservations and groups.
pub(crate) fn scheduler_instance<'a>(
    ecs: &Ecs,
    d: &InstanceDoc,
    reservations: impl IntoIterator<Item = &'a AssignmentDoc>,
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
        details: scheduler::Details {
            agent_version: d
                .instance
                .version_info
                .as_ref()
                .and_then(|v| v.agent_version.clone()),
            ec2_instance_id: d.instance.ec2_instance_id.clone(),
            registered_at: d.instance.registered_at.map(|t| t.as_secs_f64() as i64),
            groups: Default::default(),
        },
    };
    for a in reservations.into_iter().filter(|a| a.instance_id == d.id) {
        inst.reserve(&a.reserved, a.group.as_deref());
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
    let td_member_of = task_definition_member_of(&launch.td);
    let (fixed, changing): (Vec<&query::Expr>, Vec<&query::Expr>) = request
        .member_of
        .iter()
        .chain(&td_member_of)
        .partition(|e| e.reads_only_registration());
    let members = (!fixed.is_empty()).then(|| snapshot.index.members(&fixed));
    scheduler::place_among(
        snapshot.pool(),
        &scheduler::Request {
            demand: launch.demand.clone(),
            count: request.count,
            strategies: request.strategies.clone(),
            distinct_instance: request.distinct_instance,
            member_of: changing.into_iter().cloned().collect(),
            group: Some(launch.group.clone()),
            seed: request.seed,
        },
        members.as_deref().map(Vec::as_slice),
    )
}
