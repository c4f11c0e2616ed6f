//! RunTask and StartTask: resolve, place, record.

use super::lifecycle;
use super::*;
use berth_core::task::{ContainerStatus, DesiredStatus};

/// Whether awsvpc tasks on this instance use the host's network: on the
/// process runtime they do (no namespaces); Docker gives each its own.
fn awsvpc_shares_host(d: &InstanceDoc) -> bool {
    !d.instance
        .attributes
        .iter()
        .flatten()
        .any(|a| a.name == "berth.runtime" && a.value.as_deref() == Some("docker"))
}

/// The instances tasks can be placed on, as the scheduler sees them.
fn snapshot(
    ecs: &Ecs,
    instances: &[InstanceDoc],
    reservations: &[(String, Demand)],
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
    demand: Demand,
    /// For awsvpc: the subnet its network interface goes in (the first of
    /// the request's, as ECS takes it).
    subnet: Option<String>,
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
    propagate_tags: Option<&'a PropagateTags>,
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
        propagate_tags,
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
    let awsvpc = network.and_then(|n| n.awsvpc_configuration.as_ref());
    let subnet = if td.network_mode == Some(NetworkMode::Awsvpc) {
        let Some(vpc) = awsvpc else {
            return Err(EcsError::invalid(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ));
        };
        let Some(first) = vpc.subnets.first() else {
            return Err(EcsError::invalid("subnets can not be empty."));
        };
        Some(first.clone())
    } else {
        None
    };
    rules::validate_overrides(&td, overrides.as_ref())?;
    if started_by.as_ref().is_some_and(|s| s.len() > 128) {
        return Err(EcsError::invalid(
            "startedBy can be at most 128 characters.",
        ));
    }
    // propagateTags TASK_DEFINITION starts from the revision's tags; the
    // request's own tags win on the same key. SERVICE only means something
    // for a service's tasks, and ECS refuses it for RunTask.
    let mut tags = match propagate_tags {
        Some(PropagateTags::TaskDefinition) => doc.tags.clone(),
        Some(PropagateTags::Service) => {
            return Err(EcsError::invalid(
                "propagateTags SERVICE is only valid for tasks started by a service.",
            ))
        }
        Some(PropagateTags::Unknown(v)) => {
            return Err(EcsError::invalid(format!("Invalid propagateTags '{v}'.")))
        }
        _ => Vec::new(),
    };
    tags::merge(&mut tags, input_tags.map(Vec::as_slice).unwrap_or_default())?;
    let demand = rules::demand(&td, overrides.as_ref());
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
        demand,
        subnet,
    })
}

fn new_task(
    ctx: &RequestContext,
    l: &Launch,
    instance: Option<&InstanceDoc>,
    now: Timestamp,
) -> TaskDoc {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let cluster_name = l.cluster.cluster_name.clone().unwrap_or_default();
    let task_arn = arn::task(&ctx.region, &ctx.account_id, &cluster_name, &id);
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
                    last_status: Some(ContainerStatus::Pending.as_str().into()),
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
        desired_status: Some(DesiredStatus::Running.as_str().into()),
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
        cpu: Some(l.demand.cpu.to_string()),
        memory: Some(l.demand.memory.to_string()),
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
        attachments: Some(
            l.subnet
                .as_deref()
                .map(lifecycle::precreated_eni)
                .into_iter()
                .collect(),
        ),
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
        reserved: l
            .demand
            .reservation_on(instance.is_none_or(awsvpc_shares_host)),
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
    let (tasks, failures, used) = retry(ecs.store(), async || {
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
        let reservations: Vec<(String, Demand)> =
            records::list::<AssignmentDoc>(ecs.store(), &inst_scope, &aq)
                .await?
                .into_iter()
                .map(|a| (a.value.instance_id, a.value.reserved))
                .collect();
        let docs: Vec<InstanceDoc> = usable.iter().map(|d| d.value.clone()).collect();
        let pool = snapshot(ecs, &docs, &reservations);
        let plan = scheduler::place(
            &pool,
            &scheduler::Request {
                demand: l.demand.clone(),
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
                    let mut t = new_task(ctx, l, Some(&inst.value), ecs.now());
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
                    reserved: t.reserved.clone(),
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
        let value = (tasks, failures, used.into_keys().collect::<Vec<_>>());
        let mut w = guards;
        w.extend(assignments);
        Ok(if managed {
            // Assignments first: an assignment whose task never appears is
            // dropped by the agent; a task without assignment would hang.
            Attempt::CommitInOrder {
                batches: vec![(inst_scope.clone(), w), (scope(ctx), task_writes)],
                value,
            }
        } else {
            w.extend(task_writes);
            Attempt::Commit {
                scope: scope(ctx),
                writes: w,
                value,
            }
        })
    })
    .await?;
    for id in &used {
        ecs.work.bump(id);
    }
    Ok((tasks, failures))
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
            propagate_tags: input.propagate_tags.as_ref(),
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
                doc: records::to_doc(&doc, 0),
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
            propagate_tags: input.propagate_tags.as_ref(),
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
