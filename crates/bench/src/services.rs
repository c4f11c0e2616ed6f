//! Service workloads (berth only).
//!
//! - **service-convergence**: a `berth server --no-agent` and one real
//!   `berth agent --runtime process`. `--service-rounds` times: CreateService
//!   (desired `--service-desired`, 10) and the time until DescribeServices
//!   shows it steady (one deployment, all running); then one task's process
//!   is killed, and the time until its replacement runs is measured twice:
//!   from the kill (wall clock) and from the moment the control plane saw
//!   the exit (the replacement's `startedAt` minus the killed task's
//!   `executionStoppedAt`, both the server's own timestamps).
//! - **service-scale**: `--scale-services` services of `--service-tasks`
//!   tasks on `--instances` **simulated instances**: registered container
//!   instances with no agent process behind them, whose agent this harness
//!   plays itself (BerthAgentV1.PollWork, then SubmitTaskStateChange
//!   RUNNING), so that 10,000 tasks need no 10,000 processes. Reports the
//!   time to bring them all up, the server's memory, a full reconcile
//!   round over every service as the server logs it, and its idle CPU.

use crate::client::{Conn, Target};
use crate::cpu::CpuSample;
use crate::ecs;
use crate::servers::{self, Spawned};
use crate::tasks::Samples;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLUSTER: &str = "bench-svc";
const FAMILY: &str = "bench-svc";
/// Polls of DescribeServices while waiting for a state.
const POLL: Duration = Duration::from_millis(5);
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Options {
    pub convergence: bool,
    pub scale: bool,
    pub berth_bin: PathBuf,
    pub command: String,
    pub rounds: usize,
    pub desired: usize,
    pub scale_services: usize,
    pub scale_tasks: usize,
    pub instances: usize,
}

pub async fn run(o: &Options) -> anyhow::Result<()> {
    if o.convergence {
        convergence(o).await?;
    }
    if o.scale {
        scale(o).await?;
    }
    Ok(())
}

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

