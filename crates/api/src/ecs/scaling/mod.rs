//! Managed scaling's engine: every round, per Auto Scaling group provider
//! with managed scaling and a scaling hook the operator configured, it
//! computes ECS's `CapacityProviderReservation` (`scheduler::scaling`) and
//! asks the hook for hosts, or drains and removes idle ones.
//!
//! - **Waiting tasks** are a service's desired tasks that have no live
//!   task (the service scheduler could not place them), with the demand of
//!   the service's task definition, split over its strategy; and tasks of
//!   the provider that exist without a host (PROVISIONING).
//! - **Termination protection**: only hosts with no task but daemons' are
//!   chosen for scale-in; a host that got a task meanwhile stays.
//! - **Draining**: a chosen host is set DRAINING (nothing new lands on
//!   it), the hook is told to remove it, and it is deregistered once the
//!   hook succeeded.
//!
//! Hooks come only from the server's configuration, bound to an account:
//! nothing an API caller sends chooses or runs one.

pub(crate) mod pool;

use super::capacity_providers::strategy::Capacity;
use super::services::ServiceDoc;
use super::tasks::{self, TaskDoc};
use super::{container_instances, task_definitions, Ecs, InstanceDoc};
use crate::records::{self, kind, scope, store_error, Record};
use berth_core::EcsError;
use berth_scheduler::scaling::{self, Decision, Host, Provider, Waiting};
use berth_store::Query;
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use pool::PoolProvider;

/// What a hook is asked to do: bring the provider from `current` hosts to
/// `desired`; when scaling in, by removing exactly `remove`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleRequest {
    pub account_id: String,
    pub region: String,
    pub cluster: String,
    pub capacity_provider: String,
    pub current: u32,
    pub desired: u32,
    /// `CapacityProviderReservation` when decided.
    pub capacity_provider_reservation: f64,
    pub remove: Vec<HostRef>,
}

/// A host to remove, by its container instance and the id its agent
/// registered with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostRef {
    pub container_instance_arn: String,
    pub ec2_instance_id: Option<String>,
    /// Its `berth.managed-instance` attribute: the container berth's
    /// managed instances provider started it as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_instance: Option<String>,
}

/// The attribute a managed instance's agent registers with.
pub const MANAGED_INSTANCE_ATTRIBUTE: &str = "berth.managed-instance";

/// Adds or removes a provider's hosts (a command, a webhook, berth's own
/// Docker launcher). An error is logged and the round tried again later.
#[async_trait::async_trait]
pub trait ScalingHook: Send + Sync {
    async fn scale(&self, request: &ScaleRequest) -> Result<(), String>;
}

/// The operator's hooks: which one, if any, acts for a provider of an
/// account and region.
pub trait HookTable: Send + Sync {
    fn hook(&self, account: &str, region: &str, provider: &str) -> Option<Arc<dyn ScalingHook>>;
}

/// One provider's decision in a round, for logs and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub account: String,
    pub region: String,
    pub cluster: String,
    pub provider: String,
    pub decision: Decision,
    /// Hosts asked for, and hosts removed, this round.
    pub added: u32,
    pub removed: Vec<String>,
}

/// What the engine remembers of a provider between rounds.
#[derive(Debug, Default)]
struct Memory {
    /// Scale-outs still warming up: (until, host count then expected).
    launches: Vec<(i64, u32)>,
    /// Since when the reservation has been below target with hosts idle.
    low_since: Option<i64>,
    /// Hosts chosen for removal and set DRAINING.
    removing: BTreeSet<String>,
}

/// The engine's configuration and memory; the server runs [`Ecs::scale_round`]
/// with it every few seconds.
pub struct ScalingEngine {
    hooks: Arc<dyn HookTable>,
    /// How long the reservation must stay below target before a scale-in
    /// (ECS's low alarm wants 15 minutes of it).
    scale_in_after: Duration,
    memory: Mutex<HashMap<String, Memory>>,
}

impl ScalingEngine {
    pub fn new(hooks: Arc<dyn HookTable>, scale_in_after: Duration) -> Self {
        ScalingEngine {
            hooks,
            scale_in_after,
            memory: Mutex::default(),
        }
    }
}

