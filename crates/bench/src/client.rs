//! A signed AWS JSON 1.1 request sender over one keep-alive HTTP/1.1
//! connection. Every request is signed individually (SigV4, service `ecs`,
//! region `us-east-1`): signing is part of a real client's load.

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::TcpStream;

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
const REGION: &str = "us-east-1";
const SERVICE: &str = "ecs";

/// A server to send requests to, with the credentials to sign them.
#[derive(Debug)]
pub struct Target {
    /// Label used in the report ("berth", "moto", "endpoint").
    pub name: String,
    pub addr: SocketAddr,
    /// The `Host` header value (`127.0.0.1:PORT`).
    pub host: String,
    pub access_key: String,
    pub secret_key: String,
    /// The server's process, when this harness started it (for CPU figures).
    pub pid: Option<u32>,
}

impl Target {
    /// Parses `http://HOST:PORT[/]`. Only loopback addresses are accepted:
    /// this harness never sends load anywhere else.
    pub async fn from_endpoint(
        name: &str,
        url: &str,
        access_key: &str,
        secret_key: &str,
        pid: Option<u32>,
    ) -> anyhow::Result<Arc<Target>> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("endpoint {url:?}: only http:// URLs are supported"))?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            bail!("endpoint {url:?}: expected http://HOST:PORT");
        }
        let addr = tokio::net::lookup_host(host)
            .await
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} resolves to no address"))?;
        if !addr.ip().is_loopback() {
            bail!("endpoint {url:?} is not a loopback address: refusing to send load there");
        }
        Ok(Arc::new(Target {
            name: name.to_owned(),
            addr,
            host: host.to_owned(),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            pid,
        }))
    }
}

/// One keep-alive connection; reconnects transparently when the server
/// closed it between requests.
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// How many times a connection was (re)opened after the first.
    pub reconnects: u64,
}

impl Conn {
    pub async fn connect(target: Arc<Target>) -> anyhow::Result<Conn> {
        let sender = open(&target).await?;
        Ok(Conn {
            target,
            sender: Some(sender),
            reconnects: 0,
        })
    }

    /// Drops the connection (after a transport error or a timeout); the
    /// next call opens a new one.
    pub fn reset(&mut self) {
        self.sender = None;
    }

    async fn ready(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if let Some(s) = &mut self.sender {
            if s.ready().await.is_err() {
                self.sender = None;
            }
        }
        if self.sender.is_none() {
            self.sender = Some(open(&self.target).await?);
            self.reconnects += 1;
        }
        Ok(self.sender.as_mut().expect("just set"))
    }

    /// Signs and sends `POST /` for `operation`; returns the status and body.
    pub async fn call(
        &mut self,
        operation: &str,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let req = signed_request(&self.target, operation, body)?;
        let sender = self.ready().await?;
        let result = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        }
        .await;
        if result.is_err() {
            self.reset();
        }
        result
    }
}

async fn open(target: &Target) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(target.addr)
        .await
        .with_context(|| format!("connecting to {} ({})", target.name, target.addr))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the server closes the connection or the sender is dropped.
        let _ = conn.await;
    });
    Ok(sender)
}

fn signed_request(
    target: &Target,
    operation: &str,
    body: Bytes,
) -> anyhow::Result<Request<Full<Bytes>>> {
    // An operation of another service on the endpoint names its prefix
    // (`BerthAgentV1.PollWork`); ECS's is implied.
    let amz_target = if operation.contains('.') {
        operation.to_owned()
    } else {
        format!("{TARGET_PREFIX}{operation}")
    };
    let headers = [
        ("host", target.host.as_str()),
        ("content-type", CONTENT_TYPE),
        ("x-amz-target", amz_target.as_str()),
    ];
    let auth = berth_auth::sign_headers(
        &target.access_key,
        &target.secret_key,
        REGION,
        SERVICE,
        "POST",
        "/",
        "",
        &headers,
        &body,
        SystemTime::now(),
    );
    let mut builder = Request::post("/");
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    for (name, value) in auth {
        builder = builder.header(name, value);
    }
    Ok(builder.body(Full::new(body))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoint_must_be_loopback_http() {
        let t = Target::from_endpoint("x", "http://127.0.0.1:8450/", "a", "b", None)
            .await
            .unwrap();
        assert_eq!(t.host, "127.0.0.1:8450");
        assert!(t.addr.ip().is_loopback());
        for bad in [
            "https://127.0.0.1:8450",
            "http://10.0.0.1:8450",
            "http://127.0.0.1:8450/path",
            "127.0.0.1:8450",
        ] {
            assert!(
                Target::from_endpoint("x", bad, "a", "b", None)
                    .await
                    .is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn requests_are_signed_for_ecs() {
        let t = Target {
            name: "x".into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            host: "127.0.0.1:1".into(),
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "secret".into(),
            pid: None,
        };
        let req = signed_request(&t, "ListClusters", Bytes::from_static(b"{}")).unwrap();
        let h = req.headers();
        assert_eq!(
            h["x-amz-target"],
            "AmazonEC2ContainerServiceV20141113.ListClusters"
        );
        let auth = h["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        assert!(auth.contains("/us-east-1/ecs/aws4_request"));
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-target"));
        assert!(h.contains_key("x-amz-date"));
    }
}