fn spawn_agent(o: &Options, s: &Spawned) -> anyhow::Result<Agent> {
    let dir = std::env::temp_dir().join(format!(
        "berth-bench-svc-agent-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::File::create(dir.join("agent.log"))?;
    let child = Command::new(&o.berth_bin)
        .args([
            "agent",
            "--cluster",
            CLUSTER,
            "--runtime",
            "process",
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

async fn target(s: &Spawned) -> anyhow::Result<Arc<Target>> {
    Target::from_endpoint(
        "berth",
        &s.endpoint,
        &s.access_key,
        &s.secret_key,
        Some(s.pid()),
    )
    .await
}

/// The EC2 definition the services run: a shell that sleeps, named by its
/// last argument so the harness can find (and kill) a task's process.
async fn register(conn: &mut Conn, memory: i64) -> anyhow::Result<()> {
    let body = json!({
        "family": FAMILY,
        "containerDefinitions": [{
            "name": "main",
            "image": "host",
            "memory": memory,
            "entryPoint": ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
        }]
    });
    ecs::call(conn, "RegisterTaskDefinition", &body).await?;
    Ok(())
}

fn create_body(name: &str, desired: usize) -> Value {
    json!({
        "cluster": CLUSTER,
        "serviceName": name,
        "taskDefinition": FAMILY,
        "desiredCount": desired,
        "launchType": "EC2",
        "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200},
    })
}

async fn describe_service(conn: &mut Conn, name: &str) -> anyhow::Result<Value> {
    let v = ecs::call(
        conn,
        "DescribeServices",
        &json!({"cluster": CLUSTER, "services": [name]}),
    )
    .await?;
    Ok(v["services"][0].clone())
}

fn steady(s: &Value, desired: usize) -> bool {
    s["deployments"].as_array().is_some_and(|d| d.len() == 1)
        && s["runningCount"].as_u64() == Some(desired as u64)
        && s["pendingCount"].as_u64() == Some(0)
}

async fn service_tasks(
    conn: &mut Conn,
    name: &str,
    desired: &str,
) -> anyhow::Result<Vec<ecs::TaskInfo>> {
    let list = ecs::call(
        conn,
        "ListTasks",
        &json!({"cluster": CLUSTER, "serviceName": name, "desiredStatus": desired}),
    )
    .await?;
    let arns: Vec<String> = list["taskArns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    if arns.is_empty() {
        return Ok(vec![]);
    }
    ecs::describe(conn, CLUSTER, &arns).await
}

/// The pid of a process whose command line ends with `marker`.
fn pid_of(marker: &str) -> Option<u32> {
    let out = Command::new("pgrep")
        .args(["-f", "-n", marker])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

async fn convergence(o: &Options) -> anyhow::Result<()> {
    let server =
        servers::spawn_berth(&o.berth_bin, &["--no-agent", "--runtime", "process"]).await?;
    let t = target(&server).await?;
    let mut conn = Conn::connect(t.clone()).await?;
    ecs::call(&mut conn, "CreateCluster", &json!({"clusterName": CLUSTER})).await?;
    let _agent = spawn_agent(o, &server)?;
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
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
            bail!("the agent did not register");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    register(&mut conn, 16).await?;
    let mut steady_ms = Samples::default();
    let mut replaced_wall = Samples::default();
    let mut replaced_after_exit = Samples::default();
    for round in 0..o.rounds {
        let name = format!("svc-{round}-{}", uuid::Uuid::new_v4().simple());
        let begun = Instant::now();
        ecs::call(&mut conn, "CreateService", &create_body(&name, o.desired)).await?;
        wait(&mut conn, &name, |s| steady(s, o.desired)).await?;
        steady_ms.push(begun.elapsed().as_secs_f64() * 1000.0);

        // Kill one task's process; time its replacement.
        let before = service_tasks(&mut conn, &name, "RUNNING").await?;
        let victim = before.first().context("no task to kill")?.clone();
        let id = victim.arn.rsplit('/').next().unwrap_or_default().to_owned();
        let pid = pid_for_task(&id, o.desired, &before).context("no process found for the task")?;
        let killed = Instant::now();
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()?;
        let replacement = loop {
            let now = service_tasks(&mut conn, &name, "RUNNING").await?;
            let fresh: Vec<&ecs::TaskInfo> = now
                .iter()
                .filter(|t| !before.iter().any(|b| b.arn == t.arn))
                .filter(|t| t.last_status == Some(berth_core::task::TaskStatus::Running))
                .collect();
            if let Some(t) = fresh.first() {
                break (*t).clone();
            }
            if killed.elapsed() > CONVERGE_TIMEOUT {
                bail!("no replacement for {id} within {CONVERGE_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL).await;
        };
        replaced_wall.push(killed.elapsed().as_secs_f64() * 1000.0);
        let gone = ecs::describe(&mut conn, CLUSTER, std::slice::from_ref(&victim.arn))
            .await?
            .pop()
            .context("the killed task vanished")?;
        replaced_after_exit.push_between(
            gone.execution_stopped_at.or(gone.stopped_at),
            replacement.started_at,
        );
        ecs::call(
            &mut conn,
            "DeleteService",
            &json!({"cluster": CLUSTER, "service": name, "force": true}),
        )
        .await?;
        wait(&mut conn, &name, |s| s["status"] == "INACTIVE").await?;
    }
    println!();
    println!(
        "service convergence, process runtime, one `berth agent`: {} rounds of a service of {} tasks",
        o.rounds, o.desired
    );
    println!(
        "  CreateService -> steady state (all RUNNING, one deployment): {}  (goal: p50 <= 1000 ms)",
        steady_ms.summary()
    );
    println!(
        "  a task's process killed -> replacement RUNNING (wall):    {}",
        replaced_wall.summary()
    );
    println!(
        "  exit seen by the control plane -> replacement RUNNING:     {}  (goal: <= 2000 ms)",
        replaced_after_exit.summary()
    );
    println!(
        "  repeat: {} --workload service-convergence --service-rounds {} --service-desired {}",
        o.command, o.rounds, o.desired
    );
    Ok(())
}

/// The task's main process: the process runtime runs each container
/// under a `berth shim` that names the task in its arguments.
fn pid_for_task(task_id: &str, _desired: usize, _tasks: &[ecs::TaskInfo]) -> Option<u32> {
    let shim = pid_of(task_id)?;
    let out = Command::new("pgrep")
        .args(["-P", &shim.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .or(Some(shim))
}

/// Polls DescribeServices until `done` holds.
async fn wait(conn: &mut Conn, name: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let s = describe_service(conn, name).await?;
        if done(&s) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("service {name} not there within {CONVERGE_TIMEOUT:?}: {s}");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn scale(o: &Options) -> anyhow::Result<()> {
    // Simulated instances never poll on their own: liveness must not
    // declare them lost while the harness plays their agent.
    let server = servers::spawn_berth_with_env(
        &o.berth_bin,
        &[
            "--no-agent",
            "--agent-disconnect-grace",
            "86400",
            "--agent-lost-timeout",
            "86400",
        ],
        &[("BERTH_LOG", "info,berth_api::ecs::services=debug")],
    )
    .await?;
    let t = target(&server).await?;
    let mut conn = Conn::connect(t.clone()).await?;
    ecs::call(&mut conn, "CreateCluster", &json!({"clusterName": CLUSTER})).await?;
    let mut instances = Vec::new();
    for i in 0..o.instances {
        let body = json!({
            "cluster": CLUSTER,
            "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 1_000_000},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 1_000_000_000},
            ],
            "attributes": [
                {"name": "ecs.availability-zone", "value": format!("us-east-1{}", ["a", "b", "c"][i % 3])},
                {"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"},
            ],
        });
        let v = ecs::call(&mut conn, "RegisterContainerInstance", &body).await?;
        instances.push(
            v["containerInstance"]["containerInstanceArn"]
                .as_str()
                .context("no instance ARN")?
                .to_owned(),
        );
    }
    register(&mut conn, 6).await?;
    let total = o.scale_services * o.scale_tasks;
    let begun = Instant::now();
    let names: Vec<String> = (0..o.scale_services).map(|i| format!("s{i:05}")).collect();
    let creators = 8;
    let mut handles = Vec::new();
    for c in 0..creators {
        let t = t.clone();
        let mine: Vec<String> = names.iter().skip(c).step_by(creators).cloned().collect();
        let tasks = o.scale_tasks;
        handles.push(tokio::spawn(async move {
            let mut conn = Conn::connect(t).await?;
            for n in mine {
                ecs::call(&mut conn, "CreateService", &create_body(&n, tasks)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let created = begun.elapsed();
    // Play the agents until every task reports RUNNING.
    let mut running = 0usize;
    let deadline = Instant::now() + Duration::from_secs(900);
    let mut last_progress = Instant::now();
    while running < total {
        let mut moved = 0;
        for arn in &instances {
            let work = ecs::call(
                &mut conn,
                "BerthAgentV1.PollWork",
                &json!({"cluster": CLUSTER, "containerInstanceArn": arn, "knownVersion": 0, "waitSeconds": 0}),
            )
            .await?;
            for a in work["tasks"].as_array().into_iter().flatten() {
                let task = &a["task"];
                if task["lastStatus"] == "RUNNING" || task["desiredStatus"] != "RUNNING" {
                    continue;
                }
                let report = json!({
                    "cluster": CLUSTER,
                    "task": task["taskArn"],
                    "status": "RUNNING",
                    "containers": [{"containerName": "main", "status": "RUNNING", "runtimeId": "simulated"}],
                });
                ecs::call(&mut conn, "SubmitTaskStateChange", &report).await?;
                moved += 1;
            }
        }
        running += moved;
        if moved > 0 {
            last_progress = Instant::now();
        }
        if Instant::now() > deadline || last_progress.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(server.dir().join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            bail!(
                "only {running} of {total} tasks running ({:.0} s in); the server's log ends:\n{}",
                begun.elapsed().as_secs_f64(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        if moved == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let up = begun.elapsed();
    // Every service steady, as DescribeServices says.
    let mut unsteady = names.clone();
    while !unsteady.is_empty() {
        let mut still = Vec::new();
        for chunk in unsteady.chunks(10) {
            let v = ecs::call(
                &mut conn,
                "DescribeServices",
                &json!({"cluster": CLUSTER, "services": chunk}),
            )
            .await?;
            for s in v["services"].as_array().into_iter().flatten() {
                if !steady(s, o.scale_tasks) {
                    still.push(s["serviceName"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        unsteady = still;
        if Instant::now() > deadline {
            bail!("{} services not steady", unsteady.len());
        }
        if !unsteady.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let steady_at = begun.elapsed();
    // A full round (the periodic resync passes every service) as logged.
    let log = server.dir().join("server.log");
    let round = wait_for_round(&log, o.scale_services, Duration::from_secs(40)).await;
    let idle = CpuSample::start(Some(server.pid()));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = idle.since();
    let (rss, hwm) = rss_kib(server.pid());
    println!();
    println!(
        "service scale, SIMULATED instances (registered, their agent played by this harness): {} services x {} tasks = {total} tasks on {} instances",
        o.scale_services, o.scale_tasks, o.instances
    );
    println!(
        "  created in {:.1} s; all RUNNING after {:.1} s; all steady after {:.1} s",
        created.as_secs_f64(),
        up.as_secs_f64(),
        steady_at.as_secs_f64()
    );
    match round {
        Some((ms, deciding)) => println!(
            "  a full round over every service (server's log): {ms:.0} ms, of which {deciding:.1} ms deciding (the pure reconciler; goal: <= 100 ms)"
        ),
        None => println!("  no full round seen in the server's log within 40 s"),
    }
    println!(
        "  server memory: RSS {} MiB, peak {} MiB (goal: <= 512 MiB); idle CPU over 10 s: {:.1} % of a core",
        rss.map_or("-".into(), |k| (k / 1024).to_string()),
        hwm.map_or("-".into(), |k| (k / 1024).to_string()),
        idle.server.map_or(0.0, |d| d.as_secs_f64() / 10.0 * 100.0)
    );
    println!(
        "  repeat: {} --workload service-scale --scale-services {} --service-tasks {} --instances {}",
        o.command, o.scale_services, o.scale_tasks, o.instances
    );
    Ok(())
}

/// The slowest full round (at least `services` passes) the server logged
/// within `within`: (ms, ms deciding).
async fn wait_for_round(
    log: &std::path::Path,
    services: usize,
    within: Duration,
) -> Option<(f64, f64)> {
    let deadline = Instant::now() + within;
    let mut read_from = std::fs::metadata(log).map_or(0, |m| m.len() as usize);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let fresh = text.get(read_from..).unwrap_or_default().to_owned();
        read_from = text.len();
        for line in fresh.lines().filter(|l| l.contains("service round")) {
            let field = |name: &str| -> Option<f64> {
                let i = line.find(&format!("{name}="))? + name.len() + 1;
                line[i..].split_whitespace().next()?.parse().ok()
            };
            if field("passes").is_some_and(|p| p as usize >= services) {
                return Some((field("ms")?, field("deciding_ms")?));
            }
        }
    }
    None
}

/// VmRSS and VmHWM of `pid`, in KiB.
fn rss_kib(pid: u32) -> (Option<u64>, Option<u64>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}
