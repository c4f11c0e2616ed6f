//! RunTask and StartTask: their requests checked and turned into a launch.

use super::super::*;
use super::{launch, prepare, LaunchSpec, Launched, PlacementRequest};
use crate::ecs::capacity_providers::strategy::Capacity;

/// The launch type a request's `launchType` or capacity provider strategy
/// (its own, else the cluster's default) means, checked: FARGATE for
/// FARGATE and FARGATE_SPOT (berth's managed capacity), EC2 for an Auto
/// Scaling group provider's instances or when nothing is given.
pub(crate) fn launch_type_of(
    input_launch: Option<&LaunchType>,
    strategy: Option<&Vec<CapacityProviderStrategyItem>>,
    cluster: &Cluster,
) -> Result<LaunchType, EcsError> {
    Ok(Capacity::resolve(input_launch, strategy, cluster)?.launch_type())
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
                    tasks.push(view(&d.value, true));
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
    let capacity = Capacity::resolve(
        input.launch_type.as_ref(),
        input.capacity_provider_strategy.as_ref(),
        &cluster,
    )?;
    let request = PlacementRequest::new(
        count as usize,
        input.placement_strategy.as_deref(),
        input.placement_constraints.as_deref(),
    )?;
    // One launch per provider of the strategy, each with its share of
    // `count` (RunTask's base and weights apply within the call, as on ECS).
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for part in capacity.split(count as u32, |_| 0) {
        let spec = LaunchSpec {
            allow_inactive: false,
            cluster: input.cluster.clone(),
            task_definition: input.task_definition.clone(),
            launch_type: part.launch_type,
            capacity_provider: part.provider.clone(),
            network: input.network_configuration.clone(),
            overrides: input.overrides.clone(),
            started_by: input.started_by.clone(),
            group: input.group.clone(),
            tags: input.tags.clone().unwrap_or_default(),
            propagate_tags: input.propagate_tags.clone(),
            enable_execute_command: input.enable_execute_command.unwrap_or(false),
            owner: None,
        };
        let l = prepare(ecs, ctx, spec).await?;
        let request = PlacementRequest {
            count: part.count as usize,
            ..request.clone()
        };
        match launch(ecs, ctx, &l, &request).await {
            Ok(Launched {
                tasks: placed,
                failures: unplaced,
                ..
            }) => {
                tasks.extend(placed);
                failures.extend(unplaced);
            }
            // An Auto Scaling group provider with no instance in the
            // cluster: its share of the tasks is not placed.
            Err(EcsError::InvalidParameter(m)) if l.instance_provider().is_some() => {
                failures.push(Failure {
                    arn: cluster.cluster_arn.clone(),
                    reason: Some(format!(
                        "{m} (capacity provider {})",
                        part.provider.unwrap_or_default()
                    )),
                    detail: None,
                });
            }
            Err(e) => return Err(e),
        }
    }
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
        tasks: Some(tasks.iter().map(|t| view(t, true)).collect()),
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
    let spec = LaunchSpec {
        allow_inactive: false,
        cluster: input.cluster.clone(),
        task_definition: input.task_definition.clone(),
        launch_type: LaunchType::Ec2,
        capacity_provider: None,
        network: input.network_configuration.clone(),
        overrides: input.overrides.clone(),
        started_by: input.started_by.clone(),
        group: input.group.clone(),
        tags: input.tags.clone().unwrap_or_default(),
        propagate_tags: input.propagate_tags.clone(),
        enable_execute_command: input.enable_execute_command.unwrap_or(false),
        owner: None,
    };
    let l = prepare(ecs, ctx, spec).await?;
    let cluster_name = l.cluster_name();
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
        let random = [PlacementStrategy {
            r#type: Some(PlacementStrategyType::Random),
            field: None,
        }];
        let mut request = PlacementRequest::new(1, Some(&random), None)?;
        request.only = Some(vec![inst.value.id.clone()]);
        let launched = launch(ecs, ctx, &l, &request).await?;
        all_tasks.extend(launched.tasks);
        failures.extend(launched.failures);
    }
    Ok(StartTaskResponse {
        tasks: Some(all_tasks.iter().map(|t| view(t, true)).collect()),
        failures: Some(failures),
    })
}
