//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks, and the
//! agent's reports (SubmitTaskStateChange, SubmitContainerStateChange).
//!
//! A task document holds the task as DescribeTasks shows it, the revision
//! it runs (so later deregistration cannot change a running task), where it
//! was placed and what it reserved there. An assignment document, in the
//! scope of the instance, lists each live task under its instance: it is
//! what an agent's poll reads, and it goes away when the task stops.

use super::container_instances::{self, InstanceDoc, INACTIVE};
use super::{clusters, task_definitions, Ecs};
use crate::records::{
    self, kind, load, scope, store_error, too_contended, try_commit, Record, Versioned,
    MAX_ATTEMPTS,
};
use berth_core::pagination::{page_size, PageKey};
use berth_core::task::{self as rules, stopped_reason, TaskStatus};
use berth_core::{arn, tags, EcsError};
use berth_scheduler::{self as scheduler, Placement, Protocol};
use berth_store::{Expect, Query, Scope, Write};
use berth_wire::ecs::*;
use berth_wire::{RequestContext, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Resources a task holds on its instance until it stops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredNeeds {
    pub cpu: i64,
    pub memory: i64,
    /// `(protocol, port)`, protocol `tcp` or `udp`.
    pub host_ports: Vec<(String, u16)>,
}

impl From<&rules::Needs> for StoredNeeds {
    fn from(n: &rules::Needs) -> Self {
        StoredNeeds {
            cpu: n.cpu,
            memory: n.memory,
            host_ports: n
                .host_ports
                .iter()
                .map(|(p, port)| (p.as_str().to_string(), *port))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDoc {
    pub id: String,
    pub cluster: String,
    pub task: Task,
    #[serde(rename = "taskDefinition")]
    pub task_definition: TaskDefinition,
    /// The container instance it runs on (in `instance_scope`).
    pub instance_id: Option<String>,
    /// Where the instance document lives: the task's own scope for EC2 and
    /// EXTERNAL tasks, berth's managed-capacity scope for FARGATE.
    pub instance_scope: Option<(String, String)>,
    pub needs: StoredNeeds,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl TaskDoc {
    pub fn last_status(&self) -> TaskStatus {
        self.task
            .last_status
            .as_deref()
            .and_then(TaskStatus::parse)
            .unwrap_or(TaskStatus::Provisioning)
    }

    pub fn arn(&self) -> &str {
        self.task.task_arn.as_deref().unwrap_or_default()
    }
}

impl Record for TaskDoc {
    const KIND: &'static str = kind::TASK;
    fn id(&self) -> String {
        self.id.clone()
    }
    fn parent(&self) -> String {
        self.cluster.clone()
    }
    fn status(&self) -> String {
        self.last_status().as_str().to_string()
    }
}

/// A live task listed under its instance, for the instance's agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssignmentDoc {
    pub account: String,
    pub region: String,
    pub task_id: String,
    pub instance_id: String,
    pub needs: StoredNeeds,
}

impl Record for AssignmentDoc {
    const KIND: &'static str = kind::ASSIGNMENT;
    fn id(&self) -> String {
        format!("{}\t{}\t{}", self.account, self.region, self.task_id)
    }
    fn parent(&self) -> String {
        self.instance_id.clone()
    }
}

/// The scope berth's managed (FARGATE) capacity registers in.
pub fn managed_scope() -> Scope {
    Scope::new("berth", "managed")
}

/// Tasks of a cluster that have not stopped, read through the status index.
pub async fn active_in_cluster(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
) -> Result<Vec<TaskDoc>, EcsError> {
    let mut out = Vec::new();
    for s in TaskStatus::ALL.into_iter().filter(|s| s.holds_resources()) {
        let q = Query {
            parent: Some(cluster.to_string()),
            status: Some(s.as_str().into()),
            limit: 1_000_000,
            ..Default::default()
        };
        out.extend(
            records::list::<TaskDoc>(ecs.store(), &scope(ctx), &q)
                .await?
                .into_iter()
                .map(|d| d.value),
        );
    }
    Ok(out)
}

fn parse_task_id(ctx: &RequestContext, reference: &str) -> Option<String> {
    if !arn::looks_like_arn(reference) {
        return Some(reference.to_string());
    }
    let a = arn::Arn::parse(reference)?;
    if a.account != ctx.account_id || a.region != ctx.region {
        return None;
    }
    match a.resource_type_and_id() {
        ("task", rest) => rest.rsplit('/').next().map(str::to_string),
        _ => None,
    }
}

pub async fn find(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    reference: &str,
) -> Result<Option<Versioned<TaskDoc>>, EcsError> {
    let Some(id) = parse_task_id(ctx, reference) else {
        return Ok(None);
    };
    Ok(load::<TaskDoc>(ecs.store(), &scope(ctx), &id)
        .await?
        .filter(|d| d.value.cluster == cluster))
}

fn protocol(p: &str) -> Protocol {
    if p == "udp" {
        Protocol::Udp
    } else {
        Protocol::Tcp
    }
}

/// The instances tasks can be placed on, as the scheduler sees them.
fn snapshot(
    ecs: &Ecs,
    instances: &[InstanceDoc],
    reservations: &[(String, StoredNeeds)],
) -> Vec<scheduler::Instance> {
    instances
        .iter()
        .filter(|d| d.instance.status.as_deref() != Some(INACTIVE))
        .map(|d| {
            let (cpu, memory, ports) = d.registered();
            let mut inst = scheduler::Instance {
                id: d.id.clone(),
                active: d.instance.status.as_deref() == Some(container_instances::ACTIVE),
                connected: container_instances::connected(ecs, d),
                cpu,
                memory,
                ports: ports.iter().map(|(p, n)| (protocol(p), *n)).collect(),
                attributes: d
                    .instance
                    .attributes
                    .iter()
                    .flatten()
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect(),
                tasks: 0,
            };
            for (_, n) in reservations.iter().filter(|(i, _)| *i == d.id) {
                inst.cpu -= n.cpu;
                inst.memory -= n.memory;
                inst.ports
                    .extend(n.host_ports.iter().map(|(p, port)| (protocol(p), *port)));
                inst.tasks += 1;
            }
            inst
        })
        .collect()
}

fn strategies(
    input: Option<&Vec<PlacementStrategy>>,
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

fn distinct_instance(constraints: Option<&Vec<PlacementConstraint>>) -> Result<bool, EcsError> {
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

/// What RunTask and StartTask share once the definition is resolved.
struct Launch {
    cluster: Cluster,
    td: TaskDefinition,
    launch_type: LaunchType,
    overrides: Option<TaskOverride>,
    started_by: Option<String>,
    group: String,
    tags: Vec<Tag>,
    enable_execute_command: bool,
    needs: rules::Needs,
}

/// The parameters RunTask and StartTask share.
struct LaunchRequest<'a> {
    cluster: Option<&'a str>,
    task_definition: &'a str,
    launch_type: LaunchType,
    network: Option<&'a NetworkConfiguration>,
    overrides: Option<TaskOverride>,
    started_by: Option<String>,
    group: Option<String>,
    tags: Option<&'a Vec<Tag>>,
    enable_execute_command: bool,
}

async fn prepare(
    ecs: &Ecs,
    ctx: &RequestContext,
    r: LaunchRequest<'_>,
) -> Result<Launch, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, r.cluster).await?.value;
    let doc = task_definitions::resolve(ecs, ctx, r.task_definition)
        .await?
        .ok_or_else(|| EcsError::client("TaskDefinition not found."))?
        .value;
    let td = doc.task_definition;
    if td.status != Some(TaskDefinitionStatus::Active) {
        return Err(EcsError::client("TaskDefinition is inactive"));
    }
    let LaunchRequest {
        launch_type,
        network,
        overrides,
        started_by,
        group,
        tags: input_tags,
        enable_execute_command,
        ..
    } = r;
    let compatible = match launch_type {
        LaunchType::Fargate => Compatibility::Fargate,
        LaunchType::External => Compatibility::External,
        _ => Compatibility::Ec2,
    };
    if !td
        .compatibilities
        .iter()
        .flatten()
        .any(|c| *c == compatible)
    {
        return Err(EcsError::client(format!(
            "Task definition does not support launch_type {}.",
            launch_type.as_str()
        )));
    }
    if td.network_mode == Some(NetworkMode::Awsvpc)
        && network
            .and_then(|n| n.awsvpc_configuration.as_ref())
            .is_none()
    {
        return Err(EcsError::invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ));
    }
    rules::validate_overrides(&td, overrides.as_ref())?;
    if started_by.as_ref().is_some_and(|s| s.len() > 128) {
        return Err(EcsError::invalid(
            "startedBy can be at most 128 characters.",
        ));
    }
    let tags = tags::initial(input_tags)?;
    // The process runtime gives awsvpc tasks no network namespace of their
    // own, so their ports are host ports and must not collide.
    let needs = rules::needs(&td, overrides.as_ref(), true);
    let group =
        group.unwrap_or_else(|| format!("family:{}", td.family.as_deref().unwrap_or_default()));
    Ok(Launch {
        cluster,
        td,
        launch_type,
        overrides,
        started_by,
        group,
        tags,
        enable_execute_command,
        needs,
    })
}

fn new_task(ctx: &RequestContext, l: &Launch, instance: Option<&InstanceDoc>) -> TaskDoc {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let cluster_name = l.cluster.cluster_name.clone().unwrap_or_default();
    let task_arn = arn::task(&ctx.region, &ctx.account_id, &cluster_name, &id);
    let now = Timestamp::now();
    let containers =
        l.td.container_definitions
            .iter()
            .flatten()
            .map(|def| {
                let c = rules::effective_container(def, l.overrides.as_ref());
                Container {
                    container_arn: Some(format!(
                        "arn:aws:ecs:{}:{}:container/{cluster_name}/{id}/{}",
                        ctx.region,
                        ctx.account_id,
                        uuid::Uuid::new_v4()
                    )),
                    task_arn: Some(task_arn.clone()),
                    name: c.name.clone(),
                    image: c.image.clone(),
                    last_status: Some("PENDING".into()),
                    network_interfaces: Some(vec![]),
                    health_status: c.health_check.as_ref().map(|_| HealthStatus::UnknownValue),
                    cpu: Some(c.cpu.unwrap_or(0).to_string()),
                    memory: c.memory.map(|m| m.to_string()),
                    memory_reservation: c.memory_reservation.map(|m| m.to_string()),
                    ..Default::default()
                }
            })
            .collect();
    let fargate = l.launch_type == LaunchType::Fargate;
    let first_status = if fargate || l.td.network_mode == Some(NetworkMode::Awsvpc) {
        TaskStatus::Provisioning
    } else {
        TaskStatus::Pending
    };
    let overrides = l.overrides.clone().unwrap_or_default();
    let task = Task {
        task_arn: Some(task_arn),
        cluster_arn: l.cluster.cluster_arn.clone(),
        task_definition_arn: l.td.task_definition_arn.clone(),
        container_instance_arn: if fargate {
            None
        } else {
            instance.and_then(|i| i.instance.container_instance_arn.clone())
        },
        containers: Some(containers),
        last_status: Some(first_status.as_str().into()),
        desired_status: Some("RUNNING".into()),
        created_at: Some(now),
        version: Some(1),
        launch_type: Some(l.launch_type.clone()),
        group: Some(l.group.clone()),
        started_by: l.started_by.clone(),
        overrides: Some(TaskOverride {
            container_overrides: Some(overrides.container_overrides.clone().unwrap_or_default()),
            inference_accelerator_overrides: Some(vec![]),
            ..overrides
        }),
        cpu: Some(l.needs.cpu.to_string()),
        memory: Some(l.needs.memory.to_string()),
        availability_zone: Some(format!("{}a", ctx.region)),
        attributes: Some(vec![Attribute {
            name: "ecs.cpu-architecture".into(),
            value: Some(cpu_architecture().into()),
            ..Default::default()
        }]),
        connectivity: None,
        enable_execute_command: Some(l.enable_execute_command),
        health_status: Some(HealthStatus::UnknownValue),
        platform_version: fargate.then(|| "1.4.0".to_string()),
        platform_family: fargate.then(|| "Linux".to_string()),
        attachments: Some(vec![]),
        ephemeral_storage: fargate.then_some(EphemeralStorage { size_in_gi_b: 20 }),
        ..Default::default()
    };
    TaskDoc {
        id,
        cluster: cluster_name,
        task,
        task_definition: l.td.clone(),
        instance_id: instance.map(|i| i.id.clone()),
        instance_scope: None,
        needs: StoredNeeds::from(&l.needs),
        tags: l.tags.clone(),
    }
}

fn cpu_architecture() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    }
}

