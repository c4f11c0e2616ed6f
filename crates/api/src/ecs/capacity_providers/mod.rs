//! Capacity providers: CreateCapacityProvider, UpdateCapacityProvider,
//! DeleteCapacityProvider, DescribeCapacityProviders, and what clusters,
//! RunTask and services need of them (`strategy`).
//!
//! `FARGATE` and `FARGATE_SPOT` are built in (berth's managed capacity) and
//! stored nowhere. An Auto Scaling group provider stands for a pool of
//! `berth agent` hosts that join it (`berth agent --capacity-provider`);
//! its `autoScalingGroupArn` is kept as given. Managed scaling, termination
//! protection and draining are stored and shown; their engine works over
//! [`pool`], a cluster's providers and their instances.

mod spot;
pub(crate) mod strategy;

use super::services::ServiceDoc;
use super::{Ecs, InstanceDoc};
use crate::records::{self, kind, load, retry, scope, Attempt, Record, Versioned};
use berth_core::pagination::page_size;
use berth_core::{arn, tags, EcsError};
use berth_store::Query;
use berth_wire::ecs::*;
use berth_wire::RequestContext;

pub const FARGATE: &str = "FARGATE";
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";

/// The built-in providers, on berth's managed capacity.
pub fn is_fargate(name: &str) -> bool {
    name == FARGATE || name == FARGATE_SPOT
}

impl Record for CapacityProvider {
    const KIND: &'static str = kind::CAPACITY_PROVIDER;
    fn id(&self) -> String {
        self.name.clone().unwrap_or_default()
    }
    fn status(&self) -> String {
        self.status
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default()
    }
}

fn capacity_provider_arn(ctx: &RequestContext, name: &str) -> String {
    format!(
        "arn:aws:ecs:{}:{}:capacity-provider/{name}",
        ctx.region, ctx.account_id
    )
}

/// The provider name a parameter (name or ARN) means in the caller's
/// account and region; another account's ARN names nothing here.
fn provider_name(ctx: &RequestContext, given: &str) -> Option<String> {
    if !arn::looks_like_arn(given) {
        return Some(given.to_string());
    }
    let a = arn::Arn::parse(given)?;
    match a.resource_type_and_id() {
        ("capacity-provider", name)
            if a.service == "ecs" && a.account == ctx.account_id && a.region == ctx.region =>
        {
            Some(name.to_string())
        }
        _ => None,
    }
}

/// ECS's rules for a new provider's name.
fn validate_name(name: &str) -> Result<(), EcsError> {
    let valid = (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(EcsError::invalid(
            "The capacity provider name can contain up to 255 characters: letters (uppercase and lowercase), numbers, underscores, and hyphens.",
        ));
    }
    let lower = name.to_ascii_lowercase();
    if ["aws", "ecs", "fargate"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(EcsError::invalid(
            "The capacity provider name can't be prefixed with \"aws\", \"ecs\", or \"fargate\".",
        ));
    }
    Ok(())
}

/// ECS's ranges for managed scaling, and its defaults where unset.
fn managed_scaling(given: Option<&ManagedScaling>) -> Result<ManagedScaling, EcsError> {
    let g = given.cloned().unwrap_or_default();
    let check = |v: Option<i32>, name: &str, lo: i32, hi: i32, default: i32| {
        let v = v.unwrap_or(default);
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(EcsError::invalid(format!(
                "managedScaling.{name} must be between {lo} and {hi}."
            )))
        }
    };
    let min = check(
        g.minimum_scaling_step_size,
        "minimumScalingStepSize",
        1,
        10000,
        1,
    )?;
    let max = check(
        g.maximum_scaling_step_size,
        "maximumScalingStepSize",
        1,
        10000,
        10000,
    )?;
    if min > max {
        return Err(EcsError::invalid(
            "managedScaling.minimumScalingStepSize can't be greater than maximumScalingStepSize.",
        ));
    }
    Ok(ManagedScaling {
        status: Some(
            g.status
                .or(given.map(|_| ManagedScalingStatus::Enabled))
                .unwrap_or(ManagedScalingStatus::Disabled),
        ),
        target_capacity: Some(check(g.target_capacity, "targetCapacity", 1, 100, 100)?),
        minimum_scaling_step_size: Some(min),
        maximum_scaling_step_size: Some(max),
        instance_warmup_period: Some(check(
            g.instance_warmup_period,
            "instanceWarmupPeriod",
            0,
            10000,
            300,
        )?),
    })
}

/// The stored providers of the caller's account and region, all statuses.
async fn stored(
    ecs: &Ecs,
    ctx: &RequestContext,
) -> Result<Vec<Versioned<CapacityProvider>>, EcsError> {
    let q = Query {
        limit: 100_000,
        ..Default::default()
    };
    records::list::<CapacityProvider>(ecs.store(), &scope(ctx), &q).await
}

