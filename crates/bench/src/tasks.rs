//! The task workloads: RunTask → RUNNING latency (here), tasks started per
//! second (`throughput`) and the control plane's footprint with many
//! STOPPED tasks retained (`memory`).
//!
//! Latency and throughput run FARGATE tasks on the embedded agent of a
//! fresh `berth server` (process runtime), so nothing the HTTP workloads
//! stored weighs on them; retention starts its own `--no-agent` server.

use crate::client::{Conn, Target};
use crate::cpu::CpuSample;
use crate::ecs::{self, TaskInfo};
use crate::{memory, servers, throughput};
use anyhow::{bail, Context};
use berth_core::task::TaskStatus;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::time::MissedTickBehavior;

pub const CLUSTER: &str = "bench";
/// The long-running definition (latency) and the quick one (throughput).
pub const SLEEPER: &str = "bench-task";
pub const QUICK: &str = "bench-task-quick";
/// CPU units each task asks for; the managed capacity has 1024 per core.
pub const TASK_CPU: usize = 256;
/// The latency run gives up after this many failed tasks.
const MAX_FAILURES: usize = 10;
/// How long a task may take to reach the status waited for.
const STATUS_TIMEOUT: Duration = Duration::from_secs(30);

/// What the task workloads need from the command line.
pub struct Options {
    pub latency: bool,
    pub throughput: bool,
    pub retention: bool,
    /// RunTask -> RUNNING on the Docker runtime against Docker itself.
    pub docker: bool,
    pub count: usize,
    pub warmup_tasks: usize,
    pub poll: Duration,
    pub batch: usize,
    pub slots: usize,
    pub duration: Duration,
    /// Task throughput: how long the bare spawn loop runs first.
    pub spawn_duration: Duration,
    pub retained: u64,
    pub retain_concurrency: usize,
    pub retain_timeout: Duration,
    pub berth_bin: PathBuf,
    /// `(url, access key, secret key)` of an already running server.
    pub endpoint: Option<(String, String, String)>,
    /// The command line up to the workload's own flags (binary, server choice).
    pub command: String,
}

/// Runs the selected task workloads, printing each section as it ends.
pub async fn run(opts: &Options) -> anyhow::Result<()> {
    if opts.latency || opts.throughput {
        let (target, server) = match &opts.endpoint {
            Some((url, ak, sk)) => (
                Target::from_endpoint("endpoint", url, ak, sk, None).await?,
                None,
            ),
            None => {
                let s = servers::spawn_berth(&opts.berth_bin, &["--runtime", "process"])
                    .await
                    .with_context(|| format!("starting {}", opts.berth_bin.display()))?;
                eprintln!(
                    "berth {} for the task workloads (embedded agent)",
                    s.endpoint
                );
                let t = Target::from_endpoint(
                    "berth",
                    &s.endpoint,
                    &s.access_key,
                    &s.secret_key,
                    Some(s.pid()),
                )
                .await?;
                (t, Some(s))
            }
        };
        setup(&target).await?;
        if opts.latency {
            latency(&target, opts).await?;
        }
        if opts.throughput {
            throughput::run(&target, opts).await?;
        }
        drop(server);
    }
    if opts.retention {
        if opts.endpoint.is_some() {
            println!();
            println!("task retention: skipped (it starts its own `berth server --no-agent`; not with --endpoint)");
        } else {
            memory::run(opts).await?;
        }
    }
    Ok(())
}

/// The cluster and both task definitions.
async fn setup(target: &Arc<Target>) -> anyhow::Result<()> {
    let mut conn = Conn::connect(target.clone()).await?;
    ecs::call(&mut conn, "CreateCluster", &json!({"clusterName": CLUSTER})).await?;
    for (family, command) in [(SLEEPER, "exec sleep 30"), (QUICK, "true")] {
        let body = json!({
            "family": family,
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": TASK_CPU.to_string(),
            "memory": "512",
            "containerDefinitions": [{
                "name": "main",
                "image": "host",
                "entryPoint": ["/bin/sh", "-c"],
                "command": [command]
            }]
        });
        ecs::call(&mut conn, "RegisterTaskDefinition", &body).await?;
    }
    Ok(())
}

