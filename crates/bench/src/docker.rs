//! RunTask → RUNNING on the Docker runtime against starting the same
//! container with Docker directly, measured in the same run, alternating.
//!
//! berth: a `berth server --no-agent` and one `berth agent --runtime docker
//! --image-pull-behavior prefer-cached` on this machine; EC2 tasks in bridge
//! mode; the time from sending RunTask until DescribeTasks (polled every
//! `--task-poll-ms`) shows RUNNING. Docker: `docker run -d` of the same
//! image and command (the CLI, as a user would), and the Engine API's
//! create + start (no CLI start-up). Both wait for the container to be
//! running; neither pulls (the image is local, nothing can be pulled).

use crate::client::{Conn, Target};
use crate::ecs;
use crate::servers;
use crate::tasks::{wait_status, Options, Samples, CLUSTER};
use anyhow::{bail, Context};
use berth_core::task::TaskStatus;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "berth-test/busybox:latest";
const FAMILY: &str = "bench-docker";
/// Runs until stopped, and stops at once on SIGTERM.
const SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

struct Agent {
    child: Child,
    dir: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn docker_available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure_image() -> anyhow::Result<()> {
    let present = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if !present {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/test-images.sh");
        let ok = Command::new("bash").arg(script).status()?.success();
        if !ok {
            bail!("building {IMAGE} with {script} failed");
        }
    }
    Ok(())
}

fn spawn_agent(opts: &Options, s: &servers::Spawned) -> anyhow::Result<Agent> {
    let dir = std::env::temp_dir().join(format!(
        "berth-bench-agent-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::File::create(dir.join("agent.log"))?;
    let child = Command::new(&opts.berth_bin)
        .args(["agent", "--cluster", CLUSTER, "--runtime", "docker"])
        .args([
            "--image-pull-behavior",
            "prefer-cached",
            "--task-cleanup-wait",
            "0",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("AWS_ENDPOINT_URL", &s.endpoint)
        .env("AWS_ACCESS_KEY_ID", &s.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s.secret_key)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting berth agent")?;
    Ok(Agent { child, dir })
}

/// `docker run -d`: returns once the container runs.
fn docker_run(name: &str) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            "--name",
            name,
            "--label",
            "berth-bench=1",
            IMAGE,
            "sh",
            "-c",
            SCRIPT,
        ])
        .output()?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        bail!("docker run: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(ms)
}

fn docker_rm(name: &str) {
    let _ = Command::new("docker")
        .args(["rm", "-f", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The Engine API's create + start, as berth's runtime calls it.
async fn api_run(docker: &bollard::Docker, name: &str) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
        labels: Some([("berth-bench".to_string(), "1".to_string())].into()),
        ..Default::default()
    };
    let opts = CreateContainerOptions {
        name: Some(name.into()),
        ..Default::default()
    };
    docker.create_container(Some(opts), body).await?;
    docker
        .start_container(
            name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await?;
    Ok(t0.elapsed().as_secs_f64() * 1000.0)
}

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    println!();
    if !docker_available() {
        println!("docker latency: skipped (no Docker Engine answers)");
        return Ok(());
    }
    ensure_image()?;
    let docker = bollard::Docker::connect_with_local_defaults()?
        .negotiate_version()
        .await?;
    let server = servers::spawn_berth(&opts.berth_bin, &["--no-agent"]).await?;
    let target = Target::from_endpoint(
        "berth",
        &server.endpoint,
        &server.access_key,
        &server.secret_key,
        Some(server.pid()),
    )
    .await?;
    let mut conn = Conn::connect(target.clone()).await?;
    ecs::call(&mut conn, "CreateCluster", &json!({"clusterName": CLUSTER})).await?;
    let _agent = spawn_agent(opts, &server)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = ecs::call(
            &mut conn,
            "ListContainerInstances",
            &json!({"cluster": CLUSTER}),
        )
        .await?;
        if v["containerInstanceArns"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("the docker agent did not register");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ecs::call(
        &mut conn,
        "RegisterTaskDefinition",
        &json!({
            "family": FAMILY,
            "networkMode": "bridge",
            "containerDefinitions": [{
                "name": "main", "image": IMAGE, "memory": 32, "essential": true,
                "command": ["sh", "-c", SCRIPT]
            }]
        }),
    )
    .await?;
    eprintln!(
        "docker latency: {} + {} warm-up rounds of berth RunTask, docker run, Engine API create+start...",
        opts.count, opts.warmup_tasks
    );
    let (mut berth, mut cli, mut api) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut stages: [Samples; 3] = Default::default();
    for i in 0..opts.warmup_tasks + opts.count {
        let measured = i >= opts.warmup_tasks;
        // berth
        let t0 = Instant::now();
        let v = ecs::call(
            &mut conn,
            "RunTask",
            &json!({"cluster": CLUSTER, "taskDefinition": FAMILY, "launchType": "EC2"}),
        )
        .await?;
        let (tasks, fails) = ecs::run_task_outcome(&v);
        let Some(task) = tasks.first() else {
            bail!("RunTask failed: {fails:?}");
        };
        let (t, _) = wait_status(&mut conn, &task.arn, TaskStatus::Running, opts.poll).await?;
        if t.last_status != Some(TaskStatus::Running) {
            bail!("task stopped before RUNNING: {}", t.why());
        }
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        ecs::call(
            &mut conn,
            "StopTask",
            &json!({"cluster": CLUSTER, "task": t.arn}),
        )
        .await?;
        wait_status(&mut conn, &t.arn, TaskStatus::Stopped, opts.poll).await?;
        // docker run (CLI)
        let name = format!("berth-bench-{}", uuid::Uuid::new_v4().simple());
        let cli_ms = docker_run(&name);
        docker_rm(&name);
        // Engine API
        let name = format!("berth-bench-{}", uuid::Uuid::new_v4().simple());
        let api_ms = api_run(&docker, &name).await;
        let rm = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        let _ = docker.remove_container(&name, Some(rm)).await;
        if measured {
            berth.push(ms);
            cli.push(cli_ms?);
            api.push(api_ms?);
            stages[0].push_between(t.created_at, t.pull_started_at);
            stages[1].push_between(t.pull_started_at, t.pull_stopped_at);
            stages[2].push_between(t.pull_stopped_at, t.started_at);
        }
    }
    println!(
        "RunTask -> RUNNING on the Docker runtime vs Docker itself ({} rounds, alternating, image {IMAGE}, bridge network; {} warm-up rounds not counted):",
        opts.count, opts.warmup_tasks
    );
    println!(
        "  repeat: {} --workload docker-latency --task-count {}",
        opts.command, opts.count
    );
    println!("  berth RunTask -> RUNNING seen     {}", berth.summary());
    println!(
        "    createdAt -> pullStartedAt      {}",
        stages[0].summary()
    );
    println!(
        "    pull (prefer-cached: inspect)   {}",
        stages[1].summary()
    );
    println!(
        "    pullStoppedAt -> startedAt      {}",
        stages[2].summary()
    );
    println!("  docker run -d (CLI)               {}", cli.summary());
    println!("  Engine API create + start         {}", api.summary());
    let ratio_cli = berth.quantile(0.5) / cli.quantile(0.5);
    let ratio_api = berth.quantile(0.5) / api.quantile(0.5);
    println!(
        "  p50 ratio berth / docker run: {ratio_cli:.2}x; berth / Engine API: {ratio_api:.2}x; goal <= 1.2x docker run: {}",
        if ratio_cli <= 1.2 { "met" } else { "NOT met" }
    );
    drop(server);
    Ok(())
}
