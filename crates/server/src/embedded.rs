//! The agent embedded in `berth server`: berth's managed capacity, on which
//! FARGATE tasks run (they never show as container instances, as on ECS).
//! It is the same agent as `berth agent`; only its control plane is the
//! in-process API instead of signed HTTP requests.

use async_trait::async_trait;
use berth_agent::secret_ref::{
    self, FetchedParameter, FetchedParameters, SecretStores, SecretsManagerRef,
};
use berth_agent::{Agent, AgentConfig, ControlPlane, LogSetupError};
use berth_api::{Ecs, Logs, ParameterStore, SecretsManager};
use berth_core::arn::Arn;
use berth_wire::agent::{PollWorkRequest, PollWorkResponse, SubmitHealthRequest};
use berth_wire::ecs::{
    ContainerInstance, EcsApi, RegisterContainerInstanceRequest, SubmitTaskStateChangeRequest,
};
use berth_wire::logs::{
    CreateLogGroupRequest, CreateLogStreamRequest, InputLogEvent, LogsApi, PutLogEventsRequest,
};
use berth_wire::secretsmanager::{GetSecretValueRequest, SecretsManagerApi};
use berth_wire::ssm::{GetParametersRequest, SsmApi};
use berth_wire::RequestContext;
use std::sync::Arc;

struct InProcess {
    ecs: Ecs,
    logs: Logs,
    secrets: SecretsManager,
    ssm: ParameterStore,
}

/// Secrets of a managed task: fetched in the task's account, in the region
/// the reference names.
struct TaskSecrets<'a> {
    plane: &'a InProcess,
    account: String,
}

impl TaskSecrets<'_> {
    fn context(&self, region: &str) -> RequestContext {
        RequestContext::for_account(&self.account, region)
    }
}

#[async_trait]
impl SecretStores for TaskSecrets<'_> {
    async fn secret_string(&self, r: &SecretsManagerRef) -> Result<Option<String>, String> {
        let req = GetSecretValueRequest {
            secret_id: r.secret_id.clone(),
            version_id: r.version_id.clone(),
            version_stage: r.version_stage.clone(),
        };
        let out = self
            .plane
            .secrets
            .get_secret_value(&self.context(&r.region), req)
            .await
            .map_err(|e| format!("{}: {}", e.code, e.message))?;
        Ok(out.secret_string)
    }

    async fn parameters(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<FetchedParameters, String> {
        let req = GetParametersRequest {
            names: names.to_vec(),
            with_decryption: Some(true),
        };
        let out = self
            .plane
            .ssm
            .get_parameters(&self.context(region), req)
            .await
            .map_err(|e| format!("{}: {}", e.code, e.message))?;
        Ok(FetchedParameters {
            parameters: out
                .parameters
                .unwrap_or_default()
                .into_iter()
                .map(|p| FetchedParameter {
                    name: p.name.unwrap_or_default(),
                    arn: p.arn,
                    selector: p.selector,
                    value: p.value.unwrap_or_default(),
                })
                .collect(),
            invalid: out.invalid_parameters.unwrap_or_default(),
        })
    }
}

