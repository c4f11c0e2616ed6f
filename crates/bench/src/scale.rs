//! The control plane at fleet scale (issue 11): a `berth server --no-agent
//! --simulate-hosts N` (SIMULATED instances: registered and kept connected
//! in-process, their tasks acknowledged RUNNING through the report path,
//! nothing run), then RunTask (count 10, spread over zones + binpack on
//! memory + a `memberOf` constraint) over signed HTTP until the tasks
//! exist; reads at that size, the server's memory, and a restart on its
//! data directory. Prints the figures against the goals.

use crate::client::{Conn, Target};
use crate::cpu::CpuSample;
use crate::ecs;
use crate::memory::{dir_summary, rss_kib};
use crate::servers::{self, Spawned};
use crate::tasks::Samples;
use anyhow::Context;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const CLUSTER: &str = "scale";
const FAMILY: &str = "scale";
const ZONES: &str = "3";
/// Each task's reservation: 100 of them fit a simulated host (16384 CPU
/// units, 65536 MiB), so 10,000 hosts hold 1,000,000 tasks.
const TASK_CPU: i64 = 128;
const TASK_MEMORY_MIB: i64 = 512;
/// The reads are timed this many times (fewer past `READ_BUDGET`).
const READS: usize = 200;
const READ_BUDGET: Duration = Duration::from_secs(20);
/// A restarted server must answer within this.
const RESTART_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Options {
    pub berth_bin: PathBuf,
    pub instances: usize,
    pub tasks: u64,
    pub concurrency: usize,
    pub timeout: Duration,
    pub command: String,
}

#[derive(Default)]
struct Tally {
    run_calls: Samples,
    errors: u64,
    unplaced: u64,
    first_error: Option<String>,
}

fn server_flags(instances: &str) -> Vec<&str> {
    vec![
        "--no-agent",
        "--simulate-hosts",
        instances,
        "--simulate-azs",
        ZONES,
        "--simulate-cluster",
        CLUSTER,
    ]
}

