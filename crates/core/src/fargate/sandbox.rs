//! What Fargate refuses: the parts of a task definition (and of a launch's
//! overrides) that would reach into the host a task runs on. On AWS a
//! Fargate task is a sandbox; on berth FARGATE tasks of every account share
//! the server's host (its managed capacity), so these rules are what keeps
//! one account's task out of the server's data dir, its Engine socket, its
//! devices and another account's files.
//!
//! The rules and their sources (the "task definition differences for
//! Fargate" page of the ECS developer guide lists what Fargate does not
//! support; the texts are ECS's where a real ECS error could be found,
//! otherwise berth's, in ECS's style, and marked so below):
//!
//! | rule | error |
//! | --- | --- |
//! | networkMode `awsvpc` only | ClientException "Fargate only supports network mode 'awsvpc'." |
//! | no `host.sourcePath` volume (a `host` volume without one is a task-scoped volume) | ClientException "Fargate compatible task definitions do not support sourcePath" |
//! | no `dockerVolumeConfiguration` | ClientException "Fargate compatible task definitions do not support dockerVolumeConfiguration" |
//! | no `ipcMode` | ClientException "Tasks using the Fargate launch type do not support ipcMode." |
//! | `pidMode` `task` only | ClientException (berth's text) |
//! | no `privileged` | ClientException "Fargate compatible task definitions do not support privileged" |
//! | no `linuxParameters.devices` | ClientException "… do not support devices" |
//! | `capabilities.add` only `SYS_PTRACE` (drops are free) | ClientException (berth's text) |
//! | no `sharedMemorySize`, `maxSwap`, `swappiness` | ClientException "… do not support sharedMemorySize" (and so on) |
//! | no `dockerSecurityOptions` | ClientException "… do not support dockerSecurityOptions" |
//! | `ulimits`: only `nofile`, soft ≤ hard ≤ 1048576 | ClientException (berth's text) |
//! | `environmentFiles`: S3 object ARNs only, in definitions and overrides | ClientException (berth's text) |
//! | `logConfiguration.logDriver`: awslogs only (Fargate also takes splunk and awsfirelens, which berth does not have) | ClientException (berth's text) |
//!
//! `tmpfs` is allowed: Fargate has supported it since January 2026 (it is
//! memory, not a host path).
//!
//! Sources: the list of unsupported parameters, `CAP_SYS_PTRACE` and
//! `devices`/`sharedMemorySize`/`dockerVolumeConfiguration` are the
//! developer guide's ("Amazon ECS task definition differences for
//! Fargate"); the `nofile` maximum is Fargate's 1024 × 1024; the awsvpc
//! text is quoted from RegisterTaskDefinition by users and policy checkers
//! (some with curly quotes); the ipcMode text from a real error
//! (cn-terraform/terraform-aws-ecs-fargate#2); the others as noted at
//! `unsupported` below.

use crate::EcsError;
use berth_wire::ecs::{
    ContainerDefinition, EnvironmentFile, IpcMode, LogDriver, NetworkMode, PidMode,
    RegisterTaskDefinitionRequest, TaskDefinition, TaskOverride, UlimitName, Volume,
};

/// The highest `nofile` hard limit a Fargate task may ask for
/// (1024 × 1024, Fargate's maximum).
pub const MAX_NOFILE: i32 = 1_048_576;

/// The only capability a Fargate container may add ("for capabilities the
/// only capability you can add is CAP_SYS_PTRACE").
pub const ADDABLE_CAPABILITY: &str = "SYS_PTRACE";

/// The parts of a task definition the rules look at, whether it is a
/// registration request or a stored revision.
#[derive(Debug, Clone, Copy)]
pub struct Definition<'a> {
    pub network_mode: Option<&'a NetworkMode>,
    pub pid_mode: Option<&'a PidMode>,
    pub ipc_mode: Option<&'a IpcMode>,
    pub containers: &'a [ContainerDefinition],
    pub volumes: &'a [Volume],
}

impl<'a> From<&'a RegisterTaskDefinitionRequest> for Definition<'a> {
    fn from(r: &'a RegisterTaskDefinitionRequest) -> Self {
        Definition {
            network_mode: r.network_mode.as_ref(),
            pid_mode: r.pid_mode.as_ref(),
            ipc_mode: r.ipc_mode.as_ref(),
            containers: &r.container_definitions,
            volumes: r.volumes.as_deref().unwrap_or_default(),
        }
    }
}