/// An ACTIVE provider of the caller's account and region, by name or ARN.
pub(crate) async fn load_active(
    ecs: &Ecs,
    ctx: &RequestContext,
    given: &str,
) -> Result<Option<Versioned<CapacityProvider>>, EcsError> {
    let Some(name) = provider_name(ctx, given) else {
        return Ok(None);
    };
    Ok(load::<CapacityProvider>(ecs.store(), &scope(ctx), &name)
        .await?
        .filter(|p| p.value.status == Some(CapacityProviderStatus::Active)))
}

/// Whether `name` is a provider of the account: built in, or stored ACTIVE.
pub(crate) async fn exists(ecs: &Ecs, ctx: &RequestContext, name: &str) -> Result<bool, EcsError> {
    Ok(is_fargate(name) || load_active(ecs, ctx, name).await?.is_some())
}

/// A cluster's ACTIVE services (and those draining) that name `provider`
/// in the strategy of any of their deployments.
pub(crate) async fn services_using(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: Option<&str>,
    provider: &str,
) -> Result<Vec<String>, EcsError> {
    let q = Query {
        parent: cluster.map(str::to_string),
        limit: 100_000,
        ..Default::default()
    };
    let services = records::list::<ServiceDoc>(ecs.store(), &scope(ctx), &q).await?;
    Ok(services
        .into_iter()
        .filter(|d| !d.value.is("INACTIVE"))
        .filter(|d| {
            d.value.revisions.values().any(|r| {
                r.revision
                    .capacity_provider_strategy
                    .iter()
                    .flatten()
                    .any(|i| i.capacity_provider == provider)
            })
        })
        .map(|d| d.value.name)
        .collect())
}

pub async fn create(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: CreateCapacityProviderRequest,
) -> Result<CreateCapacityProviderResponse, EcsError> {
    let name = input.name.clone();
    validate_name(&name)?;
    if input.managed_instances_provider.is_some() {
        return Err(EcsError::UnsupportedFeature(
            "berth does not support managedInstancesProvider capacity providers yet; use an autoScalingGroupProvider with berth agents that join it.".into(),
        ));
    }
    let Some(asg) = input.auto_scaling_group_provider.clone() else {
        return Err(EcsError::invalid(
            "An autoScalingGroupProvider must be specified.",
        ));
    };
    if asg.auto_scaling_group_arn.is_empty() || asg.auto_scaling_group_arn.len() > 1600 {
        return Err(EcsError::invalid(
            "autoScalingGroupArn must be 1-1600 characters.",
        ));
    }
    let provider_tags = tags::initial(input.tags.as_ref())?;
    let asg = AutoScalingGroupProvider {
        managed_scaling: Some(managed_scaling(asg.managed_scaling.as_ref())?),
        managed_termination_protection: Some(
            asg.managed_termination_protection
                .unwrap_or(ManagedTerminationProtection::Disabled),
        ),
        managed_draining: Some(asg.managed_draining.unwrap_or(ManagedDraining::Enabled)),
        ..asg
    };
    let _serialized = ecs.lock(ctx, kind::CAPACITY_PROVIDER, "").await;
    let created = retry(ecs.store(), async || {
        let all = stored(ecs, ctx).await?;
        let active = |p: &&Versioned<CapacityProvider>| {
            p.value.status == Some(CapacityProviderStatus::Active)
        };
        if all.iter().filter(active).any(|p| p.value.id() == name) {
            return Err(EcsError::client(
                "The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.",
            ));
        }
        if all.iter().filter(active).any(|p| {
            p.value
                .auto_scaling_group_provider
                .as_ref()
                .is_some_and(|a| a.auto_scaling_group_arn == asg.auto_scaling_group_arn)
        }) {
            return Err(EcsError::client(
                "The specified Auto Scaling group ARN is already being used by another capacity provider. Specify a unique Auto Scaling group ARN and try again.",
            ));
        }
        let rec = Versioned {
            value: CapacityProvider {
                capacity_provider_arn: Some(capacity_provider_arn(ctx, &name)),
                name: Some(name.clone()),
                status: Some(CapacityProviderStatus::Active),
                auto_scaling_group_provider: Some(asg.clone()),
                tags: Some(provider_tags.clone()),
                r#type: Some(CapacityProviderType::Ec2Autoscaling),
                ..Default::default()
            },
            version: all
                .iter()
                .find(|p| p.value.id() == name)
                .map_or(0, |p| p.version),
        };
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![rec.write()],
            value: rec.value,
        })
    })
    .await?;
    Ok(CreateCapacityProviderResponse {
        capacity_provider: Some(created),
    })
}

