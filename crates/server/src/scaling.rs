//! The operator's scaling hooks for managed scaling (`[[scaling_hooks]]`),
//! and the loop that runs the engine (`berth_api::ecs::scaling`).
//!
//! ```toml
//! [scaling]                 # optional
//! interval = 5              # seconds between rounds
//! scale_in_after = 900      # seconds below target before idle hosts go (ECS: 15 min)
//!
//! [[scaling_hooks]]
//! account_id = "123456789012"   # required: only this account's providers use it
//! region = "us-east-1"          # optional: only this region's
//! provider = "pool"             # optional: only this provider (else every managed one)
//! command = ["/usr/local/bin/pool-scale", "--verbose"]  # exec'd, no shell
//! timeout = 120                 # seconds (default 300)
//! env = { POOL_IMAGE = "berth:local" }  # the command's whole environment, with PATH
//! # or berth's own launcher of agent containers (managed_instances.rs):
//! # docker = { access_key_id = "AKIA...", network = "host", memory_mib = 512, cpus = 1.0 }
//! # or, instead of command:
//! # url = "https://hooks.example/scale"  # POST of the JSON request
//! # secret = "..."                        # signs it: X-Berth-Signature: sha256=HMAC(ts.body)
//! ```
//!
//! A command gets `PROVIDER CURRENT DESIRED` after its own arguments, the
//! request as JSON on stdin, and `BERTH_*` variables (see [`CommandHook`]).

use anyhow::Context;
use berth_api::ecs::scaling::{HookTable, ScaleRequest, ScalingEngine, ScalingHook};
use berth_api::Ecs;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `[scaling]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScalingSection {
    pub interval: Option<f64>,
    pub scale_in_after: Option<f64>,
}

/// One `[[scaling_hooks]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HookEntry {
    pub account_id: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    /// berth's own launcher of agent hosts as Docker containers
    /// (`managed_instances`), instead of a command or a URL.
    #[serde(default)]
    pub docker: Option<crate::managed_instances::DockerSection>,
}

/// The hooks and the engine's timings, checked.
#[derive(Clone, Default)]
pub struct ScalingConfig {
    pub interval: Duration,
    pub scale_in_after: Duration,
    hooks: Vec<(HookEntry, Arc<dyn ScalingHook>)>,
    /// Docker launchers, built once the server knows its endpoint: the
    /// entry and its agents' secret key.
    launchers: Vec<(HookEntry, String)>,
}

impl std::fmt::Debug for ScalingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScalingConfig")
            .field("interval", &self.interval)
            .field("scale_in_after", &self.scale_in_after)
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl ScalingConfig {
    pub fn new(
        section: &ScalingSection,
        entries: &[HookEntry],
        credentials: &[crate::config::CredentialEntry],
    ) -> anyhow::Result<ScalingConfig> {
        let secs = |name: &str, v: Option<f64>, d: f64| -> anyhow::Result<Duration> {
            let s = v.unwrap_or(d);
            anyhow::ensure!(
                s >= 0.0 && s.is_finite() && s < 1e9,
                "scaling.{name} must be a number of seconds, not {s}"
            );
            Ok(Duration::from_secs_f64(s))
        };
        let mut hooks = Vec::new();
        let mut launchers = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            anyhow::ensure!(
                e.account_id.len() == 12 && e.account_id.bytes().all(|b| b.is_ascii_digit()),
                "scaling_hooks[{i}].account_id must be a 12-digit account"
            );
            if let Some(d) = &e.docker {
                anyhow::ensure!(
                    e.command.is_none() && e.url.is_none(),
                    "scaling_hooks[{i}] needs exactly one of command, url and docker"
                );
                let key = credentials
                    .iter()
                    .find(|c| c.access_key_id == d.access_key_id && c.account_id == e.account_id)
                    .with_context(|| {
                        format!(
                            "scaling_hooks[{i}].docker.access_key_id must be a [[credentials]] key of account {}",
                            e.account_id
                        )
                    })?;
                launchers.push((e.clone(), key.secret_access_key.clone()));
                continue;
            }
            let hook: Arc<dyn ScalingHook> = match (&e.command, &e.url) {
                (Some(cmd), None) => {
                    anyhow::ensure!(
                        !cmd.is_empty() && !cmd[0].is_empty(),
                        "scaling_hooks[{i}].command is empty"
                    );
                    Arc::new(CommandHook {
                        program: PathBuf::from(&cmd[0]),
                        args: cmd[1..].to_vec(),
                        env: e.env.clone(),
                        timeout: secs("timeout", e.timeout, 300.0)?,
                    })
                }
                (None, Some(url)) => Arc::new(
                    WebhookHook::new(url, e.secret.clone(), secs("timeout", e.timeout, 30.0)?)
                        .with_context(|| format!("scaling_hooks[{i}].url"))?,
                ),
                _ => {
                    anyhow::bail!("scaling_hooks[{i}] needs exactly one of command, url and docker")
                }
            };
            hooks.push((e.clone(), hook));
        }
        Ok(ScalingConfig {
            interval: secs("interval", section.interval, 5.0)?.max(Duration::from_millis(100)),
            scale_in_after: secs("scale_in_after", section.scale_in_after, 900.0)?,
            hooks,
            launchers,
        })
    }

    /// Builds the Docker launchers, whose hosts reach the server at
    /// `endpoint` unless their entry names another URL.
    pub fn with_launchers(mut self, endpoint: &str) -> anyhow::Result<Self> {
        for (e, secret) in std::mem::take(&mut self.launchers) {
            let d = e.docker.clone().expect("a launcher entry has docker");
            let url = d.endpoint.clone().unwrap_or_else(|| endpoint.to_string());
            let hook = crate::managed_instances::DockerLauncher::new(d, url, secret)?;
            self.hooks.push((e, Arc::new(hook)));
        }
        Ok(self)
    }

    /// Adds a hook for code (berth's own Docker launcher, tests).
    pub fn with_hook(mut self, entry: HookEntry, hook: Arc<dyn ScalingHook>) -> Self {
        self.hooks.push((entry, hook));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty() && self.launchers.is_empty()
    }
}

