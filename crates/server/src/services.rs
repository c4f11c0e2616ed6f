//! The services on berth's endpoint, told apart by the `X-Amz-Target`
//! prefix, each with the SigV4 signing name its clients use.

use berth_wire::{ecs, logs, secretsmanager, ssm, ApiError, RequestContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ecs,
    Logs,
    SecretsManager,
    Ssm,
}

impl Service {
    /// Splits `Prefix.Operation` into the service and the operation name.
    pub fn from_target(target: &str) -> Option<(Service, &str)> {
        let (prefix, op) = target.split_once('.')?;
        let service = match prefix {
            ecs::TARGET_PREFIX => Service::Ecs,
            logs::TARGET_PREFIX => Service::Logs,
            secretsmanager::TARGET_PREFIX => Service::SecretsManager,
            ssm::TARGET_PREFIX => Service::Ssm,
            _ => return None,
        };
        Some((service, op))
    }

    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => ecs::SIGNING_NAME,
            Service::Logs => logs::SIGNING_NAME,
            Service::SecretsManager => secretsmanager::SIGNING_NAME,
            Service::Ssm => ssm::SIGNING_NAME,
        }
    }
}

/// Services whose operations berth routes but does not implement yet: every
/// call answers the service's modeled "not implemented" error.
pub struct NotYetImplemented;

impl logs::LogsApi for NotYetImplemented {}
impl secretsmanager::SecretsManagerApi for NotYetImplemented {}
impl ssm::SsmApi for NotYetImplemented {}

pub fn unknown_operation(target: &str) -> ApiError {
    ApiError::client(
        "UnknownOperationException",
        format!("Unknown operation {target}"),
    )
}

pub async fn call(
    ecs_impl: &berth_api::Ecs,
    service: Service,
    op: &str,
    target: &str,
    ctx: &RequestContext,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let unknown = || unknown_operation(target);
    match service {
        Service::Ecs => {
            let op = ecs::Operation::from_name(op).ok_or_else(unknown)?;
            ecs::dispatch(ecs_impl, ctx, op, body).await
        }
        Service::Logs => {
            let op = logs::Operation::from_name(op).ok_or_else(unknown)?;
            logs::dispatch(&NotYetImplemented, ctx, op, body).await
        }
        Service::SecretsManager => {
            let op = secretsmanager::Operation::from_name(op).ok_or_else(unknown)?;
            secretsmanager::dispatch(&NotYetImplemented, ctx, op, body).await
        }
        Service::Ssm => {
            let op = ssm::Operation::from_name(op).ok_or_else(unknown)?;
            ssm::dispatch(&NotYetImplemented, ctx, op, body).await
        }
    }
}
