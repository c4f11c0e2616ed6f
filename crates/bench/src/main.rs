//! `berth-bench`: drives berth (and moto, for comparison) with signed ECS
//! requests in a closed loop (max throughput) and an open loop (fixed rate,
//! latency from the scheduled send time), and prints a table. The task
//! workloads (berth only) run real tasks: RunTask → RUNNING latency, tasks
//! started per second, and the footprint of many retained STOPPED tasks.
//!
//! Every run is bounded in time; servers it starts are stopped and their
//! temporary directories removed on exit, error or ctrl-c.

mod client;
mod cpu;
mod docker;
mod ecs;
mod load;
mod memory;
mod reconcile;
mod report;
mod scale;
mod servers;
mod services;
mod spawnloop;
mod tasks;
mod throughput;

use anyhow::{ensure, Context};
use clap::Parser;
use client::Target;
use load::Workload;
use report::{Mode, Report};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "berth-bench",
    about = "Benchmark berth against moto on the ECS API"
)]
struct Args {
    /// Measured seconds of each run (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Warm-up seconds before each run; not measured.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Closed loop: concurrent connections to berth (moto is also run with it).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Closed loop: concurrent connections moto is measured at (berth too, for comparison).
    #[arg(long, default_value_t = 8)]
    moto_concurrency: usize,
    /// Open loop: requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Open loop: connections available to send scheduled requests.
    #[arg(long, default_value_t = 64)]
    open_connections: usize,
    /// Skip the open-loop runs.
    #[arg(long)]
    skip_open_loop: bool,
    /// The berth binary (default: `berth` next to this binary, else target/release/berth).
    #[arg(long)]
    berth_bin: Option<PathBuf>,
    /// Do not start and measure moto.
    #[arg(long)]
    skip_moto: bool,
    /// Python interpreter that has moto installed.
    #[arg(long, default_value = "python3")]
    python: String,
    #[arg(long, value_enum, default_value = "all")]
    workload: WorkloadArg,
    /// Bench an already running server (loopback only) instead of starting
    /// berth. Its CPU is not measured: it counts under "other cores".
    #[arg(long, requires_all = ["access_key", "secret_key"])]
    endpoint: Option<String>,
    #[arg(long, requires = "endpoint")]
    access_key: Option<String>,
    #[arg(long, requires = "endpoint")]
    secret_key: Option<String>,
    /// Threads of the load generator's runtime (it shares the machine with the servers).
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Task latency: tasks measured, one after the other.
    #[arg(long, default_value_t = 50)]
    task_count: usize,
    /// Task latency: unmeasured tasks run first.
    #[arg(long, default_value_t = 2)]
    task_warmup: usize,
    /// Task workloads: milliseconds between DescribeTasks polls.
    #[arg(long, default_value_t = 1)]
    task_poll_ms: u64,
    /// Task throughput: tasks per RunTask call (1..=10).
    #[arg(long, default_value_t = 8)]
    task_batch: usize,
    /// Task throughput: tasks in flight at most (default: what the managed
    /// capacity fits, cores x 1024 / 256 CPU units).
    #[arg(long)]
    task_slots: Option<usize>,
    /// Task throughput: measured seconds.
    #[arg(long, default_value_t = 10.0)]
    task_duration: f64,
    /// Task throughput: seconds of the bare `sh -c true` spawn loop first.
    #[arg(long, default_value_t = 3.0)]
    spawn_duration: f64,
    /// Task retention: STOPPED tasks to create.
    #[arg(long, default_value_t = 100_000)]
    retained_tasks: u64,
    /// Task retention: connections creating them.
    #[arg(long, default_value_t = 4)]
    retain_concurrency: usize,
    /// Task retention: stop creating after this many seconds.
    #[arg(long, default_value_t = 900.0)]
    retain_timeout: f64,
    /// Service reconciler: services in the snapshot.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Service reconciler: tasks per service.
    #[arg(long, default_value_t = 10)]
    service_tasks: usize,
    /// Simulated container instances: of the service reconciler and
    /// service scale [default: 100], of the scale workload [default: 10000].
    #[arg(long)]
    instances: Option<usize>,
    /// Scale: tasks to place (RunTask count 10).
    #[arg(long, default_value_t = 1_000_000)]
    tasks: u64,
    /// Scale: connections sending RunTask.
    #[arg(long, default_value_t = 16)]
    scale_concurrency: usize,
    /// Scale: stop placing after this many seconds.
    #[arg(long, default_value_t = 1800.0)]
    scale_timeout: f64,
    /// Service reconciler: full passes timed.
    #[arg(long, default_value_t = 50)]
    passes: usize,
    /// Service convergence: services created one after the other.
    #[arg(long, default_value_t = 10)]
    service_rounds: usize,
    /// Service convergence: each service's desired count.
    #[arg(long, default_value_t = 10)]
    service_desired: usize,
    /// Service scale: services created.
    #[arg(long, default_value_t = 1000)]
    scale_services: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WorkloadArg {
    DescribeClusters,
    RegisterTaskDefinition,
    /// task-latency, task-throughput and task-retention.
    Tasks,
    TaskLatency,
    TaskThroughput,
    TaskRetention,
    /// RunTask -> RUNNING on the Docker runtime against `docker run`.
    DockerLatency,
    /// The service reconciler alone: full passes over many services.
    ServiceReconcile,
    /// CreateService -> steady, and a killed task's replacement (real processes).
    ServiceConvergence,
    /// Many services on simulated instances: memory and full rounds.
    ServiceScale,
    /// service-reconcile, service-convergence and service-scale.
    Services,
    /// The control plane alone at fleet scale: simulated hosts, 1M tasks placed.
    Scale,
    All,
}

impl WorkloadArg {
    /// The request workloads (berth and moto).
    fn list(self) -> Vec<Workload> {
        match self {
            WorkloadArg::DescribeClusters => vec![Workload::DescribeClusters],
            WorkloadArg::RegisterTaskDefinition => vec![Workload::RegisterTaskDefinition],
            WorkloadArg::All => vec![Workload::DescribeClusters, Workload::RegisterTaskDefinition],
            _ => vec![],
        }
    }

