//! How the `berth` commands that are clients of a server (`berth logs`,
//! `berth events`) find it and sign: the `berth env` variables, else the
//! server's data dir.

use anyhow::Context;
use berth_agent::http::HttpControlPlane;
use std::path::{Path, PathBuf};

/// The URL a server wrote into its data dir at start (else the default
/// listen address).
pub fn endpoint_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("endpoint"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| format!("http://{}", berth_server::DEFAULT_LISTEN))
}

/// Where the server is and whom to sign as: the `berth env` variables, or
/// the server's data dir.
#[derive(clap::Args)]
pub struct ClientArgs {
    /// The server's URL (default: the data dir's `endpoint`).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// The server's data dir, for its endpoint and first key when the
    /// environment names none.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    region: String,
    /// PEM certificates to trust for an https endpoint.
    #[arg(long, value_name = "PEM", env = "AWS_CA_BUNDLE")]
    ca: Option<PathBuf>,
}

impl ClientArgs {
    pub fn connect(&self) -> anyhow::Result<HttpControlPlane> {
        let dir = self
            .data_dir
            .clone()
            .unwrap_or_else(berth_server::config::default_data_dir);
        let endpoint = match &self.endpoint {
            Some(e) => e.clone(),
            None => endpoint_of(&dir),
        };
        let (key, secret) = match (&self.access_key_id, &self.secret_access_key) {
            (Some(k), Some(s)) => (k.clone(), s.clone()),
            _ => {
                let stored = berth_server::credentials::stored(&dir)?;
                let c = stored.first().with_context(|| {
                    format!(
                        "no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and no credentials in {}",
                        dir.display()
                    )
                })?;
                (c.access_key_id.clone(), c.secret_access_key.clone())
            }
        };
        HttpControlPlane::with_ca(&endpoint, &key, &secret, &self.region, self.ca.as_deref())
    }
}
