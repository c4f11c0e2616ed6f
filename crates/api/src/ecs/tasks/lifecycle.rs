//! How tasks move: StopTask, the agent's state and health reports, and
//! stops decided without an agent.

use super::*;

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

/// Records the address an awsvpc task's namespace got in its
/// ElasticNetworkInterface attachment.
pub async fn submit_task_network(
    _ecs: &Ecs,
    _ctx: &RequestContext,
    _input: berth_wire::agent::SubmitTaskNetworkRequest,
) -> Result<(), EcsError> {
    Ok(()) // TODO(awsvpc helper): fill the attachment's details
}
