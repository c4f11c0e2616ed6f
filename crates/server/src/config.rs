//! Server configuration: command-line values plus an optional TOML file.
//!
//! ```toml
//! regions = ["us-east-1", "eu-west-1"]   # optional: accept only these
//! store = "postgres://berth:secret@db.internal/berth"   # optional (also --store):
//!                           # the state in PostgreSQL instead of DATA_DIR/berth.db
//!
//! [[credentials]]
//! access_key_id = "AKIA..."
//! secret_access_key = "..."
//! account_id = "123456789012"
//! principal_arn = "arn:aws:iam::123456789012:user/alice"  # optional, default: the account root
//!
//! [[roles]]                 # optional: what a task role's credentials may do
//! arn = "arn:aws:iam::123456789012:role/app"   # the taskRoleArn, in full
//! policy = '{"Statement": [{"Effect": "Allow", "Action": "ecs:List*", "Resource": "*"}]}'
//! # policy_file = "/etc/berth/app-role.json"   # or a file; a role with neither may do
//! #                                            # everything in its account, as a key without one
//!
//! [http]                    # optional; each also a `berth server` flag, which wins
//! header_read_timeout = 10  # seconds from a connection's opening, or a request's first byte, to its headers
//! body_read_timeout = 30    # seconds to receive a request's body
//! idle_timeout = 60         # seconds a connection may wait between requests
//! max_connections = 1024    # open connections; more wait in the listen backlog
//! max_body_memory_mib = 64  # request bodies held in memory at once, all connections together
//! throttle_rate = 20        # requests per second per access key (absent or 0: no throttling)
//! throttle_burst = 40       # bucket size (default: twice the rate)
//!
//! [[scaling_hooks]]         # optional: managed scaling's hooks (see scaling.rs)
//! account_id = "123456789012"
//! provider = "pool"
//! command = ["/usr/local/bin/pool-scale"]
//!
//! [tls]                     # optional: serve https (also --tls-cert / --tls-key)
//! cert = "/etc/berth/server.pem"   # PEM certificate chain, leaf first
//! key = "/etc/berth/server.key"    # PEM private key (PKCS#8, PKCS#1 or SEC1)
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Keys, generated credentials, the endpoint file, and the SQLite store.
    pub data_dir: PathBuf,
    /// Where clusters, tasks, services and logs are kept.
    pub store: StoreLocation,
    /// Credentials from the config file and the environment.
    pub credentials: Vec<CredentialEntry>,
    /// Policies of task roles (`[[roles]]`).
    pub roles: Vec<RoleEntry>,
    /// When set, only these regions are accepted in signatures.
    pub regions: Option<Vec<String>>,
    /// Agent liveness and task retention timings.
    pub timings: berth_api::ecs::Timings,
    /// The agent that provides berth's managed (FARGATE) capacity on this
    /// host; `None` runs a control plane only.
    pub embedded_agent: Option<EmbeddedAgent>,
    /// Timeouts and limits that keep hostile clients from wearing the server down.
    pub http: HttpOptions,
    /// Serve https with this certificate and key.
    pub tls: Option<TlsFiles>,
    /// Managed scaling's hooks and timings (`[scaling]`, `[[scaling_hooks]]`).
    pub scaling: crate::scaling::ScalingConfig,
    /// Simulated hosts, for measuring the control plane alone (never by default).
    pub simulate: Option<SimulateHosts>,
}

/// `--simulate-hosts`: container instances registered and kept connected
/// in-process, whose tasks are acknowledged without running anything.
#[derive(Debug, Clone)]
pub struct SimulateHosts {
    pub hosts: usize,
    pub zones: usize,
    pub cluster: String,
    pub region: String,
    /// The account they belong to (default: the first credential's).
    pub account: Option<String>,
}

/// Where the server keeps its state.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum StoreLocation {
    /// `berth.db` in the data dir: one server, nothing else to run.
    #[default]
    Sqlite,
    /// A PostgreSQL database (`postgres://…` or `postgresql://…`), which
    /// several servers can share.
    Postgres(String),
}

impl std::str::FromStr for StoreLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "sqlite" {
            Ok(StoreLocation::Sqlite)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreLocation::Postgres(s.to_string()))
        } else {
            Err(format!(
                "a store is `sqlite` or a postgres:// URL, not {:?}",
                StoreLocation::redact(s)
            ))
        }
    }
}