impl<'a> From<&'a TaskDefinition> for Definition<'a> {
    fn from(td: &'a TaskDefinition) -> Self {
        Definition {
            network_mode: td.network_mode.as_ref(),
            pid_mode: td.pid_mode.as_ref(),
            ipc_mode: td.ipc_mode.as_ref(),
            containers: td.container_definitions.as_deref().unwrap_or_default(),
            volumes: td.volumes.as_deref().unwrap_or_default(),
        }
    }
}

fn client(msg: impl Into<String>) -> EcsError {
    EcsError::Client(msg.into())
}

/// ECS's answer for a parameter Fargate does not support at all, in ECS's
/// form: "Fargate compatible task definitions do not support sourcePath"
/// is quoted from a real RegisterTaskDefinition error (a Terraform user's,
/// in cloudposse/terraform-aws-ecs-alb-service-task#174), as are the
/// sharedMemorySize and maxSwap ones in deployment guides and tests;
/// policy checkers quote the devices, dockerVolumeConfiguration and
/// dockerSecurityOptions ones. privileged and swappiness follow the same
/// form (their exact texts could not be found).
fn unsupported(parameter: &str) -> EcsError {
    client(format!(
        "Fargate compatible task definitions do not support {parameter}"
    ))
}

/// Checks a task definition against what Fargate supports: for a
/// registration that requires FARGATE, and again for every FARGATE launch
/// of a stored revision (which may predate these rules).
pub fn check_definition(d: Definition<'_>) -> Result<(), EcsError> {
    if d.network_mode != Some(&NetworkMode::Awsvpc) {
        return Err(client("Fargate only supports network mode 'awsvpc'."));
    }
    if d.ipc_mode.is_some() {
        // ECS's text, as RegisterTaskDefinition answers it.
        return Err(client(
            "Tasks using the Fargate launch type do not support ipcMode.",
        ));
    }
    if d.pid_mode.is_some_and(|m| *m != PidMode::Task) {
        // berth's text (ECS's could not be found): Fargate (platform 1.4.0
        // and later) takes pidMode "task" only.
        return Err(client(
            "Fargate compatible task definitions only support the pidMode 'task'.",
        ));
    }
    for v in d.volumes {
        if v.host.as_ref().is_some_and(|h| h.source_path.is_some()) {
            return Err(unsupported("sourcePath"));
        }
        if v.docker_volume_configuration.is_some() {
            return Err(unsupported("dockerVolumeConfiguration"));
        }
    }
    for c in d.containers {
        check_container(c)?;
    }
    Ok(())
}

fn check_container(c: &ContainerDefinition) -> Result<(), EcsError> {
    let name = c.name.as_deref().unwrap_or("");
    if c.privileged == Some(true) {
        return Err(unsupported("privileged"));
    }
    if c.docker_security_options
        .as_ref()
        .is_some_and(|o| !o.is_empty())
    {
        return Err(unsupported("dockerSecurityOptions"));
    }
    if let Some(l) = &c.linux_parameters {
        if l.devices.as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(unsupported("devices"));
        }
        if l.shared_memory_size.is_some() {
            return Err(unsupported("sharedMemorySize"));
        }
        if l.max_swap.is_some() {
            return Err(unsupported("maxSwap"));
        }
        if l.swappiness.is_some() {
            return Err(unsupported("swappiness"));
        }
        let added = l.capabilities.as_ref().and_then(|k| k.add.as_ref());
        if let Some(cap) = added.into_iter().flatten().find(|c| !may_add_capability(c)) {
            // berth's text: ECS's could not be found.
            return Err(client(format!(
                "Fargate compatible task definitions only support adding the {ADDABLE_CAPABILITY} \
                 capability: container '{name}' adds '{cap}'."
            )));
        }
    }
    if let Some(driver) = c.log_configuration.as_ref().map(|l| &l.log_driver) {
        // Fargate takes awslogs, splunk and awsfirelens; berth ships awslogs
        // itself and has neither Splunk nor Firelens, and any other driver
        // (syslog, fluentd, gelf, journald, …) is handed to the host's
        // Engine, which could point it at a host socket. berth's text.
        if *driver != LogDriver::Awslogs {
            return Err(client(format!(
                "Fargate compatible task definitions only support the awslogs log driver on                  berth: container '{name}' uses '{}'.",
                driver.as_str()
            )));
        }
    }
    for u in c.ulimits.iter().flatten() {
        // berth's texts: Fargate sets only `nofile` (the others are the
        // operating system's), up to 1048576; ECS's texts could not be found.
        if u.name != UlimitName::Nofile {
            return Err(client(format!(
                "Fargate compatible task definitions only support the 'nofile' ulimit: \
                 container '{name}' sets '{}'.",
                u.name.as_str()
            )));
        }
        if u.soft_limit < 0 || u.soft_limit > u.hard_limit || u.hard_limit > MAX_NOFILE {
            return Err(client(format!(
                "Invalid 'nofile' ulimit for container '{name}': on Fargate 0 <= softLimit \
                 <= hardLimit <= {MAX_NOFILE}."
            )));
        }
    }
    check_environment_files(name, c.environment_files.iter().flatten())
}

