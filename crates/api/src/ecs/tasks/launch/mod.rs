//! Launching tasks, in named steps that need no request object:
//!
//! 1. [`prepare`]: a [`LaunchSpec`] (plain values) resolved and checked
//!    into a [`Launch`];
//! 2. [`snapshot`]: the candidate instances (the cluster's, or managed
//!    capacity's for FARGATE) at the versions read, with live reservations;
//! 3. [`place`]: the pure scheduler over the snapshot;
//! 4. [`plan`]: task documents, assignments and instance guards;
//! 5. [`Plan::commit`]: the writes, as an attempt of `records::retry`, plus
//!    any writes of the caller's own (they land with the tasks or not at
//!    all); then [`Launched::wake`] the agents.
//!
//! [`launch`] runs 2–5 as RunTask and StartTask need. A caller with writes
//! of its own (a service recording its tasks) runs them itself:
//!
//! ```ignore
//! let _placing = lock_placement(ecs, ctx, &l).await;
//! let launched = retry(ecs.store(), async || {
//!     let service = load(...).await?;            // read what the extra writes guard
//!     let snap = snapshot(ecs, ctx, &l, None).await?;
//!     let plan = plan(ctx, &l, &snap, place(&snap, &l, &request), ecs.now());
//!     let extra = vec![/* the service document, updated from plan.tasks */];
//!     Ok(plan.commit(ctx, extra))
//! })
//! .await?;
//! launched.wake(ecs);
//! ```

mod index;
mod place;
mod plan;
mod prepare;
mod run;

pub(crate) use index::{placement_written, touches_placement, PlacementIndex};
pub(crate) use place::{
    constraints_of, expression, place, scheduler_instance, scheduler_strategies, snapshot,
    PlacementRequest,
};
pub(crate) use plan::{plan, Launched};
pub(crate) use prepare::{prepare, Launch, LaunchSpec};
pub(crate) use run::launch_type_of;
pub use run::{run, start};
#[allow(unused_imports, reason = "named by the service reconciler")]
pub(crate) use {place::Snapshot, plan::Plan};

use super::*;
use crate::records::retry;

/// Serializes this process's placements on the instances `launch` may use,
/// so they do not conflict with each other; the instance version checks in
/// the commit still guard against other processes. Hold it from the
/// snapshot until the commit lands.
pub(crate) async fn lock_placement<'a>(
    ecs: &'a Ecs,
    ctx: &RequestContext,
    launch: &Launch,
) -> tokio::sync::MutexGuard<'a, ()> {
    let (scope, id) = if launch.is_managed() {
        (managed_scope(), "managed".to_string())
    } else {
        (scope(ctx), launch.cluster_name())
    };
    ecs.locks
        .lock(&[&scope.account, &scope.region, "placement", &id])
        .await
}

/// Places and records `request.count` tasks of `launch`, retrying on
/// conflicting writers, and wakes the agents that got them.
pub(crate) async fn launch(
    ecs: &Ecs,
    ctx: &RequestContext,
    launch: &Launch,
    request: &PlacementRequest,
) -> Result<Launched, EcsError> {
    let _placing = lock_placement(ecs, ctx, launch).await;
    // Where the snapshot was read, for the placement index once it lands.
    let read = std::sync::Mutex::new(None);
    let launched = retry(ecs.store(), async || {
        let snap = snapshot(ecs, ctx, launch, request.only.as_deref()).await?;
        let placements = place(&snap, launch, request);
        let plan = plan(ctx, launch, &snap, placements, ecs.now());
        let stale = read
            .lock()
            .expect("not poisoned")
            .replace((snap.scope.clone(), snap.cluster.clone(), snap.generation))
            .is_some();
        if stale {
            // A conflict: whatever the index held, read the store again next.
            ecs.placement.forget(&snap.scope, &snap.cluster);
        }
        Ok::<_, EcsError>(plan.commit(ctx, Vec::new()))
    })
    .await?;
    if let Some((scope, cluster, generation)) = read.into_inner().expect("not poisoned") {
        if request.only.is_none() {
            ecs.placement
                .landed(&scope, &cluster, generation, &launched);
        }
    }
    launched.wake(ecs);
    Ok(launched)
}

#[cfg(test)]
mod tests;