impl StoreLocation {
    /// A URL without its password (in the user part or a `password=`
    /// parameter), to print.
    pub fn redact(url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => authority.to_string(),
            },
            None => authority.to_string(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let params: Vec<String> = query
                    .split('&')
                    .map(|p| match p.split_once('=') {
                        Some(("password", _)) => "password=***".to_string(),
                        _ => p.to_string(),
                    })
                    .collect();
                format!("{path}?{}", params.join("&"))
            }
            None => tail.to_string(),
        };
        format!("{scheme}://{authority}{tail}")
    }
}

// Debug without the password a URL may hold (configs are logged).
impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite => f.write_str("Sqlite"),
            StoreLocation::Postgres(url) => write!(f, "Postgres({})", StoreLocation::redact(url)),
        }
    }
}

impl<'de> Deserialize<'de> for StoreLocation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What one connection and one request may cost the server.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// From a connection's opening, or the first byte of its next request,
    /// to that request's complete headers (and the TLS handshake).
    pub header_read_timeout: std::time::Duration,
    /// To receive a request's whole body, once its headers are in.
    pub body_read_timeout: std::time::Duration,
    /// A kept-alive connection with no request in progress is closed after
    /// this long. A handler that takes longer (a long poll) is not affected.
    pub idle_timeout: std::time::Duration,
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// Bytes of request bodies held at once, across all connections.
    pub max_body_memory: usize,
    /// Per-access-key request throttling; `None`: none.
    pub throttle: Option<Throttle>,
}

/// A token bucket per access key: `rate` requests per second, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    pub rate: f64,
    pub burst: u32,
}

impl Throttle {
    /// `None` for a rate of 0 (or less): throttling off. The burst defaults
    /// to twice the rate, and is at least 1.
    pub fn new(rate: f64, burst: Option<u32>) -> Option<Throttle> {
        (rate > 0.0 && rate.is_finite()).then(|| Throttle {
            rate,
            burst: burst
                .unwrap_or_else(|| (rate * 2.0).ceil().min(u32::MAX as f64) as u32)
                .max(1),
        })
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            header_read_timeout: std::time::Duration::from_secs(10),
            body_read_timeout: std::time::Duration::from_secs(30),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 1024,
            max_body_memory: 64 << 20,
            throttle: None,
        }
    }
}

/// The `[http]` table of the config file: each value replaces the default.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub header_read_timeout: Option<f64>,
    pub body_read_timeout: Option<f64>,
    pub idle_timeout: Option<f64>,
    pub max_connections: Option<usize>,
    pub max_body_memory_mib: Option<usize>,
    pub throttle_rate: Option<f64>,
    pub throttle_burst: Option<u32>,
}

impl HttpSection {
    /// These values over `base`. Seconds must be positive and finite.
    pub fn apply(&self, base: HttpOptions) -> anyhow::Result<HttpOptions> {
        let secs = |name: &str, v: Option<f64>, d: std::time::Duration| match v {
            None => Ok(d),
            Some(s) if s > 0.0 && s.is_finite() && s < 1e9 => {
                Ok(std::time::Duration::from_secs_f64(s))
            }
            Some(s) => Err(anyhow::anyhow!(
                "{name} must be a positive number of seconds, not {s}"
            )),
        };
        let max_connections = self.max_connections.unwrap_or(base.max_connections);
        anyhow::ensure!(max_connections > 0, "max_connections must be at least 1");
        let max_body_memory = match self.max_body_memory_mib {
            Some(0) => anyhow::bail!("max_body_memory_mib must be at least 1"),
            Some(m) => m.saturating_mul(1 << 20),
            None => base.max_body_memory,
        };
        let throttle = match self.throttle_rate {
            Some(rate) => {
                Throttle::new(rate, self.throttle_burst.or(base.throttle.map(|t| t.burst)))
            }
            None => match (base.throttle, self.throttle_burst) {
                (Some(t), Some(b)) => Throttle::new(t.rate, Some(b)),
                (t, _) => t,
            },
        };
        Ok(HttpOptions {
            header_read_timeout: secs(
                "header_read_timeout",
                self.header_read_timeout,
                base.header_read_timeout,
            )?,
            body_read_timeout: secs(
                "body_read_timeout",
                self.body_read_timeout,
                base.body_read_timeout,
            )?,
            idle_timeout: secs("idle_timeout", self.idle_timeout, base.idle_timeout)?,
            max_connections,
            max_body_memory,
            throttle,
        })
    }
}

/// PEM files of the server's certificate chain and private key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
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
    /// An IAM-style policy document (JSON) that limits what this key may
    /// do; without one (and without `policy_file`) the key may do
    /// everything in its account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// A file holding a policy document (JSON), as `policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<PathBuf>,
}

