//! The Docker runtime: each container of a task is a Docker container on
//! the local Engine, created through its API (with bollard) the way ECS's
//! agent creates it. See [`create`] for the mapping, [`status`] for how
//! Docker's state reads back, [`pause`] for the awsvpc namespace holder.
//!
//! Every container carries the ownership labels and [`LABEL_OWNER`] (this
//! agent's id), so several agents can share one Engine and each adopts and
//! cleans up only its own.

pub mod create;
mod logs;
mod netns;
pub mod pause;
pub mod status;

use crate::{
    ContainerKey, ContainerSpec, ContainerStatus, LogChunk, NetworkMode, Runtime, RuntimeError,
    TaskNetwork, TaskSpec, CAPABILITY_HEALTH_CHECK, LABEL_CONTAINER, LABEL_TASK_ARN,
};
use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions,
    ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions, StopContainerOptions,
    WaitContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Names the agent whose container this is (several may share an Engine).
pub const LABEL_OWNER: &str = "berth.owner";
/// Marks the container that holds an awsvpc task's network namespace.
pub const LABEL_ROLE: &str = "berth.role";
/// The task a task-scoped volume belongs to.
pub const LABEL_TASK_ID: &str = "berth.task-id";

/// When to pull an image, like ECS's `ECS_IMAGE_PULL_BEHAVIOR`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullBehavior {
    /// Pull every time; if the pull fails, use the local image if there is one.
    #[default]
    Default,
    /// Pull every time; a failed pull fails the task.
    Always,
    /// Pull only the first time this agent needs the image.
    Once,
    /// Use the local image when there is one; pull otherwise.
    PreferCached,
}

impl std::str::FromStr for PullBehavior {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(PullBehavior::Default),
            "always" => Ok(PullBehavior::Always),
            "once" => Ok(PullBehavior::Once),
            "prefer-cached" => Ok(PullBehavior::PreferCached),
            other => Err(format!(
                "unknown image pull behavior '{other}' (default, always, once, prefer-cached)"
            )),
        }
    }
}

pub struct DockerRuntime {
    docker: Docker,
    owner: String,
    pull: PullBehavior,
    /// Images this agent pulled (for `once`).
    pulled: Mutex<HashSet<String>>,
}