fn is_managed(launch_type: &LaunchType) -> bool {
    *launch_type == LaunchType::Fargate
}

/// The view DescribeTasks and RunTask answer with.
pub fn view(doc: &TaskDoc, include_tags: bool) -> Task {
    let mut t = doc.task.clone();
    t.tags = Some(if include_tags {
        doc.tags.clone()
    } else {
        vec![]
    });
    t
}

/// Places `count` tasks and records them with their assignments.
async fn launch(
    ecs: &Ecs,
    ctx: &RequestContext,
    l: &Launch,
    count: usize,
    input_strategy: Option<&Vec<PlacementStrategy>>,
    constraints: Option<&Vec<PlacementConstraint>>,
    only: Option<&[String]>,
) -> Result<(Vec<TaskDoc>, Vec<Failure>), EcsError> {
    let managed = is_managed(&l.launch_type);
    let inst_scope = if managed { managed_scope() } else { scope(ctx) };
    let cluster_name = l.cluster.cluster_name.clone().unwrap_or_default();
    let strategies = strategies(input_strategy)?;
    let distinct = distinct_instance(constraints)?;
    // Placement on one set of instances is serialized in this process; the
    // instance version checks in the commit guard against other processes.
    let lock_id = if managed {
        "managed".to_string()
    } else {
        cluster_name.clone()
    };
    let _serialized = ecs
        .locks
        .lock(&[
            &inst_scope.account,
            &inst_scope.region,
            "placement",
            &lock_id,
        ])
        .await;
    for _ in 0..MAX_ATTEMPTS {
        let parent = if managed {
            "managed".to_string()
        } else {
            cluster_name.clone()
        };
        let q = Query {
            parent: Some(parent),
            limit: 100_000,
            ..Default::default()
        };
        let mut instances: Vec<Versioned<InstanceDoc>> =
            records::list(ecs.store(), &inst_scope, &q).await?;
        if let Some(ids) = only {
            instances.retain(|d| ids.contains(&d.value.id));
        }
        let usable: Vec<&Versioned<InstanceDoc>> = instances
            .iter()
            .filter(|d| d.value.instance.status.as_deref() != Some(INACTIVE))
            .collect();
        if usable.is_empty() {
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
        let reservations: Vec<(String, StoredNeeds)> =
            records::list::<AssignmentDoc>(ecs.store(), &inst_scope, &aq)
                .await?
                .into_iter()
                .map(|a| (a.value.instance_id, a.value.needs))
                .collect();
        let docs: Vec<InstanceDoc> = usable.iter().map(|d| d.value.clone()).collect();
        let pool = snapshot(ecs, &docs, &reservations);
        let demand = scheduler::Demand {
            cpu: l.needs.cpu,
            memory: l.needs.memory,
            host_ports: l
                .needs
                .host_ports
                .iter()
                .map(|(p, n)| (protocol(p.as_str()), *n))
                .collect(),
            attributes: l
                .td
                .requires_attributes
                .iter()
                .flatten()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
        };
        let plan = scheduler::place(
            &pool,
            &scheduler::Request {
                demand,
                count,
                strategies: strategies.clone(),
                distinct_instance: distinct,
                seed: rand::random(),
            },
        );
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        let mut seen_failures = BTreeSet::new();
        let mut used: BTreeMap<String, &Versioned<InstanceDoc>> = BTreeMap::new();
        for p in plan {
            match p {
                Placement::Placed(id) => {
                    let inst = usable
                        .iter()
                        .find(|d| d.value.id == id)
                        .expect("placed on a known instance");
                    let mut t = new_task(ctx, l, Some(&inst.value));
                    t.instance_scope =
                        Some((inst_scope.account.clone(), inst_scope.region.clone()));
                    used.insert(id, inst);
                    tasks.push(t);
                }
                Placement::Unplaced(reasons) => {
                    for (id, r) in reasons {
                        let target = if managed {
                            l.cluster.cluster_arn.clone().unwrap_or_default()
                        } else {
                            usable
                                .iter()
                                .find(|d| d.value.id == id)
                                .map(|d| d.value.arn().to_string())
                                .unwrap_or_default()
                        };
                        if seen_failures.insert((target.clone(), r.as_str())) {
                            failures.push(Failure {
                                arn: Some(target),
                                reason: Some(r.as_str().into()),
                                detail: None,
                            });
                        }
                    }
                }
            }
        }
        let assignments: Vec<Write> = tasks
            .iter()
            .map(|t| {
                Versioned::new(AssignmentDoc {
                    account: ctx.account_id.clone(),
                    region: ctx.region.clone(),
                    task_id: t.id.clone(),
                    instance_id: t.instance_id.clone().unwrap_or_default(),
                    needs: t.needs.clone(),
                })
                .write()
            })
            .collect();
        // Re-writing each used instance at the version read makes a
        // concurrent placement on it (in another process) conflict.
        let guards: Vec<Write> = used.values().map(|d| d.write()).collect();
        let task_writes: Vec<Write> = tasks
            .iter()
            .map(|t| Versioned::new(t.clone()).write())
            .collect();
        let committed = if managed {
            // Assignments first: an assignment whose task never appears is
            // dropped by the agent; a task without assignment would hang.
            let mut w = guards;
            w.extend(assignments);
            if !try_commit(ecs.store(), &inst_scope, w).await? {
                continue;
            }
            try_commit(ecs.store(), &scope(ctx), task_writes).await?
        } else {
            let mut w = guards;
            w.extend(assignments);
            w.extend(task_writes);
            try_commit(ecs.store(), &scope(ctx), w).await?
        };
        if committed {
            for id in used.keys() {
                ecs.work.bump(id);
            }
            return Ok((tasks, failures));
        }
    }
    Err(too_contended())
}

fn launch_type_of(
    input_launch: Option<&LaunchType>,
    strategy: Option<&Vec<CapacityProviderStrategyItem>>,
    cluster_default: &[CapacityProviderStrategyItem],
) -> Result<LaunchType, EcsError> {
    if input_launch.is_some() && strategy.is_some_and(|s| !s.is_empty()) {
        return Err(EcsError::invalid(
            "Specifying both a launchType and capacityProviderStrategy is not supported.",
        ));
    }
    if let Some(lt) = input_launch {
        return match lt {
            LaunchType::Ec2 | LaunchType::Fargate | LaunchType::External => Ok(lt.clone()),
            other => Err(EcsError::invalid(format!(
                "launchType {other} is not supported by berth."
            ))),
        };
    }
    let items = strategy
        .filter(|s| !s.is_empty())
        .map(|s| s.as_slice())
        .unwrap_or(cluster_default);
    if items
        .iter()
        .any(|i| i.capacity_provider == "FARGATE" || i.capacity_provider == "FARGATE_SPOT")
    {
        return Ok(LaunchType::Fargate);
    }
    if let Some(i) = items.first() {
        return Err(EcsError::invalid(format!(
            "The capacity provider '{}' does not exist.",
            i.capacity_provider
        )));
    }
    Ok(LaunchType::Ec2)
}

/// A RunTask clientToken and the tasks it started, for idempotency.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunTokenDoc {
    token: String,
    task_ids: Vec<String>,
    failures: Vec<Failure>,
}

