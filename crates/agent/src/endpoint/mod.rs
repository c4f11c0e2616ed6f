//! What ECS gives a task's containers from inside, served by the agent the
//! task runs on: the task metadata endpoint (v4, and v3 the same) and, for a
//! task with a `taskRoleArn`, its role's temporary credentials, plus the
//! environment that points SDKs at them and at berth.
//!
//! Every container gets an unguessable token in its metadata URI, and a task
//! with a role a credentials id and an authorization token: a request
//! naming another task's token finds nothing. Where the runtime gives a task
//! a network namespace of its own (Docker), the agent listens inside it, on
//! its loopback (`Runtime::listen_in_network`), and such a listener answers
//! for that task alone; otherwise (the process runtime, `host` mode) it
//! listens on the host's loopback. Credentials are fetched from the control
//! plane when first asked for and again when less than half their life is
//! left; they are held in memory only, and forgotten with the task.

pub mod metadata;
mod serve;

use crate::ControlPlane;
use berth_runtime::{ContainerKey, Runtime};
use berth_wire::agent::{GetTaskCredentialsRequest, GetTaskCredentialsResponse};
use metadata::{TaskFacts, TaskNow};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

pub use serve::serve;

/// The port the agent listens on inside a task's own network namespace
/// (ECS's agent serves credentials on this port of its host).
pub const TASK_NETWORK_PORT: u16 = 51679;

/// Credentials with less life left than this are fetched anew: half the
/// hour the control plane issues them for, well before SDKs refresh (15
/// minutes before the end).
const REFRESH_WHEN_LEFT_SECS: i64 = 30 * 60;

/// One task's entry.
pub struct TaskEntry {
    facts: TaskFacts,
    now: Mutex<TaskNow>,
    /// Container tokens: (token, container name).
    tokens: Vec<(String, String)>,
    /// For a task with a role: the credentials id (in the URI) and the
    /// authorization token (in the header).
    credentials: Option<(String, String)>,
    cached: tokio::sync::Mutex<Option<GetTaskCredentialsResponse>>,
    /// Where its containers reach this endpoint.
    base: String,
    /// Serving tasks of the listener inside its namespace, stopped with it.
    listeners: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl TaskEntry {
    fn token_of(&self, container: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(_, n)| n == container)
            .map(|(t, _)| t.as_str())
    }
}

/// The agent's endpoint: every task it runs.
pub struct Endpoint {
    control: Arc<dyn ControlPlane>,
    runtime: Arc<dyn Runtime>,
    instance_arn: String,
    /// The agent's listener on the host's loopback.
    host_addr: SocketAddr,
    /// The URL tasks reach the control plane at (their AWS_ENDPOINT_URL).
    task_endpoint: Option<String>,
    key: TokenKey,
    tasks: Mutex<HashMap<String, Arc<TaskEntry>>>,
}

/// The agent's key for tokens (`endpoint.key` in its state dir, 0600):
/// a token is derived from it, so a restarted agent answers the tokens its
/// adopted containers already hold, and no one without it can make one.
struct TokenKey([u8; 32]);

impl TokenKey {
    fn load_or_create(state_dir: &Path) -> std::io::Result<TokenKey> {
        let path = state_dir.join("endpoint.key");
        if let Ok(k) = std::fs::read(&path) {
            if let Ok(k) = <[u8; 32]>::try_from(k.as_slice()) {
                return Ok(TokenKey(k));
            }
        }
        let k: [u8; 32] = rand::random();
        crate::write_private(&path, &k)?;
        Ok(TokenKey(k))
    }

