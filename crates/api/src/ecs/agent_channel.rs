//! The control plane's side of the agent channel (`BerthAgentV1`): an
//! agent's long poll for the tasks assigned to its container instance,
//! which doubles as its heartbeat.

use super::container_instances::{InstanceDoc, INACTIVE};
use super::tasks::{self, AssignmentDoc, TaskDoc};
use super::Ecs;
use crate::records::{self, load};
use berth_core::{arn, EcsError};
use berth_store::{Query, Scope};
use berth_wire::agent::{AssignedTask, PollWorkRequest, PollWorkResponse};
use berth_wire::ecs::{CreateClusterRequest, EcsApi};
use berth_wire::RequestContext;
use std::time::Duration;

/// The cluster berth's managed capacity registers in (in the managed scope).
pub const MANAGED_CLUSTER: &str = "managed";

impl Ecs {
    /// The context the embedded agent uses to register berth's managed
    /// (FARGATE) capacity: a scope of its own, not any customer's account.
    pub fn managed_context() -> RequestContext {
        let s = tasks::managed_scope();
        RequestContext::for_account(&s.account, &s.region)
    }

    /// Makes sure the managed scope has its cluster, for the embedded agent.
    pub async fn ensure_managed_cluster(&self) -> Result<(), berth_wire::ApiError> {
        let req = CreateClusterRequest {
            cluster_name: Some(MANAGED_CLUSTER.into()),
            ..Default::default()
        };
        self.create_cluster(&Self::managed_context(), req)
            .await
            .map(|_| ())
    }

    /// `BerthAgentV1.SubmitHealth` for a task in `ctx`'s account and region.
    pub async fn submit_health(
        &self,
        ctx: &RequestContext,
        req: berth_wire::agent::SubmitHealthRequest,
    ) -> Result<berth_wire::agent::SubmitHealthResponse, berth_wire::ApiError> {
        tasks::submit_health(self, ctx, req).await?;
        Ok(Default::default())
    }

    /// `BerthAgentV1.SubmitTaskNetwork`: the address an awsvpc task got.
    pub async fn submit_task_network(
        &self,
        ctx: &RequestContext,
        req: berth_wire::agent::SubmitTaskNetworkRequest,
    ) -> Result<berth_wire::agent::SubmitTaskNetworkResponse, berth_wire::ApiError> {
        tasks::submit_task_network(self, ctx, req).await?;
        Ok(Default::default())
    }

    /// `BerthAgentV1.PollWork` from an agent authenticated as `ctx`.
    pub async fn poll_work(
        &self,
        ctx: &RequestContext,
        req: PollWorkRequest,
    ) -> Result<PollWorkResponse, berth_wire::ApiError> {
        let scope = Scope::new(&ctx.account_id, &ctx.region);
        Ok(poll(self, &scope, &req).await?)
    }
}

fn instance_id(reference: &str) -> String {
    if arn::looks_like_arn(reference) {
        reference.rsplit('/').next().unwrap_or_default().to_string()
    } else {
        reference.to_string()
    }
}

async fn poll(
    ecs: &Ecs,
    scope: &Scope,
    req: &PollWorkRequest,
) -> Result<PollWorkResponse, EcsError> {
    let id = instance_id(&req.container_instance_arn);
    let doc = load::<InstanceDoc>(ecs.store(), scope, &id)
        .await?
        .filter(|d| d.value.cluster == req.cluster || (req.cluster.is_empty()))
        .ok_or_else(|| {
            EcsError::invalid(format!(
                "Unknown container instance '{}'.",
                req.container_instance_arn
            ))
        })?;
    if doc.value.instance.status.as_deref() == Some(INACTIVE) {
        return Err(EcsError::client(
            "The container instance has been deregistered; register it again.",
        ));
    }
    ecs.liveness.seen(doc.value.arn());
    // A held poll must end well within the grace: an agent counts as
    // heard from when its polls come and go.
    let wait = Duration::from_secs(u64::from(req.wait_seconds))
        .min(ecs.timings.max_poll_wait)
        .min(ecs.timings.agent_disconnect_grace / 3);
    ecs.work.wait_change(&id, req.known_version, wait).await;
    ecs.liveness.seen(doc.value.arn());
    // Read the version before the list: a change in between makes the next
    // poll return at once, so nothing is missed.
    let version = ecs.work.current(&id);
    let q = Query {
        parent: Some(id.clone()),
        limit: 100_000,
        ..Default::default()
    };
    let mut out = Vec::new();
    for a in records::list::<AssignmentDoc>(ecs.store(), scope, &q).await? {
        let task_scope = Scope::new(&a.value.account, &a.value.region);
        if let Some(t) = load::<TaskDoc>(ecs.store(), &task_scope, &a.value.task_id).await? {
            out.push(AssignedTask {
                task: tasks::view(&t.value, false),
                task_definition: t.value.task_definition,
            });
        }
    }
    Ok(PollWorkResponse {
        version,
        tasks: out,
    })
}