impl Record for RunTokenDoc {
    const KIND: &'static str = kind::RUN_TOKEN;
    fn id(&self) -> String {
        self.token.clone()
    }
}

pub async fn run(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: RunTaskRequest,
) -> Result<RunTaskResponse, EcsError> {
    let count = input.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(EcsError::invalid("count must be between 1 and 10."));
    }
    if let Some(t) = &input.client_token {
        if t.is_empty() || t.len() > 64 {
            return Err(EcsError::invalid("clientToken must be 1-64 characters."));
        }
        let sc = scope(ctx);
        if let Some(prior) = load::<RunTokenDoc>(ecs.store(), &sc, t).await? {
            let mut tasks = Vec::new();
            for id in &prior.value.task_ids {
                if let Some(d) = load::<TaskDoc>(ecs.store(), &sc, id).await? {
                    tasks.push(view(&d.value, false));
                }
            }
            return Ok(RunTaskResponse {
                tasks: Some(tasks),
                failures: Some(prior.value.failures),
            });
        }
    }
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value;
    let lt = launch_type_of(
        input.launch_type.as_ref(),
        input.capacity_provider_strategy.as_ref(),
        cluster
            .default_capacity_provider_strategy
            .as_deref()
            .unwrap_or(&[]),
    )?;
    let l = prepare(
        ecs,
        ctx,
        LaunchRequest {
            cluster: input.cluster.as_deref(),
            task_definition: &input.task_definition,
            launch_type: lt,
            network: input.network_configuration.as_ref(),
            overrides: input.overrides.clone(),
            started_by: input.started_by.clone(),
            group: input.group.clone(),
            tags: input.tags.as_ref(),
            enable_execute_command: input.enable_execute_command.unwrap_or(false),
        },
    )
    .await?;
    let (tasks, failures) = launch(
        ecs,
        ctx,
        &l,
        count as usize,
        input.placement_strategy.as_ref(),
        input.placement_constraints.as_ref(),
        None,
    )
    .await?;
    if let Some(t) = &input.client_token {
        let doc = RunTokenDoc {
            token: t.clone(),
            task_ids: tasks.iter().map(|t| t.id.clone()).collect(),
            failures: failures.clone(),
        };
        let _ = try_commit(
            ecs.store(),
            &scope(ctx),
            vec![Write::Put {
                doc: versioned_doc(&doc),
                expect: Expect::Absent,
            }],
        )
        .await?;
    }
    Ok(RunTaskResponse {
        tasks: Some(tasks.iter().map(|t| view(t, false)).collect()),
        failures: Some(failures),
    })
}

