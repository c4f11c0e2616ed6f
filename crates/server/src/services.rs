//! The services on berth's endpoint, told apart by the `X-Amz-Target`
//! prefix, each with the SigV4 signing name its clients use; and the
//! form-protocol services (EC2, STS), told apart by the credential scope
//! and routed by the form's `Action`.

use crate::protocol::QueryService;
use berth_wire::{
    admin, agent, ecs, events, logs, secretsmanager, sqs, ssm, ApiError, RequestContext,
};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ecs,
    /// berth's own agent channel (`BerthAgentV1`).
    Agent,
    /// berth's own admin operations on an account's resources (`BerthAdminV1`).
    Admin,
    Logs,
    SecretsManager,
    Ssm,
    Sqs,
    Events,
}

impl Service {
    /// Splits `Prefix.Operation` into the service and the operation name.
    pub fn from_target(target: &str) -> Option<(Service, &str)> {
        let (prefix, op) = target.split_once('.')?;
        let service = match prefix {
            ecs::TARGET_PREFIX => Service::Ecs,
            agent::TARGET_PREFIX => Service::Agent,
            admin::TARGET_PREFIX => Service::Admin,
            logs::TARGET_PREFIX => Service::Logs,
            secretsmanager::TARGET_PREFIX => Service::SecretsManager,
            ssm::TARGET_PREFIX => Service::Ssm,
            sqs::TARGET_PREFIX => Service::Sqs,
            events::TARGET_PREFIX => Service::Events,
            _ => return None,
        };
        Some((service, op))
    }

    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => ecs::SIGNING_NAME,
            Service::Agent => agent::SIGNING_NAME,
            Service::Admin => admin::SIGNING_NAME,
            Service::Logs => logs::SIGNING_NAME,
            Service::SecretsManager => secretsmanager::SIGNING_NAME,
            Service::Ssm => ssm::SIGNING_NAME,
            Service::Sqs => sqs::SIGNING_NAME,
            Service::Events => events::SIGNING_NAME,
        }
    }

    /// The media type of its requests and answers (AWS JSON 1.0 or 1.1).
    pub fn content_type(self) -> &'static str {
        match self {
            Service::Sqs => sqs::CONTENT_TYPE,
            Service::Events => events::CONTENT_TYPE,
            _ => berth_wire::codec::CONTENT_TYPE,
        }
    }

    /// Whether `op` may wait long for its answer (a long poll): it then
    /// holds no room in the body budget while it waits.
    pub fn is_long_poll(self, op: &str) -> bool {
        self == Service::Sqs && op == sqs::Operation::ReceiveMessage.name()
    }
}

/// The implemented services a request can reach.
pub struct Services {
    pub ecs: berth_api::Ecs,
    pub logs: berth_api::Logs,
    pub secrets: berth_api::SecretsManager,
    pub ssm: berth_api::ParameterStore,
    pub sqs: berth_api::Sqs,
    pub events: berth_api::Events,
    pub ec2: berth_api::Ec2,
    pub sts: berth_api::Sts,
}

/// Deletes expired log events every `every`, for as long as the runtime runs.
pub fn spawn_retention_sweep(logs: berth_api::Logs, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match logs.sweep_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "deleted expired log events"),
                Err(e) => tracing::warn!(error = %e, "log retention sweep failed"),
            }
        }
    });
}

pub fn unknown_operation(target: &str) -> ApiError {
    ApiError::client(
        "UnknownOperationException",
        format!("Unknown operation {target}"),
    )
}

/// Whether `op` is an operation of `service`: decided from the target
/// alone, so that an unknown one is refused before its body is read.
pub fn is_operation(service: Service, op: &str) -> bool {
    match service {
        Service::Ecs => ecs::Operation::from_name(op).is_some(),
        Service::Agent => agent::Operation::from_name(op).is_some(),
        Service::Admin => admin::Operation::from_name(op).is_some(),
        Service::Logs => logs::Operation::from_name(op).is_some(),
        Service::SecretsManager => secretsmanager::Operation::from_name(op).is_some(),
        Service::Ssm => ssm::Operation::from_name(op).is_some(),
        Service::Sqs => sqs::Operation::from_name(op).is_some(),
        Service::Events => events::Operation::from_name(op).is_some(),
    }
}

