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
    /// Scale-in left tasks running because they are protected.
    ScaleInBlocked {
        protected: u32,
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
            Event::ScaleInBlocked { protected } => format!(
                "(service {service}) was unable to scale in due to (reason: {protected} tasks under protection)."
            ),
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
    pub fn rolling_back(from: &str) -> String {
        format!("ECS deployment circuit breaker: rolling back to the last completed deployment after {from} failed.")
    }
}