/// The context of the account and region a task ARN names.
fn task_context(task_arn: &str) -> anyhow::Result<RequestContext> {
    let arn =
        Arn::parse(task_arn).ok_or_else(|| anyhow::anyhow!("'{task_arn}' is not a task ARN"))?;
    Ok(RequestContext::for_account(&arn.account, &arn.region))
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
        let ctx = task_context(req.task.as_deref().unwrap_or_default())?;
        self.ecs.submit_task_state_change(&ctx, req).await?;
        Ok(())
    }

    async fn submit_health(&self, req: SubmitHealthRequest) -> anyhow::Result<()> {
        let ctx = task_context(&req.task)?;
        self.ecs.submit_health(&ctx, req).await?;
        Ok(())
    }

    async fn submit_task_network(
        &self,
        req: berth_wire::agent::SubmitTaskNetworkRequest,
    ) -> anyhow::Result<()> {
        let ctx = task_context(&req.task)?;
        self.ecs.submit_task_network(&ctx, req).await?;
        Ok(())
    }

    /// Logs of managed tasks go to the task's own account and region.
    async fn prepare_log_stream(
        &self,
        task_arn: &str,
        group: &str,
        stream: &str,
        create_group: bool,
    ) -> Result<(), LogSetupError> {
        let ctx = task_context(task_arn).map_err(|e| LogSetupError::Other(e.to_string()))?;
        let exists = |e: &berth_wire::ApiError| e.code == "ResourceAlreadyExistsException";
        if create_group {
            let req = CreateLogGroupRequest {
                log_group_name: group.into(),
                ..Default::default()
            };
            if let Err(e) = self.logs.create_log_group(&ctx, req).await {
                if !exists(&e) {
                    return Err(LogSetupError::Other(e.to_string()));
                }
            }
        }
        let req = CreateLogStreamRequest {
            log_group_name: group.into(),
            log_stream_name: stream.into(),
        };
        match self.logs.create_log_stream(&ctx, req).await {
            Ok(()) => Ok(()),
            Err(e) if exists(&e) => Ok(()),
            Err(e) if e.code == "ResourceNotFoundException" => Err(LogSetupError::GroupMissing),
            Err(e) => Err(LogSetupError::Other(e.to_string())),
        }
    }

    async fn put_log_events(
        &self,
        task_arn: &str,
        group: &str,
        stream: &str,
        events: Vec<(i64, String)>,
    ) -> anyhow::Result<()> {
        let ctx = task_context(task_arn)?;
        let req = PutLogEventsRequest {
            log_group_name: group.into(),
            log_stream_name: stream.into(),
            log_events: events
                .into_iter()
                .map(|(timestamp, message)| InputLogEvent { timestamp, message })
                .collect(),
            ..Default::default()
        };
        self.logs.put_log_events(&ctx, req).await?;
        Ok(())
    }

    /// In the task's own account and region.
    async fn task_protection(
        &self,
        cluster: &str,
        task_arn: &str,
        update: Option<(bool, Option<i32>)>,
    ) -> anyhow::Result<berth_wire::ecs::GetTaskProtectionResponse> {
        let ctx = task_context(task_arn)?;
        Ok(match update {
            None => {
                let req = berth_wire::ecs::GetTaskProtectionRequest {
                    cluster: cluster.to_string(),
                    tasks: Some(vec![task_arn.to_string()]),
                };
                self.ecs.get_task_protection(&ctx, req).await?
            }
            Some((enabled, minutes)) => {
                let req = berth_wire::ecs::UpdateTaskProtectionRequest {
                    cluster: cluster.to_string(),
                    tasks: vec![task_arn.to_string()],
                    protection_enabled: enabled,
                    expires_in_minutes: minutes,
                };
                let out = self.ecs.update_task_protection(&ctx, req).await?;
                berth_wire::ecs::GetTaskProtectionResponse {
                    protected_tasks: out.protected_tasks,
                    failures: out.failures,
                }
            }
        })
    }

    /// Managed tasks' credentials: for tasks assigned to the managed instance.
    async fn task_credentials(
        &self,
        req: berth_wire::agent::GetTaskCredentialsRequest,
    ) -> anyhow::Result<berth_wire::agent::GetTaskCredentialsResponse> {
        let scope = berth_store::Scope::new(
            &Ecs::managed_context().account_id,
            &Ecs::managed_context().region,
        );
        Ok(self
            .ecs
            .task_credentials(&scope, &req.container_instance_arn, &req.task)
            .await
            .map_err(berth_wire::ApiError::from)?)
    }

    async fn resolve_secrets(
        &self,
        task_arn: &str,
        secrets: &[(String, String)],
    ) -> Result<Vec<(String, String)>, String> {
        let task = Arn::parse(task_arn).ok_or_else(|| format!("'{task_arn}' is not a task ARN"))?;
        let stores = TaskSecrets {
            plane: self,
            account: task.account,
        };
        secret_ref::resolve(&stores, task_arn, secrets).await
    }
}

/// Registers the managed capacity and runs its agent in the background.
pub async fn start(
    ecs: Ecs,
    logs: Logs,
    secrets: SecretsManager,
    ssm: ParameterStore,
    agent: &crate::config::EmbeddedAgent,
    task_endpoint: &str,
) -> anyhow::Result<String> {
    ecs.ensure_managed_cluster().await?;
    let control = Arc::new(InProcess {
        ecs,
        logs,
        secrets,
        ssm,
    });
    let mut config =
        AgentConfig::for_host(berth_api::ecs::MANAGED_CLUSTER, agent.state_dir.clone());
    config.cleanup_wait = agent.cleanup_wait;
    // Tasks reach the control plane where it listens (from a task's own
    // network namespace, a loopback address through the agent's proxy).
    config.task_endpoint = Some(task_endpoint.to_string());
    // Tasks of every account share this host: whatever a stored task
    // definition says, none gets a way into it (the control plane refuses
    // such FARGATE definitions and launches too).
    config.sandbox = true;
    config
        .attributes
        .insert("berth.managed".into(), Some("true".into()));
    // Managed capacity serves every region; its zone says so.
    config
        .attributes
        .insert("ecs.availability-zone".into(), Some("berth-managed".into()));
    let agent = Arc::new(Agent::register(control, agent.runtime.clone(), config).await?);
    let arn = agent.instance_arn().to_string();
    tokio::spawn(agent.run());
    Ok(arn)
}
