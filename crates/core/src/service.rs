//! Service rules that need no I/O: deployment ids, the deployment
//! configuration ECS accepts and the defaults it fills in, and the texts
//! ECS uses for what the service scheduler does.

use crate::EcsError;
use berth_wire::ecs::{
    DeploymentAlarms, DeploymentCircuitBreaker, DeploymentConfiguration,
    DeploymentLifecycleHookTargetType, DeploymentStrategy,
};

/// The statuses a service moves through: ACTIVE, then DRAINING once
/// deleted while it still has tasks, then INACTIVE.
pub mod status {
    pub const ACTIVE: &str = "ACTIVE";
    pub const DRAINING: &str = "DRAINING";
    pub const INACTIVE: &str = "INACTIVE";
}

/// Deployment statuses in a service's `deployments`.
pub mod deployment_status {
    pub const PRIMARY: &str = "PRIMARY";
    pub const ACTIVE: &str = "ACTIVE";
    pub const INACTIVE: &str = "INACTIVE";
}

/// A deployment id as ECS makes them: `ecs-svc/` and a positive 63-bit
/// number of 19 digits, from a random number the caller draws.
pub fn deployment_id(random: u64) -> String {
    const LOW: u64 = 1_000_000_000_000_000_000;
    let span = i64::MAX as u64 - LOW + 1;
    format!("ecs-svc/{}", LOW + random % span)
}

/// Which kind of service a configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Replica,
    Daemon,
    /// EXTERNAL deployment controller (task sets).
    External,
}

const MAX_BAKE_MINUTES: i32 = 1440;