fn versioned_doc<T: Record + Clone>(v: &T) -> berth_store::Doc {
    match Versioned::new(v.clone()).write() {
        Write::Put { doc, .. } => doc,
        Write::Delete { .. } => unreachable!("a put builds a put"),
    }
}

pub async fn start(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: StartTaskRequest,
) -> Result<StartTaskResponse, EcsError> {
    if input.container_instances.is_empty() || input.container_instances.len() > 10 {
        return Err(EcsError::invalid(
            "Between 1 and 10 container instances must be given.",
        ));
    }
    let l = prepare(
        ecs,
        ctx,
        LaunchRequest {
            cluster: input.cluster.as_deref(),
            task_definition: &input.task_definition,
            launch_type: LaunchType::Ec2,
            network: input.network_configuration.as_ref(),
            overrides: input.overrides.clone(),
            started_by: input.started_by.clone(),
            group: input.group.clone(),
            tags: input.tags.as_ref(),
            enable_execute_command: input.enable_execute_command.unwrap_or(false),
        },
    )
    .await?;
    let cluster_name = l.cluster.cluster_name.clone().unwrap_or_default();
    let mut all_tasks = Vec::new();
    let mut failures = Vec::new();
    for r in &input.container_instances {
        let Some(inst) = container_instances::find(ecs, ctx, &cluster_name, r).await? else {
            failures.push(Failure {
                arn: Some(r.clone()),
                reason: Some("MISSING".into()),
                detail: None,
            });
            continue;
        };
        let (tasks, f) = launch(
            ecs,
            ctx,
            &l,
            1,
            Some(&vec![PlacementStrategy {
                r#type: Some(PlacementStrategyType::Random),
                field: None,
            }]),
            None,
            Some(std::slice::from_ref(&inst.value.id)),
        )
        .await?;
        all_tasks.extend(tasks);
        failures.extend(f);
    }
    Ok(StartTaskResponse {
        tasks: Some(all_tasks.iter().map(|t| view(t, false)).collect()),
        failures: Some(failures),
    })
}

