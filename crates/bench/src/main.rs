//! `berth-bench`: drives berth (and moto, for comparison) with signed ECS
//! requests in a closed loop (max throughput) and an open loop (fixed rate,
//! latency from the scheduled send time), and prints a table.
//!
//! Every run is bounded in time; servers it starts are stopped and their
//! temporary directories removed on exit, error or ctrl-c.

mod client;
mod cpu;
mod load;
mod report;
mod servers;

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
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum WorkloadArg {
    DescribeClusters,
    RegisterTaskDefinition,
    All,
}

impl WorkloadArg {
    fn list(self) -> Vec<Workload> {
        match self {
            WorkloadArg::DescribeClusters => vec![Workload::DescribeClusters],
            WorkloadArg::RegisterTaskDefinition => vec![Workload::RegisterTaskDefinition],
            WorkloadArg::All => vec![Workload::DescribeClusters, Workload::RegisterTaskDefinition],
        }
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
    Ok(())
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
            let s = servers::spawn_berth(&bin, &[])
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