impl HookTable for ScalingConfig {
    /// The first entry of the account that names this provider, else the
    /// first of the account that names none.
    fn hook(&self, account: &str, region: &str, provider: &str) -> Option<Arc<dyn ScalingHook>> {
        let ours = |e: &HookEntry| {
            e.account_id == account && e.region.as_deref().is_none_or(|r| r == region)
        };
        self.hooks
            .iter()
            .find(|(e, _)| ours(e) && e.provider.as_deref() == Some(provider))
            .or_else(|| {
                self.hooks
                    .iter()
                    .find(|(e, _)| ours(e) && e.provider.is_none())
            })
            .map(|(_, h)| h.clone())
    }
}

/// Runs the engine every `interval` while the server runs (nothing to do
/// without hooks).
pub fn spawn(ecs: Ecs, config: &ScalingConfig, endpoint: &str) -> anyhow::Result<()> {
    if config.is_empty() {
        return Ok(());
    }
    let config = config.clone().with_launchers(endpoint)?;
    let interval = config.interval;
    let engine = ScalingEngine::new(Arc::new(config.clone()), config.scale_in_after);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match ecs.scale_round(&engine).await {
                Ok(rounds) => {
                    for o in rounds
                        .iter()
                        .filter(|o| o.added > 0 || !o.removed.is_empty())
                    {
                        tracing::info!(
                            provider = %o.provider, cluster = %o.cluster, account = %o.account,
                            added = o.added, removed = ?o.removed,
                            capacity_provider_reservation = o.decision.reservation,
                            "managed scaling"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "managed scaling round failed"),
            }
        }
    });
    Ok(())
}

