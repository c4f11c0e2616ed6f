//! The `berth` command: `berth server` runs the control plane (with an
//! embedded agent for berth's managed capacity); `berth agent` runs tasks
//! on another host; `berth env` prints the environment that points AWS
//! clients at a server.

mod agent;
mod client;
mod env;
mod events;
mod logs;
mod runtime;
mod spot;
mod store;
mod tenancy;

use berth_api::ecs::Timings;
use berth_server::config::{
    default_data_dir, ConfigFile, CredentialEntry, EmbeddedAgent, HttpOptions, HttpSection,
    SimulateHosts, TlsFiles,
};
use berth_server::{ServerConfig, DEFAULT_LISTEN};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A self-hosted container orchestrator that speaks the Amazon ECS API",
    after_help = "Logging: BERTH_LOG (or RUST_LOG) takes tracing filter directives, e.g. \
                  BERTH_LOG=debug or BERTH_LOG=info,berth_api=debug (default: info)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (ECS API endpoint) with embedded defaults.
    Server(ServerArgs),
    /// Run tasks on this host for a berth control plane (joins a cluster as a container instance).
    Agent(agent::AgentArgs),
    /// Print `export AWS_...` lines that point the aws-cli and boto3 at a berth server.
    Env(env::EnvArgs),
    /// Print a task's awslogs output (`--follow` until it stops).
    Logs(logs::LogsArgs),
    /// Stream a server's events (ECS task, instance, service and deployment changes) to the terminal.
    Events(events::EventsArgs),
    /// Interrupt one of your FARGATE_SPOT tasks as Fargate reclaiming its capacity would
    /// (SIGTERM now, stopCode SpotInterruption; a service replaces it).
    SpotInterrupt(spot::SpotInterruptArgs),
    /// Move a server's state between stores: `berth store copy --from DATA_DIR --to postgres://…` (and back).
    Store(store::StoreArgs),
    /// Supervise one container of the process runtime (started by the agent).
    #[command(hide = true)]
    Shim {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address
    /// is written to DATA_DIR/endpoint).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Where the store, generated credentials and keys live.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML file with `[[credentials]]` entries and an optional `regions` allowlist.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the state lives: `sqlite` (DATA_DIR/berth.db, the default) or
    /// a PostgreSQL URL, `postgres://USER:PASSWORD@HOST/DB` (a unix socket
    /// as HOST percent-encoded: `postgres://USER@%2Frun%2Fpostgresql/DB`),
    /// which several servers can share. Keys stay in the data dir.
    #[arg(long, value_name = "STORE", env = "BERTH_STORE")]
    store: Option<berth_server::config::StoreLocation>,
    /// How the embedded agent runs containers.
    #[command(flatten)]
    runtime: runtime::RuntimeArgs,
    /// Run the control plane only, with no embedded agent (no FARGATE capacity).
    #[arg(long)]
    no_agent: bool,
    /// Seconds without a poll before an agent shows agentConnected=false.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    agent_disconnect_grace: u64,
    /// Further seconds before a silent agent's tasks are stopped.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    agent_lost_timeout: u64,
    /// Seconds STOPPED tasks stay describable.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    stopped_task_retention: u64,
    /// Seconds a service's task (without health checks) must run to count
    /// as started: it completes a deployment, and dying sooner counts as
    /// failing to start (circuit breaker, back-off).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    service_task_settle: f64,
    /// Seconds a stopped task's containers are kept before they are removed.
    #[arg(long, value_name = "SECS", default_value_t = 10800)]
    task_cleanup_wait: u64,
    /// How the embedded agent's process runtime runs FARGATE tasks when
    /// this server holds several accounts. The process runtime is not a
    /// sandbox: a task runs as a host process and can read what its user
    /// can. With one account (the default start) tasks run as the server's
    /// user; with several, `auto` runs each account's tasks as an
    /// unprivileged uid of its own (from --managed-uid-base, no new
    /// privileges, a private directory, no `user`) when the server runs as
    /// root, and refuses them (the task stops with the reason) when it
    /// does not. The Docker runtime is not affected.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = tenancy::ManagedIsolation::Auto)]
    managed_isolation: tenancy::ManagedIsolation,
    /// The first uid of `--managed-isolation users` (one per account, in
    /// the order they first run a task; uids in /etc/passwd are skipped).
    #[arg(long, value_name = "UID", default_value_t = 2_000_000_000)]
    managed_uid_base: u32,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    simulate: SimulateArgs,
}

/// Simulated hosts, for measuring the control plane alone.
#[derive(clap::Args)]
struct SimulateArgs {
    /// Register this many SIMULATED container instances (attribute
    /// berth.simulated=true), kept connected in-process; their tasks are
    /// reported RUNNING and never run. For benchmarks only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    simulate_hosts: Option<u32>,
    /// Availability zones the simulated hosts are spread across (REGIONa, REGIONb, ...).
    #[arg(long, value_name = "N", default_value_t = 3, requires = "simulate_hosts",
          value_parser = clap::value_parser!(u32).range(1..=26))]
    simulate_azs: u32,
    /// The cluster of the simulated hosts (created if needed).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "simulated",
        requires = "simulate_hosts"
    )]
    simulate_cluster: String,
    /// The region of the simulated hosts.
    #[arg(
        long,
        value_name = "REGION",
        default_value = "us-east-1",
        requires = "simulate_hosts"
    )]
    simulate_region: String,
    /// The account of the simulated hosts [default: the first credential's].
    #[arg(long, value_name = "ACCOUNT", requires = "simulate_hosts")]
    simulate_account: Option<String>,
}