/// Whether a `capabilities.add` entry is the one Fargate allows. Docker
/// takes names with or without `CAP_`, in any case.
pub fn may_add_capability(cap: &str) -> bool {
    let upper = cap.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper) == ADDABLE_CAPABILITY
}

/// Fargate reads environment files from Amazon S3 only: each value must be
/// an S3 object ARN (`arn:aws:s3:::bucket/key.env`). Anything else would
/// name a file on the host.
fn check_environment_files<'a>(
    container: &str,
    files: impl IntoIterator<Item = &'a EnvironmentFile>,
) -> Result<(), EcsError> {
    for f in files {
        if !is_s3_object_arn(&f.value) {
            // berth's text: ECS's could not be found.
            return Err(client(format!(
                "Fargate only supports environment files stored in Amazon S3: '{}' of container \
                 '{container}' is not an S3 object ARN (arn:aws:s3:::bucket/key.env).",
                f.value
            )));
        }
    }
    Ok(())
}

/// `arn:<partition>:s3:::<bucket>/<key>`, with a bucket and a key.
pub fn is_s3_object_arn(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("arn:") else {
        return false;
    };
    let Some((partition, rest)) = rest.split_once(':') else {
        return false;
    };
    let Some(object) = rest.strip_prefix("s3:::") else {
        return false;
    };
    let Some((bucket, key)) = object.split_once('/') else {
        return false;
    };
    partition.starts_with("aws") && !bucket.is_empty() && !key.is_empty()
}

/// Checks what a launch's overrides could add on Fargate: container
/// overrides may name `environmentFiles`, which must be S3 object ARNs.
/// (The other members of an override, command, environment, CPU and memory,
/// give no way into the host.)
pub fn check_overrides(overrides: Option<&TaskOverride>) -> Result<(), EcsError> {
    for o in overrides
        .and_then(|o| o.container_overrides.as_ref())
        .into_iter()
        .flatten()
    {
        check_environment_files(
            o.name.as_deref().unwrap_or(""),
            o.environment_files.iter().flatten(),
        )?;
    }
    Ok(())
}

/// Checks a FARGATE launch (RunTask, a service's tasks) of `td` with
/// `overrides`: the definition as stored (it may have been registered
/// before these rules, or without requiring FARGATE), the overrides, and
/// what berth cannot do. Environment files in S3 are valid on Fargate, but
/// berth has no S3 to fetch them from, so such a launch is refused here
/// rather than failing every task it starts.
pub fn check_launch(td: &TaskDefinition, overrides: Option<&TaskOverride>) -> Result<(), EcsError> {
    check_definition(td.into())?;
    check_overrides(overrides)?;
    let from_definition = td.container_definitions.iter().flatten().flat_map(|c| {
        c.environment_files
            .iter()
            .flatten()
            .map(move |f| (c.name.as_deref(), f))
    });
    let from_overrides = overrides
        .and_then(|o| o.container_overrides.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|o| {
            o.environment_files
                .iter()
                .flatten()
                .map(move |f| (o.name.as_deref(), f))
        });
    if let Some((container, f)) = from_definition.chain(from_overrides).next() {
        // berth's text: on ECS the file would be downloaded.
        return Err(client(format!(
            "berth cannot fetch environment files from Amazon S3 ('{}' of container '{}'); \
             give FARGATE tasks their variables as environment or secrets.",
            f.value,
            container.unwrap_or("")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
