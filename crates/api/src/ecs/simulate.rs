//! Simulated hosts, for measuring the control plane alone (`berth server
//! --simulate-hosts N`): container instances registered through
//! RegisterContainerInstance, kept connected from memory, whose "agent"
//! acknowledges every task placed on it (SubmitTaskStateChange RUNNING
//! through the ordinary report path) without running anything.
//!
//! Never on by default. Every simulated instance carries the attribute
//! `berth.simulated=true` (DescribeContainerInstances shows it), and the
//! server says so loudly at startup.

use super::container_instances::{self, InstanceDoc};
use super::tasks::{self, TaskDoc};
use super::{clusters, Ecs};
use crate::records::{self, scope};
use berth_core::task::TaskStatus;
use berth_core::EcsError;
use berth_store::{Query, Scope};
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use futures::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The attribute that marks a simulated instance.
pub const SIMULATED_ATTRIBUTE: &str = "berth.simulated";

/// What each simulated instance registers.
const CPU: i64 = 16_384;
const MEMORY_MIB: i64 = 65_536;
/// Registrations and acknowledgements in flight at once.
const CONCURRENCY: usize = 64;

/// The simulated fleet of a server: which instances are simulated, and
/// where tasks placed on them go to be acknowledged.
pub(crate) struct Simulated {
    ids: HashSet<String>,
    acks: mpsc::UnboundedSender<(Scope, String, String)>,
}

impl Simulated {
    /// Queues the acknowledgement of `tasks` that went to simulated instances.
    pub fn placed(&self, scope: &Scope, tasks: &[TaskDoc]) {
        for t in tasks {
            if t.instance_id.as_ref().is_some_and(|i| self.ids.contains(i)) {
                let _ = self
                    .acks
                    .send((scope.clone(), t.cluster.clone(), t.id.clone()));
            }
        }
    }
}

/// How many hosts, in how many zones, in which cluster.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub hosts: usize,
    pub zones: usize,
    pub cluster: String,
}

impl Ecs {
    /// Starts `sim.hosts` simulated instances in `sim.cluster` of `ctx`'s
    /// account and region (creating the cluster if needed; instances that a
    /// previous run simulated there are reused), keeps them connected and
    /// acknowledges their tasks. Returns how many were newly registered.
    pub async fn simulate_hosts(
        &self,
        ctx: &RequestContext,
        sim: &Simulation,
    ) -> Result<usize, berth_wire::ApiError> {
        if self.simulated.get().is_some() {
            return Err(EcsError::client("hosts are already simulated").into());
        }
        let create = CreateClusterRequest {
            cluster_name: Some(sim.cluster.clone()),
            ..Default::default()
        };
        if clusters::load_active(self, ctx, Some(&sim.cluster))
            .await
            .is_err()
        {
            self.create_cluster(ctx, create).await?;
        }
        let existing = simulated_in(self, ctx, &sim.cluster).await?;
        let missing = sim.hosts.saturating_sub(existing.len());
        let zones = sim.zones.max(1);
        let registered: Vec<Result<String, EcsError>> =
            futures::stream::iter(existing.len()..existing.len() + missing)
                .map(|n| register(self, ctx, &sim.cluster, n, zones))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut arns: Vec<String> = existing;
        for r in registered {
            arns.push(r?);
        }
        let ids = arns
            .iter()
            .map(|a| a.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = self.simulated.set(Arc::new(Simulated { ids, acks: tx }));
        tokio::spawn(heartbeat(self.clone(), arns));
        tokio::spawn(acknowledge(self.clone(), rx));
        Ok(missing)
    }
}

/// The ARNs of the cluster's simulated instances that are not INACTIVE.
async fn simulated_in(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
) -> Result<Vec<String>, EcsError> {
    let q = Query {
        parent: Some(cluster.to_string()),
        limit: 1_000_000,
        ..Default::default()
    };
    Ok(records::list::<InstanceDoc>(ecs.store(), &scope(ctx), &q)
        .await?
        .into_iter()
        .filter(|d| d.value.instance.status.as_deref() != Some(container_instances::INACTIVE))
        .filter(|d| {
            d.value
                .instance
                .attributes
                .iter()
                .flatten()
                .any(|a| a.name == SIMULATED_ATTRIBUTE && a.value.as_deref() == Some("true"))
        })
        .map(|d| d.value.arn().to_string())
        .collect())
}

fn attribute(name: &str, value: Option<&str>) -> Attribute {
    Attribute {
        name: name.into(),
        value: value.map(str::to_string),
        ..Default::default()
    }
}

/// Registers simulated host number `n`, in zone `n % zones`.
async fn register(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    n: usize,
    zones: usize,
) -> Result<String, EcsError> {
    let zone = format!("{}{}", ctx.region, (b'a' + (n % zones) as u8 % 26) as char);
    let resource = |name: &str, value: i64| Resource {
        name: Some(name.into()),
        r#type: Some("INTEGER".into()),
        integer_value: Some(value as i32),
        ..Default::default()
    };
    let req = RegisterContainerInstanceRequest {
        cluster: Some(cluster.to_string()),
        total_resources: Some(vec![resource("CPU", CPU), resource("MEMORY", MEMORY_MIB)]),
        attributes: Some(vec![
            attribute(SIMULATED_ATTRIBUTE, Some("true")),
            attribute("ecs.availability-zone", Some(&zone)),
            attribute("ecs.instance-type", Some("sim.4xlarge")),
            attribute("ecs.os-type", Some("linux")),
            attribute("com.amazonaws.ecs.capability.docker-remote-api.1.18", None),
        ]),
        ..Default::default()
    };
    let out = container_instances::register(ecs, ctx, req).await?;
    Ok(out
        .container_instance
        .and_then(|c| c.container_instance_arn)
        .unwrap_or_default())
}

/// Keeps every simulated instance connected, as its agent's polls would.
async fn heartbeat(ecs: Ecs, arns: Vec<String>) {
    let every = (ecs.timings.agent_disconnect_grace / 3).max(std::time::Duration::from_millis(100));
    loop {
        ecs.liveness.seen_all(arns.iter().map(String::as_str));
        tokio::time::sleep(every).await;
    }
}

/// The simulated agents' reports: every task placed on a simulated
/// instance is reported RUNNING, as a real agent reports it once started.
async fn acknowledge(ecs: Ecs, mut rx: mpsc::UnboundedReceiver<(Scope, String, String)>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 1024).await > 0 {
        futures::stream::iter(batch.drain(..))
            .for_each_concurrent(CONCURRENCY, |(scope, cluster, task)| {
                let ecs = ecs.clone();
                async move {
                    let ctx = RequestContext::for_account(&scope.account, &scope.region);
                    let req = SubmitTaskStateChangeRequest {
                        cluster: Some(cluster),
                        task: Some(task.clone()),
                        status: Some(TaskStatus::Running.as_str().into()),
                        ..Default::default()
                    };
                    if let Err(e) = tasks::submit_task_state_change(&ecs, &ctx, req).await {
                        tracing::warn!(task, error = %e, "a simulated agent's report failed");
                    }
                }
            })
            .await;
    }
}
