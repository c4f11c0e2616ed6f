//! `berth agent`: run tasks on this host for a berth control plane.

use anyhow::Context;
use berth_agent::http::HttpControlPlane;
use berth_agent::{Agent, AgentConfig};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct AgentArgs {
    /// The control plane's URL (what `berth env` prints as AWS_ENDPOINT_URL);
    /// several, comma-separated, for servers sharing one store: the agent
    /// moves to the next when one stops answering.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: String,
    /// The cluster to join (`default` is created if missing, as ECS's agent does).
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Where the agent keeps its registration and its containers' state.
    #[arg(long, value_name = "DIR", default_value = "berth-agent")]
    data_dir: PathBuf,
    #[command(flatten)]
    runtime: crate::runtime::RuntimeArgs,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: String,
    #[arg(long, env = "AWS_DEFAULT_REGION", default_value = "us-east-1")]
    region: String,
    /// PEM certificates to trust for an https endpoint: the server's
    /// self-signed certificate or its CA (what `berth env` prints as
    /// AWS_CA_BUNDLE); default: the system's trusted roots.
    #[arg(long, value_name = "PEM", env = "AWS_CA_BUNDLE")]
    ca: Option<PathBuf>,
    /// `ecs.availability-zone` to advertise (default: the region + "a").
    #[arg(long)]
    availability_zone: Option<String>,
    /// Seconds a stopped task's containers are kept before they are removed
    /// (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION).
    #[arg(long, value_name = "SECS", default_value_t = 10800)]
    task_cleanup_wait: u64,
    /// A directory of this host whose files (and its subdirectories')
    /// tasks may name in `environmentFiles`; repeat for more. None by
    /// default: a task naming a host file then fails to start
    /// (ResourceInitializationError). Paths are resolved (symlinks, `..`)
    /// before they are checked.
    #[arg(long = "allow-env-files", value_name = "DIR")]
    allow_env_files: Vec<PathBuf>,
    /// The control plane's URL as this host's tasks reach it: their
    /// AWS_ENDPOINT_URL (default: --endpoint; a loopback one is reached
    /// from a Docker task's own network through the agent).
    #[arg(long, value_name = "URL")]
    task_endpoint: Option<String>,
    /// The Auto Scaling group capacity provider (CreateCapacityProvider) this
    /// host joins: tasks of strategies naming it are placed here.
    #[arg(long, value_name = "NAME")]
    capacity_provider: Option<String>,
    /// A custom attribute this host registers with (NAME=VALUE, or NAME
    /// alone); repeat for more. berth's managed instances name their
    /// container with `berth.managed-instance`.
    #[arg(long = "attribute", value_name = "NAME=VALUE")]
    attributes: Vec<String>,
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    // The agent's tasks are its account's: they run as the agent's user.
    let runtime = crate::runtime::build(&args.runtime, &args.data_dir, || {
        Ok(berth_runtime::process::Tenancy::Shared)
    })
    .await?;
    let control = HttpControlPlane::with_ca(
        &args.endpoint,
        &args.access_key_id,
        &args.secret_access_key,
        &args.region,
        args.ca.as_deref(),
    )?;
    let control = Arc::new(control);
    let mut config = AgentConfig::for_host(&args.cluster, &args.data_dir);
    config.cleanup_wait = std::time::Duration::from_secs(args.task_cleanup_wait);
    config.env_file_dirs = berth_agent::envfile::EnvFileDirs::new(&args.allow_env_files)?;
    let first = args.endpoint.split(',').next().unwrap_or_default().trim();
    config.task_endpoint = Some(args.task_endpoint.unwrap_or_else(|| first.to_string()));
    let zone = args
        .availability_zone
        .unwrap_or_else(|| format!("{}a", args.region));
    config
        .attributes
        .insert("ecs.availability-zone".into(), Some(zone));
    for a in &args.attributes {
        let (name, value) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        anyhow::ensure!(!name.is_empty(), "--attribute needs a name: {a:?}");
        config.attributes.insert(name.into(), value);
    }
    if let Some(p) = &args.capacity_provider {
        config
            .attributes
            .insert("berth.capacity-provider".into(), Some(p.clone()));
    }
    // The control plane may not be up yet, or the cluster not created yet:
    // keep trying, as ECS's agent does, and say why.
    let mut backoff = std::time::Duration::from_millis(500);
    let agent = loop {
        let attempt = async {
            control.ensure_cluster(&args.cluster).await?;
            Agent::register(control.clone(), runtime.clone(), config.clone()).await
        };
        match attempt.await {
            Ok(a) => break Arc::new(a),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?backoff, "registering with the control plane failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
                backoff = (backoff * 2).min(std::time::Duration::from_secs(15));
            }
        }
    };
    println!(
        "berth agent: container instance {} in cluster {} ({} runtime)",
        agent.instance_arn(),
        args.cluster,
        runtime.name()
    );
    tokio::select! {
        _ = agent.run() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    // Containers keep running: a restarted agent adopts them.
    Ok(())
}
