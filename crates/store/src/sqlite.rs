//! The embedded SQLite backend.
//!
//! Writes (document commits and log appends alike) go through one writer
//! thread that groups whatever jobs are waiting into a single SQLite
//! transaction (one savepoint each, so one failed precondition does not
//! spoil its neighbours) and syncs once:
//! durable with `synchronous=FULL`, yet not one fsync per request. Reads use
//! a small pool of read-only connections; WAL lets them run beside the
//! writer and see every acknowledged commit.

use crate::{Doc, Expect, Query, Result, Scope, Store, StoreError, Write};
use async_trait::async_trait;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use schema::MIGRATIONS;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::oneshot;

mod copy;
mod log_events;
mod schema;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Jobs grouped into one transaction at most.
const MAX_GROUP: usize = 256;

/// One unit of work for the writer thread: it runs inside its own savepoint
/// of the group transaction, and its caller hears back only once that
/// transaction has committed (so an acknowledged write is on disk).
trait Job: Send {
    /// Runs the work; `false` (it failed) rolls its savepoint back.
    fn apply(&mut self, conn: &Connection) -> bool;
    /// Delivers the outcome; `commit` is how the group transaction ended.
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

struct Task<T, F> {
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Task<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn apply(&mut self, conn: &Connection) -> bool {
        let work = self.work.take().expect("a job is applied once");
        let outcome = work(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), String>) {
        let outcome = match (commit, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Backend("the job did not run".into())),
            // Whatever the job did was rolled back with the transaction.
            (Err(e), _) => Err(StoreError::Backend(e)),
        };
        let _ = self.reply.send(outcome);
    }
}

pub struct SqliteStore {
    writer: Mutex<mpsc::Sender<Box<dyn Job>>>,
    readers: Arc<Readers>,
}

/// Idle read-only connections, opened as needed.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = match self.idle.lock().pop() {
            Some(c) => c,
            None => {
                let c = open(&self.path)?;
                c.execute_batch("PRAGMA query_only=1;")?;
                c
            }
        };
        let out = f(&conn);
        let mut idle = self.idle.lock();
        if idle.len() < 8 {
            idle.push(conn);
        }
        out
    }
}

/// Query parameters built per call, owned so that a read can move to
/// another thread.
type Params = Vec<Box<dyn ToSql + Send>>;

fn refs(args: &Params) -> Vec<&dyn ToSql> {
    args.iter().map(|b| b.as_ref() as &dyn ToSql).collect()
}

fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the store was written by a newer berth (schema {current}, this build knows {})",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied store migration");
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut conn = open(&path)?;
        migrate(&mut conn)?;
        // Savepoint journals in memory (no temp file per group). WAL
        // checkpoints stay SQLite's own: small, inline in the writer every
        // ~1000 pages, which keeps both the WAL and commit latency bounded
        // (background PASSIVE checkpoints let the WAL grow to gigabytes under
        // steady load, and truncating ones stalled commits); the size limit
        // gives the file back after each reset.
        conn.execute_batch(
            "PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=1000; PRAGMA journal_size_limit=67108864;",
        )?;
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("berth-store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(SqliteStore {
            writer: Mutex::new(tx),
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Runs a read on a pooled connection, on the calling thread.
    #[cfg(test)]
    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.readers.with(f)
    }

    /// Runs a read on a pooled connection on tokio's blocking threads: a
    /// query may take milliseconds, which must not stall the async workers
    /// that serve every other request.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|e| StoreError::Backend(format!("store reader: {e}")))?
    }

    /// Runs `work` on the writer thread, in the next group transaction, and
    /// returns its result once that transaction is durable.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let task = Task {
            work: Some(work),
            outcome: None,
            reply,
        };
        let stopped = || StoreError::Backend("the store writer has stopped".into());
        self.writer
            .lock()
            .send(Box::new(task))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let commit = apply_group(&mut conn, &mut jobs).map_err(|e| e.to_string());
        for job in jobs {
            job.finish(commit.clone());
        }
    }
}

/// Applies every job in one transaction, each in its own savepoint so a
/// failed one does not spoil its neighbours.
fn apply_group(conn: &mut Connection, jobs: &mut [Box<dyn Job>]) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for job in jobs.iter_mut() {
        let sp = tx.unchecked_transaction_savepoint()?;
        if job.apply(&sp) {
            sp.commit()?;
        } // else dropping `sp` rolls it back
    }
    tx.commit()?;
    Ok(())
}

trait SavepointExt {
    fn unchecked_transaction_savepoint(&self) -> Result<Savepoint<'_>>;
}

/// A savepoint on a borrowed transaction; rolled back unless committed.
struct Savepoint<'c> {
    conn: &'c Connection,
    done: bool,
}

impl SavepointExt for rusqlite::Transaction<'_> {
    fn unchecked_transaction_savepoint(&self) -> Result<Savepoint<'_>> {
        self.prepare_cached("SAVEPOINT job")?.execute([])?;
        Ok(Savepoint {
            conn: self,
            done: false,
        })
    }
}