/// Applies `change` to a task with optimistic retries; bumps its agent.
async fn modify(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    reference: &str,
    change: impl Fn(&mut TaskDoc) -> Result<(), EcsError>,
) -> Result<Option<TaskDoc>, EcsError> {
    for _ in 0..MAX_ATTEMPTS {
        let Some(mut doc) = find(ecs, ctx, cluster, reference).await? else {
            return Ok(None);
        };
        let before = doc.value.last_status();
        change(&mut doc.value)?;
        doc.value.task.version = Some(doc.value.task.version.unwrap_or(0) + 1);
        if try_commit(ecs.store(), &scope(ctx), vec![doc.write()]).await? {
            if before != TaskStatus::Stopped && doc.value.last_status() == TaskStatus::Stopped {
                release(ecs, ctx, &doc.value).await?;
            }
            if let Some(i) = &doc.value.instance_id {
                ecs.work.bump(i);
            }
            return Ok(Some(doc.value));
        }
    }
    Err(too_contended())
}

/// Frees a stopped task's place on its instance.
async fn release(ecs: &Ecs, ctx: &RequestContext, t: &TaskDoc) -> Result<(), EcsError> {
    let Some((account, region)) = &t.instance_scope else {
        return Ok(());
    };
    let id = format!("{}\t{}\t{}", ctx.account_id, ctx.region, t.id);
    let w = Write::Delete {
        kind: kind::ASSIGNMENT,
        id,
        expect: Expect::Any,
    };
    ecs.store()
        .commit(&Scope::new(account, region), vec![w])
        .await
        .map_err(store_error)?;
    Ok(())
}

