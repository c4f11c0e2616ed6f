//! [`Transfer`] on SQLite: ordered walks on the readers, verbatim loads on
//! the writer thread.

use super::SqliteStore;
use crate::copy::{DocKey, RawDoc, RawStream, Transfer};
use crate::log_events::{Event, StreamInfo};
use crate::{Result, Scope};
use async_trait::async_trait;
use rusqlite::params;

#[async_trait]
impl Transfer for SqliteStore {
    async fn is_empty(&self) -> Result<bool> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM docs) AND NOT EXISTS (SELECT 1 FROM log_streams)",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn dump_docs(&self, after: Option<&DocKey>, limit: usize) -> Result<Vec<RawDoc>> {
        let after = after.cloned().unwrap_or(DocKey {
            scope_account: String::new(),
            scope_region: String::new(),
            kind: String::new(),
            id: String::new(),
        });
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT account, region, kind, id, sort, parent, status, version, body FROM docs
                 WHERE (account, region, kind, id) > (?1, ?2, ?3, ?4)
                 ORDER BY account, region, kind, id LIMIT ?5",
            )?;
            let rows = st.query_map(
                params![
                    after.scope_account,
                    after.scope_region,
                    after.kind,
                    after.id,
                    limit as i64
                ],
                |r| {
                    Ok(RawDoc {
                        scope: Scope::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                        kind: r.get(2)?,
                        id: r.get(3)?,
                        sort: r.get(4)?,
                        parent: r.get(5)?,
                        status: r.get(6)?,
                        version: r.get(7)?,
                        body: r.get(8)?,
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn dump_streams(&self) -> Result<Vec<RawStream>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT account, region, grp, stream, creation_time, last_seq, first_timestamp,
                   last_timestamp, last_ingestion_time, stored_bytes FROM log_streams
                 ORDER BY account, region, grp, stream",
            )?;
            let rows = st.query_map([], |r| {
                Ok(RawStream {
                    scope: Scope::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    group: r.get(2)?,
                    info: StreamInfo {
                        name: r.get(3)?,
                        creation_time: r.get(4)?,
                        last_seq: r.get(5)?,
                        first_event_timestamp: r.get(6)?,
                        last_event_timestamp: r.get(7)?,
                        last_ingestion_time: r.get(8)?,
                        stored_bytes: r.get(9)?,
                    },
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn dump_events(
        &self,
        stream: &RawStream,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let s = stream.clone();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT stream, seq, timestamp, ingestion_time, message FROM log_events
                 WHERE account=?1 AND region=?2 AND grp=?3 AND stream=?4 AND seq > ?5
                 ORDER BY seq LIMIT ?6",
            )?;
            let rows = st.query_map(
                params![
                    s.scope.account,
                    s.scope.region,
                    s.group,
                    s.info.name,
                    after_seq,
                    limit as i64
                ],
                |r| {
                    Ok(Event {
                        stream: r.get(0)?,
                        seq: r.get(1)?,
                        timestamp: r.get(2)?,
                        ingestion_time: r.get(3)?,
                        message: r.get(4)?,
                    })
                },
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn load_docs(&self, docs: Vec<RawDoc>) -> Result<()> {
        self.write(move |conn| {
            let mut st = conn.prepare_cached(
                "INSERT INTO docs (account, region, kind, id, sort, parent, status, version, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for d in &docs {
                st.execute(params![
                    d.scope.account,
                    d.scope.region,
                    d.kind,
                    d.id,
                    d.sort,
                    d.parent,
                    d.status,
                    d.version,
                    d.body
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn load_stream(&self, stream: &RawStream) -> Result<()> {
        let s = stream.clone();
        self.write(move |conn| {
            let i = &s.info;
            conn.prepare_cached(
                "INSERT INTO log_streams (account, region, grp, stream, creation_time, last_seq,
                   first_timestamp, last_timestamp, last_ingestion_time, stored_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                s.scope.account,
                s.scope.region,
                s.group,
                i.name,
                i.creation_time,
                i.last_seq,
                i.first_event_timestamp,
                i.last_event_timestamp,
                i.last_ingestion_time,
                i.stored_bytes
            ])?;
            Ok(())
        })
        .await
    }

    async fn load_events(&self, stream: &RawStream, events: Vec<Event>) -> Result<()> {
        let s = stream.clone();
        self.write(move |conn| {
            let mut st = conn.prepare_cached(
                "INSERT INTO log_events
                   (account, region, grp, stream, seq, timestamp, ingestion_time, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for e in &events {
                st.execute(params![
                    s.scope.account,
                    s.scope.region,
                    s.group,
                    s.info.name,
                    e.seq,
                    e.timestamp,
                    e.ingestion_time,
                    e.message
                ])?;
            }
            Ok(())
        })
        .await
    }
}
