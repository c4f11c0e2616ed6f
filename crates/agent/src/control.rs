//! How the agent reaches the control plane.

use async_trait::async_trait;
use berth_wire::agent::{PollWorkRequest, PollWorkResponse};
use berth_wire::ecs::{
    ContainerInstance, RegisterContainerInstanceRequest, SubmitTaskStateChangeRequest,
};

/// The control-plane calls the agent makes. Embedded in `berth server` it
/// calls the operations in-process; `berth agent` sends signed requests.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    async fn register(
        &self,
        req: RegisterContainerInstanceRequest,
    ) -> anyhow::Result<ContainerInstance>;
    /// `BerthAgentV1.PollWork`: the long poll and heartbeat.
    async fn poll(&self, req: PollWorkRequest) -> anyhow::Result<PollWorkResponse>;
    /// `SubmitTaskStateChange` for a task assigned to this agent (its ARN
    /// names the account and region it belongs to).
    async fn submit_task_state(&self, req: SubmitTaskStateChangeRequest) -> anyhow::Result<()>;
}