/// Connection timeouts, limits and throttling; each overrides the config
/// file's `[http]` value.
#[derive(clap::Args)]
struct HttpArgs {
    /// Seconds from a connection's opening (or a request's first byte) to the
    /// request's complete headers, TLS handshake included [default: 10].
    #[arg(long, value_name = "SECS")]
    header_read_timeout: Option<f64>,
    /// Seconds to receive a request's body once its headers are in [default: 30].
    #[arg(long, value_name = "SECS")]
    body_read_timeout: Option<f64>,
    /// Seconds a kept-alive connection may wait between requests [default: 60].
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<f64>,
    /// Open connections at most; more wait in the listen backlog [default: 1024].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// MiB of request bodies held in memory at once, all connections
    /// together; past it a request waits up to 2 s, then gets 503 [default: 64].
    #[arg(long, value_name = "MIB")]
    max_body_memory_mib: Option<usize>,
    /// Requests per second per access key (token bucket; ThrottlingException
    /// past it) [default: 0, no throttling].
    #[arg(long, value_name = "PER_SEC")]
    throttle_rate: Option<f64>,
    /// Bucket size of the throttle [default: twice the rate].
    #[arg(long, value_name = "N")]
    throttle_burst: Option<u32>,
    /// Serve https with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl HttpArgs {
    /// The config file's `[http]` values, then these flags over them.
    fn options(&self, file: &HttpSection) -> anyhow::Result<HttpOptions> {
        let from_file = file.apply(HttpOptions::default())?;
        let flags = HttpSection {
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            max_body_memory_mib: self.max_body_memory_mib,
            throttle_rate: self.throttle_rate,
            throttle_burst: self.throttle_burst,
        };
        flags.apply(from_file)
    }

    fn tls(&self, file: Option<TlsFiles>) -> Option<TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => file,
        }
    }
}

async fn server_config(args: ServerArgs) -> anyhow::Result<ServerConfig> {
    let file = match &args.config {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let mut credentials = file.credentials;
    // BERTH_ACCESS_KEY_ID / BERTH_SECRET_ACCESS_KEY / BERTH_ACCOUNT_ID add one more key.
    if let (Ok(id), Ok(secret)) = (
        std::env::var("BERTH_ACCESS_KEY_ID"),
        std::env::var("BERTH_SECRET_ACCESS_KEY"),
    ) {
        credentials.push(CredentialEntry {
            access_key_id: id,
            secret_access_key: secret,
            account_id: std::env::var("BERTH_ACCOUNT_ID").unwrap_or_else(|_| "000000000000".into()),
            principal_arn: None,
            policy: None,
            policy_file: None,
        });
    }
    let http = args.http.options(&file.http)?;
    let tls = args.http.tls(file.tls.clone());
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    let embedded_agent = if args.no_agent {
        None
    } else {
        let state_dir = data_dir.join("agent");
        let accounts = berth_server::credentials::account_count(&credentials, &data_dir)?;
        let (mode, uid_base) = (args.managed_isolation, args.managed_uid_base);
        let runtime = runtime::build(&args.runtime, &state_dir, || {
            tenancy::managed(mode, accounts, uid_base, &data_dir, &state_dir)
        })
        .await?;
        Some(EmbeddedAgent {
            runtime,
            state_dir,
            cleanup_wait: std::time::Duration::from_secs(args.task_cleanup_wait),
        })
    };
    let secs = std::time::Duration::from_secs;
    let timings = Timings {
        agent_disconnect_grace: secs(args.agent_disconnect_grace),
        agent_lost_timeout: secs(args.agent_lost_timeout),
        stopped_task_retention: secs(args.stopped_task_retention),
        service_task_settle: std::time::Duration::from_secs_f64(args.service_task_settle.max(0.0)),
        ..Timings::default()
    };
    let scaling = berth_server::scaling::ScalingConfig::new(
        &file.scaling,
        &file.scaling_hooks,
        &credentials,
    )?;
    Ok(ServerConfig {
        listen: args.listen,
        data_dir,
        store: args.store.or(file.store).unwrap_or_default(),
        credentials,
        roles: file.roles,
        regions: file.regions,
        timings,
        embedded_agent,
        http,
        tls,
        scaling,
        simulate: args.simulate.simulate_hosts.map(|n| SimulateHosts {
            hosts: n as usize,
            zones: args.simulate.simulate_azs as usize,
            cluster: args.simulate.simulate_cluster.clone(),
            region: args.simulate.simulate_region.clone(),
            account: args.simulate.simulate_account.clone(),
        }),
    })
}

fn main() -> anyhow::Result<()> {
    // bollard logs the Engine's answers at debug level, and a container's
    // inspect holds its environment (secret values): never below warn.
    // BERTH_LOG first, then the conventional RUST_LOG.
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .add_directive("bollard=warn".parse().expect("a valid directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person at a terminal, not in files or `docker logs`.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Server(args) => tokio::runtime::Runtime::new()?.block_on(async {
            let config = server_config(args).await?;
            berth_server::run(config).await
        }),
        Command::Agent(args) => tokio::runtime::Runtime::new()?.block_on(agent::run(args)),
        Command::Env(args) => env::print(args),
        Command::Logs(args) => tokio::runtime::Runtime::new()?.block_on(logs::run(args)),
        Command::Events(args) => tokio::runtime::Runtime::new()?.block_on(events::run(args)),
        Command::SpotInterrupt(args) => tokio::runtime::Runtime::new()?.block_on(spot::run(args)),
        Command::Store(args) => tokio::runtime::Runtime::new()?.block_on(store::run(args)),
        Command::Shim { args } => std::process::exit(berth_runtime::shim::main(args)),
    }
}
