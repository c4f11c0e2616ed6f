//! The PostgreSQL backend, for control planes of several servers over one
//! database.
//!
//! Driver: tokio-postgres with a deadpool-postgres pool. Both are small,
//! async, widely used and maintained; they build no query macros against a
//! live database (as sqlx's would), and give direct control of isolation
//! levels and error codes, which conditional commits need.
//!
//! Document commits run as SERIALIZABLE transactions: every precondition is
//! a read inside the transaction, and PostgreSQL guarantees that committed
//! serializable transactions behave as if run one at a time, across every
//! server process. A transaction PostgreSQL aborts as unserializable (or as
//! a deadlock victim) applied nothing and is run again from the start, where
//! the re-read precondition then reports an honest [`StoreError::Conflict`].
//! Log appends, which agents send all the time, instead lock their stream's
//! row (READ COMMITTED, `FOR UPDATE`): appends to one stream queue rather
//! than abort each other (see `log_events`).

use crate::{Doc, Expect, Query, Result, Scope, Store, StoreError, Write};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};

mod copy;
mod log_events;
mod schema;

/// Connections per store (per server process).
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection, or for one to be made,
/// before it fails (rather than hanging while the database is away).
const POOL_TIMEOUT: Duration = Duration::from_secs(10);
/// Runs of one transaction that PostgreSQL aborted as unserializable.
pub(crate) const MAX_ATTEMPTS: u32 = 40;
/// Serializes migrations of servers starting together (an arbitrary key
/// for `pg_advisory_xact_lock`, "berth" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_6572_7468;

pub struct PostgresStore {
    pool: Pool,
}

/// Why a transaction attempt failed: a database error may be worth
/// retrying, a store error (a failed precondition) is the answer.
pub(crate) enum Fail {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Fail::Store(e.into())
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Db(e) => e.into(),
            Fail::Store(e) => e,
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message (Display alone says only "db error").
        match e.as_db_error() {
            Some(db) => StoreError::Backend(format!("postgres: {db}")),
            None => StoreError::Backend(format!("postgres: {e}")),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Backend(format!("postgres pool: {e}"))
    }
}

/// Whether running the transaction again may succeed.
pub(crate) fn retryable(f: &Fail) -> bool {
    let Fail::Db(e) = f else { return false };
    matches!(
        e.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

/// A short, growing, jittered pause between runs of a transaction, so
/// that contenders do not collide again in lockstep.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap = 1u64 << attempt.min(6); // up to 64 ms
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_micros(500 + nanos % (cap * 1000))
}

/// Runs `$body` (which may `.await` and `?` into [`Fail`]) in a
/// transaction at `$level` on a pooled connection bound to `$tx`, commits,
/// and runs it all again while PostgreSQL reports a serialization failure
/// or deadlock. Evaluates to `Result<T>`.
macro_rules! transaction {
    ($store:expr, $level:expr, |$tx:ident| $body:expr) => {{
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome: std::result::Result<_, $crate::postgres::Fail> = async {
                let mut client = $store.pool.get().await?;
                let $tx = client
                    .build_transaction()
                    .isolation_level($level)
                    .start()
                    .await?;
                let out = $body;
                $tx.commit().await?;
                Ok(out)
            }
            .await;
            match outcome {
                Err(f)
                    if $crate::postgres::retryable(&f)
                        && attempt < $crate::postgres::MAX_ATTEMPTS =>
                {
                    tokio::time::sleep($crate::postgres::backoff(attempt)).await;
                }
                other => break other.map_err($crate::StoreError::from),
            }
        }
    }};
}
pub(crate) use transaction;

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host/db`,
    /// or `postgres://user@%2Frun%2Fpostgresql/db` for a unix socket) and
    /// applies the migrations it lacks.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_in_schema(url, None).await
    }

    /// As [`connect`](Self::connect), with berth's tables in `schema`
    /// (created if absent) instead of the user's default: several berth
    /// installations, or tests, can share one database.
    pub async fn connect_in_schema(url: &str, schema: Option<&str>) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
        if let Some(schema) = schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(StoreError::Backend(format!("bad schema name {schema:?}")));
            }
            config.options(format!("-c search_path={schema}"));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_TIMEOUT);
        }
        config.application_name("berth");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres pool: {e}")))?;
        let store = PostgresStore { pool };
        store.migrate(schema).await?;
        Ok(store)
    }

    /// Applies the migrations the database lacks, one server at a time.
    async fn migrate(&self, schema: Option<&str>) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        if let Some(schema) = schema {
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
        }
        // (Not IF NOT EXISTS: its notice would be logged at every start.)
        let fresh = tx
            .query_one("SELECT to_regclass('berth_migrations') IS NULL", &[])
            .await?
            .get::<_, bool>(0);
        if fresh {
            tx.batch_execute(
                "CREATE TABLE berth_migrations (
                    version INTEGER PRIMARY KEY,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
        }
        let current: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM berth_migrations",
                &[],
            )
            .await?
            .get(0);
        let current = current as usize;
        if current > schema::MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "the store was written by a newer berth (schema {current}, this build knows {})",
                schema::MIGRATIONS.len()
            )));
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(current) {
            tx.batch_execute(sql).await?;
            let version = (i + 1) as i32;
            tx.execute(
                "INSERT INTO berth_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await?;
            tracing::info!(version, "applied PostgreSQL store migration");
        }
        tx.commit().await?;
        Ok(())
    }
}