/// A task role's policies: what the temporary credentials of a task whose
/// `taskRoleArn` is `arn` may do.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    pub arn: String,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub policy_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub credentials: Vec<CredentialEntry>,
    #[serde(default)]
    pub roles: Vec<RoleEntry>,
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    /// Where the state lives (`--store` wins).
    #[serde(default)]
    pub store: Option<StoreLocation>,
    /// Timeouts, limits and throttling (`[http]`).
    #[serde(default)]
    pub http: HttpSection,
    /// Serve https (`[tls]`).
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Managed scaling (`[scaling]`, `[[scaling_hooks]]`; see `scaling`).
    #[serde(default)]
    pub scaling: crate::scaling::ScalingSection,
    #[serde(default)]
    pub scaling_hooks: Vec<crate::scaling::HookEntry>,
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

#[cfg(test)]
mod http_options_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn file_values_replace_defaults_and_flags_replace_file_values() {
        let file: ConfigFile = toml::from_str(
            "[http]\nheader_read_timeout = 2\nidle_timeout = 1.5\nmax_connections = 10\n\
             max_body_memory_mib = 8\nthrottle_rate = 4\n\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
        )
        .unwrap();
        let o = file.http.apply(HttpOptions::default()).unwrap();
        assert_eq!(o.header_read_timeout, Duration::from_secs(2));
        assert_eq!(o.idle_timeout, Duration::from_millis(1500));
        assert_eq!(
            o.body_read_timeout,
            HttpOptions::default().body_read_timeout
        );
        assert_eq!((o.max_connections, o.max_body_memory), (10, 8 << 20));
        assert_eq!(
            o.throttle,
            Some(Throttle {
                rate: 4.0,
                burst: 8
            })
        );
        assert_eq!(file.tls.unwrap().cert, PathBuf::from("c.pem"));

        let flags = HttpSection {
            throttle_burst: Some(3),
            idle_timeout: Some(9.0),
            ..Default::default()
        };
        let o = flags.apply(o).unwrap();
        assert_eq!(
            o.throttle,
            Some(Throttle {
                rate: 4.0,
                burst: 3
            })
        );
        assert_eq!(o.idle_timeout, Duration::from_secs(9));
        assert_eq!(o.header_read_timeout, Duration::from_secs(2));
        // A rate of 0 turns throttling off.
        let off = HttpSection {
            throttle_rate: Some(0.0),
            ..Default::default()
        };
        assert_eq!(off.apply(o).unwrap().throttle, None);
    }

    #[test]
    fn store_locations_parse_and_print_without_passwords() {
        let file: ConfigFile =
            toml::from_str("store = \"postgres://berth:s3cret@db:5432/berth?password=x\"\n")
                .unwrap();
        let Some(StoreLocation::Postgres(url)) = file.store.clone() else {
            panic!("{:?}", file.store)
        };
        assert_eq!(
            StoreLocation::redact(&url),
            "postgres://berth:***@db:5432/berth?password=***"
        );
        assert!(!format!("{:?}", file.store).contains("s3cret"));
        assert_eq!("sqlite".parse(), Ok(StoreLocation::Sqlite));
        assert_eq!(
            StoreLocation::redact("postgresql://berth@%2Ftmp%2Fpg/berth"),
            "postgresql://berth@%2Ftmp%2Fpg/berth"
        );
        let bad = toml::from_str::<ConfigFile>("store = \"mysql://root:pw@h/db\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("a store is `sqlite` or a postgres:// URL"),
            "{bad}"
        );
        assert!(bad.contains("not \"mysql://root:***@h/db\""), "{bad}");
    }

    #[test]
    fn defaults_and_bad_values() {
        let d = HttpOptions::default();
        assert_eq!(d.throttle, None, "throttling is off by default");
        assert_eq!(d.header_read_timeout, Duration::from_secs(10));
        assert_eq!(d.idle_timeout, Duration::from_secs(60));
        for bad in [
            "header_read_timeout = 0",
            "idle_timeout = -1",
            "max_connections = 0",
            "max_body_memory_mib = 0",
        ] {
            let f: ConfigFile = toml::from_str(&format!("[http]\n{bad}\n")).unwrap();
            assert!(f.http.apply(HttpOptions::default()).is_err(), "{bad}");
        }
        assert!(toml::from_str::<ConfigFile>("[http]\nno_such_option = 1\n").is_err());
        assert_eq!(
            Throttle::new(0.3, None),
            Some(Throttle {
                rate: 0.3,
                burst: 1
            })
        );
    }
}