/// A command the operator configured, exec'd without a shell:
/// `PROGRAM ARGS… PROVIDER CURRENT DESIRED`, the request as JSON on stdin,
/// and in an environment of only PATH, the entry's `env` and
/// `BERTH_CAPACITY_PROVIDER`, `BERTH_CLUSTER`, `BERTH_ACCOUNT_ID`,
/// `BERTH_REGION`, `BERTH_CURRENT`, `BERTH_DESIRED`,
/// `BERTH_CAPACITY_PROVIDER_RESERVATION`, `BERTH_REMOVE` (the hosts'
/// registered instance ids, space-separated) and `BERTH_REMOVE_ARNS`
/// (their container instance ARNs). The server's own environment (its
/// keys) is not passed on. Killed at the timeout.
pub struct CommandHook {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
}

#[async_trait::async_trait]
impl ScalingHook for CommandHook {
    async fn scale(&self, r: &ScaleRequest) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let remove: Vec<String> = r
            .remove
            .iter()
            .map(|h| {
                h.ec2_instance_id
                    .clone()
                    .unwrap_or_else(|| h.container_instance_arn.clone())
            })
            .collect();
        let arns: Vec<&str> = r
            .remove
            .iter()
            .map(|h| h.container_instance_arn.as_str())
            .collect();
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .arg(&r.capacity_provider)
            .arg(r.current.to_string())
            .arg(r.desired.to_string())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(&self.env)
            .env("BERTH_CAPACITY_PROVIDER", &r.capacity_provider)
            .env("BERTH_CLUSTER", &r.cluster)
            .env("BERTH_ACCOUNT_ID", &r.account_id)
            .env("BERTH_REGION", &r.region)
            .env("BERTH_CURRENT", r.current.to_string())
            .env("BERTH_DESIRED", r.desired.to_string())
            .env(
                "BERTH_CAPACITY_PROVIDER_RESERVATION",
                r.capacity_provider_reservation.to_string(),
            )
            .env("BERTH_REMOVE", remove.join(" "))
            .env("BERTH_REMOVE_ARNS", arns.join(" "))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.program.display()))?;
        let body = serde_json::to_vec(r).unwrap_or_default();
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its stdin is fine.
            let _ = stdin.write_all(&body).await;
        }
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| {
                format!(
                    "{} timed out after {:?}",
                    self.program.display(),
                    self.timeout
                )
            })?
            .map_err(|e| format!("waiting for {}: {e}", self.program.display()))?;
        let text = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(4096)]).into_owned();
        tracing::info!(
            hook = %self.program.display(), provider = %r.capacity_provider,
            current = r.current, desired = r.desired, status = %out.status,
            stdout = %text(&out.stdout), stderr = %text(&out.stderr),
            "scaling hook ran"
        );
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} exited with {}",
                self.program.display(),
                out.status
            ))
        }
    }
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// An HTTP(S) POST of the request as JSON. With a secret, signed:
/// `X-Berth-Timestamp: <unix seconds>` and
/// `X-Berth-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`,
/// so the receiver can check origin and freshness. A 2xx answer is success.
pub struct WebhookHook {
    url: http::Uri,
    secret: Option<String>,
    timeout: Duration,
    client: HttpsClient,
}