    /// Which task workloads (berth only): latency, throughput, retention, docker.
    fn task_parts(self) -> (bool, bool, bool, bool) {
        use WorkloadArg::*;
        let any = matches!(self, Tasks | All);
        (
            any || self == TaskLatency,
            any || self == TaskThroughput,
            any || self == TaskRetention,
            any || self == DockerLatency,
        )
    }
}

fn validate(a: &Args) -> anyhow::Result<()> {
    ensure!(
        a.duration > 0.0 && a.duration <= 300.0,
        "--duration must be in (0, 300] seconds"
    );
    ensure!(
        a.warmup >= 0.0 && a.warmup <= 60.0,
        "--warmup must be in [0, 60] seconds"
    );
    for (name, c) in [
        ("--concurrency", a.concurrency),
        ("--moto-concurrency", a.moto_concurrency),
        ("--open-connections", a.open_connections),
    ] {
        ensure!((1..=1024).contains(&c), "{name} must be in 1..=1024");
    }
    ensure!(
        (1..=100_000).contains(&a.rate),
        "--rate must be in 1..=100000"
    );
    ensure!(
        (1..=64).contains(&a.client_threads),
        "--client-threads must be in 1..=64"
    );
    ensure!(
        (1..=10_000).contains(&a.task_count) && a.task_warmup <= 100,
        "--task-count must be in 1..=10000 and --task-warmup at most 100"
    );
    ensure!(
        (1..=1000).contains(&a.task_poll_ms),
        "--task-poll-ms must be in 1..=1000"
    );
    ensure!(
        (1..=10).contains(&a.task_batch),
        "--task-batch must be in 1..=10 (RunTask's count)"
    );
    ensure!(
        task_slots(a) >= a.task_batch && task_slots(a) <= 1000,
        "--task-slots must be at least --task-batch and at most 1000"
    );
    ensure!(
        a.task_duration > 0.0 && a.task_duration <= 300.0,
        "--task-duration must be in (0, 300] seconds"
    );
    ensure!(
        a.spawn_duration > 0.0 && a.spawn_duration <= 60.0,
        "--spawn-duration must be in (0, 60] seconds"
    );
    ensure!(
        (1..=1_000_000).contains(&a.retained_tasks),
        "--retained-tasks must be in 1..=1000000"
    );
    ensure!(
        (1..=64).contains(&a.retain_concurrency),
        "--retain-concurrency must be in 1..=64"
    );
    ensure!(
        a.retain_timeout > 0.0 && a.retain_timeout <= 3600.0,
        "--retain-timeout must be in (0, 3600] seconds"
    );
    ensure!(
        (1..=100_000).contains(&a.services) && (1..=1000).contains(&a.service_tasks),
        "--services must be in 1..=100000 and --service-tasks in 1..=1000"
    );
    ensure!(
        (1..=100_000).contains(&a.instances.unwrap_or(100)) && (1..=10_000).contains(&a.passes),
        "--instances must be in 1..=100000 and --passes in 1..=10000"
    );
    ensure!(
        (1..=1000).contains(&a.service_rounds) && (1..=100).contains(&a.service_desired),
        "--service-rounds must be in 1..=1000 and --service-desired in 1..=100"
    );
    ensure!(
        (1..=100_000).contains(&a.scale_services),
        "--scale-services must be in 1..=100000"
    );
    ensure!(
        (1..=10_000_000).contains(&a.tasks) && (1..=256).contains(&a.scale_concurrency),
        "--tasks must be in 1..=10000000 and --scale-concurrency in 1..=256"
    );
    ensure!(
        a.scale_timeout > 0.0 && a.scale_timeout <= 86_400.0,
        "--scale-timeout must be in (0, 86400] seconds"
    );
    Ok(())
}

/// Tasks in flight at most: what the managed capacity fits by CPU.
fn task_slots(a: &Args) -> usize {
    a.task_slots.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores * 1024 / tasks::TASK_CPU
    })
}

