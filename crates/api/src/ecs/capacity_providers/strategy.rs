//! A launch's capacity: a launch type, or a capacity provider strategy
//! (the request's, else the cluster's default) checked as ECS checks it,
//! and the share of a launch's tasks each of its providers gets.

use super::is_fargate;
use berth_core::EcsError;
use berth_scheduler::capacity::{distribute, Share};
use berth_wire::ecs::*;

/// ECS's limit on the items of one strategy.
pub const MAX_ITEMS: usize = 20;

/// What a launch runs on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Capacity {
    LaunchType(LaunchType),
    Strategy(Vec<CapacityProviderStrategyItem>),
}

/// One provider's part of a launch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Part {
    /// `None`: a plain launch type, no provider.
    pub provider: Option<String>,
    pub launch_type: LaunchType,
    pub count: u32,
}

/// The launch type a provider's tasks have: FARGATE on the built-in ones,
/// EC2 on an Auto Scaling group's instances.
pub(crate) fn launch_type_of_provider(name: &str) -> LaunchType {
    if is_fargate(name) {
        LaunchType::Fargate
    } else {
        LaunchType::Ec2
    }
}

impl Capacity {
    /// The request's `launchType` or strategy, else the cluster's default
    /// strategy, else EC2; checked.
    pub fn resolve(
        launch_type: Option<&LaunchType>,
        strategy: Option<&Vec<CapacityProviderStrategyItem>>,
        cluster: &Cluster,
    ) -> Result<Capacity, EcsError> {
        let given = strategy.filter(|s| !s.is_empty());
        if launch_type.is_some() && given.is_some() {
            return Err(EcsError::invalid(
                "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.",
            ));
        }
        if let Some(lt) = launch_type {
            return match lt {
                LaunchType::Ec2 | LaunchType::Fargate | LaunchType::External => {
                    Ok(Capacity::LaunchType(lt.clone()))
                }
                other => Err(EcsError::invalid(format!(
                    "launchType {other} is not supported by berth."
                ))),
            };
        }
        let items = given
            .or(cluster.default_capacity_provider_strategy.as_ref())
            .filter(|s| !s.is_empty());
        let Some(items) = items else {
            return Ok(Capacity::LaunchType(LaunchType::Ec2));
        };
        validate(
            items,
            cluster.capacity_providers.as_deref().unwrap_or_default(),
        )?;
        Ok(Capacity::Strategy(items.clone()))
    }

    /// The launch type a service or launch is checked against: the first
    /// provider's (a mixed strategy's parts still launch each with their
    /// provider's own launch type: see [`Capacity::split`]).
    pub fn launch_type(&self) -> LaunchType {
        match self {
            Capacity::LaunchType(lt) => lt.clone(),
            Capacity::Strategy(items) => launch_type_of_provider(&items[0].capacity_provider),
        }
    }

    /// How `count` new tasks split over the providers, given the tasks
    /// each provider already runs (`running`: a service's live tasks).
    /// Providers that get none are left out.
    pub fn split(&self, count: u32, running: impl Fn(&str) -> u32) -> Vec<Part> {
        let items = match self {
            Capacity::LaunchType(lt) => {
                return vec![Part {
                    provider: None,
                    launch_type: lt.clone(),
                    count,
                }]
            }
            Capacity::Strategy(items) => items,
        };
        let shares: Vec<Share> = items
            .iter()
            .map(|i| Share {
                base: i.base.unwrap_or(0).max(0) as u32,
                weight: match (items.len(), i.weight.unwrap_or(0).max(0)) {
                    (1, 0) => 1,
                    (_, w) => w as u32,
                },
            })
            .collect();
        let now: Vec<u32> = items
            .iter()
            .map(|i| running(&i.capacity_provider))
            .collect();
        let counts = distribute(&shares, &now, count).unwrap_or_else(|| vec![0; items.len()]);
        items
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(i, n)| Part {
                provider: Some(i.capacity_provider.clone()),
                launch_type: launch_type_of_provider(&i.capacity_provider),
                count: n,
            })
            .collect()
    }
}