impl WebhookHook {
    pub fn new(url: &str, secret: Option<String>, timeout: Duration) -> anyhow::Result<Self> {
        let uri: http::Uri = url.parse().context("not a URL")?;
        anyhow::ensure!(
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some(),
            "must be an http or https URL"
        );
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        Ok(WebhookHook {
            url: uri,
            secret,
            timeout,
            client,
        })
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `"<timestamp>.<body>"`.
pub fn webhook_signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut data = format!("{timestamp}.").into_bytes();
    data.extend_from_slice(body);
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(&data);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[async_trait::async_trait]
impl ScalingHook for WebhookHook {
    async fn scale(&self, r: &ScaleRequest) -> Result<(), String> {
        let body = serde_json::to_vec(r).map_err(|e| e.to_string())?;
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut req = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-berth-timestamp", ts.to_string());
        if let Some(secret) = &self.secret {
            req = req.header("x-berth-signature", webhook_signature(secret, ts, &body));
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let answer = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| format!("{} timed out", self.url))?
            .map_err(|e| format!("{}: {e}", self.url))?;
        tracing::info!(url = %self.url, status = %answer.status(), provider = %r.capacity_provider, "scaling webhook answered");
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("{} answered {}", self.url, answer.status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> (ScalingSection, Vec<HookEntry>) {
        #[derive(Deserialize)]
        struct F {
            #[serde(default)]
            scaling: ScalingSection,
            #[serde(default)]
            scaling_hooks: Vec<HookEntry>,
        }
        let f: F = toml::from_str(text).unwrap();
        (f.scaling, f.scaling_hooks)
    }

    fn request(provider: &str) -> ScaleRequest {
        ScaleRequest {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            cluster: "c".into(),
            capacity_provider: provider.into(),
            current: 1,
            desired: 2,
            capacity_provider_reservation: 200.0,
            remove: vec![],
        }
    }

    #[test]
    fn a_hook_acts_only_for_its_own_account_and_region() {
        let (s, e) = entries(
            r#"
            [[scaling_hooks]]
            account_id = "111111111111"
            provider = "pool"
            command = ["/bin/true"]

            [[scaling_hooks]]
            account_id = "111111111111"
            region = "eu-west-1"
            url = "http://127.0.0.1:9/hook"
            "#,
        );
        let c = ScalingConfig::new(&s, &e, &[]).unwrap();
        assert!(c.hook("111111111111", "us-east-1", "pool").is_some());
        // Another account naming its provider the same gets nothing: a
        // stranger's CreateCapacityProvider never reaches the operator's hook.
        assert!(c.hook("222222222222", "us-east-1", "pool").is_none());
        assert!(c.hook("111111111111", "us-east-1", "other").is_none());
        assert!(c.hook("111111111111", "eu-west-1", "other").is_some());
        assert_eq!(c.scale_in_after, Duration::from_secs(900));
    }

    #[test]
    fn bad_hooks_stop_the_server() {
        for bad in [
            "[[scaling_hooks]]\naccount_id = \"1\"\ncommand = [\"/bin/true\"]",
            "[[scaling_hooks]]\naccount_id = \"111111111111\"",
            "[[scaling_hooks]]\naccount_id = \"111111111111\"\ncommand = []",
            "[[scaling_hooks]]\naccount_id = \"111111111111\"\ncommand = [\"x\"]\nurl = \"http://a/\"",
            "[[scaling_hooks]]\naccount_id = \"111111111111\"\nurl = \"ftp://a/\"",
            "[scaling]\ninterval = -1",
            // A launcher's key must be one of its own account's.
            "[[scaling_hooks]]\naccount_id = \"111111111111\"\ndocker = { access_key_id = \"AKIAOTHER\" }",
        ] {
            let (s, e) = entries(bad);
            assert!(ScalingConfig::new(&s, &e, &[]).is_err(), "{bad}");
        }
        assert!(
            toml::from_str::<HookEntry>("account_id = \"111111111111\"\nshell = \"x\"").is_err()
        );
    }

    #[tokio::test]
    async fn a_command_gets_arguments_without_a_shell_and_none_of_the_servers_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::env::set_var("BERTH_TEST_SERVER_SECRET", "leak");
        let hook = CommandHook {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                format!(
                    "echo \"$1 $2 $3|$BERTH_DESIRED|$EXTRA|${{BERTH_TEST_SERVER_SECRET:-none}}\" > {}",
                    out.display()
                ),
                "hook".into(),
            ],
            env: [("EXTRA".to_string(), "x".to_string())].into(),
            timeout: Duration::from_secs(10),
        };
        // A provider name that would be a shell injection is one argument.
        hook.scale(&request("pool;touch /tmp/owned")).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap().trim(),
            "pool;touch /tmp/owned 1 2|2|x|none"
        );
        let slow = CommandHook {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "sleep 5".into()],
            env: Default::default(),
            timeout: Duration::from_millis(200),
        };
        assert!(slow
            .scale(&request("p"))
            .await
            .unwrap_err()
            .contains("timed out"));
    }

    #[test]
    fn webhook_signature_is_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 test case 2 key and data, with our "ts." prefix folded in.
        let sig = webhook_signature("Jefe", 0, b"what do ya want for nothing?");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_ne!(
            sig,
            webhook_signature("Jefe", 1, b"what do ya want for nothing?")
        );
    }
}
