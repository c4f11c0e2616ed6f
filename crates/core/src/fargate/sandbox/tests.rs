//! One test per rule of the Fargate sandbox, each with its code and text,
//! through registration (`task_definition::validate`), a stored revision
//! (`check_launch`) and overrides.

use super::*;
use crate::task_definition;
use berth_wire::ecs::{
    Compatibility, ContainerOverride, Device, DockerVolumeConfiguration, HostVolumeProperties,
    KernelCapabilities, LinuxParameters, Tmpfs, Ulimit,
};

fn container() -> ContainerDefinition {
    ContainerDefinition {
        name: Some("app".into()),
        image: Some("busybox".into()),
        ..Default::default()
    }
}

/// A FARGATE registration that passes, to be spoiled one part at a time.
fn request() -> RegisterTaskDefinitionRequest {
    RegisterTaskDefinitionRequest {
        family: "sandbox".into(),
        network_mode: Some(NetworkMode::Awsvpc),
        requires_compatibilities: Some(vec![Compatibility::Fargate]),
        cpu: Some("256".into()),
        memory: Some("512".into()),
        container_definitions: vec![container()],
        ..Default::default()
    }
}

fn linux(f: impl FnOnce(&mut LinuxParameters)) -> RegisterTaskDefinitionRequest {
    let mut r = request();
    let mut l = LinuxParameters::default();
    f(&mut l);
    r.container_definitions[0].linux_parameters = Some(l);
    r
}

fn volume(host: Option<&str>, docker: bool) -> Volume {
    Volume {
        name: Some("v".into()),
        host: Some(HostVolumeProperties {
            source_path: host.map(String::from),
        }),
        docker_volume_configuration: docker.then(DockerVolumeConfiguration::default),
        ..Default::default()
    }
}

fn env_file(value: &str) -> EnvironmentFile {
    EnvironmentFile {
        value: value.into(),
        ..Default::default()
    }
}

/// Registration refuses `r` with a ClientException of exactly `text`.
#[track_caller]
fn refused(r: &RegisterTaskDefinitionRequest, text: &str) {
    let e = task_definition::validate(r).unwrap_err();
    assert_eq!(e.aws_code(), "ClientException", "{e}");
    assert_eq!(e.to_string(), text);
}

/// Registration refuses `r` with a ClientException containing `part`.
#[track_caller]
fn refused_with(r: &RegisterTaskDefinitionRequest, part: &str) {
    let e = task_definition::validate(r).unwrap_err();
    assert_eq!(e.aws_code(), "ClientException", "{e}");
    assert!(e.to_string().contains(part), "{e}");
}

/// The same request without FARGATE: EC2 keeps every host feature.
#[track_caller]
fn fine_on_ec2(mut r: RegisterTaskDefinitionRequest) {
    r.requires_compatibilities = Some(vec![Compatibility::Ec2]);
    r.network_mode = None;
    r.container_definitions[0].memory = Some(128);
    task_definition::validate(&r).unwrap();
}

/// What a stored revision of `r` looks like (registered before the rules).
fn stored(r: &RegisterTaskDefinitionRequest) -> TaskDefinition {
    TaskDefinition {
        network_mode: r.network_mode.clone(),
        pid_mode: r.pid_mode.clone(),
        ipc_mode: r.ipc_mode.clone(),
        container_definitions: Some(r.container_definitions.clone()),
        volumes: r.volumes.clone(),
        ..Default::default()
    }
}

#[test]
fn a_plain_fargate_definition_passes() {
    task_definition::validate(&request()).unwrap();
    check_launch(&stored(&request()), None).unwrap();
}

#[test]
fn network_mode_must_be_awsvpc() {
    for mode in [NetworkMode::Host, NetworkMode::Bridge, NetworkMode::None] {
        let mut r = request();
        r.network_mode = Some(mode);
        refused(&r, "Fargate only supports network mode 'awsvpc'.");
        let e = check_launch(&stored(&r), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Fargate only supports network mode 'awsvpc'."
        );
    }
}

#[test]
fn host_source_path_volumes_are_refused() {
    for path in ["/var/run/docker.sock", "/var/lib/berth", "/", ""] {
        let mut r = request();
        r.volumes = Some(vec![volume(Some(path), false)]);
        refused(
            &r,
            "Fargate compatible task definitions do not support sourcePath",
        );
        fine_on_ec2(r);
    }
}

#[test]
fn a_host_volume_without_source_path_is_a_task_volume() {
    let mut r = request();
    r.volumes = Some(vec![volume(None, false)]);
    task_definition::validate(&r).unwrap();
    check_launch(&stored(&r), None).unwrap();
}

#[test]
fn docker_volumes_are_refused() {
    let mut r = request();
    let mut v = volume(None, true);
    v.host = None;
    r.volumes = Some(vec![v]);
    refused(
        &r,
        "Fargate compatible task definitions do not support dockerVolumeConfiguration",
    );
    fine_on_ec2(r);
}