/// How to repeat a task measurement: this binary and the server choice.
fn command_prefix(a: &Args) -> String {
    let exe = std::env::args()
        .next()
        .unwrap_or_else(|| "berth-bench".into());
    let mut s = exe;
    if let Some(b) = &a.berth_bin {
        s += &format!(" --berth-bin {}", b.display());
    }
    if let Some(e) = &a.endpoint {
        s += &format!(
            " --endpoint {e} --access-key {} --secret-key SECRET",
            a.access_key.as_deref().unwrap_or_default()
        );
    }
    s
}

fn task_options(a: &Args) -> tasks::Options {
    let (latency, throughput, retention, docker) = a.workload.task_parts();
    tasks::Options {
        latency,
        throughput,
        retention,
        docker,
        count: a.task_count,
        warmup_tasks: a.task_warmup,
        poll: Duration::from_millis(a.task_poll_ms),
        batch: a.task_batch,
        slots: task_slots(a),
        duration: Duration::from_secs_f64(a.task_duration),
        spawn_duration: Duration::from_secs_f64(a.spawn_duration),
        retained: a.retained_tasks,
        retain_concurrency: a.retain_concurrency,
        retain_timeout: Duration::from_secs_f64(a.retain_timeout),
        berth_bin: a.berth_bin.clone().unwrap_or_else(default_berth_bin),
        endpoint: a.endpoint.as_ref().map(|e| {
            (
                e.clone(),
                a.access_key.clone().unwrap_or_default(),
                a.secret_key.clone().unwrap_or_default(),
            )
        }),
        command: command_prefix(a),
    }
}

