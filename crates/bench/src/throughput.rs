//! Tasks started per second with one agent: RunTask `count`=K of the quick
//! (`true`) definition whenever K slots are free, for a fixed time, while
//! DescribeTasks follows every task in flight until it is STOPPED (which
//! frees its slot). A task counts as started when its container reports
//! RUNNING or it stopped with exit code 0. The bare spawn loop
//! ([`spawnloop`]) runs first, in the same run, as the yardstick.

use crate::client::{Conn, Target};
use crate::cpu::{self, CpuSample};
use crate::ecs::{self, TaskInfo};
use crate::spawnloop::{self, SpawnRate};
use crate::tasks::{self, Options, Samples, CLUSTER, QUICK};
use berth_core::task::TaskStatus;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// After the measured time, tasks in flight get this long to stop.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Tally {
    launched: u64,
    started: u64,
    started_late: u64,
    failed: u64,
    first_failure: Option<String>,
    cpu_shortages: u64,
    other_run_failures: u64,
    first_run_failure: Option<String>,
    per_second: Vec<u64>,
    run_calls: Samples,
    /// RunTask sent -> first DescribeTasks showing the task started, for
    /// tasks started within the window.
    to_running: Samples,
    describes: u64,
    /// createdAt→pullStartedAt, pullStoppedAt→startedAt,
    /// startedAt→executionStoppedAt, executionStoppedAt→stoppedAt,
    /// createdAt→stoppedAt, createdAt→startedAt.
    stages: [Samples; 6],
}

impl Tally {
    fn stopped(&mut self, t: &TaskInfo, counted: bool) {
        if !counted {
            self.failed += 1;
            self.first_failure
                .get_or_insert_with(|| format!("{}: {}", t.arn, t.why()));
        }
        self.stages[0].push_between(t.created_at, t.pull_started_at);
        self.stages[1].push_between(t.pull_stopped_at, t.started_at);
        self.stages[2].push_between(t.started_at, t.execution_stopped_at);
        self.stages[3].push_between(t.execution_stopped_at, t.stopped_at);
        self.stages[4].push_between(t.created_at, t.stopped_at);
        self.stages[5].push_between(t.created_at, t.started_at);
    }
}