fn run_body(count: u64) -> Value {
    json!({
        "cluster": CLUSTER,
        "taskDefinition": FAMILY,
        "launchType": "EC2",
        "count": count,
        "placementStrategy": [
            {"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "binpack", "field": "memory"}
        ],
        "placementConstraints": [{
            "type": "memberOf",
            "expression": "attribute:berth.simulated == true and attribute:ecs.instance-type =~ sim.*"
        }]
    })
}

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let n_text = opts.instances.to_string();
    let flags = server_flags(&n_text);
    let started = Instant::now();
    let server = servers::spawn_berth(&opts.berth_bin, &flags)
        .await
        .with_context(|| format!("starting {}", opts.berth_bin.display()))?;
    let registered_in = started.elapsed();
    let pid = server.pid();
    eprintln!(
        "berth {} with {} SIMULATED hosts (up in {:.1} s)",
        server.endpoint,
        opts.instances,
        registered_in.as_secs_f64()
    );
    let target = Target::from_endpoint(
        "berth",
        &server.endpoint,
        &server.access_key,
        &server.secret_key,
        Some(pid),
    )
    .await?;
    let mut conn = Conn::connect(target.clone()).await?;
    let def = json!({
        "family": FAMILY,
        "containerDefinitions": [{"name": "app", "image": "sim", "cpu": TASK_CPU, "memory": TASK_MEMORY_MIB}]
    });
    ecs::call(&mut conn, "RegisterTaskDefinition", &def).await?;
    let (rss0, _) = rss_kib(pid);

    let n = opts.tasks;
    eprintln!(
        "scale: placing {n} tasks (RunTask count 10) over {} connections...",
        opts.concurrency
    );
    let placed = Arc::new(AtomicU64::new(0));
    let claimed = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Instant::now();
    let cpu = CpuSample::start(Some(pid));
    let deadline = start + opts.timeout;
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency {
        let mut conn = Conn::connect(target.clone()).await?;
        let (placed, claimed, tally) = (placed.clone(), claimed.clone(), tally.clone());
        workers.push(tokio::spawn(async move {
            let mut local = Tally::default();
            while Instant::now() < deadline && local.errors < 100 && local.unplaced < 1000 {
                let from = claimed.fetch_add(10, Ordering::Relaxed);
                if from >= n {
                    break;
                }
                let count = (n - from).min(10);
                let t0 = Instant::now();
                match ecs::call(&mut conn, "RunTask", &run_body(count)).await {
                    Ok(v) => {
                        local.run_calls.push(t0.elapsed().as_secs_f64() * 1000.0);
                        let (tasks, failures) = ecs::run_task_outcome(&v);
                        placed.fetch_add(tasks.len() as u64, Ordering::Relaxed);
                        if tasks.len() < count as usize {
                            local.unplaced += count - tasks.len() as u64;
                            if let Some(f) = failures.first() {
                                local.first_error.get_or_insert(format!("unplaced: {f}"));
                            }
                        }
                    }
                    Err(e) => {
                        claimed.fetch_sub(count, Ordering::Relaxed);
                        local.errors += 1;
                        local.first_error.get_or_insert(format!("{e:#}"));
                    }
                }
            }
            let mut t = tally.lock().await;
            t.run_calls.extend(local.run_calls);
            t.errors += local.errors;
            t.unplaced += local.unplaced;
            t.first_error = t.first_error.take().or(local.first_error);
        }));
    }
    let mut checkpoints = Vec::new();
    let step = n.div_ceil(10);
    let mut next_mark = step;
    let (mut last_at, mut last_placed) = (Instant::now(), 0u64);
    while workers.iter().any(|w| !w.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let m = placed.load(Ordering::Relaxed);
        if m >= next_mark {
            let (rss, _) = rss_kib(pid);
            let rate = (m - last_placed) as f64 / last_at.elapsed().as_secs_f64().max(1e-9);
            let line = format!(
                "{m} tasks at {:.1} s: {rate:.0} placements/s since the last line, RSS {}, data dir {}",
                start.elapsed().as_secs_f64(),
                kib(rss),
                dir_summary(server.dir())
            );
            eprintln!("  {line}");
            checkpoints.push(line);
            (last_at, last_placed) = (Instant::now(), m);
            next_mark = (m / step + 1) * step;
        }
    }
    for w in workers {
        w.await.context("a placing task panicked")?;
    }
    let took = start.elapsed();
    let cpu = cpu.since();
    let placed = placed.load(Ordering::Relaxed);
    let tally = Arc::try_unwrap(tally)
        .map_err(|_| anyhow::anyhow!("workers still hold the tally"))?
        .into_inner();
    // Let the simulated agents' acknowledgements finish before reading.
    let running = wait_acknowledged(&mut conn, placed).await?;
    let (rss, hwm) = rss_kib(pid);
    let reads = reads(&mut conn).await?;
    let data_dir = dir_summary(server.dir());
    let restart = restart(server, &flags, opts).await?;

    let rate = placed as f64 / took.as_secs_f64().max(1e-9);
    let p99 = tally.run_calls.quantile(0.99);
    println!();
    println!(
        "control plane at scale: {} SIMULATED hosts in {ZONES} zones, {placed} tasks placed (berth server {}):",
        opts.instances,
        flags.join(" ")
    );
    println!(
        "  repeat: {} --workload scale --instances {} --tasks {n} --scale-concurrency {}",
        opts.command, opts.instances, opts.concurrency
    );
    println!(
        "  RunTask count 10, spread(attribute:ecs.availability-zone) + binpack(memory), memberOf; each task {TASK_CPU} CPU / {TASK_MEMORY_MIB} MiB; {} connections",
        opts.concurrency
    );
    println!(
        "  placed {placed} of {n} in {:.1} s; errors {}, unplaced {}{}; {} RUNNING (acknowledged by the simulated agents)",
        took.as_secs_f64(),
        tally.errors,
        tally.unplaced,
        tally
            .first_error
            .as_ref()
            .map_or(String::new(), |e| format!(" (first: {e})")),
        running.map_or("-".into(), |r| r.to_string())
    );
    println!(
        "  CPU while placing: server {} per placement, client {}, other processes {}",
        per(cpu.server, placed),
        per(cpu.client, placed),
        cpu.other_cores
            .map_or("-".into(), |c| format!("{c:.2} cores"))
    );
    println!(
        "  server start with {} hosts registered: {:.1} s",
        opts.instances,
        registered_in.as_secs_f64()
    );
    println!("  RunTask (count 10)   {}", tally.run_calls.summary());
    println!("  growth:");
    for c in &checkpoints {
        println!("    {c}");
    }
    println!("  data dir {data_dir}; RSS before the tasks {}", kib(rss0));
    println!();
    println!(
        "  {:<44} {:>14}  {:>12}  verdict",
        "figure", "measured", "goal"
    );
    let row = |name: &str, measured: String, goal: &str, ok: Option<bool>| {
        let verdict = match ok {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "-",
        };
        println!("  {name:<44} {measured:>14}  {goal:>12}  {verdict}");
    };
    row(
        "placements/s",
        format!("{rate:.0}"),
        ">= 15000",
        Some(rate >= 15_000.0),
    );
    row(
        "RunTask p99 while placing",
        format!("{p99:.1} ms"),
        "<= 50 ms",
        Some(p99 <= 50.0),
    );
    for (name, s) in &reads {
        let q = s.quantile(0.99);
        row(
            &format!("{name} p99"),
            format!("{q:.2} ms"),
            "<= 10 ms",
            Some(q <= 10.0),
        );
    }
    let rss_mib = rss.map(|k| k as f64 / 1024.0);
    row(
        "control-plane RSS (peak)",
        format!(
            "{} ({})",
            rss_mib.map_or("-".into(), |m| format!("{m:.0} MiB")),
            kib(hwm)
        ),
        "<= 2048 MiB",
        hwm.map(|k| k <= 2 << 20),
    );
    row(
        "restart to ready",
        format!("{:.2} s", restart.as_secs_f64()),
        "<= 10 s",
        Some(restart <= Duration::from_secs(10)),
    );
    println!(
        "  for context, ECS's own throttles: RunTask 40/s sustained per account (up to 400 tasks/s at count 10), Fargate task launches 20/s"
    );
    println!("  (the hosts are simulated: nothing runs; this measures the control plane alone)");
    Ok(())
}