fn default_berth_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("berth")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("target/release/berth"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    validate(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        tokio::select! {
            r = run(&args) => Some(r),
            // Dropping `run` stops the servers it started.
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(r) => r,
        None => {
            eprintln!("interrupted");
            std::process::exit(130);
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    use WorkloadArg::*;
    let convergence = matches!(args.workload, ServiceConvergence | Services | All);
    let scale = matches!(args.workload, ServiceScale | Services | All);
    if convergence || scale {
        services::run(&services::Options {
            convergence,
            scale,
            berth_bin: args.berth_bin.clone().unwrap_or_else(default_berth_bin),
            command: command_prefix(args),
            rounds: args.service_rounds,
            desired: args.service_desired,
            scale_services: args.scale_services,
            scale_tasks: args.service_tasks,
            instances: args.instances.unwrap_or(100),
        })
        .await?;
    }
    if matches!(args.workload, ServiceReconcile | Services | All) {
        reconcile::run(
            &reconcile::Options {
                services: args.services,
                tasks_per_service: args.service_tasks,
                instances: args.instances.unwrap_or(100),
                passes: args.passes,
            },
            &command_prefix(args),
        );
    }
    if args.workload == Scale {
        scale::run(&scale::Options {
            berth_bin: args.berth_bin.clone().unwrap_or_else(default_berth_bin),
            instances: args.instances.unwrap_or(10_000),
            tasks: args.tasks,
            concurrency: args.scale_concurrency,
            timeout: Duration::from_secs_f64(args.scale_timeout),
            command: command_prefix(args),
        })
        .await?;
    }
    if !args.workload.list().is_empty() {
        run_requests(args).await?;
    }
    let opts = task_options(args);
    if opts.latency || opts.throughput || opts.retention {
        tasks::run(&opts).await?;
    }
    if opts.docker {
        docker::run(&opts).await?;
    }
    Ok(())
}

/// The request workloads against berth (and moto): the closed- and
/// open-loop table.
async fn run_requests(args: &Args) -> anyhow::Result<()> {
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);

    // The Spawned values stop their servers when dropped, on every path out.
    let mut started = Vec::new();
    let main_target = match &args.endpoint {
        Some(url) => {
            let (ak, sk) = (args.access_key.as_deref(), args.secret_key.as_deref());
            Target::from_endpoint("endpoint", url, ak.unwrap_or(""), sk.unwrap_or(""), None).await?
        }
        None => {
            let bin = args.berth_bin.clone().unwrap_or_else(default_berth_bin);
            let s = servers::spawn_berth(&bin, &["--runtime", "process"])
                .await
                .with_context(|| format!("starting {}", bin.display()))?;
            eprintln!("berth {} ({})", s.endpoint, bin.display());
            let t = Target::from_endpoint(
                "berth",
                &s.endpoint,
                &s.access_key,
                &s.secret_key,
                Some(s.pid()),
            )
            .await;
            started.push(s);
            t?
        }
    };
    let moto = if args.skip_moto {
        None
    } else {
        let s = servers::spawn_moto(&args.python)
            .await
            .context("starting moto (use --skip-moto to bench without it)")?;
        eprintln!("moto {}", s.endpoint);
        let t = Target::from_endpoint(
            "moto",
            &s.endpoint,
            &s.access_key,
            &s.secret_key,
            Some(s.pid()),
        )
        .await;
        started.push(s);
        Some(t?)
    };

    eprintln!(
        "{} CPU(s) shared by the servers and this client ({} threads); {:?} warm-up + {:?} per run",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.client_threads,
        warmup,
        duration
    );
    let mut report = Report::default();
    for workload in args.workload.list() {
        let mut concs = vec![args.concurrency];
        if moto.is_some() && args.moto_concurrency != args.concurrency {
            concs.insert(0, args.moto_concurrency);
        }
        bench_target(args, &mut report, workload, &main_target, &concs).await?;
        if let Some(moto) = &moto {
            bench_target(args, &mut report, workload, moto, &concs).await?;
        }
    }
    report.print();
    Ok(())
}

async fn bench_target(
    args: &Args,
    report: &mut Report,
    workload: Workload,
    target: &Arc<Target>,
    concurrencies: &[usize],
) -> anyhow::Result<()> {
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let label = workload.label();
    workload.setup(target).await?;
    for &concurrency in concurrencies {
        eprintln!(
            "{label} {}: closed loop, {concurrency} connections...",
            target.name
        );
        let r = load::closed_loop(target, workload, concurrency, warmup, duration).await?;
        report.add(label, &target.name, Mode::Closed { concurrency }, r);
    }
    if !args.skip_open_loop {
        let (rate, connections) = (args.rate, args.open_connections);
        eprintln!("{label} {}: open loop at {rate}/s...", target.name);
        let r = load::open_loop(target, workload, rate, connections, warmup, duration).await?;
        report.add(label, &target.name, Mode::Open { rate, connections }, r);
    }
    Ok(())
}