pub async fn stop(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: StopTaskRequest,
) -> Result<StopTaskResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    if input.reason.as_ref().is_some_and(|r| r.len() > 255) {
        return Err(EcsError::invalid("reason can be at most 255 characters."));
    }
    let reason = input
        .reason
        .clone()
        .unwrap_or_else(|| stopped_reason::USER_INITIATED.to_string());
    let doc = modify(ecs, ctx, &cluster, &input.task, |t| {
        if t.task.desired_status.as_deref() == Some("STOPPED") {
            return Ok(());
        }
        t.task.desired_status = Some("STOPPED".into());
        t.task.stop_code = Some(TaskStopCode::UserInitiated);
        t.task.stopped_reason = Some(reason.clone());
        t.task.stopping_at = Some(Timestamp::now());
        // A task no agent has started yet has nothing to stop.
        if matches!(
            t.last_status(),
            TaskStatus::Provisioning | TaskStatus::Pending
        ) && t.task.started_at.is_none()
            && t.task.pull_started_at.is_none()
        {
            mark_stopped(t, None);
        }
        Ok(())
    })
    .await?
    .ok_or_else(|| {
        EcsError::invalid(format!("The referenced task was not found: {}", input.task))
    })?;
    Ok(StopTaskResponse {
        task: Some(view(&doc, false)),
    })
}

fn mark_stopped(t: &mut TaskDoc, execution_stopped_at: Option<Timestamp>) {
    let now = Timestamp::now();
    t.task.last_status = Some(TaskStatus::Stopped.as_str().into());
    t.task.desired_status = Some("STOPPED".into());
    t.task.stopping_at.get_or_insert(now);
    t.task.execution_stopped_at = Some(execution_stopped_at.unwrap_or(now));
    t.task.stopped_at = Some(now);
    for c in t.task.containers.iter_mut().flatten() {
        if c.last_status.as_deref() != Some("STOPPED") {
            c.last_status = Some("STOPPED".into());
        }
    }
}

pub async fn describe(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeTasksRequest,
) -> Result<DescribeTasksResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    if input.tasks.is_empty() || input.tasks.len() > 100 {
        return Err(EcsError::invalid(
            "Between 1 and 100 tasks can be described at a time.",
        ));
    }
    let include_tags = input.include.unwrap_or_default().contains(&TaskField::Tags);
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for r in &input.tasks {
        match find(ecs, ctx, &cluster, r).await? {
            Some(d) => tasks.push(view(&d.value, include_tags)),
            None => failures.push(Failure {
                arn: Some(if arn::looks_like_arn(r) {
                    r.clone()
                } else {
                    arn::task(&ctx.region, &ctx.account_id, &cluster, r)
                }),
                reason: Some("MISSING".into()),
                detail: None,
            }),
        }
    }
    Ok(DescribeTasksResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

pub async fn list(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: ListTasksRequest,
) -> Result<ListTasksResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    let limit = page_size(input.max_results, 100, 100)?;
    let desired = input
        .desired_status
        .clone()
        .unwrap_or(DesiredStatus::Running);
    if !desired.is_known() {
        return Err(EcsError::invalid(format!(
            "Invalid desiredStatus '{desired}'."
        )));
    }
    if input.family.is_some() && input.service_name.is_some() {
        return Err(EcsError::invalid(
            "family and serviceName cannot both be given.",
        ));
    }
    let instance_id = match &input.container_instance {
        Some(r) => Some(
            container_instances::find(ecs, ctx, &cluster, r)
                .await?
                .map(|d| d.value.id)
                .ok_or_else(|| EcsError::invalid(format!("Unknown container instance '{r}'.")))?,
        ),
        None => None,
    };
    let filter = format!(
        "{cluster}|{:?}|{:?}|{:?}|{:?}|{desired}|{:?}",
        instance_id, input.family, input.started_by, input.service_name, input.launch_type
    );
    let page = PageKey {
        operation: "ListTasks",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &filter,
    };
    let mut after = input
        .next_token
        .as_deref()
        .map(|t| ecs.tokens.decode(&page, t))
        .transpose()?;
    let keep = |t: &TaskDoc| {
        t.task.desired_status.as_deref() == Some(desired.as_str())
            && instance_id
                .as_ref()
                .is_none_or(|i| t.instance_id.as_ref() == Some(i))
            && input
                .family
                .as_ref()
                .is_none_or(|f| t.task_definition.family.as_ref() == Some(f))
            && input
                .started_by
                .as_ref()
                .is_none_or(|s| t.task.started_by.as_ref() == Some(s))
            && input
                .service_name
                .as_ref()
                .is_none_or(|s| t.task.group.as_deref() == Some(&format!("service:{s}")))
            && input
                .launch_type
                .as_ref()
                .is_none_or(|l| t.task.launch_type.as_ref() == Some(l))
    };
    let mut found: Vec<TaskDoc> = Vec::new();
    let mut more = false;
    'scan: loop {
        let q = Query {
            parent: Some(cluster.clone()),
            after: after.clone(),
            limit: 1000,
            ..Default::default()
        };
        let batch = records::list::<TaskDoc>(ecs.store(), &scope(ctx), &q).await?;
        let exhausted = batch.len() < 1000;
        for d in batch {
            after = Some(d.value.sort());
            if keep(&d.value) {
                if found.len() == limit {
                    more = true;
                    break 'scan;
                }
                found.push(d.value);
            }
        }
        if exhausted {
            break;
        }
    }
    let next_token = (more && !found.is_empty())
        .then(|| ecs.tokens.encode(&page, &found[found.len() - 1].sort()));
    Ok(ListTasksResponse {
        task_arns: Some(found.iter().map(|t| t.arn().to_string()).collect()),
        next_token,
    })
}