pub async fn run(target: &Arc<Target>, opts: &Options) -> anyhow::Result<()> {
    let mut conn = Conn::connect(target.clone()).await?;
    let (k, slots) = (opts.batch, opts.slots);
    eprintln!(
        "bare spawn loop: `sh -c true` one after the other for {:?}...",
        opts.spawn_duration
    );
    let bare = spawnloop::measure(opts.spawn_duration).await?;
    eprintln!(
        "task throughput: RunTask count {k}, at most {slots} tasks at once, for {:?}...",
        opts.duration
    );
    let secs = opts.duration.as_secs_f64().ceil() as usize;
    let mut tally = Tally {
        per_second: vec![0; secs.max(1)],
        ..Tally::default()
    };
    // Task ARN → (counted as started yet, when its RunTask was sent).
    let mut inflight: HashMap<String, (bool, Instant)> = HashMap::new();
    let server_children = target.pid.and_then(cpu::children_cpu);
    let cpu = CpuSample::start(target.pid);
    let machine = cpu::machine_busy();
    let start = Instant::now();
    let end = start + opts.duration;
    let mut tick = tasks::poll_clock(opts.poll);
    loop {
        let now = Instant::now();
        if now < end && slots - inflight.len().min(slots) >= k {
            let t0 = Instant::now();
            let v = ecs::call(&mut conn, "RunTask", &tasks::run_task_body(QUICK, k)).await?;
            tally.run_calls.push(t0.elapsed().as_secs_f64() * 1000.0);
            let (started, failures) = ecs::run_task_outcome(&v);
            for t in started {
                tally.launched += 1;
                inflight.insert(t.arn, (false, t0));
            }
            for f in &failures {
                if ecs::is_cpu_shortage(f) {
                    tally.cpu_shortages += 1;
                } else {
                    tally.other_run_failures += 1;
                    tally.first_run_failure.get_or_insert_with(|| f.clone());
                }
            }
            if failures.is_empty() {
                continue;
            }
        }
        if inflight.is_empty() && now >= end {
            break;
        }
        if now >= end + DRAIN {
            eprintln!(
                "  {} tasks still not STOPPED {DRAIN:?} after the run",
                inflight.len()
            );
            break;
        }
        tick.tick().await;
        let arns: Vec<String> = inflight.keys().cloned().collect();
        for chunk in arns.chunks(100) {
            tally.describes += 1;
            for t in ecs::describe(&mut conn, CLUSTER, chunk).await? {
                let at = Instant::now();
                let Some((counted, sent)) = inflight.get_mut(&t.arn) else {
                    continue;
                };
                if !*counted && t.started() {
                    *counted = true;
                    if at < end {
                        tally.started += 1;
                        tally.to_running.push((at - *sent).as_secs_f64() * 1000.0);
                        let s = (at - start).as_secs() as usize;
                        tally.per_second[s.min(secs.max(1) - 1)] += 1;
                    } else {
                        tally.started_late += 1;
                    }
                }
                if t.last_status == Some(TaskStatus::Stopped) {
                    let counted = *counted;
                    tally.stopped(&t, counted);
                    inflight.remove(&t.arn);
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let used = cpu.since();
    let children = match (server_children, target.pid.and_then(cpu::children_cpu)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let busy = match (machine, cpu::machine_busy()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    print(opts, &tally, &bare, elapsed, used, children, busy);
    Ok(())
}

fn print(
    opts: &Options,
    t: &Tally,
    bare: &SpawnRate,
    elapsed: Duration,
    used: cpu::CpuUse,
    children: Option<Duration>,
    busy: Option<Duration>,
) {
    let d = opts.duration.as_secs_f64();
    let rate = t.started as f64 / d;
    println!();
    println!(
        "tasks started per second, one agent (RunTask count {} of `true`, at most {} tasks at once, {d} s, DescribeTasks every {} ms):",
        opts.batch,
        opts.slots,
        opts.poll.as_millis()
    );
    println!(
        "  repeat: {} --workload task-throughput --task-batch {} --task-slots {} --task-duration {d} --task-poll-ms {} --spawn-duration {}",
        opts.command,
        opts.batch,
        opts.slots,
        opts.poll.as_millis(),
        opts.spawn_duration.as_secs_f64()
    );
    let bare_rate = bare.per_sec();
    let share = 100.0 * rate / bare_rate.max(1e-9);
    println!(
        "  bare spawn loop (`sh -c true`, fork/exec/wait one after the other, same run): {} in {:.1} s -> {bare_rate:.0}/s",
        bare.spawned,
        bare.elapsed.as_secs_f64()
    );
    println!(
        "  started within {d} s: {} -> {rate:.1} tasks/s = {share:.1} % of the bare spawn rate (goal >= 30 %: {}); per second: {:?}",
        t.started,
        if share >= 30.0 { "met" } else { "NOT met" },
        t.per_second
    );
    let p99 = (t.to_running.len() > 0).then(|| t.to_running.quantile(0.99));
    println!(
        "  RunTask sent -> seen started (DescribeTasks), under this load  {} (goal p99 <= 50 ms: {})",
        t.to_running.summary(),
        match p99 {
            Some(p) if p <= 50.0 => "met",
            Some(_) => "NOT met",
            None => "-",
        }
    );
    println!(
        "  launched {} in {} RunTask calls ({} started after the window); did not start: {}{}",
        t.launched,
        t.run_calls.len(),
        t.started_late,
        t.failed,
        t.first_failure
            .as_ref()
            .map_or(String::new(), |f| format!(" (first: {f})"))
    );
    println!(
        "  RunTask failures: {} RESOURCE:CPU, {} other{}",
        t.cpu_shortages,
        t.other_run_failures,
        t.first_run_failure
            .as_ref()
            .map_or(String::new(), |f| format!(" (first: {f})"))
    );
    println!(
        "  RunTask call (count {})  {}",
        opts.batch,
        t.run_calls.summary()
    );
    println!("  per task, from server timestamps (ms resolution):");
    let names = [
        "createdAt -> pullStartedAt",
        "pullStoppedAt -> startedAt",
        "startedAt -> executionStoppedAt",
        "executionStoppedAt -> stoppedAt",
        "createdAt -> stoppedAt",
        "createdAt -> startedAt",
    ];
    for (name, s) in names.iter().zip(&t.stages) {
        println!("    {name:<32} {}", s.summary());
    }
    let n = (t.started + t.started_late + t.failed).max(1) as f64;
    let per_task = |c: Option<Duration>| {
        c.map_or("-".into(), |c| {
            format!("{:.2} ms", c.as_secs_f64() * 1000.0 / n)
        })
    };
    let cores = |c: Option<Duration>| {
        c.map_or("-".into(), |c| {
            format!("{:.2}", c.as_secs_f64() / elapsed.as_secs_f64())
        })
    };
    println!(
        "  CPU per task: berth process {} (control plane + agent), its reaped children {} (shims + `sh -c true`), this client {}",
        per_task(used.server),
        per_task(children),
        per_task(used.client),
    );
    let n_cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if let (Some(s), Some(c)) = (used.server, children) {
        let ms = (s + c).as_secs_f64() * 1000.0 / n;
        println!(
            "  CPU-bound ceiling at this cost: {:.0} tasks/s ({n_cores} cores / {ms:.2} ms of berth + children per task)",
            n_cores * 1000.0 / ms.max(1e-9)
        );
    }
    println!(
        "  cores busy over the run ({:.1} s incl. drain): all processes {} of {}, berth {}, children {}, client {}, others {}; {} DescribeTasks calls",
        elapsed.as_secs_f64(),
        cores(busy),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cores(used.server),
        cores(children),
        cores(used.client),
        used.other_cores
            .map_or("-".into(), |c| format!("{:.2} (incl. children)", c)),
        t.describes
    );
}
