//! Why a task stopped: ECS's stop code and `stoppedReason` for each kind of
//! stop berth decides or is told about.

pub use berth_wire::ecs::TaskStopCode;
use std::time::Duration;

/// ECS's `stoppedReason` texts.
pub mod reason {
    pub const ESSENTIAL_CONTAINER_EXITED: &str = "Essential container in task exited";
    pub const USER_INITIATED: &str = "Task stopped by user";
    /// Fargate taking a FARGATE_SPOT task's capacity back.
    pub const SPOT_INTERRUPTION: &str = "Your Spot Task was interrupted.";
    /// The service scheduler replacing a task whose essential container
    /// failed its health check.
    pub const FAILED_HEALTH_CHECKS: &str = "Task failed container health checks";

    /// The service scheduler stopping a task to scale its deployment down:
    /// `deployment_id` is the deployment's ID, with or without its
    /// `ecs-svc/` prefix.
    pub fn scaling_activity(deployment_id: &str) -> String {
        let id = deployment_id
            .strip_prefix(super::SERVICE_PREFIX)
            .unwrap_or(deployment_id);
        format!(
            "Scaling activity initiated by (deployment {}{id})",
            super::SERVICE_PREFIX
        )
    }
}

/// What a service's tasks carry in `startedBy` before their deployment ID.
const SERVICE_PREFIX: &str = "ecs-svc/";

/// The `startedBy` of a task a service's deployment starts:
/// `ecs-svc/<deployment id>` (the ID with or without that prefix).
pub fn started_by_deployment(deployment_id: &str) -> String {
    let id = deployment_id
        .strip_prefix(SERVICE_PREFIX)
        .unwrap_or(deployment_id);
    format!("{SERVICE_PREFIX}{id}")
}

/// A stop: its code and reason, as DescribeTasks shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub code: TaskStopCode,
    pub reason: String,
}

impl Stop {
    /// StopTask, with the caller's reason or ECS's default one.
    pub fn by_user(reason: Option<String>) -> Stop {
        Stop {
            code: TaskStopCode::UserInitiated,
            reason: reason.unwrap_or_else(|| reason::USER_INITIATED.to_string()),
        }
    }

    /// A FARGATE_SPOT task interrupted: its containers get SIGTERM at
    /// once and their stopTimeout (at most two minutes) to exit.
    pub fn spot_interruption() -> Stop {
        Stop {
            code: TaskStopCode::SpotInterruption,
            reason: reason::SPOT_INTERRUPTION.to_string(),
        }
    }

    /// The service scheduler scaling a deployment down.
    pub fn scaling(deployment_id: &str) -> Stop {
        Stop {
            code: TaskStopCode::ServiceSchedulerInitiated,
            reason: reason::scaling_activity(deployment_id),
        }
    }

    /// The service scheduler replacing an unhealthy task.
    pub fn failed_health_checks() -> Stop {
        Stop {
            code: TaskStopCode::ServiceSchedulerInitiated,
            reason: reason::FAILED_HEALTH_CHECKS.to_string(),
        }
    }

    /// The control plane giving up on an instance whose agent went silent.
    pub fn agent_lost(instance_arn: &str, silent_for: Duration) -> Stop {
        Stop {
            code: TaskStopCode::TerminationNotice,
            reason: format!(
                "The agent of container instance {instance_arn} has not been heard from for {} s; its tasks are stopped.",
                silent_for.as_secs()
            ),
        }
    }

    /// A stop the agent reports, from the reason it gives: a task that
    /// never got going failed to start; otherwise an essential container
    /// ended it.
    pub fn reported_by_agent(reason: Option<&str>) -> Stop {
        const FAILED_TO_START: [&str; 4] = [
            "CannotPullContainerError",
            "CannotStartContainerError",
            "ResourceInitializationError",
            "TaskFailedToStart",
        ];
        match reason {
            Some(r) if FAILED_TO_START.iter().any(|p| r.starts_with(p)) => Stop {
                code: TaskStopCode::TaskFailedToStart,
                reason: r.to_string(),
            },
            Some(r) if !r.is_empty() => Stop {
                code: TaskStopCode::EssentialContainerExited,
                reason: r.to_string(),
            },
            _ => Stop {
                code: TaskStopCode::EssentialContainerExited,
                reason: reason::ESSENTIAL_CONTAINER_EXITED.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agents_reason_names_the_stop_code() {
        let s = Stop::reported_by_agent(Some("CannotPullContainerError: no such image"));
        assert_eq!(s.code, TaskStopCode::TaskFailedToStart);
        assert_eq!(s.reason, "CannotPullContainerError: no such image");
        let s = Stop::reported_by_agent(Some("OutOfMemoryError"));
        assert_eq!(s.code, TaskStopCode::EssentialContainerExited);
        for none in [None, Some("")] {
            let s = Stop::reported_by_agent(none);
            assert_eq!(s.code, TaskStopCode::EssentialContainerExited);
            assert_eq!(s.reason, "Essential container in task exited");
        }
        assert_eq!(Stop::by_user(None).reason, "Task stopped by user");
    }

    #[test]
    fn service_stops_use_ecs_texts() {
        let want = "Scaling activity initiated by (deployment ecs-svc/123)";
        assert_eq!(Stop::scaling("123").reason, want);
        assert_eq!(Stop::scaling("ecs-svc/123").reason, want);
        assert_eq!(
            Stop::scaling("123").code,
            TaskStopCode::ServiceSchedulerInitiated
        );
        assert_eq!(
            Stop::failed_health_checks().reason,
            "Task failed container health checks"
        );
        assert_eq!(started_by_deployment("123"), "ecs-svc/123");
        assert_eq!(started_by_deployment("ecs-svc/123"), "ecs-svc/123");
    }
}
