//! The control-plane server: binds the HTTP listener, verifies SigV4, routes
//! each request by its `X-Amz-Target` to a service, and answers in the AWS
//! JSON 1.1 envelope. Startup prepares the data directory: the store,
//! credentials and the key that signs pagination tokens.

mod authorize;
pub mod config;
mod conn;
pub mod credentials;
mod embedded;
mod gate;
mod http;
pub mod managed_instances;
mod protocol;
pub mod scaling;
mod services;
mod sse;
mod tls;

pub use config::ServerConfig;

use anyhow::Context;
use berth_api::{Ecs, Events, Logs, ParameterStore, SecretsManager, Sqs, Vault};
use berth_auth::{StaticCredentials, Verifier};
use berth_store::{LogEventStore, PostgresStore, SqliteStore, Store};
use config::StoreLocation;
use std::sync::Arc;

/// The default address `berth server` listens on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8450";

/// In the data dir: a copy of the certificate chain a TLS server presents,
/// for clients to trust (`berth env` prints `AWS_CA_BUNDLE`).
pub const CA_BUNDLE_FILE: &str = "ca-bundle.pem";

/// Starts the server and serves until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    // Keys, credentials and the store: for the server's user only.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("protecting data dir {}", config.data_dir.display()))?;
    }
    let creds = credentials::resolve(&config)?;
    let token_key = credentials::load_or_create_key(&config.data_dir.join("token.key"))?;
    // Seals secret values and SecureStrings at rest; losing it loses them.
    let secrets_key = credentials::load_or_create_key(&config.data_dir.join("secrets.key"))?;
    let vault = Vault::new(&secrets_key).map_err(anyhow::Error::msg)?;
    // Seals task-role sessions: whoever holds it can mint any account's credentials.
    let session_key = credentials::load_or_create_key(&config.data_dir.join("session.key"))?;
    let sessions = Arc::new(
        berth_auth::SessionKey::new(&session_key)
            .ok_or_else(|| anyhow::anyhow!("session.key is too short"))?,
    );
    let (store, logs) = open_store(&config, token_key.clone()).await?;
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = format!("{scheme}://{addr}");

    let ecs = Ecs::with_timings(store.clone(), token_key.clone(), config.timings.clone())
        .with_endpoint(&endpoint)
        .with_sessions(sessions.clone());
    let upgraded = ecs
        .upgrade_stored()
        .await
        .map_err(|e| anyhow::anyhow!("upgrading stored documents: {e}"))?;
    if upgraded > 0 {
        tracing::info!(
            documents = upgraded,
            "upgraded documents stored by an earlier version"
        );
    }
    let secrets = SecretsManager::new(store.clone(), token_key.clone(), vault.clone());
    let ssm = ParameterStore::new(store.clone(), token_key.clone(), vault);
    let sqs = Sqs::new(store.clone(), token_key.clone(), &endpoint);
    let events = Events::new(store.clone(), token_key.clone(), sqs.clone());
    // Moves events (ECS's, PutEvents') from the outboxes into rules' queues.
    tokio::spawn(events.clone().run_deliverer());
    let ec2 = berth_api::Ec2::new(store.clone());
    services::spawn_retention_sweep(logs.clone(), std::time::Duration::from_secs(60));
    // AssumeRole: the roles of `[[roles]]`, each in its own account.
    let sts = berth_api::Sts::new(sessions.clone(), config.roles.iter().map(|r| r.arn.clone()));
    let verifier = Verifier::new(Arc::new(StaticCredentials::new(creds.credentials.clone())))
        .with_sessions(sessions);
    let managed = match &config.embedded_agent {
        Some(a) => Some(
            embedded::start(
                ecs.clone(),
                logs.clone(),
                secrets.clone(),
                ssm.clone(),
                a,
                &endpoint,
            )
            .await
            .context("starting the embedded agent")?,
        ),
        None => None,
    };
    if let Some(sim) = &config.simulate {
        simulate(&ecs, sim, &creds.credentials).await?;
    }
    spawn_sweeper(ecs.clone());
    // The service scheduler: keeps every service's tasks as it asks.
    tokio::spawn(ecs.clone().run_services());
    // Managed scaling: the operator's hooks add and remove agent hosts.
    scaling::spawn(ecs.clone(), &config.scaling, &endpoint).context("starting managed scaling")?;
    // Per-key policies: a bad one stops the server here, with its reason.
    let policies = authorize::Policies::from_entries(&config.credentials, &config.roles)?;
    let state = http::AppState::new(
        services::Services {
            ecs,
            logs,
            secrets,
            ssm,
            sqs,
            events,
            ec2,
            sts,
        },
        verifier,
        config.regions.clone(),
        &config.http,
        policies,
    );
    // What clients trust the server's certificate by (`berth env` prints
    // it as AWS_CA_BUNDLE); none when serving plain http.
    let ca_file = config.data_dir.join(CA_BUNDLE_FILE);
    match &config.tls {
        Some(files) => {
            let pem = std::fs::read(&files.cert)
                .with_context(|| format!("reading {}", files.cert.display()))?;
            credentials::write_atomically(&ca_file, &pem)?;
        }
        None => match std::fs::remove_file(&ca_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", ca_file.display()))
            }
            _ => {}
        },
    }
    credentials::write_atomically(&config.data_dir.join("endpoint"), endpoint.as_bytes())?;

    println!("berth server listening on {endpoint}");
    println!("  data dir: {}", config.data_dir.display());
    if let StoreLocation::Postgres(url) = &config.store {
        println!("  store: PostgreSQL at {}", StoreLocation::redact(url));
    }
    if let Some(files) = &config.tls {
        println!(
            "  TLS: certificate {}; clients trust it with AWS_CA_BUNDLE={}",
            files.cert.display(),
            ca_file.display()
        );
    }
    match (&managed, &config.embedded_agent) {
        (Some(arn), Some(a)) => {
            println!(
                "  managed capacity (FARGATE): {} runtime, instance {arn}",
                a.runtime.name()
            );
            if let Some(note) = a.runtime.isolation_note() {
                println!("  {} runtime: {note}", a.runtime.name());
            }
        }
        _ => println!("  no embedded agent: FARGATE tasks need one (drop --no-agent)"),
    }
    if let Some(note) = &creds.generated_note {
        println!("  {note}");
    }
    println!("  point the aws-cli and boto3 at it with:");
    println!(
        "    eval \"$(berth env --data-dir {})\"",
        config.data_dir.display()
    );

    conn::serve(listener, tls, state, config.http.clone(), shutdown_signal()).await;
    Ok(())
}

