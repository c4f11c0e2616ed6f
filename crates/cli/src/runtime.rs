//! `--runtime auto|process|docker`, shared by `berth server` and `berth agent`.

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
    /// Containers on the local Docker Engine.
    Docker,
}

pub async fn build(choice: RuntimeChoice, state_dir: &Path) -> anyhow::Result<Arc<dyn Runtime>> {
    match choice {
        RuntimeChoice::Docker => anyhow::bail!(
            "the docker runtime is not available in this build yet; use --runtime process"
        ),
        // Until the Docker runtime lands, auto means the process runtime.
        RuntimeChoice::Auto | RuntimeChoice::Process => {
            Ok(Arc::new(ProcessRuntime::with_current_exe(state_dir)?))
        }
    }
}
