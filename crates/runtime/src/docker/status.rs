//! Docker's view of a container (`GET /containers/{id}/json`) as a
//! [`ContainerStatus`]. Pure, so it is tested without an engine.

use crate::{
    ContainerKey, ContainerState, ContainerStatus, Health, PortBinding, Protocol, LABEL_CONTAINER,
};
use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum, PortMap,
};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// ECS's reason for a container the kernel killed for its memory limit.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// Docker's RFC 3339 timestamps; its zero time (`0001-01-01T00:00:00Z`)
/// means "never".
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let nanos = t.unix_timestamp_nanos();
    if nanos <= 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_nanos(nanos as u64))
}

/// Published ports as Docker bound them, one per address family folded
/// into one (Docker binds 0.0.0.0 and :: separately).
pub fn port_bindings(ports: Option<&PortMap>) -> Vec<PortBinding> {
    let mut out: Vec<PortBinding> = Vec::new();
    for (key, bindings) in ports.into_iter().flatten() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<u16>() else {
            continue;
        };
        let protocol = if proto == "udp" {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        for b in bindings.iter().flatten() {
            let Some(host_port) = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let ip = b.host_ip.clone().unwrap_or_default();
            if ip.contains(':') {
                continue; // the IPv6 twin of an IPv4 binding
            }
            let b = PortBinding {
                bind_ip: if ip.is_empty() { "0.0.0.0".into() } else { ip },
                container_port,
                host_port,
                protocol,
            };
            if !out.contains(&b) {
                out.push(b);
            }
        }
    }
    out.sort_by_key(|b| (b.container_port, b.host_port));
    out
}

/// A host-mode container's ports (its exposed ones) are host ports.
fn host_ports(exposed: Option<&Vec<String>>) -> Vec<PortBinding> {
    let mut out: Vec<PortBinding> = exposed
        .into_iter()
        .flatten()
        .filter_map(|key| {
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            let port = port.parse::<u16>().ok()?;
            Some(PortBinding {
                bind_ip: "0.0.0.0".into(),
                container_port: port,
                host_port: port,
                protocol: if proto == "udp" {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
            })
        })
        .collect();
    out.sort_by_key(|b| b.container_port);
    out
}

/// `None` when the container is not one of berth's (no container label).
pub fn from_inspect(c: &ContainerInspectResponse) -> Option<ContainerStatus> {
    let labels: BTreeMap<String, String> = c
        .config
        .as_ref()
        .and_then(|cfg| cfg.labels.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let container = labels.get(LABEL_CONTAINER)?.clone();
    let task_id = labels
        .get(crate::LABEL_TASK_ARN)
        .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_string())?;
    let st = c.state.clone().unwrap_or_default();
    let started_at = st.started_at.as_deref().and_then(parse_time);
    let state = match st.status {
        Some(ContainerStateStatusEnum::CREATED) | Some(ContainerStateStatusEnum::EMPTY) | None => {
            ContainerState::Created
        }
        Some(ContainerStateStatusEnum::RUNNING)
        | Some(ContainerStateStatusEnum::PAUSED)
        | Some(ContainerStateStatusEnum::RESTARTING)
        | Some(ContainerStateStatusEnum::STOPPING) => ContainerState::Running {
            pid: st.pid.and_then(|p| u32::try_from(p).ok()),
            started_at: started_at.unwrap_or_else(SystemTime::now),
        },
        Some(ContainerStateStatusEnum::EXITED)
        | Some(ContainerStateStatusEnum::DEAD)
        | Some(ContainerStateStatusEnum::REMOVING) => {
            let exit_code = st.exit_code.map(|c| c as i32);
            let reason = if st.oom_killed == Some(true) {
                Some(OOM_REASON.to_string())
            } else {
                st.error.clone().filter(|e| !e.is_empty())
            };
            ContainerState::Exited {
                exit_code,
                // Docker reports 128 + n for a signal; it does not say which.
                signal: exit_code.filter(|c| *c > 128 && *c < 160).map(|c| c - 128),
                started_at,
                finished_at: st
                    .finished_at
                    .as_deref()
                    .and_then(parse_time)
                    .unwrap_or_else(SystemTime::now),
                reason,
            }
        }
    };
    let health = match st.health.and_then(|h| h.status) {
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => Health::Unknown,
    };
    let host_mode = c
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.as_deref())
        == Some("host");
    let ports = match state {
        ContainerState::Running { .. } if host_mode => {
            host_ports(c.config.as_ref().and_then(|cfg| cfg.exposed_ports.as_ref()))
        }
        ContainerState::Running { .. } => {
            port_bindings(c.network_settings.as_ref().and_then(|n| n.ports.as_ref()))
        }
        _ => Vec::new(),
    };
    Some(ContainerStatus {
        key: ContainerKey::new(task_id, container),
        id: c.id.clone().unwrap_or_default(),
        labels,
        state,
        health,
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(json: serde_json::Value) -> ContainerInspectResponse {
        serde_json::from_value(json).unwrap()
    }

    fn labels() -> serde_json::Value {
        serde_json::json!({
            "berth.container": "web",
            "berth.task-arn": "arn:aws:ecs:us-east-1:1:task/c/abc",
            "berth.cluster": "c"
        })
    }

    #[test]
    fn a_running_container_with_published_ports() {
        let c = inspect(serde_json::json!({
            "Id": "f00",
            "Config": {"Labels": labels()},
            "State": {"Status": "running", "Running": true, "Pid": 42,
                      "StartedAt": "2026-11-24T10:00:00.5Z",
                      "FinishedAt": "0001-01-01T00:00:00Z",
                      "Health": {"Status": "healthy"}},
            "NetworkSettings": {"Ports": {
                "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "49153"},
                           {"HostIp": "::", "HostPort": "49153"}],
                "81/tcp": null
            }}
        }));
        let s = from_inspect(&c).unwrap();
        assert_eq!(s.key, ContainerKey::new("abc", "web"));
        assert!(matches!(
            s.state,
            ContainerState::Running { pid: Some(42), .. }
        ));
        assert_eq!(s.health, Health::Healthy);
        assert_eq!(
            s.ports,
            [PortBinding {
                bind_ip: "0.0.0.0".into(),
                container_port: 80,
                host_port: 49153,
                protocol: Protocol::Tcp
            }]
        );
    }

    #[test]
    fn an_exited_container_killed_for_memory() {
        let c = inspect(serde_json::json!({
            "Id": "f00",
            "Config": {"Labels": labels()},
            "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": true,
                      "StartedAt": "2026-11-24T10:00:00Z",
                      "FinishedAt": "2026-11-24T10:00:01Z"}
        }));
        match from_inspect(&c).unwrap().state {
            ContainerState::Exited {
                exit_code,
                signal,
                reason,
                finished_at,
                ..
            } => {
                assert_eq!(exit_code, Some(137));
                assert_eq!(signal, Some(9));
                assert_eq!(reason.as_deref(), Some(OOM_REASON));
                assert!(finished_at > UNIX_EPOCH);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn containers_without_berth_labels_are_not_ours() {
        let c = inspect(serde_json::json!({"Id": "x", "Config": {"Labels": {}}}));
        assert!(from_inspect(&c).is_none());
    }
}
