//! `--runtime auto|process|docker`, shared by `berth server` and `berth agent`.

use berth_runtime::docker::{DockerRuntime, PullBehavior};
use berth_runtime::process::ProcessRuntime;
use berth_runtime::Runtime;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeChoice {
    /// Docker when an engine answers, else host processes.
    Auto,
    /// Each container's entryPoint + command as a host process (images are not used).
    Process,
    /// Containers on the local Docker Engine (DOCKER_HOST or /var/run/docker.sock).
    Docker,
}

/// The runtime's options on the command line.
#[derive(clap::Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// How containers run: `docker`, `process` (host processes, images are
    /// not used), or `auto` (docker when an engine answers, else process).
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Auto)]
    pub runtime: RuntimeChoice,
    /// When the docker runtime pulls images, like ECS_IMAGE_PULL_BEHAVIOR:
    /// `default` (pull, fall back to a local image), `always`, `once`,
    /// `prefer-cached`.
    #[arg(long, env = "ECS_IMAGE_PULL_BEHAVIOR", default_value = "default",
          value_parser = |s: &str| s.parse::<PullBehavior>())]
    pub image_pull_behavior: PullBehavior,
}

/// This agent's id on a shared Docker Engine: kept in the state dir so a
/// restarted agent recognises its containers.
fn owner_id(state_dir: &Path) -> anyhow::Result<String> {
    let path = state_dir.join("owner-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_string());
        }
    }
    std::fs::create_dir_all(state_dir)?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let tmp = state_dir.join("owner-id.tmp");
    std::fs::write(&tmp, &id)?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

pub async fn build(args: &RuntimeArgs, state_dir: &Path) -> anyhow::Result<Arc<dyn Runtime>> {
    let docker = || async {
        let owner = owner_id(state_dir)?;
        anyhow::Ok(DockerRuntime::connect(owner, args.image_pull_behavior).await?)
    };
    match args.runtime {
        RuntimeChoice::Docker => Ok(Arc::new(docker().await?)),
        RuntimeChoice::Process => Ok(Arc::new(ProcessRuntime::with_current_exe(
            state_dir.join("containers"),
        )?)),
        RuntimeChoice::Auto => match docker().await {
            Ok(d) => Ok(Arc::new(d)),
            Err(e) => {
                tracing::info!(error = %e, "no Docker Engine; containers run as host processes");
                Ok(Arc::new(ProcessRuntime::with_current_exe(
                    state_dir.join("containers"),
                )?))
            }
        },
    }
}