/// Docker's answer for "no such container/image/volume".
fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn status_code(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The Engine's own message, without bollard's wrapping.
fn message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn io(e: DockerError) -> RuntimeError {
    RuntimeError::Io(message(&e))
}

impl DockerRuntime {
    /// Connects to the Engine (`DOCKER_HOST`, or the local socket) and
    /// agrees on an API version it speaks.
    pub async fn connect(
        owner: impl Into<String>,
        pull: PullBehavior,
    ) -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(io)?
            // stop waits up to a container's stopTimeout (ECS allows 120 s).
            .with_timeout(Duration::from_secs(300))
            .negotiate_version()
            .await
            .map_err(|e| {
                RuntimeError::Io(format!(
                    "the Docker Engine does not answer: {}",
                    message(&e)
                ))
            })?;
        docker.ping().await.map_err(io)?;
        Ok(DockerRuntime {
            docker,
            owner: owner.into(),
            pull,
            pulled: Mutex::new(HashSet::new()),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn labels_for(
        &self,
        base: &std::collections::BTreeMap<String, String>,
    ) -> HashMap<String, String> {
        let mut l: HashMap<String, String> = base.clone().into_iter().collect();
        l.insert(LABEL_OWNER.into(), self.owner.clone());
        l
    }

    async fn inspect(
        &self,
        name: &str,
    ) -> Result<Option<bollard::models::ContainerInspectResponse>, RuntimeError> {
        match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    fn is_ours(&self, c: &bollard::models::ContainerInspectResponse) -> bool {
        c.config
            .as_ref()
            .and_then(|cfg| cfg.labels.as_ref())
            .and_then(|l| l.get(LABEL_OWNER))
            == Some(&self.owner)
    }

    async fn image_present(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    async fn do_pull(&self, spec: &ContainerSpec) -> Result<(), String> {
        let (repo, tag) = split_reference(&spec.image);
        let opts = CreateImageOptions {
            from_image: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let creds = spec
            .registry_auth
            .as_ref()
            .map(|a| bollard::auth::DockerCredentials {
                username: Some(a.username.clone()),
                password: Some(a.password.clone()),
                serveraddress: Some(registry_of(&spec.image)),
                ..Default::default()
            });
        finish_image_stream(self.docker.create_image(Some(opts), None, creds)).await
    }

    /// Makes sure the pause image exists (it is built here, never pulled).
    async fn ensure_pause_image(&self) -> Result<(), RuntimeError> {
        if self.image_present(pause::IMAGE).await? {
            return Ok(());
        }
        let tar = pause::rootfs_tar()?;
        let (repo, tag) = split_reference(pause::IMAGE);
        let opts = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let stream =
            self.docker
                .create_image(Some(opts), Some(bollard::body_full(tar.into())), None);
        finish_image_stream(stream)
            .await
            .map_err(|e| RuntimeError::Io(format!("importing the pause image: {e}")))
    }

    /// Starts (or finds) the task's namespace holder and reads its address.
    async fn ensure_pause(&self, task: &TaskSpec) -> Result<TaskNetwork, RuntimeError> {
        let name = create::pause_name(&task.task_id);
        let existing = self.inspect(&name).await?;
        let running = existing
            .as_ref()
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.running)
            == Some(true);
        if !running {
            if existing.is_some() {
                self.remove_forced(&name).await?;
            }
            self.ensure_pause_image().await?;
            let mut labels = self.labels_for(&task.labels);
            labels.insert(LABEL_ROLE.into(), "pause".into());
            labels.insert(LABEL_TASK_ID.into(), task.task_id.clone());
            let body = ContainerCreateBody {
                image: Some(pause::IMAGE.into()),
                entrypoint: Some(vec!["/pause".into()]),
                labels: Some(labels),
                host_config: Some(HostConfig {
                    network_mode: Some("bridge".into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let opts = CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            };
            match self.docker.create_container(Some(opts), body).await {
                Ok(_) => {}
                Err(e) if status_code(&e) == Some(409) => {} // a concurrent prepare won
                Err(e) => return Err(io(e)),
            }
            self.docker
                .start_container(
                    &name,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
                .or_else(|e| {
                    if status_code(&e) == Some(304) {
                        Ok(())
                    } else {
                        Err(io(e))
                    }
                })?;
        }
        let c = self
            .inspect(&name)
            .await?
            .ok_or_else(|| RuntimeError::Io("the task's network namespace vanished".into()))?;
        let endpoint = c
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|n| n.into_values().next());
        Ok(TaskNetwork {
            private_ipv4: endpoint
                .as_ref()
                .and_then(|e| e.ip_address.clone())
                .filter(|ip| !ip.is_empty()),
            mac_address: endpoint
                .and_then(|e| e.mac_address)
                .filter(|m| !m.is_empty()),
        })
    }

    async fn remove_forced(&self, name: &str) -> Result<(), RuntimeError> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    async fn ensure_volumes(&self, task: &TaskSpec) -> Result<(), RuntimeError> {
        for v in &task.volumes {
            match self.docker.inspect_volume(&v.name).await {
                Ok(_) => continue,
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(io(e)),
            }
            if !v.autoprovision {
                return Err(RuntimeError::Io(format!(
                    "the shared volume {} does not exist and autoprovision is off",
                    v.name
                )));
            }
            let mut labels: HashMap<String, String> = v.labels.clone().into_iter().collect();
            labels.insert(LABEL_OWNER.into(), self.owner.clone());
            if !v.shared {
                labels.insert(LABEL_TASK_ID.into(), task.task_id.clone());
            }
            let req = VolumeCreateRequest {
                name: Some(v.name.clone()),
                driver: v.driver.clone(),
                driver_opts: (!v.driver_opts.is_empty())
                    .then(|| v.driver_opts.clone().into_iter().collect()),
                labels: Some(labels),
                ..Default::default()
            };
            self.docker.create_volume(req).await.map_err(|e| {
                RuntimeError::Io(format!("creating volume {}: {}", v.name, message(&e)))
            })?;
        }
        Ok(())
    }
}

/// Reads a pull's or import's progress to the end; the Engine reports a
/// failure inside the stream as well as by status.
async fn finish_image_stream(
    mut stream: impl futures::Stream<Item = Result<bollard::models::CreateImageInfo, DockerError>>
        + Unpin,
) -> Result<(), String> {
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| message(&e))?;
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            return Err(err);
        }
    }
    Ok(())
}

/// `repo[:tag]` or `repo@digest` → (from_image, tag); a digest travels in
/// the image name with an empty tag.
fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// The registry host of an image reference (Docker Hub when none is named).
fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "https://index.docker.io/v1/".to_string(),
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn capabilities(&self) -> Vec<String> {
        [
            CAPABILITY_HEALTH_CHECK,
            "com.amazonaws.ecs.capability.docker-remote-api.1.41",
            "com.amazonaws.ecs.capability.privileged-container",
            "com.amazonaws.ecs.capability.logging-driver.json-file",
            "com.amazonaws.ecs.capability.logging-driver.syslog",
            "com.amazonaws.ecs.capability.logging-driver.none",
            "ecs.capability.docker-plugin.local",
            "ecs.capability.private-registry-authentication.secretsmanager",
            // Not advertised: ecr-auth (no ECR token exchange) and
            // env-files.s3 (environment files are local paths here).
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    async fn pull(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let image = spec.image.as_str();
        if image.is_empty() {
            return Err(RuntimeError::CannotPull(
                "the container has no image".into(),
            ));
        }
        let present = self.image_present(image).await?;
        let skip = match self.pull {
            PullBehavior::PreferCached => present,
            PullBehavior::Once => present && self.pulled.lock().contains(image),
            PullBehavior::Default | PullBehavior::Always => false,
        };
        if skip {
            return Ok(());
        }
        match self.do_pull(spec).await {
            Ok(()) => {
                self.pulled.lock().insert(image.to_string());
                Ok(())
            }
            // ECS's default (and once): a cached image serves when the
            // registry cannot.
            Err(e) if present && self.pull != PullBehavior::Always => {
                tracing::info!(image, error = %e, "pull failed; using the local image");
                Ok(())
            }
            Err(e) => Err(RuntimeError::CannotPull(format!("pull image {image}: {e}"))),
        }
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<ContainerStatus, RuntimeError> {
        let name = create::container_name(&spec.key.task_id, &spec.key.container);
        // Ownership labels win over dockerLabels of the same name.
        let mut all = spec.docker_labels.clone();
        all.extend(spec.labels.clone());
        let labels = self.labels_for(&all);
        let body = create::create_body(spec, labels, spec.log_driver.is_none());
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        match self.docker.create_container(Some(opts), body).await {
            Ok(_) => {}
            Err(e) if status_code(&e) == Some(409) => return Err(RuntimeError::AlreadyExists),
            Err(e) if is_not_found(&e) => {
                return Err(RuntimeError::CannotPull(format!(
                    "image {} is not on this host: {}",
                    spec.image,
                    message(&e)
                )))
            }
            Err(e) => return Err(RuntimeError::CannotStart(message(&e))),
        }
        if let Err(e) = self
            .docker
            .start_container(
                &name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            // A container that never ran leaves nothing behind.
            let _ = self.remove_forced(&name).await;
            return Err(RuntimeError::CannotStart(message(&e)));
        }
        let c = self.inspect(&name).await?.ok_or(RuntimeError::NotFound)?;
        status::from_inspect(&c).ok_or(RuntimeError::NotFound)
    }

    async fn status(&self, key: &ContainerKey) -> Result<Option<ContainerStatus>, RuntimeError> {
        let name = create::container_name(&key.task_id, &key.container);
        Ok(self
            .inspect(&name)
            .await?
            .filter(|c| self.is_ours(c))
            .and_then(|c| status::from_inspect(&c)))
    }

    async fn list(&self) -> Result<Vec<ContainerStatus>, RuntimeError> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("{LABEL_OWNER}={}", self.owner)],
        );
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let summaries = self.docker.list_containers(Some(opts)).await.map_err(io)?;
        let mut out = Vec::new();
        for s in summaries {
            let labels = s.labels.unwrap_or_default();
            if !labels.contains_key(LABEL_CONTAINER) || !labels.contains_key(LABEL_TASK_ARN) {
                continue; // pause containers are the runtime's own business
            }
            let Some(id) = s.id else { continue };
            if let Some(c) = self.inspect(&id).await? {
                out.extend(status::from_inspect(&c));
            }
        }
        Ok(out)
    }

    async fn wait(&self, key: &ContainerKey) -> Result<ContainerStatus, RuntimeError> {
        let name = create::container_name(&key.task_id, &key.container);
        let opts = WaitContainerOptions {
            condition: "not-running".into(),
        };
        loop {
            let mut stream = self.docker.wait_container(&name, Some(opts.clone()));
            // A non-zero exit comes back as an error item; a long wait may
            // end in the client's timeout instead. The status says which.
            if let Some(Err(e)) = stream.next().await {
                if is_not_found(&e) {
                    return Err(RuntimeError::NotFound);
                }
            }
            let status = self.status(key).await?.ok_or(RuntimeError::NotFound)?;
            if status.is_exited() {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(&self, key: &ContainerKey, timeout: Duration) -> Result<(), RuntimeError> {
        let name = create::container_name(&key.task_id, &key.container);
        let opts = StopContainerOptions {
            t: Some(timeout.as_secs().min(i32::MAX as u64) as i32),
            signal: None,
        };
        match self.docker.stop_container(&name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(304) => Ok(()), // already stopped
            Err(e) if is_not_found(&e) => Err(RuntimeError::NotFound),
            Err(e) => Err(io(e)),
        }
    }

    async fn logs(
        &self,
        key: &ContainerKey,
        offset: u64,
        max_lines: usize,
    ) -> Result<LogChunk, RuntimeError> {
        let name = create::container_name(&key.task_id, &key.container);
        logs::read(&self.docker, &name, offset, max_lines).await
    }

    async fn remove(&self, key: &ContainerKey) -> Result<(), RuntimeError> {
        let name = create::container_name(&key.task_id, &key.container);
        if self.status(key).await?.is_none() {
            return Err(RuntimeError::NotFound);
        }
        let opts = RemoveContainerOptions {
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(&name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Err(RuntimeError::NotFound),
            Err(e) if status_code(&e) == Some(409) => Err(RuntimeError::StillRunning),
            Err(e) => Err(io(e)),
        }
    }

    async fn stats(&self, key: &ContainerKey) -> Result<Option<serde_json::Value>, RuntimeError> {
        let name = create::container_name(&key.task_id, &key.container);
        let opts = bollard::query_parameters::StatsOptions {
            stream: false,
            one_shot: false,
        };
        let mut stream = self.docker.stats(&name, Some(opts));
        match stream.next().await {
            Some(Ok(s)) => Ok(serde_json::to_value(s).ok()),
            Some(Err(e)) if is_not_found(&e) => Ok(None),
            Some(Err(e)) => Err(io(e)),
            None => Ok(None),
        }
    }

    fn own_network(&self, mode: NetworkMode) -> bool {
        mode != NetworkMode::Host
    }

    async fn listen_in_network(
        &self,
        task: &TaskSpec,
        key: Option<&ContainerKey>,
        port: u16,
    ) -> Result<Option<std::net::TcpListener>, RuntimeError> {
        let name = match key {
            Some(k) => create::container_name(&k.task_id, &k.container),
            None => create::pause_name(&task.task_id),
        };
        let Some(c) = self.inspect(&name).await? else {
            return Ok(None);
        };
        let pid = c.state.and_then(|s| s.pid).unwrap_or(0);
        if pid <= 0 {
            return Ok(None);
        }
        tokio::task::spawn_blocking(move || netns::listen(pid as u32, port))
            .await
            .map_err(|e| RuntimeError::Io(e.to_string()))?
            .map(Some)
            .map_err(|e| RuntimeError::Io(format!("listening in the network of {name}: {e}")))
    }

    async fn prepare_task(&self, task: &TaskSpec) -> Result<TaskNetwork, RuntimeError> {
        self.ensure_volumes(task).await?;
        if task.network == NetworkMode::Awsvpc {
            return self.ensure_pause(task).await;
        }
        Ok(TaskNetwork::default())
    }

    /// Removes the namespace holder, and the task's own volumes once no
    /// container uses them (the agent calls this again after it removes
    /// the containers).
    async fn release_task(&self, task: &TaskSpec) -> Result<(), RuntimeError> {
        self.remove_forced(&create::pause_name(&task.task_id))
            .await?;
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![
                format!("{LABEL_OWNER}={}", self.owner),
                format!("{LABEL_TASK_ID}={}", task.task_id),
            ],
        );
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(io)?;
        for v in volumes.volumes.into_iter().flatten() {
            match self
                .docker
                .remove_volume(&v.name, None::<RemoveVolumeOptions>)
                .await
            {
                Ok(()) => {}
                Err(e) if is_not_found(&e) || status_code(&e) == Some(409) => {} // in use: later
                Err(e) => return Err(io(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        assert_eq!(split_reference("busybox"), ("busybox", "latest"));
        assert_eq!(split_reference("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(
            split_reference("localhost:5000/app"),
            ("localhost:5000/app", "latest")
        );
        assert_eq!(
            split_reference("localhost:5000/app:v2"),
            ("localhost:5000/app", "v2")
        );
        assert_eq!(split_reference("app@sha256:abc"), ("app@sha256:abc", ""));
        assert_eq!(registry_of("localhost:5000/app"), "localhost:5000");
        assert_eq!(
            registry_of("123.dkr.ecr.us-east-1.amazonaws.com/app"),
            "123.dkr.ecr.us-east-1.amazonaws.com"
        );
        assert_eq!(
            registry_of("library/busybox"),
            "https://index.docker.io/v1/"
        );
    }

    #[test]
    fn pull_behaviors_parse_like_ecs() {
        assert_eq!("prefer-cached".parse(), Ok(PullBehavior::PreferCached));
        assert!("sometimes".parse::<PullBehavior>().is_err());
    }
}
