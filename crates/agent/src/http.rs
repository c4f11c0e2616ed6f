//! The control plane over HTTP, for `berth agent` on another host: the same
//! endpoint and SigV4 auth as any ECS client, with the agent's own keys.
//! An https endpoint is verified against `--ca` (the server's certificate,
//! or the CA that issued it), else the system's trusted roots.

use crate::secret_ref::{
    self, FetchedParameter, FetchedParameters, SecretStores, SecretsManagerRef,
};
use crate::{ControlPlane, LogSetupError};
use anyhow::{anyhow, Context};
use async_trait::async_trait;
use berth_wire::agent::{PollWorkRequest, PollWorkResponse, SubmitHealthRequest};
use berth_wire::ecs::{
    ContainerInstance, CreateClusterRequest, RegisterContainerInstanceRequest,
    RegisterContainerInstanceResponse, SubmitTaskStateChangeRequest,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

const ECS_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
const LOGS_PREFIX: &str = "Logs_20140328";

pub struct HttpControlPlane {
    /// The servers to try, in order, each with its `host` header; calls go
    /// to `current` until it fails to answer (a transport error, a
    /// timeout, or a 5xx), then to the next (`--endpoint A,B,C`: servers
    /// sharing one store).
    endpoints: Vec<(http::Uri, String)>,
    current: std::sync::atomic::AtomicUsize,
    access_key_id: String,
    secret_access_key: String,
    region: String,
    /// Replaced after a timeout or a transport error: pooled connections
    /// may lead nowhere once the network changed (a host renumbered, a NAT
    /// forgot the flow), and hyper would keep trying them.
    client: parking_lot::Mutex<HttpsClient>,
    /// Whom an https endpoint's certificate must chain to.
    tls: Arc<rustls::ClientConfig>,
}

fn new_client(tls: &rustls::ClientConfig) -> HttpsClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    // Notice a peer that vanished without closing the connection.
    connector.set_keepalive(Some(Duration::from_secs(15)));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        // Well inside the server's idle timeout (60 s by default), so that a
        // pooled connection is not reused just as the server closes it.
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// The TLS client configuration: trust the certificates of the PEM file
/// `ca` (a private CA, or the server's own self-signed certificate), else
/// the system's roots.
fn tls_config(ca: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let Some(path) = ca else {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::debug!(errors = ?found.errors, "no system CA certificates found");
        }
        return Ok(builder.with_root_certificates(roots).with_no_client_auth());
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading the CA bundle {}", path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing the CA bundle {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(certs.iter().cloned());
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .with_context(|| format!("no usable CA certificate in {}", path.display()))?;
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedOrCa {
            pinned: certs,
            webpki,
            provider,
        }))
        .with_no_client_auth())
}

/// Verifies the server against `--ca`: a certificate the server presents
/// that is one of the file's (a self-signed server certificate, which
/// `openssl req -x509` marks as a CA and so no CA chain can accept as a
/// server's) is trusted as it is, for the names it holds; any other must
/// chain to one of the file's CAs.
#[derive(Debug)]
struct PinnedOrCa {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for PinnedOrCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            let cert = webpki::EndEntityCert::try_from(end_entity).map_err(|e| {
                rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
                    rustls::OtherError(Arc::new(e)),
                ))
            })?;
            return match cert.verify_is_valid_for_subject_name(server_name) {
                Ok(()) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
                Err(_) => Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName,
                )),
            };
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One `--endpoint` URL and the `host` header it is signed with.
fn parse_endpoint(endpoint: &str) -> anyhow::Result<(http::Uri, String)> {
    let uri: http::Uri = endpoint
        .parse()
        .with_context(|| format!("invalid endpoint URL '{endpoint}'"))?;
    anyhow::ensure!(
        matches!(uri.scheme_str(), Some("http" | "https")),
        "the endpoint must be an http:// or https:// URL"
    );
    let host = uri
        .authority()
        .context("the endpoint URL has no host")?
        .to_string();
    Ok((uri, host))
}