/// Applies `change` to an ACTIVE stored provider, with optimistic retries.
async fn modify(
    ecs: &Ecs,
    ctx: &RequestContext,
    given: &str,
    change: impl Fn(&mut CapacityProvider) -> Result<(), EcsError>,
) -> Result<CapacityProvider, EcsError> {
    let _serialized = ecs.lock(ctx, kind::CAPACITY_PROVIDER, "").await;
    retry(ecs.store(), async || {
        let Some(mut p) = load_active(ecs, ctx, given).await? else {
            return Err(EcsError::invalid(format!(
                "The specified capacity provider does not exist. Specify a valid name or ARN and try again. {given}"
            )));
        };
        change(&mut p.value)?;
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![p.write()],
            value: p.value,
        })
    })
    .await
}

pub async fn update(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: UpdateCapacityProviderRequest,
) -> Result<UpdateCapacityProviderResponse, EcsError> {
    if is_fargate(&input.name) {
        return Err(EcsError::invalid(
            "The FARGATE and FARGATE_SPOT capacity providers can't be updated.",
        ));
    }
    if input.managed_instances_provider.is_some() {
        return Err(EcsError::UnsupportedFeature(
            "berth does not support managedInstancesProvider capacity providers yet.".into(),
        ));
    }
    let Some(update) = input.auto_scaling_group_provider.clone() else {
        return Err(EcsError::invalid(
            "An autoScalingGroupProvider must be specified.",
        ));
    };
    let p = modify(ecs, ctx, &input.name, |p| {
        let asg = p
            .auto_scaling_group_provider
            .get_or_insert_with(Default::default);
        if let Some(s) = &update.managed_scaling {
            // Unset members keep their values.
            let old = asg.managed_scaling.clone().unwrap_or_default();
            asg.managed_scaling = Some(managed_scaling(Some(&ManagedScaling {
                status: s.status.clone().or(old.status),
                target_capacity: s.target_capacity.or(old.target_capacity),
                minimum_scaling_step_size: s
                    .minimum_scaling_step_size
                    .or(old.minimum_scaling_step_size),
                maximum_scaling_step_size: s
                    .maximum_scaling_step_size
                    .or(old.maximum_scaling_step_size),
                instance_warmup_period: s.instance_warmup_period.or(old.instance_warmup_period),
            }))?);
        }
        if let Some(t) = &update.managed_termination_protection {
            asg.managed_termination_protection = Some(t.clone());
        }
        if let Some(d) = &update.managed_draining {
            asg.managed_draining = Some(d.clone());
        }
        p.update_status = Some(CapacityProviderUpdateStatus::UpdateComplete);
        Ok(())
    })
    .await?;
    Ok(UpdateCapacityProviderResponse {
        capacity_provider: Some(p),
    })
}

pub async fn delete(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DeleteCapacityProviderRequest,
) -> Result<DeleteCapacityProviderResponse, EcsError> {
    if is_fargate(&input.capacity_provider) {
        return Err(EcsError::invalid(
            "The FARGATE and FARGATE_SPOT capacity providers can't be deleted.",
        ));
    }
    let name = provider_name(ctx, &input.capacity_provider).unwrap_or_default();
    // Refused while a cluster or a service uses it, as ECS does.
    let q = Query {
        status: Some("ACTIVE".into()),
        limit: 100_000,
        ..Default::default()
    };
    let clusters = records::list::<Cluster>(ecs.store(), &scope(ctx), &q).await?;
    let associated = clusters.iter().any(|c| {
        c.value
            .capacity_providers
            .iter()
            .flatten()
            .any(|p| *p == name)
    });
    if associated || !services_using(ecs, ctx, None, &name).await?.is_empty() {
        return Err(EcsError::client(
            "The specified capacity provider is in use and cannot be removed.",
        ));
    }
    let mut p = modify(ecs, ctx, &input.capacity_provider, |p| {
        p.status = Some(CapacityProviderStatus::Inactive);
        p.update_status = Some(CapacityProviderUpdateStatus::DeleteComplete);
        Ok(())
    })
    .await?;
    p.tags = None;
    Ok(DeleteCapacityProviderResponse {
        capacity_provider: Some(p),
    })
}

/// FARGATE or FARGATE_SPOT as DescribeCapacityProviders lists them.
fn built_in(ctx: &RequestContext, name: &str) -> CapacityProvider {
    CapacityProvider {
        capacity_provider_arn: Some(capacity_provider_arn(ctx, name)),
        name: Some(name.to_string()),
        status: Some(CapacityProviderStatus::Active),
        tags: Some(vec![]),
        r#type: Some(if name == FARGATE {
            CapacityProviderType::Fargate
        } else {
            CapacityProviderType::FargateSpot
        }),
        ..Default::default()
    }
}