/// Opens the store `config` names, applying its migrations; the log
/// service is built here too, as it needs the store's concrete type.
async fn open_store(
    config: &ServerConfig,
    token_key: Vec<u8>,
) -> anyhow::Result<(Arc<dyn Store>, Logs)> {
    fn both<S: Store + LogEventStore>(s: S, token_key: Vec<u8>) -> (Arc<dyn Store>, Logs) {
        let s = Arc::new(s);
        (s.clone(), Logs::new(s, token_key))
    }
    Ok(match &config.store {
        StoreLocation::Sqlite => both(
            SqliteStore::open(config.data_dir.join("berth.db")).context("opening the store")?,
            token_key,
        ),
        StoreLocation::Postgres(url) => both(
            PostgresStore::connect(url).await.with_context(|| {
                format!(
                    "opening the PostgreSQL store at {}",
                    StoreLocation::redact(url)
                )
            })?,
            token_key,
        ),
    })
}

/// Registers (or finds again) the simulated hosts, and says so loudly: a
/// server with them does not run the tasks it reports RUNNING.
async fn simulate(
    ecs: &Ecs,
    sim: &config::SimulateHosts,
    credentials: &[berth_auth::Credential],
) -> anyhow::Result<()> {
    let account = match &sim.account {
        Some(a) => a.clone(),
        None => credentials
            .first()
            .map(|c| c.account_id.clone())
            .context("simulated hosts need an account (no credentials)")?,
    };
    let ctx = berth_wire::RequestContext::for_account(&account, &sim.region);
    let started = std::time::Instant::now();
    let spec = berth_api::ecs::Simulation {
        hosts: sim.hosts,
        zones: sim.zones,
        cluster: sim.cluster.clone(),
    };
    let new = ecs
        .simulate_hosts(&ctx, &spec)
        .await
        .map_err(|e| anyhow::anyhow!("simulating hosts: {e:?}"))?;
    let line = format!(
        "SIMULATED HOSTS: {} container instances in cluster {} ({account}, {}) across {} zones ({new} newly registered in {:.1} s) are simulated: attribute {}=true, no agent, their tasks are reported RUNNING and never run",
        sim.hosts,
        sim.cluster,
        sim.region,
        sim.zones,
        started.elapsed().as_secs_f64(),
        berth_api::ecs::SIMULATED_ATTRIBUTE,
    );
    tracing::warn!("{line}");
    println!("  {line}");
    Ok(())
}

/// Housekeeping every two seconds: lost agents' tasks, expired tasks.
fn spawn_sweeper(ecs: Ecs) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            match ecs.sweep().await {
                Ok(s) if s != Default::default() => tracing::info!(?s, "sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