pub fn run_task_body(family: &str, count: usize) -> serde_json::Value {
    json!({
        "cluster": CLUSTER,
        "taskDefinition": family,
        "launchType": "FARGATE",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-berth"]}},
        "count": count
    })
}

/// A 1-ms-style poll clock: the first tick is immediate.
pub fn poll_clock(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

pub fn wall_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Polls DescribeTasks every `poll` until the task shows `want` (or
/// STOPPED, which ends every wait); returns it, with the number of polls.
pub async fn wait_status(
    conn: &mut Conn,
    arn: &str,
    want: TaskStatus,
    poll: Duration,
) -> anyhow::Result<(TaskInfo, u64)> {
    let deadline = Instant::now() + STATUS_TIMEOUT;
    let mut tick = poll_clock(poll);
    let mut polls = 0;
    loop {
        tick.tick().await;
        let arns = [arn.to_owned()];
        let t = ecs::describe(conn, CLUSTER, &arns)
            .await?
            .pop()
            .context("DescribeTasks returned no task")?;
        polls += 1;
        if t.last_status == Some(want) || t.last_status == Some(TaskStatus::Stopped) {
            return Ok((t, polls));
        }
        if Instant::now() > deadline {
            bail!(
                "task {arn} not {want} within {STATUS_TIMEOUT:?} (lastStatus {})",
                t.last_status.map_or("-", TaskStatus::as_str)
            );
        }
    }
}

/// Milliseconds (sorted on demand) with nearest-rank percentiles.
#[derive(Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn push(&mut self, ms: f64) {
        self.0.push(ms);
    }

    pub fn push_between(&mut self, from: Option<f64>, to: Option<f64>) {
        if let (Some(a), Some(b)) = (from, to) {
            self.push((b - a) * 1000.0);
        }
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn quantile(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    pub fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len().max(1) as f64
    }

    /// "p50 … ms, p99 … ms, max … ms".
    pub fn summary(&self) -> String {
        if self.0.is_empty() {
            return "no samples".into();
        }
        format!(
            "p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  mean {:7.2} ms",
            self.quantile(0.5),
            self.quantile(0.99),
            self.quantile(1.0),
            self.mean()
        )
    }
}

/// Sequential RunTask → RUNNING, then StopTask → STOPPED, per task.
async fn latency(target: &Arc<Target>, opts: &Options) -> anyhow::Result<()> {
    let mut conn = Conn::connect(target.clone()).await?;
    let poll_ms = opts.poll.as_secs_f64() * 1000.0;
    eprintln!(
        "task latency: {} + {} warm-up tasks, DescribeTasks every {poll_ms} ms...",
        opts.count, opts.warmup_tasks
    );
    let (mut to_running, mut run_call, mut to_stopped) =
        (Samples::default(), Samples::default(), Samples::default());
    // createdAt→pullStartedAt, pullStartedAt→pullStoppedAt,
    // pullStoppedAt→startedAt, startedAt→seen, sent→createdAt.
    let mut stages: [Samples; 5] = Default::default();
    let (mut polls, mut cpu_shortages) = (0u64, 0u64);
    let mut failures: Vec<String> = Vec::new();
    let mut cpu = None;
    for i in 0..opts.warmup_tasks + opts.count {
        let measured = i >= opts.warmup_tasks;
        if i == opts.warmup_tasks {
            cpu = Some(CpuSample::start(target.pid));
        }
        let sent = wall_secs();
        let t0 = Instant::now();
        let v = ecs::call(&mut conn, "RunTask", &run_task_body(SLEEPER, 1)).await?;
        let call_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let (tasks, fails) = ecs::run_task_outcome(&v);
        let Some(task) = tasks.first() else {
            let f = fails
                .first()
                .cloned()
                .unwrap_or_else(|| "no task, no failure".into());
            if ecs::is_cpu_shortage(&f) {
                cpu_shortages += 1;
            } else {
                failures.push(format!("RunTask: {f}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let waited = wait_status(&mut conn, &task.arn, TaskStatus::Running, opts.poll).await;
        let seen_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let seen = wall_secs();
        let (t, n) = match waited {
            Ok((t, _)) if t.last_status != Some(TaskStatus::Running) => {
                failures.push(format!("{} stopped before RUNNING: {}", t.arn, t.why()));
                continue;
            }
            Ok(tn) => tn,
            Err(e) => {
                failures.push(format!("{e:#}"));
                let stop = json!({"cluster": CLUSTER, "task": task.arn});
                let _ = ecs::call(&mut conn, "StopTask", &stop).await;
                if failures.len() > MAX_FAILURES {
                    bail!("too many failures: {}", failures.join("; "));
                }
                continue;
            }
        };
        if measured {
            to_running.push(seen_ms);
            run_call.push(call_ms);
            polls += n;
            stages[0].push_between(t.created_at, t.pull_started_at);
            stages[1].push_between(t.pull_started_at, t.pull_stopped_at);
            stages[2].push_between(t.pull_stopped_at, t.started_at);
            stages[3].push_between(t.started_at, Some(seen));
            stages[4].push_between(Some(sent), t.created_at);
        }
        let s0 = Instant::now();
        let stop = json!({"cluster": CLUSTER, "task": t.arn});
        ecs::call(&mut conn, "StopTask", &stop).await?;
        match wait_status(&mut conn, &t.arn, TaskStatus::Stopped, opts.poll).await {
            Ok(_) if measured => to_stopped.push(s0.elapsed().as_secs_f64() * 1000.0),
            Ok(_) => {}
            // Its CPU may still be held: the next RunTask would say so.
            Err(e) => failures.push(format!("StopTask: {e:#}")),
        }
        if failures.len() > MAX_FAILURES {
            bail!("too many failures: {}", failures.join("; "));
        }
    }
    let cpu = cpu.map(|c| c.since()).unwrap_or_default();

    println!();
    println!(
        "RunTask -> RUNNING latency ({} FARGATE tasks, sequential, `exec sleep 30`, DescribeTasks every {poll_ms} ms; {} warm-up tasks not counted):",
        opts.count, opts.warmup_tasks
    );
    println!(
        "  repeat: {} --workload task-latency --task-count {} --task-poll-ms {}",
        opts.command,
        opts.count,
        opts.poll.as_millis()
    );
    println!("  RunTask -> RUNNING seen   {}", to_running.summary());
    println!("    of which RunTask call   {}", run_call.summary());
    println!("  StopTask -> STOPPED seen  {}", to_stopped.summary());
    println!("  server timestamps (ms resolution), per task:");
    // In the order of `stages`.
    let names = [
        "createdAt -> pullStartedAt",
        "pullStartedAt -> pullStoppedAt",
        "pullStoppedAt -> startedAt",
        "startedAt -> client saw RUNNING",
        "RunTask sent -> createdAt",
    ];
    for i in [4, 0, 1, 2, 3] {
        println!("    {:<32} {}", names[i], stages[i].summary());
    }
    let n = to_running.len().max(1) as f64;
    println!(
        "  DescribeTasks polls per task until RUNNING: {:.1}; server CPU per task (incl. polls and stop): {}",
        polls as f64 / n,
        cpu.server
            .map_or("-".into(), |c| format!("{:.2} ms", c.as_secs_f64() * 1000.0 / n))
    );
    println!(
        "  failures: {} RESOURCE:CPU, {} other{}",
        cpu_shortages,
        failures.len(),
        failures
            .first()
            .map_or(String::new(), |f| format!(" (first: {f})"))
    );
    let p50 = to_running.quantile(0.5);
    println!(
        "  goal p50 <= 20 ms: {} (p50 {p50:.2} ms)",
        if p50 <= 20.0 { "met" } else { "NOT met" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for v in 1..=100 {
            s.push(v as f64);
        }
        assert_eq!(s.quantile(0.5), 50.0);
        assert_eq!(s.quantile(0.99), 99.0);
        assert_eq!(s.quantile(1.0), 100.0);
        assert!((s.mean() - 50.5).abs() < 1e-9);
        s.push_between(Some(1.0), Some(1.25));
        assert_eq!(s.len(), 101);
        assert!(Samples::default().summary().contains("no samples"));
    }

    #[test]
    fn run_task_bodies_are_fargate_awsvpc() {
        let v = run_task_body(QUICK, 8);
        assert_eq!(v["count"], 8);
        assert_eq!(v["launchType"], "FARGATE");
        assert_eq!(
            v["networkConfiguration"]["awsvpcConfiguration"]["subnets"][0],
            "subnet-berth"
        );
    }
}
