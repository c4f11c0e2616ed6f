//! berth's admin channel: operations an account runs on its own resources
//! that no AWS API has, on the same endpoint and SigV4 auth as ECS
//! (`X-Amz-Target: BerthAdminV1.<Op>`, signing name `ecs`). Written by hand.
//!
//! `InjectSpotInterruption` interrupts one of the caller's FARGATE_SPOT
//! tasks as Fargate reclaiming its capacity would (AWS FIS's
//! `aws:ecs:...` actions play this part on AWS, within an account too).

use crate::ecs::Task;
use serde::{Deserialize, Serialize};

pub const TARGET_PREFIX: &str = "BerthAdminV1";
pub const SIGNING_NAME: &str = "ecs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    InjectSpotInterruption,
}

impl Operation {
    pub fn from_name(name: &str) -> Option<Operation> {
        match name {
            "InjectSpotInterruption" => Some(Operation::InjectSpotInterruption),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InjectSpotInterruptionRequest {
    /// Name or ARN; absent means `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The task's ARN or ID.
    pub task: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InjectSpotInterruptionResponse {
    /// The task as DescribeTasks shows it, its stop requested.
    pub task: Task,
}
