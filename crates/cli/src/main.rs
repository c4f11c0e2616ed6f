//! The `berth` command: `berth server` runs the control plane; `berth env`
//! prints the environment that points AWS clients at it.

mod env;

use berth_server::config::{default_data_dir, ConfigFile, CredentialEntry};
use berth_server::{ServerConfig, DEFAULT_LISTEN};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A self-hosted container orchestrator that speaks the Amazon ECS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (ECS API endpoint) with embedded defaults.
    Server(ServerArgs),
    /// Print `export AWS_...` lines that point the aws-cli and boto3 at a berth server.
    Env(env::EnvArgs),
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
}

fn server_config(args: ServerArgs) -> anyhow::Result<ServerConfig> {
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
        });
    }
    Ok(ServerConfig {
        listen: args.listen,
        data_dir: args.data_dir.unwrap_or_else(default_data_dir),
        credentials,
        regions: file.regions,
    })
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Server(args) => {
            let config = server_config(args)?;
            tokio::runtime::Runtime::new()?.block_on(berth_server::run(config))
        }
        Command::Env(args) => env::print(args),
        Command::Shim { args } => std::process::exit(berth_runtime::shim::main(args)),
    }
}
