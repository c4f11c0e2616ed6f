//! `--runtime auto|process|docker`, shared by `berth server` and `berth agent`.

use berth_runtime::docker::{DockerRuntime, PullBehavior};
use berth_runtime::process::{ProcessRuntime, Tenancy};
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
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(id.as_bytes())?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

/// The runtime `args` choose; a process runtime runs tasks of different
/// accounts as `tenancy` says (asked only for a process runtime).
pub async fn build(
    args: &RuntimeArgs,
    state_dir: &Path,
    tenancy: impl FnOnce() -> anyhow::Result<Tenancy>,
) -> anyhow::Result<Arc<dyn Runtime>> {
    let process = || -> anyhow::Result<Arc<dyn Runtime>> {
        let rt = ProcessRuntime::with_current_exe(state_dir.join("containers"))?
            .with_tenancy(tenancy()?);
        if let Some(note) = rt.isolation_note() {
            tracing::info!("process runtime: {note}");
        }
        Ok(Arc::new(rt))
    };
    let docker = || async {
        let owner = owner_id(state_dir)?;
        anyhow::Ok(DockerRuntime::connect(owner, args.image_pull_behavior).await?)
    };
    match args.runtime {
        RuntimeChoice::Docker => Ok(Arc::new(docker().await?)),
        RuntimeChoice::Process => process(),
        RuntimeChoice::Auto => match docker().await {
            Ok(d) => Ok(Arc::new(d)),
            Err(e) => {
                tracing::info!(error = %e, "no Docker Engine; containers run as host processes");
                process()
            }
        },
    }
}
