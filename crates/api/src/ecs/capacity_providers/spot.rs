//! Spot interruptions, injected (`BerthAdminV1.InjectSpotInterruption`,
//! `berth spot-interrupt`): a FARGATE_SPOT task of the caller's account is
//! stopped as Fargate reclaiming its capacity stops it — SIGTERM at once,
//! SIGKILL after the containers' stopTimeout (Fargate caps it at the
//! two-minute warning), stopCode `SpotInterruption`. The Task State Change
//! event carries it from the task document (the outbox); a service
//! replaces the task.

use super::FARGATE_SPOT;
use crate::ecs::tasks::{self, request_stop};
use crate::ecs::{clusters, Ecs};
use crate::records::Record;
use berth_core::task::Stop;
use berth_core::EcsError;
use berth_wire::admin::{InjectSpotInterruptionRequest, InjectSpotInterruptionResponse};
use berth_wire::RequestContext;

impl Ecs {
    pub async fn inject_spot_interruption(
        &self,
        ctx: &RequestContext,
        input: InjectSpotInterruptionRequest,
    ) -> Result<InjectSpotInterruptionResponse, EcsError> {
        let cluster = clusters::load_active(self, ctx, input.cluster.as_deref())
            .await?
            .value;
        let missing =
            || EcsError::invalid(format!("The referenced task was not found: {}", input.task));
        // Only the caller's own tasks: another account's ARN names nothing.
        let doc = tasks::find(self, ctx, &cluster.id(), &input.task)
            .await?
            .ok_or_else(missing)?;
        let id = doc.value.id.clone();
        if doc.value.task.capacity_provider_name.as_deref() != Some(FARGATE_SPOT) {
            return Err(EcsError::invalid(
                "Only tasks running on the FARGATE_SPOT capacity provider can be interrupted.",
            ));
        }
        if doc.value.task.desired_status.as_deref() == Some("STOPPED") {
            return Err(EcsError::invalid(
                "The task is already stopping or stopped: it cannot be interrupted.",
            ));
        }
        let stopped = request_stop(
            self,
            ctx,
            &doc.value.cluster,
            &id,
            &Stop::spot_interruption(),
        )
        .await?
        .ok_or_else(missing)?;
        Ok(InjectSpotInterruptionResponse {
            task: tasks::view(&stopped, false),
        })
    }
}