impl HttpControlPlane {
    pub fn new(
        endpoint: &str,
        access_key_id: &str,
        secret_access_key: &str,
        region: &str,
    ) -> anyhow::Result<Self> {
        Self::with_ca(endpoint, access_key_id, secret_access_key, region, None)
    }

    /// An https `endpoint` must present a certificate that chains to one in
    /// the PEM file `ca` (default: the system's trusted roots).
    pub fn with_ca(
        endpoint: &str,
        access_key_id: &str,
        secret_access_key: &str,
        region: &str,
        ca: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let endpoints = endpoint
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(parse_endpoint)
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!endpoints.is_empty(), "no endpoint URL given");
        let tls = Arc::new(tls_config(ca)?);
        Ok(HttpControlPlane {
            endpoints,
            current: Default::default(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            region: region.into(),
            client: parking_lot::Mutex::new(new_client(&tls)),
            tls,
        })
    }

    /// One signed AWS JSON 1.1 call; an error answer becomes `Code: message`.
    async fn call<I: Serialize, O: DeserializeOwned>(
        &self,
        target: &str,
        input: &I,
        timeout: Duration,
    ) -> anyhow::Result<O> {
        self.call_service("ecs", target, input, timeout).await
    }

    /// A call signed for `service` (`ecs`, or `logs` for CloudWatch Logs).
    /// Public for the `berth` commands that read from a server as a client.
    pub async fn call_service<I: Serialize, O: DeserializeOwned>(
        &self,
        service: &str,
        target: &str,
        input: &I,
        timeout: Duration,
    ) -> anyhow::Result<O> {
        self.call_in(service, &self.region, target, input, timeout)
            .await
    }