impl std::ops::Deref for Savepoint<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Savepoint<'_> {
    fn commit(mut self) -> Result<()> {
        self.done = true;
        self.conn.prepare_cached("RELEASE job")?.execute([])?;
        Ok(())
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self
                .conn
                .prepare_cached("ROLLBACK TO job")
                .and_then(|mut st| st.execute([]));
            let _ = self
                .conn
                .prepare_cached("RELEASE job")
                .and_then(|mut st| st.execute([]));
        }
    }
}

fn current_version(conn: &Connection, scope: &Scope, kind: &str, id: &str) -> Result<Option<i64>> {
    let mut st = conn.prepare_cached(
        "SELECT version FROM docs WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4",
    )?;
    Ok(st
        .query_row(params![scope.account, scope.region, kind, id], |r| r.get(0))
        .optional()?)
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

fn apply(conn: &Connection, scope: &Scope, w: &Write) -> Result<i64> {
    match w {
        Write::Put { doc, expect } => {
            let current = current_version(conn, scope, doc.kind, &doc.id)?;
            check(*expect, current, doc.kind, &doc.id)?;
            let version = current.unwrap_or(0) + 1;
            let mut st = conn.prepare_cached(
                "INSERT INTO docs (account, region, kind, id, sort, parent, status, version, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (account, region, kind, id) DO UPDATE SET
                   sort=excluded.sort, parent=excluded.parent, status=excluded.status,
                   version=excluded.version, body=excluded.body",
            )?;
            st.execute(params![
                scope.account,
                scope.region,
                doc.kind,
                doc.id,
                doc.sort,
                doc.parent,
                doc.status,
                version,
                doc.body
            ])?;
            Ok(version)
        }
        Write::Delete { kind, id, expect } => {
            let current = current_version(conn, scope, kind, id)?;
            check(*expect, current, kind, id)?;
            let mut st = conn.prepare_cached(
                "DELETE FROM docs WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4",
            )?;
            st.execute(params![scope.account, scope.region, kind, id])?;
            Ok(0)
        }
    }
}

fn row_to_doc(kind: &'static str, r: &rusqlite::Row) -> rusqlite::Result<Doc> {
    Ok(Doc {
        kind,
        id: r.get(0)?,
        sort: r.get(1)?,
        parent: r.get(2)?,
        status: r.get(3)?,
        version: r.get(4)?,
        body: r.get(5)?,
    })
}

/// The smallest string greater than every string starting with `prefix`.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, scope: &Scope, kind: &'static str, id: &str) -> Result<Option<Doc>> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, sort, parent, status, version, body FROM docs
                 WHERE account=?1 AND region=?2 AND kind=?3 AND id=?4",
            )?;
            Ok(st
                .query_row(params![scope.account, scope.region, kind, id], |r| {
                    row_to_doc(kind, r)
                })
                .optional()?)
        })
        .await
    }

    async fn list(&self, scope: &Scope, kind: &'static str, q: &Query) -> Result<Vec<Doc>> {
        let mut sql = String::from(
            "SELECT id, sort, parent, status, version, body FROM docs
             WHERE account=?1 AND region=?2 AND kind=?3",
        );
        let mut args: Params = vec![
            Box::new(scope.account.clone()),
            Box::new(scope.region.clone()),
            Box::new(kind),
        ];
        let mut push = |clause: &str, v: String, args: &mut Params| {
            args.push(Box::new(v));
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
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
        self.read(move |c| {
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(refs(&args).as_slice(), |r| row_to_doc(kind, r))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn count(
        &self,
        scope: &Scope,
        kind: &'static str,
        parent: Option<&str>,
        status: Option<&str>,
    ) -> Result<u64> {
        // One statement per filter combination, so SQLite can use the
        // (kind, parent, …) and (kind, status, …) indexes; an
        // `?4 IS NULL OR parent=?4` form would make it scan every row.
        let sql = match (parent.is_some(), status.is_some()) {
            (true, true) => "SELECT COUNT(*) FROM docs WHERE account=?1 AND region=?2 AND kind=?3 AND parent=?4 AND status=?5",
            (true, false) => "SELECT COUNT(*) FROM docs WHERE account=?1 AND region=?2 AND kind=?3 AND parent=?4 AND ?5 IS NULL",
            (false, true) => "SELECT COUNT(*) FROM docs WHERE account=?1 AND region=?2 AND kind=?3 AND status=?5 AND ?4 IS NULL",
            (false, false) => "SELECT COUNT(*) FROM docs WHERE account=?1 AND region=?2 AND kind=?3 AND ?4 IS NULL AND ?5 IS NULL",
        };
        let (scope, parent, status) = (
            scope.clone(),
            parent.map(str::to_string),
            status.map(str::to_string),
        );
        self.read(move |c| {
            let mut st = c.prepare_cached(sql)?;
            let n: i64 = st.query_row(
                params![scope.account, scope.region, kind, parent, status],
                |r| r.get(0),
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn scopes(&self, kind: &'static str) -> Result<Vec<Scope>> {
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT DISTINCT account, region FROM docs WHERE kind=?1 ORDER BY account, region",
            )?;
            let rows = st.query_map(params![kind], |r| {
                Ok(Scope::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn commit(&self, scope: &Scope, writes: Vec<Write>) -> Result<Vec<i64>> {
        let scope = scope.clone();
        self.write(move |conn| writes.iter().map(|w| apply(conn, &scope, w)).collect())
            .await
    }
}
