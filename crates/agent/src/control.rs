//! How the agent reaches the control plane.

use async_trait::async_trait;
use berth_wire::agent::{
    PollWorkRequest, PollWorkResponse, SubmitHealthRequest, SubmitTaskNetworkRequest,
};
use berth_wire::ecs::{
    ContainerInstance, RegisterContainerInstanceRequest, SubmitTaskStateChangeRequest,
};

/// Why a container's log stream could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogSetupError {
    #[error("The specified log group does not exist.")]
    GroupMissing,
    #[error("{0}")]
    Other(String),
}

/// The control-plane calls the agent makes. Embedded in `berth server` it
/// calls the operations in-process; `berth agent` sends signed requests.
/// Calls about a task name it by ARN: that says which account and region
/// the task (and its logs) belong to.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    async fn register(
        &self,
        req: RegisterContainerInstanceRequest,
    ) -> anyhow::Result<ContainerInstance>;
    /// `BerthAgentV1.PollWork`: the long poll and heartbeat.
    async fn poll(&self, req: PollWorkRequest) -> anyhow::Result<PollWorkResponse>;
    /// `SubmitTaskStateChange` for a task assigned to this agent.
    async fn submit_task_state(&self, req: SubmitTaskStateChangeRequest) -> anyhow::Result<()>;
    /// `BerthAgentV1.SubmitHealth`: containers' health-check results.
    async fn submit_health(&self, req: SubmitHealthRequest) -> anyhow::Result<()>;
    /// Creates the CloudWatch Logs stream a container's `awslogs` output
    /// goes to (and its group, when `create_group`); an existing one is fine.
    async fn prepare_log_stream(
        &self,
        task_arn: &str,
        group: &str,
        stream: &str,
        create_group: bool,
    ) -> Result<(), LogSetupError>;
    /// `PutLogEvents`: `(timestamp ms, message)` in chronological order.
    async fn put_log_events(
        &self,
        task_arn: &str,
        group: &str,
        stream: &str,
        events: Vec<(i64, String)>,
    ) -> anyhow::Result<()>;
    /// `BerthAgentV1.SubmitTaskNetwork`: the address an `awsvpc` task got.
    async fn submit_task_network(&self, _req: SubmitTaskNetworkRequest) -> anyhow::Result<()> {
        anyhow::bail!("this control plane does not take task networks")
    }
    /// `BerthAgentV1.GetTaskCredentials`: temporary credentials for the
    /// role of a task assigned to this agent.
    async fn task_credentials(
        &self,
        _req: berth_wire::agent::GetTaskCredentialsRequest,
    ) -> anyhow::Result<berth_wire::agent::GetTaskCredentialsResponse> {
        anyhow::bail!("this control plane issues no task credentials")
    }
    /// Task scale-in protection of a task assigned to this agent, as the
    /// agent's `ECS_AGENT_URI` serves it to the task: GetTaskProtection, or
    /// UpdateTaskProtection with `(protectionEnabled, expiresInMinutes)`.
    async fn task_protection(
        &self,
        _cluster: &str,
        _task_arn: &str,
        _update: Option<(bool, Option<i32>)>,
    ) -> anyhow::Result<berth_wire::ecs::GetTaskProtectionResponse> {
        anyhow::bail!("this control plane does not serve task protection")
    }
    /// The values of a container's `secrets`, `(name, valueFrom)` pairs,
    /// fetched as ECS's agent does (Secrets Manager GetSecretValue, SSM
    /// GetParameters) in the task's account and region. Returns
    /// `(name, value)` pairs in the same order, or a message for
    /// `ResourceInitializationError` that never contains a secret value.
    async fn resolve_secrets(
        &self,
        _task_arn: &str,
        _secrets: &[(String, String)],
    ) -> Result<Vec<(String, String)>, String> {
        Err("this control plane cannot fetch secrets".into())
    }
}