#[test]
fn ipc_and_host_pid_modes_are_refused() {
    let mut r = request();
    r.ipc_mode = Some(IpcMode::Host);
    refused(
        &r,
        "Tasks using the Fargate launch type do not support ipcMode.",
    );
    let mut r = request();
    r.pid_mode = Some(PidMode::Host);
    refused(
        &r,
        "Fargate compatible task definitions only support the pidMode 'task'.",
    );
    r.pid_mode = Some(PidMode::Task);
    task_definition::validate(&r).unwrap();
}

#[test]
fn privileged_is_refused() {
    let mut r = request();
    r.container_definitions[0].privileged = Some(true);
    refused(
        &r,
        "Fargate compatible task definitions do not support privileged",
    );
    fine_on_ec2(r.clone());
    r.container_definitions[0].privileged = Some(false);
    task_definition::validate(&r).unwrap();
}

#[test]
fn devices_are_refused() {
    let r = linux(|l| {
        l.devices = Some(vec![Device {
            host_path: "/dev/mem".into(),
            ..Default::default()
        }])
    });
    refused(
        &r,
        "Fargate compatible task definitions do not support devices",
    );
    fine_on_ec2(r);
}

#[test]
fn only_sys_ptrace_may_be_added_and_drops_are_free() {
    let caps = |add: &[&str], drop: &[&str]| {
        linux(|l| {
            l.capabilities = Some(KernelCapabilities {
                add: Some(add.iter().map(|s| s.to_string()).collect()),
                drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            })
        })
    };
    for ok in ["SYS_PTRACE", "CAP_SYS_PTRACE", "sys_ptrace"] {
        task_definition::validate(&caps(&[ok], &["ALL"])).unwrap();
    }
    for bad in ["SYS_ADMIN", "ALL", "NET_ADMIN", "CAP_DAC_READ_SEARCH"] {
        let r = caps(&["SYS_PTRACE", bad], &[]);
        refused(
            &r,
            &format!(
                "Fargate compatible task definitions only support adding the SYS_PTRACE \
                 capability: container 'app' adds '{bad}'."
            ),
        );
        fine_on_ec2(r);
    }
}

#[test]
fn shared_memory_and_swap_are_refused_but_tmpfs_is_fine() {
    type Set = fn(&mut LinuxParameters);
    let cases: [(&str, Set); 3] = [
        ("sharedMemorySize", |l| l.shared_memory_size = Some(64)),
        ("maxSwap", |l| l.max_swap = Some(1024)),
        ("swappiness", |l| l.swappiness = Some(10)),
    ];
    for (what, set) in cases {
        refused(
            &linux(set),
            &format!("Fargate compatible task definitions do not support {what}"),
        );
    }
    let r = linux(|l| {
        l.init_process_enabled = Some(true);
        l.tmpfs = Some(vec![Tmpfs {
            container_path: "/run".into(),
            size: 64,
            ..Default::default()
        }]);
    });
    task_definition::validate(&r).unwrap();
}

#[test]
fn docker_security_options_are_refused() {
    let mut r = request();
    r.container_definitions[0].docker_security_options = Some(vec!["seccomp=unconfined".into()]);
    refused(
        &r,
        "Fargate compatible task definitions do not support dockerSecurityOptions",
    );
}

#[test]
fn only_nofile_ulimits_up_to_fargates_maximum() {
    let with = |name: UlimitName, soft: i32, hard: i32| {
        let mut r = request();
        r.container_definitions[0].ulimits = Some(vec![Ulimit {
            name,
            soft_limit: soft,
            hard_limit: hard,
        }]);
        r
    };
    task_definition::validate(&with(UlimitName::Nofile, 65536, MAX_NOFILE)).unwrap();
    refused(
        &with(UlimitName::Nofile, 1024, MAX_NOFILE + 1),
        "Invalid 'nofile' ulimit for container 'app': on Fargate 0 <= softLimit <= hardLimit <= 1048576.",
    );
    refused_with(
        &with(UlimitName::Nofile, 4096, 1024),
        "softLimit <= hardLimit",
    );
    for other in [UlimitName::Nproc, UlimitName::Memlock, UlimitName::Rtprio] {
        let r = with(other.clone(), 1, 1);
        refused(
            &r,
            &format!(
                "Fargate compatible task definitions only support the 'nofile' ulimit: \
                 container 'app' sets '{}'.",
                other.as_str()
            ),
        );
        fine_on_ec2(r);
    }
}

#[test]
fn environment_files_must_be_s3_object_arns() {
    let files = |v: &str| {
        let mut r = request();
        r.container_definitions[0].environment_files = Some(vec![env_file(v)]);
        r
    };
    task_definition::validate(&files("arn:aws:s3:::bucket/app.env")).unwrap();
    for host in [
        "/etc/berth/config.toml",
        "file:///etc/passwd",
        "relative.env",
        "arn:aws:s3:::bucket",
        "arn:aws:s3:::/key.env",
        "arn:aws:secretsmanager:us-east-1:1:secret:x",
    ] {
        let r = files(host);
        refused(
            &r,
            &format!(
                "Fargate only supports environment files stored in Amazon S3: '{host}' of \
                 container 'app' is not an S3 object ARN (arn:aws:s3:::bucket/key.env)."
            ),
        );
        fine_on_ec2(r);
    }
}

