//! The control plane's footprint with many STOPPED tasks retained: a
//! `berth server --no-agent`, one fake EC2 container instance that never
//! polls, and RunTask (EC2, count 10) + SubmitTaskStateChange(STOPPED) for
//! each task until N exist. Reports the creation rate, the server's RSS
//! and data dir size, its idle CPU (housekeeping), and the latency of a few
//! reads at that size.

use crate::client::{Conn, Target};
use crate::cpu::CpuSample;
use crate::ecs;
use crate::servers;
use crate::tasks::{Options, Samples, CLUSTER};
use anyhow::Context;
use berth_core::task::{DesiredStatus, TaskStatus};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The fake instance never polls: keep it "connected" and its tasks
/// (STOPPED anyway) retained for the whole run.
const SERVER_FLAGS: [&str; 6] = [
    "--no-agent",
    "--agent-disconnect-grace",
    "86400",
    "--agent-lost-timeout",
    "86400",
    "--stopped-task-retention",
];
const RETENTION: &str = "86400";
/// Container memory of the bulk definition: ECS's minimum (berth refuses
/// less, as ECS does: "The minimum is 6 MiB").
const MIN_MEMORY_MIB: i64 = 6;
/// Time allowed for each read's repetitions.
const READ_BUDGET: Duration = Duration::from_secs(20);
/// Idle window over which the server's own CPU use is measured.
const IDLE: Duration = Duration::from_secs(10);

/// VmRSS and VmHWM of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> (Option<u64>, Option<u64>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Total size of the files under `dir`, in bytes.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// "total (file size, ...)" of the files of at least 1 MiB, largest first.
pub fn dir_summary(dir: &Path) -> String {
    let mut files: Vec<(u64, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            (m.is_file() && m.len() >= 1 << 20)
                .then(|| (m.len(), e.file_name().to_string_lossy().into_owned()))
        })
        .collect();
    files.sort_by(|a, b| b.cmp(a));
    let parts: Vec<String> = files
        .iter()
        .map(|(n, name)| format!("{name} {}", mib(*n)))
        .collect();
    format!("{} ({})", mib(dir_bytes(dir)), parts.join(", "))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[derive(Default)]
