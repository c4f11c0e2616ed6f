//! A [`ContainerSpec`] as Docker's container-create body, mapped the way
//! ECS's agent maps a container definition. Pure, so it is tested without
//! an engine.

use crate::{ContainerSpec, MountSource, NetworkMode};
use bollard::models::{
    ContainerCreateBody, DeviceMapping, HealthConfig, HostConfig, HostConfigLogConfig, PortBinding,
    ResourcesUlimits,
};
use std::collections::HashMap;

const MIB: i64 = 1024 * 1024;

/// The Docker name of a task's container: unique on the engine because the
/// task id is.
pub fn container_name(task_id: &str, container: &str) -> String {
    format!("berth-{task_id}-{container}")
}

/// The Docker name of a task's network-namespace holder (awsvpc). "pause"
/// is not a task id (32 hex digits), so it never clashes with a container.
pub fn pause_name(task_id: &str) -> String {
    format!("berth-pause-{task_id}")
}

/// Docker wants nanoseconds.
fn nanos(d: std::time::Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

/// `labels` are the container's full label set (ownership included);
/// `json_file_logs` forces Docker's json-file driver, so the agent can read
/// the output back (for `awslogs`).
pub fn create_body(
    spec: &ContainerSpec,
    labels: HashMap<String, String>,
    json_file_logs: bool,
) -> ContainerCreateBody {
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let (network_mode, publish) = match spec.network {
        NetworkMode::Bridge => ("bridge".to_string(), true),
        NetworkMode::Host => ("host".to_string(), false),
        NetworkMode::None => ("none".to_string(), false),
        NetworkMode::Awsvpc => (
            format!("container:{}", pause_name(&spec.key.task_id)),
            false,
        ),
    };
    let port_key = |p: &crate::PortSpec| format!("{}/{}", p.container_port, p.protocol.as_str());
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if publish {
        for p in &spec.ports {
            port_bindings
                .entry(port_key(p))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: None,
                    // Empty: Docker picks a free port from its ephemeral range.
                    host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
                });
        }
    }
    let binds: Vec<String> = spec
        .mounts
        .iter()
        .map(|m| {
            let source = match &m.source {
                MountSource::HostPath(p) | MountSource::Volume(p) => p,
            };
            let ro = if m.read_only { ":ro" } else { "" };
            format!("{source}:{}{ro}", m.container_path)
        })
        .collect();
    let volumes_from: Vec<String> = spec
        .volumes_from
        .iter()
        .map(|(name, ro)| {
            let name = container_name(&spec.key.task_id, name);
            if *ro {
                format!("{name}:ro")
            } else {
                name
            }
        })
        .collect();
    let tmpfs: HashMap<String, String> = spec
        .linux
        .tmpfs
        .iter()
        .map(|t| {
            let mut opts = vec![format!("size={}m", t.size_mib)];
            opts.extend(t.options.iter().cloned());
            (t.container_path.clone(), opts.join(","))
        })
        .collect();
    let devices: Vec<DeviceMapping> = spec
        .linux
        .devices
        .iter()
        .map(|d| {
            let perms: String = if d.permissions.is_empty() {
                "rwm".into()
            } else {
                d.permissions
                    .iter()
                    .filter_map(|p| match p.as_str() {
                        "read" => Some('r'),
                        "write" => Some('w'),
                        "mknod" => Some('m'),
                        _ => None,
                    })
                    .collect()
            };
            DeviceMapping {
                path_on_host: Some(d.host_path.clone()),
                path_in_container: Some(
                    d.container_path
                        .clone()
                        .unwrap_or_else(|| d.host_path.clone()),
                ),
                cgroup_permissions: Some(perms),
            }
        })
        .collect();
    let log_config = match (&spec.log_driver, json_file_logs) {
        (Some(l), _) => Some(HostConfigLogConfig {
            typ: Some(l.driver.clone()),
            config: Some(l.options.clone().into_iter().collect()),
        }),
        (None, true) => Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: None,
        }),
        (None, false) => None,
    };
    let host_config = HostConfig {
        network_mode: Some(network_mode),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        binds: (!binds.is_empty()).then_some(binds),
        volumes_from: (!volumes_from.is_empty()).then_some(volumes_from),
        // The Linux kernel's minimum is 2 shares. ECS's agent (since 1.2.0)
        // passes 2 for a null, 0 or 1 `cpu`, not Docker's default 1024.
        cpu_shares: Some(spec.cpu_units.unwrap_or(0).max(2) as i64),
        memory: spec.memory_mib.map(|m| m as i64 * MIB),
        memory_reservation: spec.memory_reservation_mib.map(|m| m as i64 * MIB),
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|u| ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        cap_add: non_empty(&spec.linux.cap_add),
        cap_drop: non_empty(&spec.linux.cap_drop),
        init: spec.linux.init_process_enabled.then_some(true),
        shm_size: spec.linux.shared_memory_size_mib.map(|m| m as i64 * MIB),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        devices: (!devices.is_empty()).then_some(devices),
        readonly_rootfs: spec.readonly_root_filesystem.then_some(true),
        privileged: spec.privileged.then_some(true),
        extra_hosts: (!spec.extra_hosts.is_empty()).then(|| {
            spec.extra_hosts
                .iter()
                .map(|(h, ip)| format!("{h}:{ip}"))
                .collect()
        }),
        dns: non_empty(&spec.dns_servers),
        dns_search: non_empty(&spec.dns_search_domains),
        log_config,
        ..Default::default()
    };
    let env: Vec<String> = spec
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: non_empty(&spec.entry_point),
        cmd: non_empty(&spec.command),
        env: (!env.is_empty()).then_some(env),
        working_dir: spec.working_directory.clone(),
        user: spec.user.clone(),
        // A hostname cannot be set on a container that joins another's
        // namespaces (awsvpc), nor in host mode; ECS refuses both too.
        hostname: spec
            .hostname
            .clone()
            .filter(|_| spec.network == NetworkMode::Bridge || spec.network == NetworkMode::None),
        labels: Some(labels),
        // In host mode they are not published, but recorded: the status
        // reads them back as the host ports they are.
        exposed_ports: (publish || spec.network == NetworkMode::Host)
            .then(|| spec.ports.iter().map(port_key).collect::<Vec<_>>())
            .filter(|p| !p.is_empty()),
        tty: spec.pseudo_terminal.then_some(true),
        open_stdin: spec.interactive.then_some(true),
        stop_timeout: Some(spec.stop_timeout.as_secs() as i64),
        healthcheck: spec.health_check.as_ref().map(|h| HealthConfig {
            test: Some(h.command.clone()),
            interval: Some(nanos(h.interval)),
            timeout: Some(nanos(h.timeout)),
            retries: Some(h.retries as i64),
            start_period: Some(nanos(h.start_period)),
            ..Default::default()
        }),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ContainerKey, DeviceSpec, HealthCheckSpec, MountSpec, PortSpec, Protocol, TmpfsSpec,
        UlimitSpec,
    };
    use std::time::Duration;

    fn spec() -> ContainerSpec {
        ContainerSpec::new(ContainerKey::new("abc", "web"), "busybox:latest")
    }

    #[test]
    fn bridge_ports_are_published_dynamic_or_fixed() {
        let mut s = spec();
        s.ports = vec![
            PortSpec {
                container_port: 80,
                host_port: None,
                protocol: Protocol::Tcp,
            },
            PortSpec {
                container_port: 53,
                host_port: Some(5353),
                protocol: Protocol::Udp,
            },
        ];
        let body = create_body(&s, HashMap::new(), false);
        let hc = body.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("bridge"));
        let ports = hc.port_bindings.unwrap();
        assert_eq!(
            ports["80/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("")
        );
        assert_eq!(
            ports["53/udp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("5353")
        );
        let mut exposed = body.exposed_ports.unwrap();
        exposed.sort();
        assert_eq!(exposed, ["53/udp", "80/tcp"]);
    }

    #[test]
    fn awsvpc_joins_the_pause_namespace_without_publishing() {
        let mut s = spec();
        s.network = NetworkMode::Awsvpc;
        s.hostname = Some("h".into());
        s.ports = vec![PortSpec {
            container_port: 80,
            host_port: Some(80),
            protocol: Protocol::Tcp,
        }];
        let body = create_body(&s, HashMap::new(), false);
        let hc = body.host_config.unwrap();
        assert_eq!(
            hc.network_mode.as_deref(),
            Some("container:berth-pause-abc")
        );
        assert!(hc.port_bindings.is_none());
        assert!(body.hostname.is_none());
    }

    #[test]
    fn resources_limits_and_linux_parameters() {
        let mut s = spec();
        s.cpu_units = Some(0);
        s.memory_mib = Some(128);
        s.memory_reservation_mib = Some(64);
        s.ulimits = vec![UlimitSpec {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        }];
        s.linux.cap_add = vec!["NET_ADMIN".into()];
        s.linux.cap_drop = vec!["MKNOD".into()];
        s.linux.init_process_enabled = true;
        s.linux.shared_memory_size_mib = Some(16);
        s.linux.tmpfs = vec![TmpfsSpec {
            container_path: "/scratch".into(),
            size_mib: 8,
            options: vec!["noexec".into()],
        }];
        s.linux.devices = vec![DeviceSpec {
            host_path: "/dev/null".into(),
            container_path: Some("/dev/mynull".into()),
            permissions: vec!["read".into(), "write".into()],
        }];
        s.readonly_root_filesystem = true;
        let hc = create_body(&s, HashMap::new(), false).host_config.unwrap();
        assert_eq!(hc.cpu_shares, Some(2));
        let unset = create_body(&spec(), HashMap::new(), false);
        assert_eq!(unset.host_config.unwrap().cpu_shares, Some(2));
        assert_eq!(hc.memory, Some(128 * MIB));
        assert_eq!(hc.memory_reservation, Some(64 * MIB));
        assert_eq!(hc.ulimits.unwrap()[0].hard, Some(2048));
        assert_eq!(hc.cap_add.unwrap(), ["NET_ADMIN"]);
        assert_eq!(hc.cap_drop.unwrap(), ["MKNOD"]);
        assert_eq!(hc.init, Some(true));
        assert_eq!(hc.shm_size, Some(16 * MIB));
        assert_eq!(hc.tmpfs.unwrap()["/scratch"], "size=8m,noexec");
        let d = &hc.devices.unwrap()[0];
        assert_eq!(d.cgroup_permissions.as_deref(), Some("rw"));
        assert_eq!(d.path_in_container.as_deref(), Some("/dev/mynull"));
        assert_eq!(hc.readonly_rootfs, Some(true));
    }

    #[test]
    fn mounts_volumes_from_health_and_logs() {
        let mut s = spec();
        s.mounts = vec![
            MountSpec {
                source: MountSource::HostPath("/srv/data".into()),
                container_path: "/data".into(),
                read_only: true,
            },
            MountSpec {
                source: MountSource::Volume("berth-abc-scratch".into()),
                container_path: "/scratch".into(),
                read_only: false,
            },
        ];
        s.volumes_from = vec![("db".into(), true)];
        s.health_check = Some(HealthCheckSpec {
            command: vec!["CMD-SHELL".into(), "true".into()],
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retries: 3,
            start_period: Duration::ZERO,
        });
        s.entry_point = vec![];
        s.command = vec!["sleep".into(), "1".into()];
        s.environment = vec![("A".into(), "1".into())];
        let body = create_body(&s, HashMap::new(), true);
        let hc = body.host_config.clone().unwrap();
        assert_eq!(
            hc.binds.unwrap(),
            ["/srv/data:/data:ro", "berth-abc-scratch:/scratch"]
        );
        assert_eq!(hc.volumes_from.unwrap(), ["berth-abc-db:ro"]);
        assert_eq!(hc.log_config.unwrap().typ.as_deref(), Some("json-file"));
        let h = body.healthcheck.unwrap();
        assert_eq!(h.interval, Some(5_000_000_000));
        assert!(body.entrypoint.is_none(), "the image's entrypoint is kept");
        assert_eq!(body.cmd.unwrap(), ["sleep", "1"]);
        assert_eq!(body.env.unwrap(), ["A=1"]);
    }
}
