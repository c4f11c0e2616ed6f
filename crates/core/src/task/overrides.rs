//! A container's settings once the task's overrides apply.

use crate::EcsError;
use berth_wire::ecs::{ContainerDefinition, KeyValuePair, TaskDefinition, TaskOverride};

/// A container's settings after the task's overrides apply.
pub fn effective_container(
    def: &ContainerDefinition,
    overrides: Option<&TaskOverride>,
) -> ContainerDefinition {
    let mut c = def.clone();
    let Some(o) = overrides
        .and_then(|o| o.container_overrides.as_ref())
        .and_then(|list| list.iter().find(|o| o.name.is_some() && o.name == def.name))
    else {
        return c;
    };
    if let Some(cmd) = &o.command {
        c.command = Some(cmd.clone());
    }
    if let Some(env) = &o.environment {
        // Overrides add to and replace the definition's variables by name.
        let mut merged: Vec<KeyValuePair> = c.environment.take().unwrap_or_default();
        for kv in env {
            match merged.iter_mut().find(|e| e.name == kv.name) {
                Some(e) => e.value = kv.value.clone(),
                None => merged.push(kv.clone()),
            }
        }
        c.environment = Some(merged);
    }
    if o.cpu.is_some() {
        c.cpu = o.cpu;
    }
    if o.memory.is_some() {
        c.memory = o.memory;
    }
    if o.memory_reservation.is_some() {
        c.memory_reservation = o.memory_reservation;
    }
    c
}

/// Checks that every container override names a container of the task.
pub fn validate_overrides(
    td: &TaskDefinition,
    overrides: Option<&TaskOverride>,
) -> Result<(), EcsError> {
    let names: Vec<&str> = td
        .container_definitions
        .iter()
        .flatten()
        .filter_map(|c| c.name.as_deref())
        .collect();
    for o in overrides
        .and_then(|o| o.container_overrides.as_ref())
        .into_iter()
        .flatten()
    {
        let n = o.name.as_deref().unwrap_or("");
        if !names.contains(&n) {
            return Err(EcsError::invalid(format!(
                "Override for container named {n} is not a container in the TaskDefinition."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::tests::td;
    use berth_wire::ecs::{ContainerOverride, NetworkMode};

    #[test]
    fn overrides_apply_by_container_name() {
        let t = td(NetworkMode::Bridge);
        let o = TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: Some("web".into()),
                command: Some(vec!["echo".into(), "hi".into()]),
                environment: Some(vec![
                    KeyValuePair {
                        name: Some("A".into()),
                        value: Some("2".into()),
                    },
                    KeyValuePair {
                        name: Some("B".into()),
                        value: Some("3".into()),
                    },
                ]),
                memory: Some(1024),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let web = effective_container(&t.container_definitions.as_ref().unwrap()[0], Some(&o));
        assert_eq!(
            web.command.as_deref(),
            Some(&["echo".to_string(), "hi".to_string()][..])
        );
        let env = web.environment.unwrap();
        assert_eq!(env.len(), 2);
        assert_eq!(env[0].value.as_deref(), Some("2"));
        assert_eq!(web.memory, Some(1024));
        let side = effective_container(&t.container_definitions.as_ref().unwrap()[1], Some(&o));
        assert_eq!(side.command, None);
        assert!(validate_overrides(&t, Some(&o)).is_ok());
        let bad = TaskOverride {
            container_overrides: Some(vec![ContainerOverride {
                name: Some("nope".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            validate_overrides(&t, Some(&bad)).unwrap_err().aws_code(),
            "InvalidParameterException"
        );
    }
}
