//! Where the suite's stores come from: a fresh SQLite file, or a fresh
//! schema in the PostgreSQL database that `BERTH_TEST_POSTGRES` names.
//!
//! Without `BERTH_TEST_POSTGRES` the PostgreSQL runs pass having done
//! nothing, saying so on stderr, unless `BERTH_TEST_POSTGRES_REQUIRED=1`
//! (which scripts/test.sh sets): then they fail, so that CI cannot skip
//! them silently. `scripts/postgres-test.sh run cargo test -p berth-store`
//! starts a throwaway server for them.

use berth_store::copy::Transfer;
use berth_store::{LogEventStore, PostgresStore, Scope, SqliteStore, Store};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Both traits, as the server uses them, and the copy's.
pub trait Backend: Store + LogEventStore + Transfer {}
impl<T: Store + LogEventStore + Transfer> Backend for T {}

pub enum Fixture {
    Sqlite(tempfile::TempDir),
    Postgres { url: String, schema: String },
}

pub fn scope() -> Scope {
    Scope::new("123456789012", "us-east-1")
}

impl Fixture {
    pub fn sqlite() -> Fixture {
        Fixture::Sqlite(tempfile::tempdir().unwrap())
    }

    /// `None` when PostgreSQL tests are not asked for (and not required).
    pub fn postgres() -> Option<Fixture> {
        let url = std::env::var("BERTH_TEST_POSTGRES").unwrap_or_default();
        if url.is_empty() {
            if std::env::var("BERTH_TEST_POSTGRES_REQUIRED").as_deref() == Ok("1") {
                panic!(
                    "BERTH_TEST_POSTGRES_REQUIRED=1 but BERTH_TEST_POSTGRES names no database \
                     (scripts/postgres-test.sh run cargo test … starts one)"
                );
            }
            eprintln!("BERTH_TEST_POSTGRES is not set: PostgreSQL backend not tested");
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "berth_test_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        Some(Fixture::Postgres { url, schema })
    }

    /// A store over this fixture's data; each call makes another (its own
    /// connections, its own writer), as another server process would.
    pub async fn open(&self) -> Arc<dyn Backend> {
        match self {
            Fixture::Sqlite(dir) => {
                Arc::new(SqliteStore::open(dir.path().join("berth.db")).unwrap())
            }
            Fixture::Postgres { url, schema } => Arc::new(
                PostgresStore::connect_in_schema(url, Some(schema))
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Drops a PostgreSQL test schema (a failed test leaves its own behind,
    /// to look at).
    pub async fn cleanup(self) {
        if let Fixture::Postgres { url, schema } = self {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        }
    }
}