struct Creation {
    run_calls: Samples,
    stop_calls: Samples,
    errors: u64,
    first_error: Option<String>,
}

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    let mut flags = SERVER_FLAGS.to_vec();
    flags.push(RETENTION);
    let server = servers::spawn_berth(&opts.berth_bin, &flags)
        .await
        .with_context(|| format!("starting {}", opts.berth_bin.display()))?;
    let pid = server.pid();
    eprintln!("berth {} --no-agent for task retention", server.endpoint);
    let target = Target::from_endpoint(
        "berth",
        &server.endpoint,
        &server.access_key,
        &server.secret_key,
        Some(pid),
    )
    .await?;
    let mut conn = Conn::connect(target.clone()).await?;
    setup(&mut conn).await?;
    let (rss0, _) = rss_kib(pid);
    let dir0 = dir_bytes(server.dir());

    let n = opts.retained;
    eprintln!(
        "task retention: creating {n} STOPPED tasks over {} connections...",
        opts.retain_concurrency
    );
    let made = Arc::new(AtomicU64::new(0));
    let claimed = Arc::new(AtomicU64::new(0));
    let creation = Arc::new(Mutex::new(Creation::default()));
    let last_arn = Arc::new(Mutex::new(String::new()));
    let start = Instant::now();
    let deadline = start + opts.retain_timeout;
    let mut workers = Vec::new();
    for _ in 0..opts.retain_concurrency {
        let mut conn = Conn::connect(target.clone()).await?;
        let (made, claimed, creation, last_arn) = (
            made.clone(),
            claimed.clone(),
            creation.clone(),
            last_arn.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut local = Creation::default();
            while Instant::now() < deadline && local.errors < 100 {
                let from = claimed.fetch_add(10, Ordering::Relaxed);
                if from >= n {
                    break;
                }
                let count = (n - from).min(10);
                match create(&mut conn, count, &mut local).await {
                    Ok(arn) => {
                        made.fetch_add(count, Ordering::Relaxed);
                        *last_arn.lock().await = arn;
                    }
                    Err(e) => {
                        // Not created: let another claim cover it.
                        claimed.fetch_sub(count, Ordering::Relaxed);
                        local.errors += 1;
                        local.first_error.get_or_insert(format!("{e:#}"));
                    }
                }
            }
            let mut c = creation.lock().await;
            c.run_calls.extend(local.run_calls);
            c.stop_calls.extend(local.stop_calls);
            c.errors += local.errors;
            c.first_error = c.first_error.take().or(local.first_error);
        }));
    }
    let mut checkpoints = Vec::new();
    let mut next_mark = n.div_ceil(10);
    while workers.iter().any(|w| !w.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let m = made.load(Ordering::Relaxed);
        if m >= next_mark {
            let (rss, _) = rss_kib(pid);
            let line = format!(
                "{m} tasks at {:.1} s: RSS {}, data dir {}",
                start.elapsed().as_secs_f64(),
                rss.map_or("-".into(), |k| mib(k * 1024)),
                dir_summary(server.dir())
            );
            eprintln!("  {line}");
            checkpoints.push(line);
            next_mark = (m / n.div_ceil(10) + 1) * n.div_ceil(10);
        }
    }
    for w in workers {
        w.await.context("a creating task panicked")?;
    }
    let took = start.elapsed();
    let made = made.load(Ordering::Relaxed);
    let creation = Arc::try_unwrap(creation)
        .map_err(|_| anyhow::anyhow!("workers still hold the tally"))?
        .into_inner();
    let last_arn = last_arn.lock().await.clone();

    // Idle CPU: what the server does on its own with this many tasks.
    let idle = CpuSample::start(Some(pid));
    tokio::time::sleep(IDLE).await;
    let idle = idle.since();
    let (rss, hwm) = rss_kib(pid);
    let dir = dir_bytes(server.dir());
    let dir_text = dir_summary(server.dir());
    let reads = reads(&mut conn, &last_arn).await?;

    println!();
    println!(
        "control plane with {made} STOPPED tasks retained (berth server {}, one fake EC2 instance; RunTask EC2 count 10 + SubmitTaskStateChange STOPPED each, {} connections):",
        flags.join(" "),
        opts.retain_concurrency
    );
    println!(
        "  repeat: {} --workload task-retention --retained-tasks {n} --retain-concurrency {}",
        opts.command, opts.retain_concurrency
    );
    println!(
        "  created {made} of {n} in {:.1} s: {:.0} tasks/s (each: 1/10 RunTask + 1 SubmitTaskStateChange); errors {}{}",
        took.as_secs_f64(),
        made as f64 / took.as_secs_f64().max(1e-9),
        creation.errors,
        creation
            .first_error
            .as_ref()
            .map_or(String::new(), |e| format!(" (first: {e})"))
    );
    println!(
        "    RunTask (count 10)          {}",
        creation.run_calls.summary()
    );
    println!(
        "    SubmitTaskStateChange       {}",
        creation.stop_calls.summary()
    );
    let kib = |k: Option<u64>| k.map_or("-".into(), |k| mib(k * 1024));
    println!(
        "  server RSS {} (peak {}; {} before the tasks), data dir {dir_text} ({} before)",
        kib(rss),
        kib(hwm),
        kib(rss0),
        mib(dir0)
    );
    if let (Some(a), Some(b)) = (rss, rss0) {
        if made > 0 {
            println!(
                "  per retained task: {:.2} KiB RSS, {:.2} KiB on disk",
                a.saturating_sub(b) as f64 / made as f64,
                dir.saturating_sub(dir0) as f64 / 1024.0 / made as f64
            );
        }
    }
    println!(
        "  idle server CPU over {IDLE:?} (housekeeping only): {}",
        idle.server.map_or("-".into(), |c| format!(
            "{:.2} cores",
            c.as_secs_f64() / IDLE.as_secs_f64()
        ))
    );
    println!("  growth:");
    for c in &checkpoints {
        println!("    {c}");
    }
    println!("  read latency at this size (sequential, one connection):");
    for (label, s) in reads {
        println!("    {label:<46} {}", s.summary());
    }
    Ok(())
}

async fn setup(conn: &mut Conn) -> anyhow::Result<()> {
    ecs::call(conn, "CreateCluster", &json!({"clusterName": CLUSTER})).await?;
    let instance = json!({
        "cluster": CLUSTER,
        "totalResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 1_000_000},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 100_000_000}
        ],
        "attributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}]
    });
    ecs::call(conn, "RegisterContainerInstance", &instance).await?;
    let def = json!({
        "family": "bulk",
        "containerDefinitions": [{"name": "m", "image": "x", "memory": MIN_MEMORY_MIB, "cpu": 0}]
    });
    ecs::call(conn, "RegisterTaskDefinition", &def).await?;
    Ok(())
}

