//! berth's own launcher of agent hosts: a scaling hook that starts each
//! host as a Docker container running `berth agent --capacity-provider P`
//! (image `berth:local` from scripts/berth-image.sh), and removes the
//! containers it is told to. A cluster so scales its own fleet on one
//! Docker host.
//!
//! What such a host can reach, by design: the network it is put on (the
//! `network` of the config; `host` also gives it the host's loopback),
//! and nothing of the host's file system: no mounts at all, not the Docker
//! socket (its tasks run with the process runtime, inside the container).
//! It is capped by `memory_mib`, `cpus` and a pid limit, runs with
//! `no-new-privileges`, and carries labels (`berth.managed-instance.*`)
//! that name its account, cluster and provider for cleanup. Its
//! credentials are one key of the hook's own account, from
//! `[[credentials]]`.

use anyhow::Context;
use berth_api::ecs::scaling::{ScaleRequest, ScalingHook, MANAGED_INSTANCE_ATTRIBUTE};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions, StartContainerOptions,
};
use bollard::Docker;
use serde::Deserialize;
use std::collections::HashMap;

/// Labels on every container the launcher starts.
pub const LABEL: &str = "berth.managed-instance";
pub const LABEL_ACCOUNT: &str = "berth.managed-instance.account";
pub const LABEL_CLUSTER: &str = "berth.managed-instance.cluster";
pub const LABEL_PROVIDER: &str = "berth.managed-instance.provider";

/// A hook entry's `docker = { … }` table.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DockerSection {
    #[serde(default = "default_image")]
    pub image: String,
    /// The network the hosts join (default `bridge`).
    #[serde(default)]
    pub network: Option<String>,
    /// The control plane's URL as the hosts reach it (default: the
    /// server's own endpoint, which a `host` network reaches).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The key the hosts' agents sign with: one of `[[credentials]]`, of
    /// the hook's account.
    pub access_key_id: String,
    #[serde(default = "default_memory")]
    pub memory_mib: i64,
    #[serde(default = "default_cpus")]
    pub cpus: f64,
}

fn default_image() -> String {
    "berth:local".into()
}
fn default_memory() -> i64 {
    512
}
fn default_cpus() -> f64 {
    1.0
}

/// The launcher, ready to run.
pub struct DockerLauncher {
    docker: Docker,
    spec: DockerSection,
    endpoint: String,
    secret_access_key: String,
}

impl DockerLauncher {
    pub fn new(
        spec: DockerSection,
        endpoint: String,
        secret_access_key: String,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            spec.memory_mib >= 64,
            "docker.memory_mib must be at least 64"
        );
        anyhow::ensure!(
            spec.cpus > 0.0 && spec.cpus.is_finite(),
            "docker.cpus must be positive"
        );
        let docker = Docker::connect_with_local_defaults().context("connecting to Docker")?;
        Ok(DockerLauncher {
            docker,
            spec,
            endpoint,
            secret_access_key,
        })
    }

    async fn start_host(&self, r: &ScaleRequest) -> Result<String, String> {
        let name = format!(
            "berth-mi-{}-{}",
            r.capacity_provider.to_ascii_lowercase(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let labels = HashMap::from([
            (LABEL.to_string(), name.clone()),
            (LABEL_ACCOUNT.to_string(), r.account_id.clone()),
            (LABEL_CLUSTER.to_string(), r.cluster.clone()),
            (LABEL_PROVIDER.to_string(), r.capacity_provider.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(self.spec.image.clone()),
            hostname: Some(name.chars().take(63).collect()),
            cmd: Some(vec![
                "berth".into(),
                "agent".into(),
                "--endpoint".into(),
                self.endpoint.clone(),
                "--cluster".into(),
                r.cluster.clone(),
                "--region".into(),
                r.region.clone(),
                "--runtime".into(),
                "process".into(),
                "--data-dir".into(),
                "/var/lib/berth-agent".into(),
                "--capacity-provider".into(),
                r.capacity_provider.clone(),
                "--attribute".into(),
                format!("{MANAGED_INSTANCE_ATTRIBUTE}={name}"),
            ]),
            env: Some(vec![
                format!("AWS_ACCESS_KEY_ID={}", self.spec.access_key_id),
                format!("AWS_SECRET_ACCESS_KEY={}", self.secret_access_key),
            ]),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(self.spec.network.clone().unwrap_or_else(|| "bridge".into())),
                memory: Some(self.spec.memory_mib << 20),
                nano_cpus: Some((self.spec.cpus * 1e9) as i64),
                pids_limit: Some(1024),
                init: Some(true),
                security_opt: Some(vec!["no-new-privileges".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| format!("creating {name}: {e}"))?;
        self.docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
            .map_err(|e| format!("starting {name}: {e}"))?;
        Ok(name)
    }

    /// Removes a host this launcher started for this provider (a name it
    /// did not label is refused).
    async fn remove_host(&self, r: &ScaleRequest, name: &str) -> Result<(), String> {
        let ours = self.containers(r).await?.into_iter().any(|n| n == name);
        if !ours {
            return Err(format!(
                "{name} is not a managed instance of {}",
                r.capacity_provider
            ));
        }
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(format!("removing {name}: {e}")),
        }
    }

    /// The names of this provider's containers (of this account and cluster).
    pub async fn containers(&self, r: &ScaleRequest) -> Result<Vec<String>, String> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{LABEL_ACCOUNT}={}", r.account_id),
                format!("{LABEL_CLUSTER}={}", r.cluster),
                format!("{LABEL_PROVIDER}={}", r.capacity_provider),
            ],
        )]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| format!("listing managed instances: {e}"))?;
        Ok(list
            .into_iter()
            .filter_map(|c| c.labels.and_then(|mut l| l.remove(LABEL)))
            .collect())
    }
}

#[async_trait::async_trait]
impl ScalingHook for DockerLauncher {
    async fn scale(&self, r: &ScaleRequest) -> Result<(), String> {
        if r.remove.is_empty() {
            for _ in r.current..r.desired {
                let name = self.start_host(r).await?;
                tracing::info!(container = %name, provider = %r.capacity_provider, cluster = %r.cluster, "managed instance started");
            }
            return Ok(());
        }
        for h in &r.remove {
            let Some(name) = &h.managed_instance else {
                return Err(format!(
                    "{} is not a managed instance (no {MANAGED_INSTANCE_ATTRIBUTE} attribute)",
                    h.container_instance_arn
                ));
            };
            self.remove_host(r, name).await?;
            tracing::info!(container = %name, provider = %r.capacity_provider, "managed instance removed");
        }
        Ok(())
    }
}
