//! Service events the reconciler decides, and ECS's texts for them.

/// Something a service's `events` should say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    SteadyState,
    DeploymentCompleted {
        deployment: String,
    },
    DeploymentFailed {
        deployment: String,
    },
    RollingBack {
        to: String,
    },
    /// The throttle holds back launches.
    UnableToStartConsistently,
    /// Scale-in left tasks of `deployment` running because they are protected.
    ScaleInBlocked {
        deployment: String,
    },
    /// A task failed its health checks and is replaced.
    TaskUnhealthy {
        task: String,
    },
}

impl Event {
    /// The message as ECS writes it.
    pub fn text(&self, service: &str) -> String {
        match self {
            Event::SteadyState => format!("(service {service}) has reached a steady state."),
            Event::DeploymentCompleted { deployment } => {
                format!("(service {service}) (deployment {deployment}) deployment completed.")
            }
            Event::DeploymentFailed { deployment } => format!(
                "(service {service}) (deployment {deployment}) deployment failed: tasks failed to start."
            ),
            Event::RollingBack { to } => {
                format!("(service {service}) rolling back to deployment {to}.")
            }
            Event::UnableToStartConsistently => {
                format!("(service {service}) is unable to consistently start tasks successfully.")
            }
            Event::ScaleInBlocked { deployment } => format!(
                "(service {service}) was unable to reach steady state because task set ({deployment}) was unable to scale in. Reason: The number of protected tasks are more than the desired count of tasks."
            ),
            Event::TaskUnhealthy { task } => {
                format!("(service {service}) (task {task}) failed container health checks.")
            }
        }
    }
}

/// `rolloutStateReason` texts.
pub mod reason {
    pub fn in_progress(id: &str) -> String {
        format!("ECS deployment {id} in progress.")
    }
    pub fn completed(id: &str) -> String {
        format!("ECS deployment {id} completed.")
    }
    pub const FAILED: &str = "ECS deployment circuit breaker: tasks failed to start.";
    pub fn rolling_back(to: &str) -> String {
        format!("ECS deployment circuit breaker: rolling back to deploymentId {to}.")
    }
}