#[test]
fn s3_object_arns() {
    assert!(is_s3_object_arn("arn:aws:s3:::b/k.env"));
    assert!(is_s3_object_arn("arn:aws-cn:s3:::b/dir/k.env"));
    assert!(!is_s3_object_arn("arn:aws:s3:::b/"));
    assert!(!is_s3_object_arn("arn:aws:s3:us-east-1::b/k"));
    assert!(!is_s3_object_arn("s3://b/k.env"));
}

#[test]
fn a_launch_checks_the_stored_revision_as_registration_would() {
    let mut r = request();
    r.volumes = Some(vec![volume(Some("/var/lib/berth"), false)]);
    let e = check_launch(&stored(&r), None).unwrap_err();
    assert_eq!(e.aws_code(), "ClientException");
    assert_eq!(
        e.to_string(),
        "Fargate compatible task definitions do not support sourcePath"
    );
    let r = linux(|l| {
        l.capabilities = Some(KernelCapabilities {
            add: Some(vec!["SYS_ADMIN".into()]),
            drop: None,
        })
    });
    assert!(check_launch(&stored(&r), None)
        .unwrap_err()
        .to_string()
        .contains("'SYS_ADMIN'"));
}

fn env_override(value: &str) -> TaskOverride {
    TaskOverride {
        container_overrides: Some(vec![ContainerOverride {
            name: Some("app".into()),
            environment_files: Some(vec![env_file(value)]),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

#[test]
fn overrides_cannot_add_host_environment_files() {
    let td = stored(&request());
    let o = env_override("/etc/berth/config.toml");
    let e = check_overrides(Some(&o)).unwrap_err();
    assert_eq!(e.aws_code(), "ClientException");
    assert!(e.to_string().contains("is not an S3 object ARN"), "{e}");
    assert_eq!(check_launch(&td, Some(&o)).unwrap_err(), e);
    check_overrides(Some(&env_override("arn:aws:s3:::b/k.env"))).unwrap();
    check_overrides(None).unwrap();
}

#[test]
fn s3_environment_files_are_valid_but_berth_cannot_fetch_them() {
    let text = "berth cannot fetch environment files from Amazon S3 \
                ('arn:aws:s3:::b/k.env' of container 'app'); give FARGATE tasks their \
                variables as environment or secrets.";
    let mut r = request();
    r.container_definitions[0].environment_files = Some(vec![env_file("arn:aws:s3:::b/k.env")]);
    task_definition::validate(&r).unwrap();
    let e = check_launch(&stored(&r), None).unwrap_err();
    assert_eq!(e.aws_code(), "ClientException");
    assert_eq!(e.to_string(), text);
    let e = check_launch(
        &stored(&request()),
        Some(&env_override("arn:aws:s3:::b/k.env")),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), text);
}

#[test]
fn fargate_is_not_among_the_compatibilities_of_a_definition_it_refuses() {
    let reg = task_definition::Registration {
        region: "us-east-1",
        account: "123456789012",
        revision: 1,
        registered_by: "arn:aws:iam::123456789012:root",
        now: berth_wire::Timestamp(1.0),
    };
    let mut r = request();
    r.requires_compatibilities = None;
    let ok = task_definition::build(r.clone(), &reg);
    assert!(ok
        .compatibilities
        .unwrap()
        .contains(&Compatibility::Fargate));
    r.volumes = Some(vec![volume(Some("/var/lib/berth"), false)]);
    task_definition::validate(&r).unwrap();
    let td = task_definition::build(r, &reg);
    assert_eq!(
        td.compatibilities,
        Some(vec![Compatibility::Ec2]),
        "an awsvpc definition with a host path runs on EC2 only"
    );
}

#[test]
fn only_awslogs_ships_fargate_logs() {
    use berth_wire::ecs::{LogConfiguration, LogDriver};
    let with = |driver: LogDriver| {
        let c = ContainerDefinition {
            name: Some("main".into()),
            log_configuration: Some(LogConfiguration {
                log_driver: driver,
                ..Default::default()
            }),
            ..Default::default()
        };
        check_container(&c)
    };
    assert!(with(LogDriver::Awslogs).is_ok());
    for d in [
        LogDriver::Syslog,
        LogDriver::Fluentd,
        LogDriver::Splunk,
        LogDriver::Awsfirelens,
    ] {
        let e = with(d).unwrap_err();
        assert_eq!(e.aws_code(), "ClientException");
        assert!(e.to_string().contains("awslogs"), "{e}");
    }
}
