//! Task scale-in protection: UpdateTaskProtection and GetTaskProtection.
//! A protected task is never chosen when its service scales in or
//! replaces tasks in a deployment, until the protection expires (120
//! minutes by default, at most 2,880). Only a service's tasks can be
//! protected, as on ECS (others fail with TASK_NOT_VALID).

use super::*;
use berth_core::service::protection::{DEFAULT_MINUTES, MAX_MINUTES};

fn failure(
    ctx: &RequestContext,
    cluster: &str,
    reference: &str,
    reason: &str,
    detail: Option<&str>,
) -> Failure {
    Failure {
        arn: Some(if arn::looks_like_arn(reference) {
            reference.to_string()
        } else {
            arn::task(&ctx.region, &ctx.account_id, cluster, reference)
        }),
        reason: Some(reason.into()),
        detail: detail.map(str::to_string),
    }
}

/// A task's protection as ECS shows it: no `expirationDate` unless on.
fn shown(t: &TaskDoc, now: Timestamp) -> ProtectedTask {
    let until = t
        .protected_until
        .filter(|u| u.as_millis() > now.as_millis());
    ProtectedTask {
        task_arn: Some(t.arn().to_string()),
        protection_enabled: Some(until.is_some()),
        expiration_date: until,
    }
}

pub async fn update(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UpdateTaskProtectionRequest,
) -> Result<UpdateTaskProtectionResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, Some(&input.cluster))
        .await?
        .value
        .id();
    if input.tasks.is_empty() || input.tasks.len() > 10 {
        return Err(EcsError::invalid("tasks must have between 1 and 10 items."));
    }
    let minutes = input.expires_in_minutes.unwrap_or(DEFAULT_MINUTES);
    if input.protection_enabled && !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(EcsError::invalid(format!(
            "expiresInMinutes must be between 1 and {MAX_MINUTES}."
        )));
    }
    let mut protected = Vec::new();
    let mut failures = Vec::new();
    for r in &input.tasks {
        let Some(found) = find(ecs, ctx, &cluster, r).await? else {
            failures.push(failure(ctx, &cluster, r, "MISSING", None));
            continue;
        };
        if found.value.service.is_none() {
            failures.push(failure(
                ctx,
                &cluster,
                r,
                "TASK_NOT_VALID",
                Some("Task protection is only supported for tasks that belong to a service."),
            ));
            continue;
        }
        if found.value.last_status() == TaskStatus::Stopped {
            failures.push(failure(
                ctx,
                &cluster,
                r,
                "TASK_NOT_VALID",
                Some("The task has stopped."),
            ));
            continue;
        }
        let now = ecs.now();
        let until = input
            .protection_enabled
            .then(|| Timestamp::from_millis(now.as_millis() + i64::from(minutes) * 60_000));
        let changed = modify(ecs, ctx, &cluster, r, |t| {
            t.protected_until = until;
            Ok(())
        })
        .await?;
        if let Some(t) = changed {
            protected.push(shown(&t, now));
        }
    }
    Ok(UpdateTaskProtectionResponse {
        protected_tasks: Some(protected),
        failures: Some(failures),
    })
}

pub async fn get(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: GetTaskProtectionRequest,
) -> Result<GetTaskProtectionResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, Some(&input.cluster))
        .await?
        .value
        .id();
    let now = ecs.now();
    let mut protected = Vec::new();
    let mut failures = Vec::new();
    match &input.tasks {
        Some(list) => {
            if list.len() > 100 {
                return Err(EcsError::invalid("tasks can have at most 100 items."));
            }
            for r in list {
                match find(ecs, ctx, &cluster, r).await? {
                    Some(t) if t.value.service.is_some() => protected.push(shown(&t.value, now)),
                    Some(_) => failures.push(failure(
                        ctx,
                        &cluster,
                        r,
                        "TASK_NOT_VALID",
                        Some(
                            "Task protection is only supported for tasks that belong to a service.",
                        ),
                    )),
                    None => failures.push(failure(ctx, &cluster, r, "MISSING", None)),
                }
            }
        }
        None => {
            for t in active_in_cluster(ecs, ctx, &cluster).await? {
                if t.service.is_some() {
                    protected.push(shown(&t, now));
                }
            }
        }
    }
    Ok(GetTaskProtectionResponse {
        protected_tasks: Some(protected),
        failures: Some(failures),
    })
}