fn check(expect: Expect, current: Option<i64>, kind: &'static str, id: &str) -> Result<()> {
    let ok = match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Version(v) => current == Some(v),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            kind,
            id: id.to_string(),
        })
    }
}

/// Applies one write inside the commit's transaction.
async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    scope: &Scope,
    w: &Write,
) -> std::result::Result<i64, Fail> {
    let (kind, id, expect) = match w {
        Write::Put { doc, expect } => (doc.kind, doc.id.as_str(), *expect),
        Write::Delete { kind, id, expect } => (*kind, id.as_str(), *expect),
    };
    let current: Option<i64> = tx
        .query_opt(
            &tx.prepare_cached(
                "SELECT version FROM docs WHERE account=$1 AND region=$2 AND kind=$3 AND id=$4",
            )
            .await?,
            &[&scope.account, &scope.region, &kind, &id],
        )
        .await?
        .map(|r| r.get(0));
    check(expect, current, kind, id)?;
    match w {
        Write::Put { doc, .. } => {
            let version = current.unwrap_or(0) + 1;
            let st = tx
                .prepare_cached(
                    "INSERT INTO docs (account, region, kind, id, sort, parent, status, version, body)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (account, region, kind, id) DO UPDATE SET
                       sort=excluded.sort, parent=excluded.parent, status=excluded.status,
                       version=excluded.version, body=excluded.body",
                )
                .await?;
            tx.execute(
                &st,
                &[
                    &scope.account,
                    &scope.region,
                    &doc.kind,
                    &doc.id,
                    &doc.sort,
                    &doc.parent,
                    &doc.status,
                    &version,
                    &doc.body,
                ],
            )
            .await?;
            Ok(version)
        }
        Write::Delete { kind, id, .. } => {
            let st = tx
                .prepare_cached(
                    "DELETE FROM docs WHERE account=$1 AND region=$2 AND kind=$3 AND id=$4",
                )
                .await?;
            tx.execute(&st, &[&scope.account, &scope.region, kind, id])
                .await?;
            Ok(0)
        }
    }
}

fn row_to_doc(kind: &'static str, r: &Row) -> Doc {
    Doc {
        kind,
        id: r.get(0),
        sort: r.get(1),
        parent: r.get(2),
        status: r.get(3),
        version: r.get(4),
        body: r.get(5),
    }
}

/// The smallest string greater than every string starting with `prefix`.
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// Parameters built per query: owned values, borrowed for the call.
pub(crate) type Params = Vec<Box<dyn ToSql + Sync + Send>>;

pub(crate) fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