fn kib(k: Option<u64>) -> String {
    k.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn per(cpu: Option<Duration>, n: u64) -> String {
    match cpu {
        Some(c) if n > 0 => format!("{:.1} us", c.as_secs_f64() * 1e6 / n as f64),
        _ => "-".into(),
    }
}

/// Waits (up to a minute) until DescribeClusters counts every placed task
/// RUNNING; returns the count seen last.
async fn wait_acknowledged(conn: &mut Conn, placed: u64) -> anyhow::Result<Option<u64>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = ecs::call(conn, "DescribeClusters", &json!({"clusters": [CLUSTER]})).await?;
        let running = v["clusters"][0]["runningTasksCount"].as_u64();
        if running.is_some_and(|r| r >= placed) || Instant::now() > deadline {
            return Ok(running);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Times up to `READS` sequential calls of one request.
async fn time_calls(conn: &mut Conn, op: &str, body: &Value) -> anyhow::Result<(Samples, Value)> {
    let mut s = Samples::default();
    let mut last = Value::Null;
    let t = Instant::now();
    for i in 0..READS {
        if i >= 3 && t.elapsed() > READ_BUDGET {
            break;
        }
        let t0 = Instant::now();
        last = ecs::call(conn, op, body).await?;
        s.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((s, last))
}

async fn reads(conn: &mut Conn) -> anyhow::Result<Vec<(String, Samples)>> {
    let mut out = Vec::new();
    let (s, _) = time_calls(conn, "DescribeClusters", &json!({"clusters": [CLUSTER]})).await?;
    out.push(("DescribeClusters".to_string(), s));
    let (s, v) = time_calls(
        conn,
        "ListTasks",
        &json!({"cluster": CLUSTER, "maxResults": 100}),
    )
    .await?;
    let got = v["taskArns"].as_array().map_or(0, Vec::len);
    out.push((format!("ListTasks (a page: {got} ARNs)"), s));
    let v = ecs::call(
        conn,
        "ListContainerInstances",
        &json!({"cluster": CLUSTER, "maxResults": 10}),
    )
    .await?;
    let arns = v["containerInstanceArns"].clone();
    let (s, _) = time_calls(
        conn,
        "DescribeContainerInstances",
        &json!({"cluster": CLUSTER, "containerInstances": arns}),
    )
    .await?;
    out.push(("DescribeContainerInstances (10)".to_string(), s));
    Ok(out)
}

/// Stops the server and starts another on its data directory; the time
/// until it answers DescribeClusters and places a task.
async fn restart(server: Spawned, flags: &[&str], opts: &Options) -> anyhow::Result<Duration> {
    let dir = server.stop_keeping_dir();
    eprintln!("scale: restarting on {}...", dir.display());
    let t0 = Instant::now();
    let server = tokio::time::timeout(
        RESTART_TIMEOUT,
        servers::spawn_berth_in(&opts.berth_bin, dir, flags, &[]),
    )
    .await
    .context("the restarted server did not come up")??;
    let target = Target::from_endpoint(
        "berth",
        &server.endpoint,
        &server.access_key,
        &server.secret_key,
        Some(server.pid()),
    )
    .await?;
    let mut conn = Conn::connect(target).await?;
    ecs::call(
        &mut conn,
        "DescribeClusters",
        &json!({"clusters": [CLUSTER]}),
    )
    .await?;
    let ready = t0.elapsed();
    let t1 = Instant::now();
    let v = ecs::call(&mut conn, "RunTask", &run_body(1)).await?;
    let (tasks, failures) = ecs::run_task_outcome(&v);
    eprintln!(
        "  restarted: answering after {:.2} s; first RunTask {:.1} ms ({} placed{})",
        ready.as_secs_f64(),
        t1.elapsed().as_secs_f64() * 1000.0,
        tasks.len(),
        failures.first().map_or(String::new(), |f| format!(", {f}"))
    );
    Ok(ready)
}
