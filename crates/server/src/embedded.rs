//! The agent embedded in `berth server`: berth's managed capacity, on which
//! FARGATE tasks run (they never show as container instances, as on ECS).
//! It is the same agent as `berth agent`; only its control plane is the
//! in-process API instead of signed HTTP requests.

use async_trait::async_trait;
use berth_agent::{Agent, AgentConfig, ControlPlane};
use berth_api::Ecs;
use berth_core::arn::Arn;
use berth_runtime::Runtime;
use berth_wire::agent::{PollWorkRequest, PollWorkResponse};
use berth_wire::ecs::{
    ContainerInstance, EcsApi, RegisterContainerInstanceRequest, SubmitTaskStateChangeRequest,
};
use berth_wire::RequestContext;
use std::path::PathBuf;
use std::sync::Arc;

struct InProcess {
    ecs: Ecs,
}

#[async_trait]
impl ControlPlane for InProcess {
    async fn register(
        &self,
        req: RegisterContainerInstanceRequest,
    ) -> anyhow::Result<ContainerInstance> {
        let r = self
            .ecs
            .register_container_instance(&Ecs::managed_context(), req)
            .await?;
        r.container_instance
            .ok_or_else(|| anyhow::anyhow!("registration returned no instance"))
    }

    async fn poll(&self, req: PollWorkRequest) -> anyhow::Result<PollWorkResponse> {
        Ok(self.ecs.poll_work(&Ecs::managed_context(), req).await?)
    }

    /// Managed capacity runs tasks of every account: a report is applied in
    /// the account and region its task ARN names.
    async fn submit_task_state(&self, req: SubmitTaskStateChangeRequest) -> anyhow::Result<()> {
        let arn = req
            .task
            .as_deref()
            .and_then(Arn::parse)
            .ok_or_else(|| anyhow::anyhow!("report without a task ARN"))?;
        let ctx = RequestContext::for_account(&arn.account, &arn.region);
        self.ecs.submit_task_state_change(&ctx, req).await?;
        Ok(())
    }
}

/// Registers the managed capacity and runs its agent in the background.
pub async fn start(
    ecs: Ecs,
    runtime: Arc<dyn Runtime>,
    state_dir: PathBuf,
) -> anyhow::Result<String> {
    ecs.ensure_managed_cluster().await?;
    let control = Arc::new(InProcess { ecs });
    let mut config = AgentConfig::for_host(berth_api::ecs::MANAGED_CLUSTER, state_dir);
    config
        .attributes
        .insert("berth.managed".into(), Some("true".into()));
    let agent = Arc::new(Agent::register(control, runtime, config).await?);
    let arn = agent.instance_arn().to_string();
    tokio::spawn(agent.run());
    Ok(arn)
}