/// Checks a `deploymentConfiguration` and fills in ECS's defaults (what
/// DescribeServices shows). `current` is the service's configuration for
/// UpdateService: members not given keep their values.
pub fn deployment_configuration(
    input: Option<&DeploymentConfiguration>,
    kind: Kind,
    current: Option<&DeploymentConfiguration>,
) -> Result<DeploymentConfiguration, EcsError> {
    let base = current.cloned().unwrap_or_else(|| defaults(kind));
    let Some(i) = input else {
        return Ok(base);
    };
    let mut c = base;
    if let Some(min) = i.minimum_healthy_percent {
        if min > 100 {
            return Err(EcsError::invalid(
                "minimumHealthyPercent must be at most 100",
            ));
        }
        if min < 0 {
            return Err(EcsError::invalid(
                "minimumHealthyPercent must be at least 0",
            ));
        }
        c.minimum_healthy_percent = Some(min);
    }
    if let Some(max) = i.maximum_percent {
        match kind {
            Kind::Daemon if max > 100 => return Err(EcsError::invalid(
                "The daemon scheduling strategy does not support values above 100 for maximumPercent on a deployment configuration. Change the maximumPercent value to 100, and try again",
            )),
            Kind::Daemon if max < 0 => {
                return Err(EcsError::invalid("maximumPercent must be at least 0"))
            }
            Kind::Daemon => {}
            // Below 100 % a REPLICA service could never run its desired count.
            _ if max < 100 => {
                return Err(EcsError::invalid("maximumPercent must be at least 100"))
            }
            _ => {}
        }
        c.maximum_percent = Some(max);
    }
    if kind != Kind::Daemon
        && c.minimum_healthy_percent == Some(100)
        && c.maximum_percent == Some(100)
    {
        return Err(EcsError::invalid(
            "Both maximumPercent and minimumHealthyPercent cannot be 100 as this will block deployments.",
        ));
    }
    if let Some(b) = &i.deployment_circuit_breaker {
        if kind == Kind::External && b.enable {
            return Err(EcsError::invalid(
                "The deployment circuit breaker is only supported for services using the ECS deployment controller.",
            ));
        }
        c.deployment_circuit_breaker = Some(b.clone());
    }
    if let Some(a) = &i.alarms {
        if a.enable {
            return Err(EcsError::invalid(
                "CloudWatch alarms are not available in berth, so a deployment cannot be monitored by them: set alarms.enable to false or leave alarms out.",
            ));
        }
        c.alarms = Some(a.clone());
    }
    if let Some(s) = &i.strategy {
        if !s.is_known() {
            return Err(EcsError::invalid(format!(
                "Invalid deployment strategy '{s}'."
            )));
        }
        if *s != DeploymentStrategy::Rolling && kind != Kind::Replica {
            return Err(EcsError::invalid(format!(
                "The {s} deployment strategy is only supported for REPLICA services using the ECS deployment controller."
            )));
        }
        c.strategy = Some(s.clone());
    }
    if let Some(b) = i.bake_time_in_minutes {
        if !(0..=MAX_BAKE_MINUTES).contains(&b) {
            return Err(EcsError::invalid(
                "bakeTimeInMinutes must be between 0 and 1440.",
            ));
        }
        c.bake_time_in_minutes = Some(b);
    }
    if let Some(hooks) = &i.lifecycle_hooks {
        if let Some(h) = hooks.first() {
            let target = h
                .target_type
                .clone()
                .unwrap_or(DeploymentLifecycleHookTargetType::AwsLambda);
            return Err(EcsError::invalid(match target {
                DeploymentLifecycleHookTargetType::AwsLambda => format!(
                    "Deployment lifecycle hooks invoke Lambda functions, and berth runs no Lambda: the hook {} cannot run here. Remove lifecycleHooks.",
                    h.hook_target_arn.as_deref().unwrap_or("(no hookTargetArn)")
                ),
                other => format!(
                    "Deployment lifecycle hooks of type {other} are not supported by berth."
                ),
            }));
        }
        c.lifecycle_hooks = Some(vec![]);
    }
    if let Some(l) = &i.linear_configuration {
        if let Some(p) = l.step_percent {
            if !(3.0..=100.0).contains(&p) || !is_tenth(p) {
                return Err(EcsError::invalid(
                    "linearConfiguration.stepPercent must be a multiple of 0.1 from 3.0 to 100.0.",
                ));
            }
        }
        if l.step_bake_time_in_minutes
            .is_some_and(|b| !(0..=MAX_BAKE_MINUTES).contains(&b))
        {
            return Err(EcsError::invalid(
                "linearConfiguration.stepBakeTimeInMinutes must be between 0 and 1440.",
            ));
        }
        c.linear_configuration = Some(l.clone());
    }
    if let Some(k) = &i.canary_configuration {
        if let Some(p) = k.canary_percent {
            if !(0.1..=100.0).contains(&p) || !is_tenth(p) {
                return Err(EcsError::invalid(
                    "canaryConfiguration.canaryPercent must be a multiple of 0.1 from 0.1 to 100.0.",
                ));
            }
        }
        if k.canary_bake_time_in_minutes
            .is_some_and(|b| !(0..=MAX_BAKE_MINUTES).contains(&b))
        {
            return Err(EcsError::invalid(
                "canaryConfiguration.canaryBakeTimeInMinutes must be between 0 and 1440.",
            ));
        }
        c.canary_configuration = Some(k.clone());
    }
    let strategy = c.strategy.clone().unwrap_or(DeploymentStrategy::Rolling);
    if c.linear_configuration.is_some() && strategy != DeploymentStrategy::Linear {
        return Err(EcsError::invalid(
            "linearConfiguration is only valid with the LINEAR deployment strategy.",
        ));
    }
    if c.canary_configuration.is_some() && strategy != DeploymentStrategy::Canary {
        return Err(EcsError::invalid(
            "canaryConfiguration is only valid with the CANARY deployment strategy.",
        ));
    }
    Ok(c)
}

fn is_tenth(p: f64) -> bool {
    ((p * 10.0).round() - p * 10.0).abs() < 1e-6
}

/// What ECS shows for a service created without a deployment configuration.
pub fn defaults(kind: Kind) -> DeploymentConfiguration {
    let (min, max) = match kind {
        Kind::Daemon => (0, 100),
        Kind::Replica | Kind::External => (100, 200),
    };
    DeploymentConfiguration {
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: false,
            rollback: false,
        }),
        maximum_percent: Some(max),
        minimum_healthy_percent: Some(min),
        strategy: (kind != Kind::External).then_some(DeploymentStrategy::Rolling),
        bake_time_in_minutes: (kind != Kind::External).then_some(0),
        ..Default::default()
    }
}

/// The bake times and step sizes of a configuration, in milliseconds and
/// percent, with ECS's defaults for what is not given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timings {
    pub bake_ms: i64,
    pub linear_step_percent: f64,
    pub linear_step_bake_ms: i64,
    pub canary_percent: f64,
    pub canary_bake_ms: i64,
}