#[async_trait]
impl Store for PostgresStore {
    async fn get(&self, scope: &Scope, kind: &'static str, id: &str) -> Result<Option<Doc>> {
        let client = self.pool.get().await?;
        let st = client
            .prepare_cached(
                "SELECT id, sort, parent, status, version, body FROM docs
                 WHERE account=$1 AND region=$2 AND kind=$3 AND id=$4",
            )
            .await?;
        let row = client
            .query_opt(&st, &[&scope.account, &scope.region, &kind, &id])
            .await?;
        Ok(row.map(|r| row_to_doc(kind, &r)))
    }

    async fn list(&self, scope: &Scope, kind: &'static str, q: &Query) -> Result<Vec<Doc>> {
        let mut sql = String::from(
            "SELECT id, sort, parent, status, version, body FROM docs
             WHERE account=$1 AND region=$2 AND kind=$3",
        );
        let mut args: Params = vec![
            Box::new(scope.account.clone()),
            Box::new(scope.region.clone()),
            Box::new(kind),
        ];
        let mut push = |clause: &str, v: String, args: &mut Params| {
            args.push(Box::new(v));
            sql.push_str(&format!(" AND {clause} ${}", args.len()));
        };
        if let Some(p) = &q.parent {
            push("parent =", p.clone(), &mut args);
        }
        if let Some(s) = &q.status {
            push("status =", s.clone(), &mut args);
        }
        if let Some(p) = &q.sort_prefix {
            push("sort >=", p.clone(), &mut args);
            push("sort <", prefix_end(p), &mut args);
        }
        if let Some(a) = &q.after {
            push(
                if q.descending { "sort <" } else { "sort >" },
                a.clone(),
                &mut args,
            );
        }
        sql.push_str(if q.descending {
            " ORDER BY sort DESC"
        } else {
            " ORDER BY sort ASC"
        });
        sql.push_str(&format!(" LIMIT {}", q.limit.min(i64::MAX as usize)));
        let client = self.pool.get().await?;
        let st = client.prepare_cached(&sql).await?;
        let rows = client.query(&st, &refs(&args)).await?;
        Ok(rows.iter().map(|r| row_to_doc(kind, r)).collect())
    }

    async fn count(
        &self,
        scope: &Scope,
        kind: &'static str,
        parent: Option<&str>,
        status: Option<&str>,
    ) -> Result<u64> {
        // One statement per filter combination, each matching an index.
        let sql = match (parent.is_some(), status.is_some()) {
            (true, true) => "SELECT COUNT(*) FROM docs WHERE account=$1 AND region=$2 AND kind=$3 AND parent=$4 AND status=$5",
            (true, false) => "SELECT COUNT(*) FROM docs WHERE account=$1 AND region=$2 AND kind=$3 AND parent=$4 AND $5::text IS NULL",
            (false, true) => "SELECT COUNT(*) FROM docs WHERE account=$1 AND region=$2 AND kind=$3 AND status=$5 AND $4::text IS NULL",
            (false, false) => "SELECT COUNT(*) FROM docs WHERE account=$1 AND region=$2 AND kind=$3 AND $4::text IS NULL AND $5::text IS NULL",
        };
        let client = self.pool.get().await?;
        let st = client.prepare_cached(sql).await?;
        let n: i64 = client
            .query_one(
                &st,
                &[&scope.account, &scope.region, &kind, &parent, &status],
            )
            .await?
            .get(0);
        Ok(n as u64)
    }

    async fn scopes(&self, kind: &'static str) -> Result<Vec<Scope>> {
        let client = self.pool.get().await?;
        let st = client
            .prepare_cached(
                "SELECT DISTINCT account, region FROM docs WHERE kind=$1 ORDER BY account, region",
            )
            .await?;
        let rows = client.query(&st, &[&kind]).await?;
        Ok(rows
            .iter()
            .map(|r| Scope::new(r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect())
    }

    async fn commit(&self, scope: &Scope, writes: Vec<Write>) -> Result<Vec<i64>> {
        transaction!(self, IsolationLevel::Serializable, |tx| {
            let mut versions = Vec::with_capacity(writes.len());
            for w in &writes {
                versions.push(apply(&tx, scope, w).await?);
            }
            versions
        })
    }
}
