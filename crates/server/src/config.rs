//! Server configuration: command-line values plus an optional TOML file.
//!
//! ```toml
//! regions = ["us-east-1", "eu-west-1"]   # optional: accept only these
//!
//! [[credentials]]
//! access_key_id = "AKIA..."
//! secret_access_key = "..."
//! account_id = "123456789012"
//! principal_arn = "arn:aws:iam::123456789012:user/alice"  # optional, default: the account root
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Credentials from the config file and the environment.
    pub credentials: Vec<CredentialEntry>,
    /// When set, only these regions are accepted in signatures.
    pub regions: Option<Vec<String>>,
    /// Agent liveness and task retention timings.
    pub timings: berth_api::ecs::Timings,
    /// The agent that provides berth's managed (FARGATE) capacity on this
    /// host; `None` runs a control plane only.
    pub embedded_agent: Option<EmbeddedAgent>,
}

/// How the embedded agent runs containers, and where it keeps its state.
#[derive(Clone)]
pub struct EmbeddedAgent {
    pub runtime: std::sync::Arc<dyn berth_runtime::Runtime>,
    pub state_dir: PathBuf,
    /// How long a stopped task's containers are kept before removal.
    pub cleanup_wait: std::time::Duration,
}

impl std::fmt::Debug for EmbeddedAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedAgent")
            .field("runtime", &self.runtime.name())
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct CredentialEntry {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_arn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub credentials: Vec<CredentialEntry>,
    #[serde(default)]
    pub regions: Option<Vec<String>>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<ConfigFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("parsing config {}: {e}", path.display()))
    }
}

/// The default data directory: `$BERTH_DATA_DIR`, else
/// `$XDG_DATA_HOME/berth`, else `~/.local/share/berth`, else `./berth-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BERTH_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("berth");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".local/share/berth");
    }
    PathBuf::from("berth-data")
}