pub async fn describe(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: DescribeCapacityProvidersRequest,
) -> Result<DescribeCapacityProvidersResponse, EcsError> {
    let with_tags = input
        .include
        .iter()
        .flatten()
        .any(|f| *f == CapacityProviderField::Tags);
    let shown = |mut p: CapacityProvider| {
        if !with_tags {
            p.tags = None;
        }
        p
    };
    if let Some(names) = input.capacity_providers.as_ref().filter(|n| !n.is_empty()) {
        if input.max_results.is_some() || input.next_token.is_some() {
            return Err(EcsError::invalid(
                "maxResults and nextToken can't be used with capacityProviders.",
            ));
        }
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for given in names {
            let name = provider_name(ctx, given);
            let p = match name.as_deref() {
                Some(n) if is_fargate(n) => Some(built_in(ctx, n)),
                Some(n) => load::<CapacityProvider>(ecs.store(), &scope(ctx), n)
                    .await?
                    .map(|p| p.value),
                None => None,
            };
            match p {
                Some(p) => found.push(shown(p)),
                None => failures.push(Failure {
                    arn: Some(given.clone()),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        return Ok(DescribeCapacityProvidersResponse {
            capacity_providers: Some(found),
            failures: Some(failures),
            next_token: None,
        });
    }
    let limit = page_size(input.max_results, 10, 10)?;
    let pager = ecs.pager(ctx, "DescribeCapacityProviders", "", limit);
    let after = pager.start(input.next_token.as_deref())?;
    // The built-in ones first, then the account's by name.
    let mut all: Vec<(String, CapacityProvider)> = [FARGATE, FARGATE_SPOT]
        .iter()
        .map(|n| (format!("0{n}"), built_in(ctx, n)))
        .collect();
    all.extend(
        stored(ecs, ctx)
            .await?
            .into_iter()
            .filter(|p| p.value.status == Some(CapacityProviderStatus::Active))
            .map(|p| (format!("1{}", p.value.id()), p.value)),
    );
    let mut page: Vec<(String, CapacityProvider)> = all
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .take(limit + 1)
        .collect();
    let next_token = pager.finish(&mut page, |(k, _)| k.clone());
    Ok(DescribeCapacityProvidersResponse {
        capacity_providers: Some(page.into_iter().map(|(_, p)| shown(p)).collect()),
        failures: Some(vec![]),
        next_token,
    })
}

/// A cluster's Auto Scaling group providers and the instances that joined
/// each, for the engines of managed scaling, termination protection and
/// draining.
pub(crate) async fn pool(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &Cluster,
) -> Result<Vec<(CapacityProvider, Vec<InstanceDoc>)>, EcsError> {
    let q = Query {
        parent: Some(cluster.id()),
        limit: 100_000,
        ..Default::default()
    };
    let instances = records::list::<InstanceDoc>(ecs.store(), &scope(ctx), &q).await?;
    let mut out = Vec::new();
    for name in cluster.capacity_providers.iter().flatten() {
        if let Some(p) = load_active(ecs, ctx, name).await? {
            let joined = instances
                .iter()
                .filter(|d| d.value.instance.capacity_provider_name.as_deref() == Some(name))
                .map(|d| d.value.clone())
                .collect();
            out.push((p.value, joined));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ecs_rules() {
        assert!(validate_name("pool-1_a").is_ok());
        for bad in [
            "",
            "aws-pool",
            "ECS1",
            "Fargate-x",
            "with space",
            &"a".repeat(256),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn another_accounts_arn_names_nothing() {
        let ctx = RequestContext::for_account("111111111111", "us-east-1");
        let own = "arn:aws:ecs:us-east-1:111111111111:capacity-provider/pool";
        let other = "arn:aws:ecs:us-east-1:222222222222:capacity-provider/pool";
        assert_eq!(provider_name(&ctx, own).as_deref(), Some("pool"));
        assert_eq!(provider_name(&ctx, other), None);
        assert_eq!(provider_name(&ctx, "pool").as_deref(), Some("pool"));
    }

    #[test]
    fn managed_scaling_gets_ecs_defaults_and_ranges() {
        let m = managed_scaling(None).unwrap();
        assert_eq!(m.status, Some(ManagedScalingStatus::Disabled));
        assert_eq!(m.target_capacity, Some(100));
        assert_eq!(m.instance_warmup_period, Some(300));
        let bad = ManagedScaling {
            target_capacity: Some(0),
            ..Default::default()
        };
        assert!(managed_scaling(Some(&bad)).is_err());
    }
}