pub async fn call(
    svcs: &Services,
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
            ecs::dispatch(&svcs.ecs, ctx, op, body).await
        }
        Service::Agent => match agent::Operation::from_name(op).ok_or_else(unknown)? {
            agent::Operation::PollWork => {
                let req = berth_wire::codec::decode(body)?;
                berth_wire::codec::encode(&svcs.ecs.poll_work(ctx, req).await?)
            }
            agent::Operation::SubmitHealth => {
                let req = berth_wire::codec::decode(body)?;
                berth_wire::codec::encode(&svcs.ecs.submit_health(ctx, req).await?)
            }
            agent::Operation::SubmitTaskNetwork => {
                let req = berth_wire::codec::decode(body)?;
                berth_wire::codec::encode(&svcs.ecs.submit_task_network(ctx, req).await?)
            }
            agent::Operation::GetTaskCredentials => {
                let req = berth_wire::codec::decode(body)?;
                berth_wire::codec::encode(&svcs.ecs.get_task_credentials(ctx, req).await?)
            }
        },
        Service::Admin => match admin::Operation::from_name(op).ok_or_else(unknown)? {
            admin::Operation::InjectSpotInterruption => {
                let req = berth_wire::codec::decode(body)?;
                berth_wire::codec::encode(&svcs.ecs.inject_spot_interruption(ctx, req).await?)
            }
        },
        Service::Logs => {
            let op = logs::Operation::from_name(op).ok_or_else(unknown)?;
            logs::dispatch(&svcs.logs, ctx, op, body).await
        }
        Service::SecretsManager => {
            let op = secretsmanager::Operation::from_name(op).ok_or_else(unknown)?;
            secretsmanager::dispatch(&svcs.secrets, ctx, op, body).await
        }
        Service::Ssm => {
            let op = ssm::Operation::from_name(op).ok_or_else(unknown)?;
            ssm::dispatch(&svcs.ssm, ctx, op, body).await
        }
        Service::Sqs => {
            let op = sqs::Operation::from_name(op).ok_or_else(unknown)?;
            sqs::dispatch(&svcs.sqs, ctx, op, body)
                .await
                .map_err(berth_api::sqs::query_compatible)
        }
        Service::Events => {
            let op = events::Operation::from_name(op).ok_or_else(unknown)?;
            events::dispatch(&svcs.events, ctx, op, body)
                .await
                .map_err(missing_is_validation)
        }
    }
}

/// EventBridge answers a missing member with `ValidationException` (the
/// codec's default is ECS's `InvalidParameterException`).
fn missing_is_validation(e: ApiError) -> ApiError {
    if e.code == "InvalidParameterException" {
        ApiError::client("ValidationException", e.message)
    } else {
        e
    }
}

/// An operation of a form-protocol service that berth serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryOperation {
    Ec2(berth_wire::ec2::Operation),
    Sts(berth_wire::sts::Operation),
}

/// The operation a form's `Action` names: one berth serves, or the
/// service's own error. An action of the model that berth does not serve is
/// `UnsupportedOperation` (EC2's code for it); one that is not in the model
/// `InvalidAction`, as EC2 and STS answer it. berth serves no IAM action.
pub fn query_operation(service: QueryService, action: &str) -> Result<QueryOperation, ApiError> {
    use berth_wire::{ec2, sts};
    let unsupported = |name: &str| {
        ApiError::client(
            "UnsupportedOperation",
            format!("berth does not serve {name}'s {action} operation."),
        )
    };
    match service {
        QueryService::Ec2 => match ec2::Operation::from_name(action) {
            Some(op) => Ok(QueryOperation::Ec2(op)),
            None if ec2::UNSERVED_OPERATIONS.contains(&action) => Err(unsupported("EC2")),
            None => Err(ApiError::client(
                "InvalidAction",
                format!("The action {action} is not valid for this web service."),
            )),
        },
        QueryService::Sts => match sts::Operation::from_name(action) {
            Some(op) => Ok(QueryOperation::Sts(op)),
            None if sts::UNSERVED_OPERATIONS.contains(&action) => Err(unsupported("STS")),
            None => Err(ApiError::client(
                "InvalidAction",
                format!(
                    "Could not find operation {action} for version {}",
                    sts::API_VERSION
                ),
            )),
        },
        QueryService::Iam => Err(unsupported("IAM")),
        QueryService::Unserved => Err(unserved_service()),
    }
}

/// What a form-encoded request for a service berth does not serve gets,
/// before its body is read.
pub fn unserved_service() -> ApiError {
    ApiError::client(
        "UnsupportedOperation",
        "berth does not serve this API: it serves ECS, CloudWatch Logs, Secrets Manager, SSM \
Parameter Store, and EC2's, STS's and IAM's operations listed in its README.",
    )
}

pub async fn call_query(
    svcs: &Services,
    op: QueryOperation,
    ctx: &RequestContext,
    params: &berth_wire::query::Params,
) -> Result<Vec<u8>, ApiError> {
    match op {
        QueryOperation::Ec2(op) => berth_wire::ec2::dispatch(&svcs.ec2, ctx, op, params).await,
        QueryOperation::Sts(op) => berth_wire::sts::dispatch(&svcs.sts, ctx, op, params).await,
    }
}
