//! Account settings: which names exist, which values each takes, and the
//! value ECS uses when nobody has set one.

use crate::EcsError;
use berth_wire::ecs::SettingName;

/// The values a setting accepts and its AWS default.
pub fn rule(name: &SettingName) -> Option<(&'static [&'static str], &'static str)> {
    use SettingName::*;
    Some(match name {
        ServiceLongArnFormat | TaskLongArnFormat | ContainerInstanceLongArnFormat => {
            (&["enabled", "disabled"], "enabled")
        }
        AwsvpcTrunking | FargateFipsMode | FargateEventWindows => {
            (&["enabled", "disabled"], "disabled")
        }
        ContainerInsights => (&["enabled", "disabled", "enhanced"], "disabled"),
        TagResourceAuthorization => (&["on", "off"], "on"),
        FargateTaskRetirementWaitPeriod => (&["0", "7", "14"], "7"),
        GuardDutyActivate => (&["on", "off"], "off"),
        DefaultLogDriverMode => (&["blocking", "non-blocking"], "blocking"),
        Unknown(_) => return None,
    })
}

/// Every setting name berth knows, in model order.
pub fn all() -> Vec<SettingName> {
    SettingName::VALUES
        .iter()
        .map(|v| SettingName::from(*v))
        .collect()
}

pub fn validate(name: &SettingName, value: &str) -> Result<(), EcsError> {
    let (values, _) = rule(name).ok_or_else(|| {
        EcsError::invalid(format!(
            "Invalid setting name '{}'. Valid names: {}",
            name.as_str(),
            SettingName::VALUES.join(", ")
        ))
    })?;
    if !values.contains(&value) {
        return Err(EcsError::invalid(format!(
            "Invalid value '{value}' for setting '{}'. Valid values: {}",
            name.as_str(),
            values.join(", ")
        )));
    }
    if matches!(name, SettingName::GuardDutyActivate) {
        return Err(EcsError::invalid(
            "guardDutyActivate is managed by AWS and cannot be set.".to_string(),
        ));
    }
    Ok(())
}

/// Settings ECS manages on the account's behalf are reported as `aws_managed`.
pub fn is_aws_managed(name: &SettingName) -> bool {
    matches!(name, SettingName::GuardDutyActivate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_has_a_rule() {
        for n in all() {
            assert!(rule(&n).is_some(), "{n}");
        }
        assert!(validate(&SettingName::ContainerInsights, "enhanced").is_ok());
        assert!(validate(&SettingName::ContainerInsights, "on").is_err());
        assert!(validate(&SettingName::from("nope"), "x").is_err());
    }
}
