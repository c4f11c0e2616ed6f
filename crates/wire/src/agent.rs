//! berth's agent channel: what an agent asks the control plane for, on the
//! same endpoint and SigV4 auth as ECS (`X-Amz-Target: BerthAgentV1.<Op>`,
//! signing name `ecs`). Not part of any AWS model, so written by hand.
//!
//! ECS's own agent learns its work over a websocket found through
//! DiscoverPollEndpoint. berth uses a long poll instead: `PollWork` returns
//! at once when the instance's assignments changed since `knownVersion`,
//! otherwise after `waitSeconds`; every poll is also the heartbeat that
//! keeps `agentConnected` true. State goes back through ECS's own
//! SubmitTaskStateChange and SubmitContainerStateChange; container health,
//! which those shapes cannot carry, through `SubmitHealth`.

use crate::ecs::{Task, TaskDefinition};
use serde::{Deserialize, Serialize};

pub const TARGET_PREFIX: &str = "BerthAgentV1";
pub const SIGNING_NAME: &str = "ecs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    PollWork,
    SubmitHealth,
    SubmitTaskNetwork,
    GetTaskCredentials,
}

impl Operation {
    pub fn from_name(name: &str) -> Option<Operation> {
        match name {
            "PollWork" => Some(Operation::PollWork),
            "SubmitHealth" => Some(Operation::SubmitHealth),
            "SubmitTaskNetwork" => Some(Operation::SubmitTaskNetwork),
            "GetTaskCredentials" => Some(Operation::GetTaskCredentials),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollWorkRequest {
    pub cluster: String,
    #[serde(rename = "containerInstanceArn")]
    pub container_instance_arn: String,
    /// The `version` of the last answer this agent acted on (0 at start).
    #[serde(rename = "knownVersion", default)]
    pub known_version: u64,
    /// How long to hold the request when nothing changed (capped by the server).
    #[serde(rename = "waitSeconds", default)]
    pub wait_seconds: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollWorkResponse {
    /// Grows whenever the instance's assignments change.
    pub version: u64,
    /// Every task assigned to the instance that is not STOPPED yet, with
    /// its desired status; the agent converges on exactly this set.
    pub tasks: Vec<AssignedTask>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssignedTask {
    /// The task as DescribeTasks shows it (ARN, desiredStatus, overrides, …).
    pub task: Task,
    /// The revision the task runs, as it was when the task was created.
    #[serde(rename = "taskDefinition")]
    pub task_definition: TaskDefinition,
}

/// Containers' health-check results, as the agent last saw them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubmitHealthRequest {
    pub cluster: String,
    pub task: String,
    pub containers: Vec<ContainerHealth>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerHealth {
    #[serde(rename = "containerName")]
    pub container_name: String,
    /// `HEALTHY`, `UNHEALTHY` or `UNKNOWN`.
    #[serde(rename = "healthStatus")]
    pub health_status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubmitHealthResponse {}

/// The network an `awsvpc` task really got on its host: what its
/// ElasticNetworkInterface attachment's details show. ECS learns this when
/// it creates the ENI; on berth the agent creates the namespace, so it
/// reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubmitTaskNetworkRequest {
    pub cluster: String,
    pub task: String,
    #[serde(rename = "privateIPv4Address", skip_serializing_if = "Option::is_none")]
    pub private_ipv4_address: Option<String>,
    #[serde(rename = "macAddress", skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// A task state change to apply in the same write (the agent reports
    /// ACTIVATING with the namespace it just made: one durable write, not two).
    #[serde(rename = "taskState", default, skip_serializing_if = "Option::is_none")]
    pub task_state: Option<crate::ecs::SubmitTaskStateChangeRequest>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SubmitTaskNetworkResponse {}

/// Temporary credentials for a task's `taskRoleArn`, asked for by the agent
/// the task is assigned to (ECS's agent gets them pushed over its ACS
/// session) and served to the task's containers by that agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetTaskCredentialsRequest {
    pub cluster: String,
    #[serde(rename = "containerInstanceArn")]
    pub container_instance_arn: String,
    pub task: String,
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GetTaskCredentialsResponse {
    #[serde(rename = "roleArn")]
    pub role_arn: String,
    #[serde(rename = "accessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "secretAccessKey")]
    pub secret_access_key: String,
    #[serde(rename = "sessionToken")]
    pub session_token: String,
    /// Seconds since the epoch.
    pub expiration: i64,
}

/// Never prints the secret or the token.
impl std::fmt::Debug for GetTaskCredentialsResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetTaskCredentialsResponse")
            .field("role_arn", &self.role_arn)
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}
