//! `berth store copy`: moves a server's state between SQLite and
//! PostgreSQL, losing nothing (see berth_store::copy).

use anyhow::Context;
use berth_server::config::StoreLocation;
use berth_store::copy::{copy, Transfer};
use berth_store::{PostgresStore, SqliteStore};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(clap::Subcommand)]
enum StoreCommand {
    /// Copy every cluster, task, service, log and the rest from one store
    /// into another, empty one; stop the servers first. Each store is a
    /// data dir (its berth.db) or a postgres:// URL. The data dir's keys
    /// (token.key, secrets.key, session.key, credentials) are not in the
    /// store: servers on the copy need the same ones, or sealed secrets do
    /// not open.
    Copy {
        /// The store to read: a data dir, or a postgres:// URL.
        #[arg(long, value_name = "STORE")]
        from: String,
        /// The store to fill (must be empty): a data dir, or a postgres:// URL.
        #[arg(long, value_name = "STORE")]
        to: String,
    },
}

pub async fn run(args: StoreArgs) -> anyhow::Result<()> {
    match args.command {
        StoreCommand::Copy { from, to } => {
            let source = open(&from, false).await?;
            let dest = open(&to, true).await?;
            let stats = copy(source.as_ref(), dest.as_ref())
                .await
                .context("copying the store")?;
            println!(
                "copied {} documents, {} log streams and {} log events into {}",
                stats.docs,
                stats.streams,
                stats.events,
                StoreLocation::redact(&to)
            );
            Ok(())
        }
    }
}

async fn open(spec: &str, create: bool) -> anyhow::Result<Box<dyn Transfer>> {
    let shown = StoreLocation::redact(spec);
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let store = PostgresStore::connect(spec)
            .await
            .with_context(|| format!("opening {shown}"))?;
        return Ok(Box::new(store));
    }
    let dir = PathBuf::from(spec);
    let db = dir.join("berth.db");
    if create {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    } else if !db.exists() {
        anyhow::bail!("{} holds no store (no berth.db)", dir.display());
    }
    let store = SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
    Ok(Box::new(store))
}