/// RunTask EC2 `count`, then SubmitTaskStateChange STOPPED for each task;
/// returns the last task's ARN.
async fn create(conn: &mut Conn, count: u64, c: &mut Creation) -> anyhow::Result<String> {
    let body =
        json!({"cluster": CLUSTER, "taskDefinition": "bulk", "launchType": "EC2", "count": count});
    let t0 = Instant::now();
    let v = ecs::call(conn, "RunTask", &body).await?;
    c.run_calls.push(t0.elapsed().as_secs_f64() * 1000.0);
    let (tasks, failures) = ecs::run_task_outcome(&v);
    if let Some(f) = failures.first() {
        anyhow::bail!("RunTask placed {} of {count}: {f}", tasks.len());
    }
    let mut last = String::new();
    for t in tasks {
        let body =
            json!({"cluster": CLUSTER, "task": t.arn, "status": TaskStatus::Stopped.as_str()});
        let t0 = Instant::now();
        ecs::call(conn, "SubmitTaskStateChange", &body).await?;
        c.stop_calls.push(t0.elapsed().as_secs_f64() * 1000.0);
        last = t.arn;
    }
    Ok(last)
}

/// Times up to `reps` sequential calls of one request, fewer (at least
/// 3) when they take longer than `READ_BUDGET` together.
async fn time_calls(
    conn: &mut Conn,
    op: &str,
    body: &Value,
    reps: usize,
) -> anyhow::Result<(Samples, Value)> {
    let mut s = Samples::default();
    let mut last = Value::Null;
    let t = Instant::now();
    for i in 0..reps {
        if i >= 3 && t.elapsed() > READ_BUDGET {
            break;
        }
        let t0 = Instant::now();
        last = ecs::call(conn, op, body).await?;
        s.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((s, last))
}

async fn reads(conn: &mut Conn, arn: &str) -> anyhow::Result<Vec<(String, Samples)>> {
    let mut out = Vec::new();
    let (s, _) = time_calls(
        conn,
        "DescribeClusters",
        &json!({"clusters": [CLUSTER]}),
        200,
    )
    .await?;
    out.push((format!("DescribeClusters (x{})", s.len()), s));
    let list = json!({"cluster": CLUSTER, "desiredStatus": DesiredStatus::Stopped.as_str(), "maxResults": 100});
    let (s, v) = time_calls(conn, "ListTasks", &list, 200).await?;
    let got = v["taskArns"].as_array().map_or(0, Vec::len);
    out.push((
        format!(
            "ListTasks STOPPED maxResults 100 (x{}, {got} ARNs)",
            s.len()
        ),
        s,
    ));
    let describe = json!({"cluster": CLUSTER, "tasks": [arn]});
    let (s, v) = time_calls(conn, "DescribeTasks", &describe, 200).await?;
    let status = v["tasks"][0]["lastStatus"]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    out.push((
        format!("DescribeTasks of 1 task (x{}, it is {status})", s.len()),
        s,
    ));
    // The default desiredStatus (RUNNING) matches none of them.
    let running = json!({"cluster": CLUSTER, "maxResults": 100});
    let (s, v) = time_calls(conn, "ListTasks", &running, 10).await?;
    let got = v["taskArns"].as_array().map_or(0, Vec::len);
    out.push((
        format!(
            "ListTasks RUNNING maxResults 100 (x{}, {got} ARNs)",
            s.len()
        ),
        s,
    ));
    let (pages, arns, took) = list_all_stopped(conn).await?;
    let mut s = Samples::default();
    s.push(took.as_secs_f64() * 1000.0);
    out.push((
        format!("ListTasks STOPPED, all {pages} pages ({arns} ARNs)"),
        s,
    ));
    Ok(out)
}

/// Pages through every STOPPED task (checks they all exist); bounded.
async fn list_all_stopped(conn: &mut Conn) -> anyhow::Result<(u64, u64, Duration)> {
    let t0 = Instant::now();
    let (mut pages, mut arns) = (0u64, 0u64);
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"cluster": CLUSTER, "desiredStatus": DesiredStatus::Stopped.as_str(), "maxResults": 100});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let v = ecs::call(conn, "ListTasks", &body).await?;
        pages += 1;
        arns += v["taskArns"].as_array().map_or(0, |a| a.len() as u64);
        token = v["nextToken"].as_str().map(str::to_owned);
        if token.is_none() || t0.elapsed() > Duration::from_secs(300) {
            break;
        }
    }
    Ok((pages, arns, t0.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_rss_and_dir_size() {
        if cfg!(target_os = "linux") {
            let (rss, hwm) = rss_kib(std::process::id());
            assert!(rss.unwrap() > 0 && hwm.unwrap() >= rss.unwrap());
        }
        assert!(dir_bytes(Path::new(env!("CARGO_MANIFEST_DIR"))) > 0);
        assert_eq!(mib(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