/// Stop codes for stops the agent reports: a task that never got going
/// failed to start; otherwise an essential container ended it.
fn inferred_stop(reason: Option<&str>) -> (TaskStopCode, String) {
    match reason {
        Some(r)
            if [
                "CannotPullContainerError",
                "CannotStartContainerError",
                "ResourceInitializationError",
                "TaskFailedToStart",
            ]
            .iter()
            .any(|p| r.starts_with(p)) =>
        {
            (TaskStopCode::TaskFailedToStart, r.to_string())
        }
        Some(r) if !r.is_empty() => (TaskStopCode::EssentialContainerExited, r.to_string()),
        _ => (
            TaskStopCode::EssentialContainerExited,
            stopped_reason::ESSENTIAL_CONTAINER_EXITED.to_string(),
        ),
    }
}

fn apply_container_change(t: &mut TaskDoc, change: &ContainerStateChange) -> Result<(), EcsError> {
    let name = change.container_name.as_deref().unwrap_or_default();
    let c = t
        .task
        .containers
        .iter_mut()
        .flatten()
        .find(|c| c.name.as_deref() == Some(name))
        .ok_or_else(|| EcsError::invalid(format!("The task has no container named '{name}'.")))?;
    if let Some(s) = &change.status {
        if !["PENDING", "RUNNING", "STOPPED"].contains(&s.as_str()) {
            return Err(EcsError::invalid(format!(
                "Invalid container status '{s}'."
            )));
        }
        let rank = |s: &str| {
            ["PENDING", "RUNNING", "STOPPED"]
                .iter()
                .position(|x| *x == s)
                .unwrap_or(0)
        };
        if rank(s) >= rank(c.last_status.as_deref().unwrap_or("PENDING")) {
            c.last_status = Some(s.clone());
        }
    }
    if change.runtime_id.is_some() {
        c.runtime_id = change.runtime_id.clone();
    }
    if change.exit_code.is_some() {
        c.exit_code = change.exit_code;
    }
    if change.reason.is_some() {
        c.reason = change.reason.clone();
    }
    if change.network_bindings.is_some() {
        c.network_bindings = change.network_bindings.clone();
    }
    if change.image_digest.is_some() {
        c.image_digest = change.image_digest.clone();
    }
    Ok(())
}

pub async fn submit_task_state_change(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: SubmitTaskStateChangeRequest,
) -> Result<SubmitTaskStateChangeResponse, EcsError> {
    let cluster = clusters::cluster_name(ctx, input.cluster.as_deref())?;
    let task_ref = input
        .task
        .clone()
        .ok_or_else(|| EcsError::invalid("task is required."))?;
    let status = match &input.status {
        Some(s) => Some(
            TaskStatus::parse(s)
                .ok_or_else(|| EcsError::invalid(format!("Invalid task status '{s}'.")))?,
        ),
        None => None,
    };
    let doc = modify(ecs, ctx, &cluster, &task_ref, |t| {
        for change in input.containers.iter().flatten() {
            apply_container_change(t, change)?;
        }
        if input.pull_started_at.is_some() {
            t.task.pull_started_at = input.pull_started_at;
        }
        if input.pull_stopped_at.is_some() {
            t.task.pull_stopped_at = input.pull_stopped_at;
        }
        let Some(next) = status else { return Ok(()) };
        if !t.last_status().may_become(next) || t.last_status() == next {
            return Ok(());
        }
        let now = Timestamp::now();
        if next >= TaskStatus::Running && t.task.started_at.is_none() && next != TaskStatus::Stopped
        {
            t.task.started_at = Some(now);
            t.task.connectivity = Some(Connectivity::Connected);
            t.task.connectivity_at = Some(now);
        }
        if next >= TaskStatus::Deactivating && next != TaskStatus::Stopped {
            t.task.stopping_at.get_or_insert(now);
        }
        if next == TaskStatus::Stopped {
            if t.task.stop_code.is_none() {
                let (code, reason) = inferred_stop(input.reason.as_deref());
                t.task.stop_code = Some(code);
                t.task.stopped_reason = Some(reason);
            }
            mark_stopped(t, input.execution_stopped_at);
        } else {
            t.task.last_status = Some(next.as_str().into());
        }
        Ok(())
    })
    .await?
    .ok_or_else(|| EcsError::invalid(format!("The referenced task was not found: {task_ref}")))?;
    let _ = doc;
    Ok(SubmitTaskStateChangeResponse {
        acknowledgment: Some("ACK".into()),
    })
}