    /// A call signed for `service` in `region` (a secret's ARN may name
    /// another region than the agent's).
    async fn call_in<I: Serialize, O: DeserializeOwned>(
        &self,
        service: &str,
        region: &str,
        target: &str,
        input: &I,
        timeout: Duration,
    ) -> anyhow::Result<O> {
        let body = serde_json::to_vec(input)?;
        // SQS speaks AWS JSON 1.0; the rest 1.1.
        let content_type = if target.starts_with("AmazonSQS.") {
            "application/x-amz-json-1.0"
        } else {
            "application/x-amz-json-1.1"
        };
        let at = self.current.load(std::sync::atomic::Ordering::Relaxed) % self.endpoints.len();
        let (endpoint, host) = &self.endpoints[at];
        let headers = [
            ("host", host.as_str()),
            ("content-type", content_type),
            ("x-amz-target", target),
        ];
        let signed = berth_auth::sign_headers(
            &self.access_key_id,
            &self.secret_access_key,
            region,
            service,
            "POST",
            "/",
            "",
            &headers,
            &body,
            SystemTime::now(),
        );
        let mut req = http::Request::post(endpoint.clone());
        for (k, v) in headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(signed)
        {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(Bytes::from(body)))?;
        let client = self.client.lock().clone();
        let resp = match tokio::time::timeout(timeout, client.request(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                self.fail_over(at);
                // hyper's own text is only "client error (Connect)": the
                // causes say what went wrong (refused, certificate, ...).
                return Err(anyhow!("{target}: {endpoint}: {}", with_causes(&e)));
            }
            Err(_) => {
                self.fail_over(at);
                return Err(anyhow!(
                    "{target}: {endpoint}: no answer within {timeout:?}"
                ));
            }
        };
        let status = resp.status();
        if status.is_server_error() {
            self.fail_over(at);
        }
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(anyhow!(
                "{target}: {}: {}",
                v["__type"].as_str().unwrap_or("error"),
                v["message"]
                    .as_str()
                    .unwrap_or(&String::from_utf8_lossy(&bytes))
            ));
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// The server at `at` did not answer: drop pooled connections (they
    /// may lead nowhere once the network changed) and move to the next
    /// server, unless another call already did.
    fn fail_over(&self, at: usize) {
        *self.client.lock() = new_client(&self.tls);
        let next = (at + 1) % self.endpoints.len();
        if self
            .current
            .compare_exchange(
                at,
                next,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_ok()
            && next != at
        {
            tracing::warn!(
                from = %self.endpoints[at].0,
                to = %self.endpoints[next].0,
                "the control plane did not answer: trying the next server"
            );
        }
    }

    /// Any signed call (`service` is the signing name, `target` the
    /// `X-Amz-Target`), for berth's own tools (`berth events`).
    pub async fn call_json(
        &self,
        service: &str,
        target: &str,
        input: &serde_json::Value,
        timeout: Duration,
    ) -> anyhow::Result<serde_json::Value> {
        self.call_service(service, target, input, timeout).await
    }

    /// ECS's agent creates the `default` cluster when it registers to it;
    /// berth's does the same.
    pub async fn ensure_cluster(&self, cluster: &str) -> anyhow::Result<()> {
        if cluster == "default" {
            let req = CreateClusterRequest {
                cluster_name: Some(cluster.into()),
                ..Default::default()
            };
            let _: serde_json::Value = self
                .call(
                    &format!("{ECS_PREFIX}.CreateCluster"),
                    &req,
                    Duration::from_secs(30),
                )
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ControlPlane for HttpControlPlane {
    async fn register(
        &self,
        req: RegisterContainerInstanceRequest,
    ) -> anyhow::Result<ContainerInstance> {
        let r: RegisterContainerInstanceResponse = self
            .call(
                &format!("{ECS_PREFIX}.RegisterContainerInstance"),
                &req,
                Duration::from_secs(30),
            )
            .await?;
        r.container_instance
            .context("RegisterContainerInstance returned no instance")
    }

    async fn poll(&self, req: PollWorkRequest) -> anyhow::Result<PollWorkResponse> {
        // Soon after the server should have answered: a poll lost on a dead
        // connection must not keep the agent silent past its grace.
        let timeout = Duration::from_secs(u64::from(req.wait_seconds) + 5);
        self.call(
            &format!("{}.PollWork", berth_wire::agent::TARGET_PREFIX),
            &req,
            timeout,
        )
        .await
    }

    async fn submit_task_state(&self, req: SubmitTaskStateChangeRequest) -> anyhow::Result<()> {
        let _: serde_json::Value = self
            .call(
                &format!("{ECS_PREFIX}.SubmitTaskStateChange"),
                &req,
                Duration::from_secs(30),
            )
            .await?;
        Ok(())
    }

    async fn submit_health(&self, req: SubmitHealthRequest) -> anyhow::Result<()> {
        let target = format!("{}.SubmitHealth", berth_wire::agent::TARGET_PREFIX);
        let _: serde_json::Value = self.call(&target, &req, Duration::from_secs(30)).await?;
        Ok(())
    }

    async fn submit_task_network(
        &self,
        req: berth_wire::agent::SubmitTaskNetworkRequest,
    ) -> anyhow::Result<()> {
        let target = format!("{}.SubmitTaskNetwork", berth_wire::agent::TARGET_PREFIX);
        let _: serde_json::Value = self.call(&target, &req, Duration::from_secs(30)).await?;
        Ok(())
    }

    async fn task_credentials(
        &self,
        req: berth_wire::agent::GetTaskCredentialsRequest,
    ) -> anyhow::Result<berth_wire::agent::GetTaskCredentialsResponse> {
        let target = format!("{}.GetTaskCredentials", berth_wire::agent::TARGET_PREFIX);
        self.call(&target, &req, Duration::from_secs(30)).await
    }

    /// In the agent's account, which is its tasks'.
    async fn task_protection(
        &self,
        cluster: &str,
        task_arn: &str,
        update: Option<(bool, Option<i32>)>,
    ) -> anyhow::Result<berth_wire::ecs::GetTaskProtectionResponse> {
        let timeout = Duration::from_secs(30);
        match update {
            None => {
                let req = berth_wire::ecs::GetTaskProtectionRequest {
                    cluster: cluster.to_string(),
                    tasks: Some(vec![task_arn.to_string()]),
                };
                self.call(&format!("{ECS_PREFIX}.GetTaskProtection"), &req, timeout)
                    .await
            }
            Some((enabled, minutes)) => {
                let req = berth_wire::ecs::UpdateTaskProtectionRequest {
                    cluster: cluster.to_string(),
                    tasks: vec![task_arn.to_string()],
                    protection_enabled: enabled,
                    expires_in_minutes: minutes,
                };
                self.call(&format!("{ECS_PREFIX}.UpdateTaskProtection"), &req, timeout)
                    .await
            }
        }
    }

    /// Logs go to the agent's own account and region (its credentials').
    async fn prepare_log_stream(
        &self,
        _task_arn: &str,
        group: &str,
        stream: &str,
        create_group: bool,
    ) -> Result<(), LogSetupError> {
        let t = Duration::from_secs(30);
        let ok_if_exists = |r: anyhow::Result<serde_json::Value>| match r {
            Err(e) if !e.to_string().contains("ResourceAlreadyExistsException") => Err(e),
            _ => Ok(()),
        };
        if create_group {
            let req = serde_json::json!({ "logGroupName": group });
            ok_if_exists(
                self.call_service("logs", &format!("{LOGS_PREFIX}.CreateLogGroup"), &req, t)
                    .await,
            )
            .map_err(|e| LogSetupError::Other(e.to_string()))?;
        }
        let req = serde_json::json!({ "logGroupName": group, "logStreamName": stream });
        ok_if_exists(
            self.call_service("logs", &format!("{LOGS_PREFIX}.CreateLogStream"), &req, t)
                .await,
        )
        .map_err(|e| {
            if e.to_string().contains("ResourceNotFoundException") {
                LogSetupError::GroupMissing
            } else {
                LogSetupError::Other(e.to_string())
            }
        })
    }

    async fn put_log_events(
        &self,
        _task_arn: &str,
        group: &str,
        stream: &str,
        events: Vec<(i64, String)>,
    ) -> anyhow::Result<()> {
        let log_events: Vec<_> = events
            .into_iter()
            .map(|(t, m)| serde_json::json!({ "timestamp": t, "message": m }))
            .collect();
        let req = serde_json::json!({ "logGroupName": group, "logStreamName": stream, "logEvents": log_events });
        let _: serde_json::Value = self
            .call_service(
                "logs",
                &format!("{LOGS_PREFIX}.PutLogEvents"),
                &req,
                Duration::from_secs(30),
            )
            .await?;
        Ok(())
    }

    /// Secrets are fetched with the agent's own credentials (its account),
    /// each in the region its ARN names.
    async fn resolve_secrets(
        &self,
        task_arn: &str,
        secrets: &[(String, String)],
    ) -> Result<Vec<(String, String)>, String> {
        secret_ref::resolve(self, task_arn, secrets).await
    }
}

/// `e` and its causes, `: `-separated.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// An error of `call_in` as `Code: message`, without the target prefix.
fn service_error(target: &str, e: anyhow::Error) -> String {
    let text = e.to_string();
    text.strip_prefix(&format!("{target}: "))
        .map(str::to_string)
        .unwrap_or(text)
}

#[async_trait]
impl SecretStores for HttpControlPlane {
    async fn secret_string(&self, r: &SecretsManagerRef) -> Result<Option<String>, String> {
        use berth_wire::secretsmanager::{GetSecretValueRequest, SIGNING_NAME, TARGET_PREFIX};
        let target = format!("{TARGET_PREFIX}.GetSecretValue");
        let req = GetSecretValueRequest {
            secret_id: r.secret_id.clone(),
            version_id: r.version_id.clone(),
            version_stage: r.version_stage.clone(),
        };
        // Decoded as a JSON value: a typed decoder's error could quote the value.
        let out: serde_json::Value = self
            .call_in(
                SIGNING_NAME,
                &r.region,
                &target,
                &req,
                Duration::from_secs(30),
            )
            .await
            .map_err(|e| service_error(&target, e))?;
        Ok(out["SecretString"].as_str().map(str::to_string))
    }

    async fn parameters(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<FetchedParameters, String> {
        use berth_wire::ssm::{GetParametersRequest, SIGNING_NAME, TARGET_PREFIX};
        let target = format!("{TARGET_PREFIX}.GetParameters");
        let req = GetParametersRequest {
            names: names.to_vec(),
            with_decryption: Some(true),
        };
        let out: serde_json::Value = self
            .call_in(SIGNING_NAME, region, &target, &req, Duration::from_secs(30))
            .await
            .map_err(|e| service_error(&target, e))?;
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        let list = |k: &str| out[k].as_array().cloned().unwrap_or_default();
        Ok(FetchedParameters {
            parameters: list("Parameters")
                .iter()
                .map(|p| FetchedParameter {
                    name: text(&p["Name"]).unwrap_or_default(),
                    arn: text(&p["ARN"]),
                    selector: text(&p["Selector"]),
                    value: text(&p["Value"]).unwrap_or_default(),
                })
                .collect(),
            invalid: list("InvalidParameters").iter().filter_map(text).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_ca_bundles() {
        let dir = tempfile::tempdir().unwrap();
        let ok = |e: &str, ca: Option<&Path>| HttpControlPlane::with_ca(e, "AK", "s", "r", ca);
        assert!(ok("http://127.0.0.1:8450", None).is_ok());
        assert!(ok("https://berth.example:8450", None).is_ok());
        assert!(ok("ftp://x", None).is_err());
        assert!(ok("http://a:1, http://b:2", None).is_ok());
        assert!(ok("http://a:1,ftp://b", None).is_err());
        assert!(ok(" , ", None).is_err());
        let missing = dir.path().join("missing.pem");
        let e = ok("https://x", Some(&missing)).err().unwrap();
        assert!(format!("{e:#}").contains("reading the CA bundle"), "{e:#}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = ok("https://x", Some(&empty)).err().unwrap();
        assert!(
            format!("{e:#}").contains("holds no PEM certificate"),
            "{e:#}"
        );
    }

    /// A server that does not answer is left for the next one: the
    /// agent's calls (which it retries) reach a live server.
    #[tokio::test]
    async fn calls_move_to_the_next_server_when_one_does_not_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_addr = dead.local_addr().unwrap();
        drop(dead); // nothing listens there now: connections are refused
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut c, _) = live.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = c.read(&mut buf).await;
                    let body = "{\"ok\":true}";
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = c.write_all(answer.as_bytes()).await;
                });
            }
        });
        let cp = HttpControlPlane::new(
            &format!("http://{dead_addr},http://{live_addr}"),
            "AK",
            "s",
            "r",
        )
        .unwrap();
        let t = Duration::from_secs(5);
        let v = serde_json::json!({});
        let first = cp.call_json("ecs", "X.Y", &v, t).await;
        assert!(first.is_err(), "the dead server answered: {first:?}");
        let second = cp.call_json("ecs", "X.Y", &v, t).await.unwrap();
        assert_eq!(second["ok"], true);
        // It stays with the server that answers.
        assert!(cp.call_json("ecs", "X.Y", &v, t).await.is_ok());
    }

    #[test]
    fn causes_are_kept() {
        let inner = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let outer = anyhow::Error::new(inner).context("client error (Connect)");
        let text = with_causes(outer.as_ref());
        assert_eq!(
            text,
            "client error (Connect): invalid peer certificate: UnknownIssuer"
        );
    }
}