pub fn timings(c: &DeploymentConfiguration) -> Timings {
    let minutes = |m: i32| i64::from(m) * 60_000;
    let linear = c.linear_configuration.as_ref();
    let canary = c.canary_configuration.as_ref();
    Timings {
        bake_ms: minutes(c.bake_time_in_minutes.unwrap_or(0)),
        linear_step_percent: linear.and_then(|l| l.step_percent).unwrap_or(10.0),
        linear_step_bake_ms: minutes(
            linear
                .and_then(|l| l.step_bake_time_in_minutes)
                .unwrap_or(6),
        ),
        canary_percent: canary.and_then(|k| k.canary_percent).unwrap_or(5.0),
        canary_bake_ms: minutes(
            canary
                .and_then(|k| k.canary_bake_time_in_minutes)
                .unwrap_or(10),
        ),
    }
}

/// Whether the circuit breaker is on, and with rollback.
pub fn circuit_breaker(c: &DeploymentConfiguration) -> Option<bool> {
    c.deployment_circuit_breaker
        .as_ref()
        .filter(|b| b.enable)
        .map(|b| b.rollback)
}

/// An `alarms` member that asks for nothing (shown as given).
pub fn alarms_off(a: &DeploymentAlarms) -> bool {
    !a.enable
}

/// Task scale-in protection: ECS's default and longest `expiresInMinutes`.
pub mod protection {
    pub const DEFAULT_MINUTES: i32 = 120;
    pub const MAX_MINUTES: i32 = 2880;
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::ecs::{CanaryConfiguration, DeploymentLifecycleHook};

    #[test]
    fn deployment_ids_look_like_ecs_ones() {
        for r in [0, 1, u64::MAX, u64::MAX - 1, 123_456_789, i64::MAX as u64] {
            let id = deployment_id(r);
            let digits = id.strip_prefix("ecs-svc/").unwrap();
            assert_eq!(digits.len(), 19, "{id}");
            assert!(digits.parse::<i64>().is_ok(), "{id} fits ECS's 63 bits");
        }
    }

    #[test]
    fn defaults_follow_the_scheduling_strategy() {
        let r = deployment_configuration(None, Kind::Replica, None).unwrap();
        assert_eq!(
            (r.minimum_healthy_percent, r.maximum_percent),
            (Some(100), Some(200))
        );
        let d = deployment_configuration(None, Kind::Daemon, None).unwrap();
        assert_eq!(
            (d.minimum_healthy_percent, d.maximum_percent),
            (Some(0), Some(100))
        );
        assert_eq!(circuit_breaker(&r), None);
    }

    #[test]
    fn updates_keep_what_they_do_not_name() {
        let first = DeploymentConfiguration {
            minimum_healthy_percent: Some(50),
            deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                enable: true,
                rollback: true,
            }),
            ..Default::default()
        };
        let c = deployment_configuration(Some(&first), Kind::Replica, None).unwrap();
        let later = DeploymentConfiguration {
            maximum_percent: Some(150),
            ..Default::default()
        };
        let c = deployment_configuration(Some(&later), Kind::Replica, Some(&c)).unwrap();
        assert_eq!(
            (c.minimum_healthy_percent, c.maximum_percent),
            (Some(50), Some(150))
        );
        assert_eq!(circuit_breaker(&c), Some(true));
    }

    #[test]
    fn what_berth_cannot_do_is_refused() {
        let bad = [
            DeploymentConfiguration {
                minimum_healthy_percent: Some(101),
                ..Default::default()
            },
            DeploymentConfiguration {
                maximum_percent: Some(50),
                ..Default::default()
            },
            DeploymentConfiguration {
                alarms: Some(DeploymentAlarms {
                    alarm_names: vec!["a".into()],
                    rollback: true,
                    enable: true,
                }),
                ..Default::default()
            },
            DeploymentConfiguration {
                lifecycle_hooks: Some(vec![DeploymentLifecycleHook {
                    hook_target_arn: Some("arn:aws:lambda:us-east-1:1:function:f".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            DeploymentConfiguration {
                canary_configuration: Some(CanaryConfiguration {
                    canary_percent: Some(5.0),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        for c in bad {
            let e = deployment_configuration(Some(&c), Kind::Replica, None).unwrap_err();
            assert_eq!(e.aws_code(), "InvalidParameterException", "{c:?}");
        }
        let daemon = DeploymentConfiguration {
            maximum_percent: Some(200),
            ..Default::default()
        };
        assert!(deployment_configuration(Some(&daemon), Kind::Daemon, None).is_err());
    }

    #[test]
    fn timings_default_as_ecs_does() {
        let t = timings(&defaults(Kind::Replica));
        assert_eq!(t.linear_step_percent, 10.0);
        assert_eq!(t.linear_step_bake_ms, 6 * 60_000);
        assert_eq!(t.canary_percent, 5.0);
        assert_eq!(t.canary_bake_ms, 10 * 60_000);
    }
}