    /// 256 bits, hex, for (`purpose`, task, container).
    fn token(&self, purpose: &str, task_arn: &str, container: &str) -> String {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("any key length");
        for part in [purpose, task_arn, container] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Environment variables, `(name, value)`.
pub type Env = Vec<(String, String)>;

impl Endpoint {
    /// Starts serving on the host's loopback: on the port it had before
    /// (saved in `state_dir`, so that adopted tasks' URIs still work),
    /// else an ephemeral one.
    pub async fn start(
        control: Arc<dyn ControlPlane>,
        runtime: Arc<dyn Runtime>,
        instance_arn: String,
        task_endpoint: Option<String>,
        state_dir: &Path,
    ) -> std::io::Result<Arc<Endpoint>> {
        let port_file = state_dir.join("endpoint.port");
        let saved: u16 = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", saved)).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        };
        let port = listener.local_addr()?.port();
        crate::write_private(&port_file, port.to_string().as_bytes())?;
        let endpoint = Arc::new(Endpoint {
            key: TokenKey::load_or_create(state_dir)?,
            control,
            runtime,
            instance_arn,
            host_addr: listener.local_addr()?,
            task_endpoint,
            tasks: Mutex::default(),
        });
        tokio::spawn(serve(listener, Arc::downgrade(&endpoint), None));
        Ok(endpoint)
    }

    /// Registers a task (before its containers start). `own_network`: its
    /// containers reach the agent at [`TASK_NETWORK_PORT`] of their own
    /// loopback rather than at the host's listener.
    pub fn register(&self, facts: TaskFacts, has_role: bool, own_network: bool) -> Arc<TaskEntry> {
        let base = if own_network {
            format!("http://127.0.0.1:{TASK_NETWORK_PORT}")
        } else {
            format!("http://{}", self.host_addr)
        };
        let arn = facts.task_arn().to_string();
        let key = &self.key;
        let entry = Arc::new(TaskEntry {
            tokens: facts
                .container_names()
                .into_iter()
                .map(|n| (key.token("metadata", &arn, &n), n))
                .collect(),
            credentials: has_role.then(|| {
                (
                    key.token("credentials-id", &arn, ""),
                    key.token("credentials-authorization", &arn, ""),
                )
            }),
            cached: tokio::sync::Mutex::new(None),
            now: Mutex::default(),
            base,
            listeners: Mutex::default(),
            facts,
        });
        self.tasks
            .lock()
            .insert(entry.facts.task_arn().to_string(), entry.clone());
        entry
    }

    /// Forgets a task: its tokens and credentials stop working here.
    pub fn forget(&self, task_arn: &str) {
        if let Some(e) = self.tasks.lock().remove(task_arn) {
            for l in e.listeners.lock().drain(..) {
                l.abort();
            }
        }
    }

    /// Serves `task_arn` alone on `listener` (inside its network namespace).
    pub fn serve_task(self: &Arc<Self>, task_arn: &str, listener: std::net::TcpListener) {
        let Some(entry) = self.tasks.lock().get(task_arn).cloned() else {
            return;
        };
        if listener.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        let handle = tokio::spawn(serve(
            listener,
            Arc::downgrade(self),
            Some(task_arn.to_string()),
        ));
        entry.listeners.lock().push(handle);
    }

    /// Keeps a proxy running inside a task's namespace: connections to
    /// `listener` go on to `target` from the agent's own network (so a
    /// control plane on the host's loopback is reachable from the task).
    pub fn proxy_task(&self, task_arn: &str, listener: std::net::TcpListener, target: String) {
        let Some(entry) = self.tasks.lock().get(task_arn).cloned() else {
            return;
        };
        if listener.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        entry.listeners.lock().push(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// The address (`host:port`) a proxy inside a task's namespace should
    /// listen on and forward to, when the control plane's URL names the
    /// host's loopback, which the task's own loopback is not.
    pub fn loopback_control_plane(&self) -> Option<(u16, String)> {
        let url: http::Uri = self.task_endpoint.as_deref()?.parse().ok()?;
        let host = url.host()?.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let port = url
            .port_u16()
            .unwrap_or(if url.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        loopback.then(|| (port, format!("127.0.0.1:{port}")))
    }

    /// What the task's runner last saw.
    pub fn update(&self, task_arn: &str, now: TaskNow) {
        if let Some(e) = self.tasks.lock().get(task_arn) {
            *e.now.lock() = now;
        }
    }

    /// The environment ECS gives container `name` of the task: reserved
    /// names first (they win over the task definition's), then defaults the
    /// task definition may override (`AWS_REGION`, `AWS_DEFAULT_REGION`,
    /// `AWS_ENDPOINT_URL`).
    pub fn environment(&self, task_arn: &str, name: &str) -> (Env, Env) {
        let Some(e) = self.tasks.lock().get(task_arn).cloned() else {
            return Default::default();
        };
        let mut reserved = Vec::new();
        if let Some(token) = e.token_of(name) {
            let v4 = format!("{}/v4/{token}", e.base);
            let v3 = format!("{}/v3/{token}", e.base);
            reserved.push(("ECS_CONTAINER_METADATA_URI_V4".into(), v4));
            reserved.push(("ECS_CONTAINER_METADATA_URI".into(), v3));
            reserved.push(("ECS_AGENT_URI".into(), format!("{}/api/{token}", e.base)));
        }
        let fargate = e.facts.is_fargate();
        reserved.push((
            "AWS_EXECUTION_ENV".into(),
            if fargate {
                "AWS_ECS_FARGATE"
            } else {
                "AWS_ECS_EC2"
            }
            .into(),
        ));
        if let Some((id, auth)) = &e.credentials {
            reserved.push((
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".into(),
                format!("{}/v2/credentials/{id}", e.base),
            ));
            reserved.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN".into(), auth.clone()));
        }
        let region = berth_core::arn::Arn::parse(task_arn)
            .map(|a| a.region)
            .unwrap_or_default();
        let mut defaults = vec![
            ("AWS_REGION".to_string(), region.clone()),
            ("AWS_DEFAULT_REGION".to_string(), region),
        ];
        if let Some(url) = &self.task_endpoint {
            defaults.push(("AWS_ENDPOINT_URL".into(), url.clone()));
        }
        (reserved, defaults)
    }

    /// The task and container a metadata token names, if `only` (a
    /// listener's own task) allows.
    fn by_token(&self, token: &str, only: Option<&str>) -> Option<(Arc<TaskEntry>, String)> {
        let tasks = self.tasks.lock();
        tasks
            .values()
            .filter(|e| only.is_none_or(|t| t == e.facts.task_arn()))
            .find_map(|e| {
                let name = e
                    .tokens
                    .iter()
                    .find(|(t, _)| constant_time_eq(t, token))
                    .map(|(_, n)| n.clone())?;
                Some((e.clone(), name))
            })
    }

    /// The task whose credentials id and authorization token these are.
    fn by_credentials(&self, id: &str, auth: &str, only: Option<&str>) -> Option<Arc<TaskEntry>> {
        let tasks = self.tasks.lock();
        tasks
            .values()
            .filter(|e| only.is_none_or(|t| t == e.facts.task_arn()))
            .find(|e| {
                e.credentials
                    .as_ref()
                    .is_some_and(|(i, a)| constant_time_eq(i, id) & constant_time_eq(a, auth))
            })
            .cloned()
    }

    /// The task's credentials, fetched when none are held or less than
    /// half their life is left.
    async fn credentials(&self, e: &TaskEntry) -> anyhow::Result<GetTaskCredentialsResponse> {
        let mut cached = e.cached.lock().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let fresh = cached
            .as_ref()
            .is_some_and(|c| c.expiration - now > REFRESH_WHEN_LEFT_SECS);
        if !fresh {
            let req = GetTaskCredentialsRequest {
                cluster: e.facts.cluster(),
                container_instance_arn: self.instance_arn.clone(),
                task: e.facts.task_arn().to_string(),
            };
            *cached = Some(self.control.task_credentials(req).await?);
        }
        Ok(cached.clone().expect("just filled"))
    }

    fn container_key(e: &TaskEntry, name: &str) -> ContainerKey {
        ContainerKey::new(crate::spec::task_id(e.facts.task_arn()), name)
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