/// ECS's rules for a strategy over a cluster's `associated` providers.
/// FARGATE and FARGATE_SPOT are accepted without being associated (berth
/// has always run them so); an Auto Scaling group provider must be.
pub(crate) fn validate(
    items: &[CapacityProviderStrategyItem],
    associated: &[String],
) -> Result<(), EcsError> {
    if items.len() > MAX_ITEMS {
        return Err(EcsError::invalid(format!(
            "The capacity provider strategy can contain a maximum of {MAX_ITEMS} capacity providers."
        )));
    }
    for (n, item) in items.iter().enumerate() {
        if item.weight.is_some_and(|w| !(0..=1000).contains(&w))
            || item.base.is_some_and(|b| !(0..=100000).contains(&b))
        {
            return Err(EcsError::invalid(
                "Capacity provider strategy weight must be 0-1000 and base 0-100000.",
            ));
        }
        if items[..n]
            .iter()
            .any(|i| i.capacity_provider == item.capacity_provider)
        {
            return Err(EcsError::invalid(format!(
                "The capacity provider '{}' is specified more than once in the capacity provider strategy.",
                item.capacity_provider
            )));
        }
        if !is_fargate(&item.capacity_provider) && !associated.contains(&item.capacity_provider) {
            return Err(EcsError::invalid(
                "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.",
            ));
        }
    }
    if items.iter().filter(|i| i.base.unwrap_or(0) > 0).count() > 1 {
        return Err(EcsError::invalid(
            "Only one capacity provider in a capacity provider strategy can have a base defined.",
        ));
    }
    // A lone provider takes every task whatever its weight (the common
    // `capacityProvider=FARGATE_SPOT` with no weight runs, as on ECS).
    if items.len() > 1 && !items.iter().any(|i| i.weight.unwrap_or(0) > 0) {
        return Err(EcsError::invalid(
            "At least one capacity provider in a capacity provider strategy must have a weight greater than zero.",
        ));
    }
    // ECS refuses a strategy mixing Fargate with Auto Scaling group
    // providers; berth allows it (issue 11: base on FARGATE, the rest
    // weighted over FARGATE_SPOT and an agent pool), since both are its
    // own capacity. Each provider's part launches with its own launch type.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, base: i32, weight: i32) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem {
            capacity_provider: name.into(),
            base: Some(base),
            weight: Some(weight),
        }
    }

    fn cluster(providers: &[&str]) -> Cluster {
        Cluster {
            capacity_providers: Some(providers.iter().map(|p| p.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn a_strategy_splits_base_then_weights() {
        let c = cluster(&["FARGATE", "FARGATE_SPOT"]);
        let s = vec![item("FARGATE", 2, 1), item("FARGATE_SPOT", 0, 3)];
        let cap = Capacity::resolve(None, Some(&s), &c).unwrap();
        assert_eq!(cap.launch_type(), LaunchType::Fargate);
        let parts = cap.split(6, |_| 0);
        let counts: Vec<(Option<&str>, u32)> = parts
            .iter()
            .map(|p| (p.provider.as_deref(), p.count))
            .collect();
        assert_eq!(
            counts,
            vec![(Some("FARGATE"), 3), (Some("FARGATE_SPOT"), 3)]
        );
    }

    #[test]
    fn the_cluster_default_applies_when_nothing_is_given() {
        let mut c = cluster(&["pool"]);
        c.default_capacity_provider_strategy = Some(vec![item("pool", 0, 1)]);
        let cap = Capacity::resolve(None, None, &c).unwrap();
        assert_eq!(cap.launch_type(), LaunchType::Ec2);
        assert_eq!(cap.split(2, |_| 0)[0].provider.as_deref(), Some("pool"));
        let none = Capacity::resolve(None, None, &cluster(&[])).unwrap();
        assert_eq!(none, Capacity::LaunchType(LaunchType::Ec2));
    }

    #[test]
    fn ecs_refuses_these_strategies() {
        let c = cluster(&["pool", "other"]);
        let refused = |s: Vec<CapacityProviderStrategyItem>| {
            Capacity::resolve(None, Some(&s), &c)
                .unwrap_err()
                .to_string()
        };
        // berth, unlike ECS, lets Fargate and agent pools share a strategy.
        let mixed = vec![item("FARGATE", 2, 0), item("FARGATE_SPOT", 0, 1), item("pool", 0, 3)];
        let parts = Capacity::resolve(None, Some(&mixed), &c).unwrap().split(10, |_| 0);
        let got: Vec<_> = parts
            .iter()
            .map(|p| (p.provider.as_deref().unwrap(), p.launch_type.clone(), p.count))
            .collect();
        assert_eq!(
            got,
            vec![
                ("FARGATE", LaunchType::Fargate, 2),
                ("FARGATE_SPOT", LaunchType::Fargate, 2),
                ("pool", LaunchType::Ec2, 6)
            ]
        );
        assert!(refused(vec![item("pool", 1, 1), item("other", 1, 1)]).contains("Only one"));
        assert!(refused(vec![item("pool", 1, 0), item("other", 0, 0)])
            .contains("weight greater than zero"));
        // A lone provider needs no weight.
        let lone = Capacity::resolve(None, Some(&vec![item("pool", 0, 0)]), &c).unwrap();
        assert_eq!(lone.split(3, |_| 0)[0].count, 3);
        assert!(refused(vec![item("elsewhere", 0, 1)]).contains("not associated"));
        assert!(refused(vec![item("pool", 0, 1001)]).contains("0-1000"));
        assert!(refused(vec![item("pool", 0, 1), item("pool", 0, 1)]).contains("more than once"));
        let many: Vec<_> = (0..21).map(|n| item(&format!("p{n}"), 0, 1)).collect();
        assert!(refused(many).contains("maximum of 20"));
        let both = Capacity::resolve(Some(&LaunchType::Ec2), Some(&vec![item("pool", 0, 1)]), &c);
        assert!(both.unwrap_err().to_string().contains("both a launch type"));
    }
}