impl Ecs {
    /// One round of managed scaling over every cluster of every account.
    pub async fn scale_round(&self, engine: &ScalingEngine) -> Result<Vec<Observed>, EcsError> {
        let mut out = Vec::new();
        for sc in self
            .store()
            .scopes(kind::CLUSTER)
            .await
            .map_err(store_error)?
        {
            let ctx = RequestContext::for_account(&sc.account, &sc.region);
            let q = Query {
                limit: 100_000,
                ..Default::default()
            };
            for c in records::list::<Cluster>(self.store(), &sc, &q).await? {
                if c.value.status.as_deref() != Some("ACTIVE") {
                    continue;
                }
                for p in pool::providers(self, &ctx, &c.value).await? {
                    let Some(hook) = engine.hooks.hook(&sc.account, &sc.region, &p.name) else {
                        continue;
                    };
                    if p.managed.is_none() {
                        continue;
                    }
                    match self.scale_provider(engine, &ctx, &c.value, &p, hook).await {
                        Ok(o) => out.push(o),
                        Err(e) => {
                            tracing::warn!(provider = %p.name, error = %e, "managed scaling failed")
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    async fn scale_provider(
        &self,
        engine: &ScalingEngine,
        ctx: &RequestContext,
        cluster_doc: &Cluster,
        p: &PoolProvider,
        hook: Arc<dyn ScalingHook>,
    ) -> Result<Observed, EcsError> {
        let cluster_name = cluster_doc.id();
        let cluster = cluster_name.as_str();
        let settings = p.managed.unwrap_or_default();
        let now = self.now().as_millis();
        let key = format!("{}\t{}\t{cluster}\t{}", ctx.account_id, ctx.region, p.name);
        let live = tasks::active_in_cluster(self, ctx, cluster).await?;
        let services = services_of(self, ctx, cluster).await?;
        let daemons: BTreeSet<&str> = services
            .iter()
            .filter(|s| s.daemon())
            .map(|s| s.name.as_str())
            .collect();
        let load = |id: &str| non_daemon_tasks(&live, &daemons, id);
        let active: Vec<&InstanceDoc> = p
            .instances
            .iter()
            .filter(|d| d.instance.status.as_deref() == Some(container_instances::ACTIVE))
            .collect();
        let hosts: Vec<Host> = active
            .iter()
            .map(|d| {
                let (cpu, memory, _) = d.registered();
                Host {
                    id: d.id.clone(),
                    tasks: load(&d.id),
                    cpu,
                    memory,
                    registered_at: d
                        .instance
                        .registered_at
                        .map_or(0, |t| (t.as_secs_f64() * 1000.0) as i64),
                }
            })
            .collect();
        let waiting = waiting_tasks(self, ctx, cluster_doc, &p.name, &services, &live).await?;
        let running = hosts.len() as u32;
        let launching = {
            let mut mem = engine.memory.lock();
            let m = mem.entry(key.clone()).or_default();
            m.launches.retain(|(until, _)| *until > now);
            let expected = m.launches.iter().map(|(_, n)| *n).max().unwrap_or(0);
            expected.saturating_sub(running)
        };
        let decision = scaling::decide(&Provider {
            settings,
            hosts,
            waiting,
            launching,
            now,
        });
        tracing::info!(
            cluster, provider = %p.name, account = %ctx.account_id,
            capacity_provider_reservation = decision.reservation,
            needed = decision.needed, running = decision.running, launching,
            "CapacityProviderReservation"
        );
        let mut observed = Observed {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            cluster: cluster.to_string(),
            provider: p.name.clone(),
            decision: decision.clone(),
            added: 0,
            removed: Vec::new(),
        };
        let request = |current: u32, desired: u32, remove: Vec<HostRef>| ScaleRequest {
            account_id: ctx.account_id.clone(),
            region: ctx.region.clone(),
            cluster: cluster.to_string(),
            capacity_provider: p.name.clone(),
            current,
            desired,
            capacity_provider_reservation: decision.reservation,
            remove,
        };
        if decision.add > 0 {
            let have = running + launching;
            let want = have + decision.add;
            engine
                .memory
                .lock()
                .entry(key.clone())
                .or_default()
                .low_since = None;
            match hook.scale(&request(have, want, Vec::new())).await {
                Ok(()) => {
                    let until = now + i64::from(settings.instance_warmup_period) * 1000;
                    let mut mem = engine.memory.lock();
                    mem.entry(key.clone())
                        .or_default()
                        .launches
                        .push((until, want));
                    observed.added = decision.add;
                }
                Err(e) => {
                    tracing::warn!(provider = %p.name, error = %e, "scaling hook failed to add hosts")
                }
            }
            return Ok(observed);
        }
        // Scale-in: below target long enough, then drain the chosen hosts.
        let chosen: Vec<String> = {
            let mut mem = engine.memory.lock();
            let m = mem.entry(key.clone()).or_default();
            if decision.remove.is_empty() {
                m.low_since = None;
                Vec::new()
            } else {
                let since = *m.low_since.get_or_insert(now);
                if now - since >= engine.scale_in_after.as_millis() as i64 {
                    decision.remove.clone()
                } else {
                    Vec::new()
                }
            }
        };
        if !chosen.is_empty() {
            if p.draining {
                drain(self, ctx, cluster, &chosen).await?;
            }
            let mut mem = engine.memory.lock();
            let m = mem.entry(key.clone()).or_default();
            m.removing.extend(chosen);
            m.low_since = None;
        }
        // Remove the chosen hosts that are idle (a task placed before the
        // drain keeps its host until its service replaced it).
        let removing: Vec<String> = engine
            .memory
            .lock()
            .get(&key)
            .map(|m| m.removing.iter().cloned().collect())
            .unwrap_or_default();
        let gone: Vec<&InstanceDoc> = p
            .instances
            .iter()
            .filter(|d| removing.contains(&d.id))
            .filter(|d| d.instance.status.as_deref() != Some(container_instances::INACTIVE))
            .filter(|d| load(&d.id) == 0)
            .collect();
        let forgotten: Vec<String> = removing
            .iter()
            .filter(|id| {
                !p.instances.iter().any(|d| {
                    &d.id == *id
                        && d.instance.status.as_deref() != Some(container_instances::INACTIVE)
                })
            })
            .cloned()
            .collect();
        if !gone.is_empty() {
            // The provider's hosts: the active ones and those being removed.
            let current = p
                .instances
                .iter()
                .filter(|d| {
                    d.instance.status.as_deref() == Some(container_instances::ACTIVE)
                        || (removing.contains(&d.id) && !forgotten.contains(&d.id))
                })
                .count() as u32;
            let refs = gone
                .iter()
                .map(|d| HostRef {
                    container_instance_arn: d.arn().to_string(),
                    ec2_instance_id: d.instance.ec2_instance_id.clone(),
                    managed_instance: d
                        .instance
                        .attributes
                        .iter()
                        .flatten()
                        .find(|a| a.name == MANAGED_INSTANCE_ATTRIBUTE)
                        .and_then(|a| a.value.clone()),
                })
                .collect();
            let desired = current.saturating_sub(gone.len() as u32);
            match hook.scale(&request(current, desired, refs)).await {
                Ok(()) => {
                    for d in &gone {
                        deregister(self, ctx, cluster, d).await?;
                        observed.removed.push(d.id.clone());
                    }
                }
                Err(e) => {
                    tracing::warn!(provider = %p.name, error = %e, "scaling hook failed to remove hosts")
                }
            }
        }
        let mut mem = engine.memory.lock();
        if let Some(m) = mem.get_mut(&key) {
            m.removing
                .retain(|id| !observed.removed.contains(id) && !forgotten.contains(id));
        }
        Ok(observed)
    }
}

/// Running or pending tasks on instance `id` that are not a daemon's.
fn non_daemon_tasks(live: &[TaskDoc], daemons: &BTreeSet<&str>, id: &str) -> u32 {
    live.iter()
        .filter(|t| t.instance_id.as_deref() == Some(id))
        .filter(|t| {
            t.service
                .as_ref()
                .is_none_or(|s| !daemons.contains(s.service_name.as_str()))
        })
        .count() as u32
}

async fn services_of(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
) -> Result<Vec<ServiceDoc>, EcsError> {
    let q = Query {
        parent: Some(cluster.to_string()),
        limit: 1_000_000,
        ..Default::default()
    };
    Ok(records::list::<ServiceDoc>(ecs.store(), &scope(ctx), &q)
        .await?
        .into_iter()
        .map(|d| d.value)
        .filter(|s| s.service.status.as_deref() == Some("ACTIVE"))
        .collect())
}

/// The tasks services want on `provider` and have not got: per service,
/// its desired count beyond its live tasks, split over its capacity
/// provider strategy as a launch would split them, each needing what its
/// task definition asks.
async fn waiting_tasks(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &Cluster,
    provider: &str,
    services: &[ServiceDoc],
    live: &[TaskDoc],
) -> Result<Vec<Waiting>, EcsError> {
    let mut out = Vec::new();
    let mut demands: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for s in services.iter().filter(|s| !s.daemon()) {
        let Ok(capacity) = Capacity::resolve(
            s.service.launch_type.as_ref(),
            s.service.capacity_provider_strategy.as_ref(),
            cluster,
        ) else {
            continue;
        };
        let want = s.service.desired_count.unwrap_or(0).max(0) as u32;
        let mine: Vec<&TaskDoc> = live
            .iter()
            .filter(|t| t.service.as_ref().is_some_and(|o| o.service_name == s.name))
            .collect();
        let on = |p: &str| {
            mine.iter()
                .filter(|t| t.task.capacity_provider_name.as_deref() == Some(p))
                .count() as u32
        };
        let missing = capacity
            .split(want.saturating_sub(mine.len() as u32), on)
            .into_iter()
            .filter(|part| part.provider.as_deref() == Some(provider))
            .map(|part| part.count)
            .sum::<u32>();
        let Some(td) = s.service.task_definition.clone().filter(|_| missing > 0) else {
            continue;
        };
        let demand = match demands.get(&td) {
            Some(d) => *d,
            None => {
                let d = demand_of(ecs, ctx, &td).await?;
                demands.insert(td, d);
                d
            }
        };
        out.push(Waiting {
            cpu: demand.0,
            memory: demand.1,
            count: missing,
        });
    }
    // Tasks of this provider that exist but have no host yet (ECS's
    // PROVISIONING wait for capacity).
    for t in live.iter().filter(|t| {
        t.instance_id.is_none() && t.task.capacity_provider_name.as_deref() == Some(provider)
    }) {
        out.push(Waiting {
            cpu: t.reserved.cpu,
            memory: t.reserved.memory,
            count: 1,
        });
    }
    Ok(out)
}

/// CPU and memory a task of the revision `arn` reserves.
async fn demand_of(ecs: &Ecs, ctx: &RequestContext, arn: &str) -> Result<(i64, i64), EcsError> {
    let family_rev = arn.rsplit('/').next().unwrap_or(arn);
    let (family, rev) = family_rev.rsplit_once(':').unwrap_or((family_rev, "0"));
    let rev: i32 = rev.parse().unwrap_or(0);
    Ok(
        match task_definitions::load_revision(ecs, ctx, family, rev).await? {
            Some(d) => {
                let dem = berth_core::task::demand(&d.value.task_definition, None);
                (dem.cpu, dem.memory)
            }
            None => (0, 0),
        },
    )
}

/// Sets the hosts DRAINING, as UpdateContainerInstancesState does.
async fn drain(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    ids: &[String],
) -> Result<(), EcsError> {
    for chunk in ids.chunks(10) {
        container_instances::update_state(
            ecs,
            ctx,
            UpdateContainerInstancesStateRequest {
                cluster: Some(cluster.to_string()),
                container_instances: chunk.to_vec(),
                status: ContainerInstanceStatus::Draining,
            },
        )
        .await?;
    }
    Ok(())
}

/// Deregisters a removed host (its daemon tasks go with it).
async fn deregister(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    d: &InstanceDoc,
) -> Result<(), EcsError> {
    container_instances::deregister(
        ecs,
        ctx,
        DeregisterContainerInstanceRequest {
            cluster: Some(cluster.to_string()),
            container_instance: d.id.clone(),
            force: Some(true),
        },
    )
    .await?;
    Ok(())
}
