//! Container `secrets` and `repositoryCredentials` through the runner: what
//! the runtime is handed at pull and start, and how a failed fetch stops
//! the task.

use async_trait::async_trait;
use berth_agent::secret_ref::{
    self, FetchedParameter, FetchedParameters, SecretStores, SecretsManagerRef,
};
use berth_agent::{Agent, AgentConfig, ControlPlane, LogSetupError};
use berth_runtime::fake::{FakeRuntime, Script};
use berth_runtime::{
    ContainerKey, ContainerSpec, ContainerStatus, LogChunk, Runtime, RuntimeError, TaskNetwork,
    TaskSpec,
};
use berth_wire::agent::{AssignedTask, PollWorkRequest, PollWorkResponse, SubmitHealthRequest};
use berth_wire::ecs::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TASK_ARN: &str = "arn:aws:ecs:us-east-1:111122223333:task/c/t1";
const DB: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf";
const REGISTRY: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:registry-XyZxYz";
const PREFIX: &str = "ResourceInitializationError: unable to pull secrets or registry auth: ";

/// A control plane whose secrets live in maps (by secret id, by parameter
/// name), fetched through `secret_ref::resolve` as the real ones do.
#[derive(Default)]
struct Control {
    secrets: HashMap<String, String>,
    params: HashMap<String, String>,
    reports: Mutex<Vec<SubmitTaskStateChangeRequest>>,
}

