//! The seam between managed scaling and the capacity provider documents:
//! a cluster's Auto Scaling group providers as plain values (their
//! `managedScaling` settings and the instances that joined each).

use super::super::{capacity_providers, Ecs, InstanceDoc};
use berth_core::EcsError;
use berth_scheduler::scaling::Settings;
use berth_wire::ecs::*;
use berth_wire::RequestContext;

/// One provider of a cluster, as managed scaling reads it.
#[derive(Debug, Clone)]
pub(crate) struct PoolProvider {
    pub name: String,
    /// `managedScaling` when its status is ENABLED.
    pub managed: Option<Settings>,
    /// `managedDraining`: ENABLED (ECS's default) drains a host before it
    /// is removed.
    pub draining: bool,
    /// The instances that joined it (`capacityProviderName`), INACTIVE
    /// ones included.
    pub instances: Vec<InstanceDoc>,
}

/// `managedScaling` as numbers, ECS's defaults filled in; `None` unless
/// ENABLED.
pub fn settings_of(m: Option<&ManagedScaling>) -> Option<Settings> {
    let m = m?;
    if m.status.as_ref() != Some(&ManagedScalingStatus::Enabled) {
        return None;
    }
    let d = Settings::default();
    let num =
        |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default);
    Some(Settings {
        target_capacity: num(m.target_capacity, d.target_capacity),
        minimum_scaling_step_size: num(m.minimum_scaling_step_size, d.minimum_scaling_step_size),
        maximum_scaling_step_size: num(m.maximum_scaling_step_size, d.maximum_scaling_step_size),
        instance_warmup_period: num(m.instance_warmup_period, d.instance_warmup_period),
    })
}

/// A stored provider and its instances as a [`PoolProvider`].
pub(crate) fn pool_provider(p: &CapacityProvider, instances: Vec<InstanceDoc>) -> PoolProvider {
    let asg = p.auto_scaling_group_provider.as_ref();
    PoolProvider {
        name: p.name.clone().unwrap_or_default(),
        managed: settings_of(asg.and_then(|a| a.managed_scaling.as_ref())),
        draining: asg
            .and_then(|a| a.managed_draining.as_ref())
            .is_none_or(|d| *d == ManagedDraining::Enabled),
        instances,
    }
}

/// The Auto Scaling group providers of `cluster` with their instances.
pub(crate) async fn providers(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &Cluster,
) -> Result<Vec<PoolProvider>, EcsError> {
    Ok(capacity_providers::pool(ecs, ctx, cluster)
        .await?
        .into_iter()
        .filter(|(p, _)| p.auto_scaling_group_provider.is_some())
        .map(|(p, instances)| pool_provider(&p, instances))
        .collect())
}
