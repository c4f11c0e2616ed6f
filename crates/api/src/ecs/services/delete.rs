//! DeleteService: ACTIVE → DRAINING at once (its desired count becomes 0
//! and the driver stops its tasks) → INACTIVE once no task is left. A
//! DRAINING or INACTIVE service is answered as it is, as ECS does.

use super::*;
use crate::records::{retry, Attempt};

pub async fn delete(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeleteServiceRequest,
) -> Result<DeleteServiceResponse, EcsError> {
    let (_, found) = find_in_cluster(ecs, ctx, input.cluster.as_deref(), &input.service).await?;
    let service_key = found.value.id();
    let _serialized = ecs.lock(ctx, kind::SERVICE, &service_key).await;
    let force = input.force.unwrap_or(false);
    let now = ecs.now();
    let doc = retry(ecs.store(), async || {
        let Some(mut current) = load::<ServiceDoc>(ecs.store(), &scope(ctx), &service_key).await?
        else {
            return Err(EcsError::ServiceNotFound);
        };
        let d = &mut current.value;
        if !d.is(status::ACTIVE) {
            return Ok(Attempt::Done(current.value));
        }
        let scaled = d.service.desired_count.unwrap_or(0) > 0;
        if scaled && !force && !d.daemon() {
            return Err(EcsError::invalid(
                "The service cannot be stopped while it is scaled above 0.",
            ));
        }
        d.service.status = Some(status::DRAINING.into());
        d.service.desired_count = Some(0);
        d.state.steady = false;
        let _ = now;
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![current.write()],
            value: current.value,
        })
    })
    .await?;
    ecs.services.wake(ctx, &service_key);
    Ok(DeleteServiceResponse {
        service: Some(queries::view(ecs, ctx, &doc, false).await?),
    })
}