#[async_trait]
impl SecretStores for Control {
    async fn secret_string(&self, r: &SecretsManagerRef) -> Result<Option<String>, String> {
        // A partial ARN (a name given as credentialsParameter) finds the
        // secret as Secrets Manager does.
        self.secrets
            .iter()
            .find(|(id, _)| **id == r.secret_id || id.starts_with(&format!("{}-", r.secret_id)))
            .map(|(_, v)| Some(v.clone()))
            .ok_or_else(|| {
                "ResourceNotFoundException: Secrets Manager can't find the specified secret.".into()
            })
    }
    async fn parameters(
        &self,
        _region: &str,
        names: &[String],
    ) -> Result<FetchedParameters, String> {
        let mut out = FetchedParameters::default();
        for n in names {
            match self.params.get(n) {
                Some(v) => out.parameters.push(FetchedParameter {
                    name: n.clone(),
                    arn: None,
                    selector: None,
                    value: v.clone(),
                }),
                None => out.invalid.push(n.clone()),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ControlPlane for Control {
    async fn register(
        &self,
        _req: RegisterContainerInstanceRequest,
    ) -> anyhow::Result<ContainerInstance> {
        Ok(ContainerInstance {
            container_instance_arn: Some(
                "arn:aws:ecs:us-east-1:111122223333:container-instance/c/i1".into(),
            ),
            ..Default::default()
        })
    }
    async fn poll(&self, _req: PollWorkRequest) -> anyhow::Result<PollWorkResponse> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(PollWorkResponse::default())
    }
    async fn submit_task_state(&self, req: SubmitTaskStateChangeRequest) -> anyhow::Result<()> {
        self.reports.lock().push(req);
        Ok(())
    }
    async fn submit_health(&self, _req: SubmitHealthRequest) -> anyhow::Result<()> {
        Ok(())
    }
    async fn prepare_log_stream(
        &self,
        _task: &str,
        _group: &str,
        _stream: &str,
        _create: bool,
    ) -> Result<(), LogSetupError> {
        Ok(())
    }
    async fn put_log_events(
        &self,
        _task: &str,
        _group: &str,
        _stream: &str,
        _events: Vec<(i64, String)>,
    ) -> anyhow::Result<()> {
        Ok(())
    }
    async fn resolve_secrets(
        &self,
        task_arn: &str,
        secrets: &[(String, String)],
    ) -> Result<Vec<(String, String)>, String> {
        secret_ref::resolve(self, task_arn, secrets).await
    }
}

/// The fake runtime, keeping the specs it is handed at pull and start.
#[derive(Clone, Default)]
struct Recording {
    inner: FakeRuntime,
    pulled: Arc<Mutex<Vec<ContainerSpec>>>,
    started: Arc<Mutex<Vec<ContainerSpec>>>,
}

#[async_trait]
impl Runtime for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn capabilities(&self) -> Vec<String> {
        self.inner.capabilities()
    }
    async fn pull(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        self.pulled.lock().push(spec.clone());
        self.inner.pull(spec).await
    }
    async fn start(&self, spec: &ContainerSpec) -> Result<ContainerStatus, RuntimeError> {
        self.started.lock().push(spec.clone());
        self.inner.start(spec).await
    }
    async fn status(&self, key: &ContainerKey) -> Result<Option<ContainerStatus>, RuntimeError> {
        self.inner.status(key).await
    }
    async fn list(&self) -> Result<Vec<ContainerStatus>, RuntimeError> {
        self.inner.list().await
    }
    async fn wait(&self, key: &ContainerKey) -> Result<ContainerStatus, RuntimeError> {
        self.inner.wait(key).await
    }
    async fn stop(&self, key: &ContainerKey, timeout: Duration) -> Result<(), RuntimeError> {
        self.inner.stop(key, timeout).await
    }
    async fn logs(
        &self,
        key: &ContainerKey,
        offset: u64,
        max_lines: usize,
    ) -> Result<LogChunk, RuntimeError> {
        self.inner.logs(key, offset, max_lines).await
    }
    async fn remove(&self, key: &ContainerKey) -> Result<(), RuntimeError> {
        self.inner.remove(key).await
    }
    async fn prepare_task(&self, task: &TaskSpec) -> Result<TaskNetwork, RuntimeError> {
        self.inner.prepare_task(task).await
    }
    async fn release_task(&self, task: &TaskSpec) -> Result<(), RuntimeError> {
        self.inner.release_task(task).await
    }
}

fn control() -> Control {
    let mut c = Control::default();
    c.secrets
        .insert(DB.into(), r#"{"user":"app","password":"s3cr3t"}"#.into());
    c.secrets.insert(
        REGISTRY.into(),
        r#"{"username":"puller","password":"r3g"}"#.into(),
    );
    c.params.insert("/app/token".into(), "t0k3n".into());
    c
}

fn definition(
    secrets: &[(&str, &str)],
    credentials: Option<&str>,
    env: &[(&str, &str)],
) -> ContainerDefinition {
    ContainerDefinition {
        name: Some("main".into()),
        image: Some("registry.example/app:1".into()),
        essential: Some(true),
        command: Some(vec!["run".into()]),
        stop_timeout: Some(2),
        environment: Some(
            env.iter()
                .map(|(k, v)| KeyValuePair {
                    name: Some(k.to_string()),
                    value: Some(v.to_string()),
                })
                .collect(),
        ),
        secrets: Some(
            secrets
                .iter()
                .map(|(n, f)| Secret {
                    name: n.to_string(),
                    value_from: f.to_string(),
                })
                .collect(),
        ),
        repository_credentials: credentials.map(|p| RepositoryCredentials {
            credentials_parameter: p.into(),
        }),
        ..Default::default()
    }
}

fn assigned(c: ContainerDefinition) -> AssignedTask {
    AssignedTask {
        task: Task {
            task_arn: Some(TASK_ARN.into()),
            cluster_arn: Some("arn:aws:ecs:us-east-1:111122223333:cluster/c".into()),
            last_status: Some("PENDING".into()),
            desired_status: Some("RUNNING".into()),
            ..Default::default()
        },
        task_definition: TaskDefinition {
            container_definitions: Some(vec![c]),
            ..Default::default()
        },
    }
}

/// Runs the task until it reports `status`; returns the last report.
async fn run(
    control: Control,
    rt: &Recording,
    c: ContainerDefinition,
    status: &str,
) -> (SubmitTaskStateChangeRequest, Arc<Agent>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let control = Arc::new(control);
    let a = Arc::new(
        Agent::register(
            control.clone(),
            Arc::new(rt.clone()),
            AgentConfig::for_host("c", dir.path()),
        )
        .await
        .unwrap(),
    );
    a.converge(vec![assigned(c)]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(r) = control
            .reports
            .lock()
            .iter()
            .find(|r| r.status.as_deref() == Some(status))
        {
            return (r.clone(), a, dir);
        }
        assert!(Instant::now() < deadline, "no {status} report");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn env_of(spec: &ContainerSpec) -> HashMap<String, String> {
    spec.environment.iter().cloned().collect()
}

#[tokio::test]
async fn secrets_join_the_environment_and_win_over_it() {
    let rt = Recording::default();
    rt.inner.default_script(Script::runs());
    let c = definition(
        &[
            ("PASSWORD", &format!("{DB}:password::")),
            ("TOKEN", "/app/token"),
        ],
        None,
        &[("PASSWORD", "from-environment"), ("PLAIN", "p")],
    );
    let (_r, _c, _d) = run(control(), &rt, c, "RUNNING").await;
    let started = rt.started.lock().clone();
    assert_eq!(started.len(), 1);
    let env = env_of(&started[0]);
    assert_eq!(env["PASSWORD"], "s3cr3t");
    assert_eq!(env["TOKEN"], "t0k3n");
    assert_eq!(env["PLAIN"], "p");
    // Besides what ECS itself sets (AWS_EXECUTION_ENV, the metadata URIs, …).
    assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_ECS_EC2");
    let own = started[0]
        .environment
        .iter()
        .filter(|(k, _)| !k.starts_with("AWS_") && !k.starts_with("ECS_"))
        .count();
    assert_eq!(own, 3, "each name once");
    // The pull does not need them.
    assert!(rt.pulled.lock()[0]
        .environment
        .iter()
        .all(|(_, v)| v != "s3cr3t"));
}

#[tokio::test]
async fn repository_credentials_reach_the_pull_by_arn_or_name() {
    for parameter in [REGISTRY, "registry"] {
        let rt = Recording::default();
        rt.inner.default_script(Script::runs());
        let c = definition(&[], Some(parameter), &[]);
        run(control(), &rt, c, "RUNNING").await;
        for spec in [&rt.pulled.lock()[0], &rt.started.lock()[0]] {
            let auth = spec.registry_auth.as_ref().expect("registry auth");
            assert_eq!(
                (auth.username.as_str(), auth.password.as_str()),
                ("puller", "r3g")
            );
        }
    }
}

#[tokio::test]
async fn a_missing_secret_fails_the_start_naming_it() {
    let rt = Recording::default();
    rt.inner.default_script(Script::runs());
    let gone = "arn:aws:secretsmanager:us-east-1:111122223333:secret:gone";
    let c = definition(
        &[("A", &format!("{DB}:password::")), ("B", gone)],
        None,
        &[],
    );
    let (r, _c, _d) = run(control(), &rt, c, "STOPPED").await;
    let reason = r.reason.unwrap();
    assert!(reason.starts_with(PREFIX), "{reason}");
    assert!(reason.contains(gone), "{reason}");
    assert!(!reason.contains("s3cr3t"), "{reason}");
    assert!(rt.started.lock().is_empty());
    let main = &r.containers.unwrap()[0];
    assert_eq!(main.status.as_deref(), Some("STOPPED"));
    assert_eq!(main.reason.as_deref(), Some(reason.as_str()));
}

#[tokio::test]
async fn unusable_repository_credentials_fail_before_the_pull() {
    let mut ctl = control();
    ctl.secrets.insert(
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:half-AAAAAA".into(),
        r#"{"username":"puller"}"#.into(),
    );
    for (parameter, named) in [
        ("missing", "secret:missing"),
        ("half", "the secret half does not hold registry credentials"),
    ] {
        let rt = Recording::default();
        let c = definition(&[], Some(parameter), &[]);
        let fresh = Control {
            secrets: ctl.secrets.clone(),
            ..Default::default()
        };
        let (r, _c, _d) = run(fresh, &rt, c, "STOPPED").await;
        let reason = r.reason.unwrap();
        assert!(reason.starts_with(PREFIX), "{reason}");
        assert!(reason.contains(named), "{reason}");
        assert!(rt.pulled.lock().is_empty() && rt.started.lock().is_empty());
    }
}