pub async fn submit_container_state_change(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: SubmitContainerStateChangeRequest,
) -> Result<SubmitContainerStateChangeResponse, EcsError> {
    let cluster = clusters::cluster_name(ctx, input.cluster.as_deref())?;
    let task_ref = input
        .task
        .clone()
        .ok_or_else(|| EcsError::invalid("task is required."))?;
    let change = ContainerStateChange {
        container_name: input.container_name.clone(),
        image_digest: None,
        runtime_id: input.runtime_id.clone(),
        exit_code: input.exit_code,
        network_bindings: input.network_bindings.clone(),
        reason: input.reason.clone(),
        status: input.status.clone(),
    };
    modify(ecs, ctx, &cluster, &task_ref, |t| {
        apply_container_change(t, &change)
    })
    .await?
    .ok_or_else(|| EcsError::invalid(format!("The referenced task was not found: {task_ref}")))?;
    Ok(SubmitContainerStateChangeResponse {
        acknowledgment: Some("ACK".into()),
    })
}

/// Stops a task without its agent (the agent was lost): marks it STOPPED
/// with `code` and `reason` and frees its place. Returns whether it was
/// still running.
pub async fn force_stop(
    ecs: &Ecs,
    ctx: &RequestContext,
    task_id: &str,
    code: TaskStopCode,
    reason: &str,
) -> Result<bool, EcsError> {
    let Some(doc) = load::<TaskDoc>(ecs.store(), &scope(ctx), task_id).await? else {
        return Ok(false);
    };
    if doc.value.last_status() == TaskStatus::Stopped {
        return Ok(false);
    }
    let cluster = doc.value.cluster.clone();
    modify(ecs, ctx, &cluster, task_id, |t| {
        if t.last_status() != TaskStatus::Stopped {
            t.task.stop_code = Some(code.clone());
            t.task.stopped_reason = Some(reason.to_string());
            mark_stopped(t, None);
        }
        Ok(())
    })
    .await?;
    Ok(true)
}

/// `BerthAgentV1.SubmitHealth`: containers' health-check results. The task's
/// health follows its essential containers that have a health check: any
/// UNHEALTHY makes it UNHEALTHY, all HEALTHY make it HEALTHY, else UNKNOWN.
pub async fn submit_health(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: berth_wire::agent::SubmitHealthRequest,
) -> Result<(), EcsError> {
    let cluster = clusters::cluster_name(ctx, Some(&input.cluster))?;
    let parse = |s: &str| match s {
        "HEALTHY" => Ok(HealthStatus::Healthy),
        "UNHEALTHY" => Ok(HealthStatus::Unhealthy),
        "UNKNOWN" => Ok(HealthStatus::UnknownValue),
        other => Err(EcsError::invalid(format!(
            "Invalid health status '{other}'."
        ))),
    };
    let updates: Vec<(String, HealthStatus)> = input
        .containers
        .iter()
        .map(|c| Ok((c.container_name.clone(), parse(&c.health_status)?)))
        .collect::<Result<_, EcsError>>()?;
    modify(ecs, ctx, &cluster, &input.task, |t| {
        for c in t.task.containers.iter_mut().flatten() {
            if let Some((_, h)) = updates.iter().find(|(n, _)| Some(n) == c.name.as_ref()) {
                c.health_status = Some(h.clone());
            }
        }
        let checked: Vec<HealthStatus> = t
            .task_definition
            .container_definitions
            .iter()
            .flatten()
            .filter(|d| d.essential.unwrap_or(true) && d.health_check.is_some())
            .filter_map(|d| {
                t.task
                    .containers
                    .iter()
                    .flatten()
                    .find(|c| c.name == d.name)
            })
            .map(|c| {
                c.health_status
                    .clone()
                    .unwrap_or(HealthStatus::UnknownValue)
            })
            .collect();
        t.task.health_status = Some(if checked.contains(&HealthStatus::Unhealthy) {
            HealthStatus::Unhealthy
        } else if !checked.is_empty() && checked.iter().all(|h| *h == HealthStatus::Healthy) {
            HealthStatus::Healthy
        } else {
            HealthStatus::UnknownValue
        });
        Ok(())
    })
    .await?
    .ok_or_else(|| {
        EcsError::invalid(format!("The referenced task was not found: {}", input.task))
    })?;
    Ok(())
}
