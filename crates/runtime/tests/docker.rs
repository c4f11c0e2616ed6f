//! The Docker runtime against the machine's real Docker Engine, with the
//! locally built `berth-test/busybox` image (scripts/test-images.sh; no
//! image can be pulled). Without an Engine these tests fail, unless
//! BERTH_SKIP_DOCKER_TESTS=1 says the machine has none on purpose.

use berth_runtime::docker::{DockerRuntime, PullBehavior};
use berth_runtime::{
    ContainerKey, ContainerSpec, ContainerState, Health, HealthCheckSpec, LogStream, MountSource,
    MountSpec, NetworkMode, PortSpec, Protocol, Runtime, RuntimeError, TaskSpec, VolumeSpec,
    LABEL_CONTAINER, LABEL_TASK_ARN,
};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const IMAGE: &str = "berth-test/busybox:latest";

fn skip() -> bool {
    std::env::var("BERTH_SKIP_DOCKER_TESTS").as_deref() == Ok("1")
}

/// Builds the test image once per test binary.
fn images() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/test-images.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .output()
            .expect("running scripts/test-images.sh");
        assert!(
            out.status.success(),
            "building the test image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

async fn runtime(pull: PullBehavior) -> Option<DockerRuntime> {
    if skip() {
        return None;
    }
    images();
    let owner = format!("test-{}", uuid::Uuid::new_v4().simple());
    Some(
        DockerRuntime::connect(owner, pull)
            .await
            .expect("a Docker Engine (set BERTH_SKIP_DOCKER_TESTS=1 on a machine without one)"),
    )
}

fn task_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn spec(task: &str, name: &str, argv: &[&str]) -> ContainerSpec {
    let mut s = ContainerSpec::new(ContainerKey::new(task, name), IMAGE);
    s.labels.insert(LABEL_CONTAINER.into(), name.into());
    s.labels.insert(
        LABEL_TASK_ARN.into(),
        format!("arn:aws:ecs:us-east-1:000000000000:task/test/{task}"),
    );
    s.command = argv.iter().map(|a| a.to_string()).collect();
    s.stop_timeout = Duration::from_secs(2);
    s
}

fn task(task: &str, network: NetworkMode, volumes: Vec<VolumeSpec>) -> TaskSpec {
    TaskSpec {
        task_id: task.into(),
        labels: Default::default(),
        network,
        volumes,
    }
}

/// Stops and removes everything a test started, even when it failed.
async fn clean(rt: &DockerRuntime, t: &TaskSpec) {
    for c in rt.list().await.unwrap_or_default() {
        if c.key.task_id == t.task_id {
            let _ = rt.stop(&c.key, Duration::ZERO).await;
            let _ = rt.remove(&c.key).await;
        }
    }
    let _ = rt.release_task(t).await;
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn exit_code_and_both_output_streams() {
    let Some(rt) = runtime(PullBehavior::PreferCached).await else {
        return;
    };
    let t = task(&task_id(), NetworkMode::Bridge, vec![]);
    let s = spec(
        &t.task_id,
        "main",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    rt.pull(&s).await.unwrap();
    let started = rt.start(&s).await.unwrap();
    assert!(!started.id.is_empty());
    let done = rt.wait(&s.key).await.unwrap();
    assert_eq!(done.exit_code(), Some(3));
    let logs = rt.logs(&s.key, 0, 100).await.unwrap();
    // Docker copies the two streams separately: their relative order is
    // not kept, each stream's is.
    let mut lines: Vec<_> = logs
        .lines
        .iter()
        .map(|l| (l.stream, l.message.as_str()))
        .collect();
    lines.sort_by_key(|(s, _)| *s == LogStream::Stderr);
    assert_eq!(
        lines,
        [(LogStream::Stdout, "out"), (LogStream::Stderr, "err")]
    );
    // Reading on from the returned offset gives nothing new.
    let more = rt.logs(&s.key, logs.next_offset, 100).await.unwrap();
    assert!(more.lines.is_empty(), "{more:?}");
    assert!(matches!(
        rt.start(&s).await,
        Err(RuntimeError::AlreadyExists)
    ));
    rt.remove(&s.key).await.unwrap();
    assert!(rt.status(&s.key).await.unwrap().is_none());
    clean(&rt, &t).await;
}

#[tokio::test]
async fn a_bridge_port_is_published_on_a_dynamic_host_port() {
    let Some(rt) = runtime(PullBehavior::PreferCached).await else {
        return;
    };
    let t = task(&task_id(), NetworkMode::Bridge, vec![]);
    let mut s = spec(
        &t.task_id,
        "web",
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo hello-from-berth > /www/index.html && exec httpd -f -p 8080 -h /www",
        ],
    );
    s.ports = vec![PortSpec {
        container_port: 8080,
        host_port: None,
        protocol: Protocol::Tcp,
    }];
    let st = rt.start(&s).await.unwrap();
    let binding = st.ports.first().cloned().expect("a published port");
    assert_eq!(binding.container_port, 8080);
    assert!(binding.host_port > 0);
    let port = binding.host_port;
    until("the server answers", || async move {
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
        let mut body = String::new();
        let _ = conn.read_to_string(&mut body);
        body.contains("hello-from-berth")
    })
    .await;
    clean(&rt, &t).await;
}

#[tokio::test]
async fn stop_kills_after_the_timeout_when_sigterm_is_ignored() {
    let Some(rt) = runtime(PullBehavior::PreferCached).await else {
        return;
    };
    let t = task(&task_id(), NetworkMode::None, vec![]);
    let mut s = spec(
        &t.task_id,
        "stubborn",
        &[
            "sh",
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 1; done",
        ],
    );
    s.network = NetworkMode::None;
    rt.start(&s).await.unwrap();
    until("the trap is set", || async {
        rt.logs(&s.key, 0, 10)
            .await
            .is_ok_and(|l| l.lines.iter().any(|l| l.message == "ready"))
    })
    .await;
    rt.stop(&s.key, Duration::from_secs(1)).await.unwrap();
    let st = rt.status(&s.key).await.unwrap().unwrap();
    assert_eq!(st.exit_code(), Some(137));
    clean(&rt, &t).await;
}

#[tokio::test]
async fn docker_health_checks_are_reported() {
    let Some(rt) = runtime(PullBehavior::PreferCached).await else {
        return;
    };
    let t = task(&task_id(), NetworkMode::Bridge, vec![]);
    let mut s = spec(
        &t.task_id,
        "checked",
        &["sh", "-c", "sleep 1; touch /tmp/ok; sleep 600"],
    );
    s.health_check = Some(HealthCheckSpec {
        command: vec!["CMD-SHELL".into(), "test -f /tmp/ok".into()],
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        retries: 3,
        start_period: Duration::ZERO,
    });
    let st = rt.start(&s).await.unwrap();
    assert_eq!(st.health, Health::Unknown);
    until("healthy", || async {
        rt.status(&s.key).await.unwrap().unwrap().health == Health::Healthy
    })
    .await;
    clean(&rt, &t).await;
}

#[tokio::test]
async fn awsvpc_containers_share_one_namespace_with_a_real_address() {
    let Some(rt) = runtime(PullBehavior::PreferCached).await else {
        return;
    };
    let t = task(&task_id(), NetworkMode::Awsvpc, vec![]);
    let net = rt.prepare_task(&t).await.unwrap();
    let ip = net.private_ipv4.clone().expect("an address");
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    // Preparing again (an adopting agent) finds the same namespace.
    assert_eq!(rt.prepare_task(&t).await.unwrap(), net);
    let mut server = spec(
        &t.task_id,
        "server",
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo shared > /www/x && exec httpd -f -p 8080 -h /www",
        ],
    );
    server.network = NetworkMode::Awsvpc;
    let mut client = spec(
        &t.task_id,
        "client",
        &[
            "sh",
            "-c",
            "for i in $(seq 1 50); do wget -q -O - http://127.0.0.1:8080/x && ip -4 addr show eth0 && exit 0; sleep 0.2; done; exit 1",
        ],
    );
    client.network = NetworkMode::Awsvpc;
    rt.start(&server).await.unwrap();
    rt.start(&client).await.unwrap();
    let done = rt.wait(&client.key).await.unwrap();
    let out: Vec<String> = rt
        .logs(&client.key, 0, 100)
        .await
        .unwrap()
        .lines
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(done.exit_code(), Some(0), "{out:?}");
    assert_eq!(out[0], "shared");
    assert!(
        out.iter().any(|l| l.contains(&format!("inet {ip}/"))),
        "the namespace has the reported address: {out:?}"
    );
    clean(&rt, &t).await;
    assert!(rt
        .prepare_task(&task(&t.task_id, NetworkMode::Bridge, vec![]))
        .await
        .unwrap()
        .private_ipv4
        .is_none());
}

#[tokio::test]
async fn a_task_volume_written_by_one_container_is_read_by_another() {
    let Some(rt) = runtime(PullBehavior::PreferCached).await else {
        return;
    };
    let id = task_id();
    let volume = format!("berth-{id}-scratch");
    let t = task(
        &id,
        NetworkMode::Bridge,
        vec![VolumeSpec {
            name: volume.clone(),
            shared: false,
            autoprovision: true,
            driver: None,
            driver_opts: Default::default(),
            labels: Default::default(),
        }],
    );
    rt.prepare_task(&t).await.unwrap();
    let mount = |ro| MountSpec {
        source: MountSource::Volume(volume.clone()),
        container_path: "/data".into(),
        read_only: ro,
    };
    let mut writer = spec(&id, "writer", &["sh", "-c", "echo written > /data/f"]);
    writer.mounts = vec![mount(false)];
    rt.start(&writer).await.unwrap();
    assert_eq!(rt.wait(&writer.key).await.unwrap().exit_code(), Some(0));
    let mut reader = spec(
        &id,
        "reader",
        &["sh", "-c", "cat /data/f; echo x > /data/g"],
    );
    reader.mounts = vec![mount(true)];
    rt.start(&reader).await.unwrap();
    let done = rt.wait(&reader.key).await.unwrap();
    let out = rt.logs(&reader.key, 0, 10).await.unwrap();
    assert!(
        out.lines
            .iter()
            .any(|l| l.stream == LogStream::Stdout && l.message == "written"),
        "{out:?}"
    );
    assert_ne!(
        done.exit_code(),
        Some(0),
        "a read-only mount refuses writes"
    );
    // Released with its containers gone, the task's volume goes too.
    clean(&rt, &t).await;
    let vols = std::process::Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", &format!("name={volume}")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&vols.stdout).trim().is_empty());
}

#[tokio::test]
async fn agents_sharing_an_engine_see_only_their_own_containers() {
    let Some(rt) = runtime(PullBehavior::PreferCached).await else {
        return;
    };
    let other = runtime(PullBehavior::PreferCached).await.unwrap();
    let again = DockerRuntime::connect(rt.owner(), PullBehavior::PreferCached)
        .await
        .unwrap();
    let t = task(&task_id(), NetworkMode::None, vec![]);
    let mut s = spec(&t.task_id, "mine", &["sleep", "600"]);
    s.network = NetworkMode::None;
    rt.start(&s).await.unwrap();
    // A restarted agent (same owner id) adopts it; another agent does not see it.
    let adopted = again.list().await.unwrap();
    assert!(adopted
        .iter()
        .any(|c| c.key == s.key && matches!(c.state, ContainerState::Running { .. })));
    assert!(other.list().await.unwrap().iter().all(|c| c.key != s.key));
    assert!(other.status(&s.key).await.unwrap().is_none());
    clean(&rt, &t).await;
}

#[tokio::test]
async fn pull_behaviors_without_a_registry() {
    let Some(rt) = runtime(PullBehavior::Default).await else {
        return;
    };
    let t = task_id();
    // No registry answers here: default falls back to the local image ...
    rt.pull(&spec(&t, "a", &["true"])).await.unwrap();
    // ... always does not ...
    let always = DockerRuntime::connect(rt.owner(), PullBehavior::Always)
        .await
        .unwrap();
    assert!(matches!(
        always.pull(&spec(&t, "a", &["true"])).await,
        Err(RuntimeError::CannotPull(_))
    ));
    // ... and an image that is nowhere is a CannotPull for every behavior.
    let mut missing = spec(&t, "b", &["true"]);
    missing.image = "berth-test/does-not-exist:1".into();
    match rt.pull(&missing).await {
        Err(RuntimeError::CannotPull(m)) => assert!(m.contains("does-not-exist"), "{m}"),
        other => panic!("{other:?}"),
    }
}
