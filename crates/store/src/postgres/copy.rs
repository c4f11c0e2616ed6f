//! [`Transfer`] on PostgreSQL: ordered keyset walks, and verbatim loads
//! of a chunk per transaction.

use super::PostgresStore;
use crate::copy::{DocKey, RawDoc, RawStream, Transfer};
use crate::log_events::{Event, StreamInfo};
use crate::{Result, Scope};
use async_trait::async_trait;

#[async_trait]
impl Transfer for PostgresStore {
    async fn is_empty(&self) -> Result<bool> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT NOT EXISTS (SELECT 1 FROM docs) AND NOT EXISTS (SELECT 1 FROM log_streams)",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    async fn dump_docs(&self, after: Option<&DocKey>, limit: usize) -> Result<Vec<RawDoc>> {
        let empty = String::new();
        let (a, r, k, i) = match after {
            Some(key) => (&key.scope_account, &key.scope_region, &key.kind, &key.id),
            None => (&empty, &empty, &empty, &empty),
        };
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT account, region, kind, id, sort, parent, status, version, body FROM docs
                 WHERE (account, region, kind, id) > ($1, $2, $3, $4)
                 ORDER BY account, region, kind, id LIMIT $5",
                &[a, r, k, i, &(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| RawDoc {
                scope: Scope::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                kind: r.get(2),
                id: r.get(3),
                sort: r.get(4),
                parent: r.get(5),
                status: r.get(6),
                version: r.get(7),
                body: r.get(8),
            })
            .collect())
    }

    async fn dump_streams(&self) -> Result<Vec<RawStream>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT account, region, grp, stream, creation_time, last_seq, first_timestamp,
                   last_timestamp, last_ingestion_time, stored_bytes FROM log_streams
                 ORDER BY account, region, grp, stream",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| RawStream {
                scope: Scope::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                group: r.get(2),
                info: StreamInfo {
                    name: r.get(3),
                    creation_time: r.get(4),
                    last_seq: r.get(5),
                    first_event_timestamp: r.get(6),
                    last_event_timestamp: r.get(7),
                    last_ingestion_time: r.get(8),
                    stored_bytes: r.get(9),
                },
            })
            .collect())
    }

    async fn dump_events(&self, s: &RawStream, after_seq: i64, limit: usize) -> Result<Vec<Event>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT stream, seq, ts, ingestion_time, message FROM log_events
                 WHERE account=$1 AND region=$2 AND grp=$3 AND stream=$4 AND seq > $5
                 ORDER BY seq LIMIT $6",
                &[
                    &s.scope.account,
                    &s.scope.region,
                    &s.group,
                    &s.info.name,
                    &after_seq,
                    &(limit as i64),
                ],
            )
            .await?;
        Ok(rows.iter().map(super::log_events::row_to_event).collect())
    }

    async fn load_docs(&self, docs: Vec<RawDoc>) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let st = tx
            .prepare_cached(
                "INSERT INTO docs (account, region, kind, id, sort, parent, status, version, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .await?;
        for d in &docs {
            tx.execute(
                &st,
                &[
                    &d.scope.account,
                    &d.scope.region,
                    &d.kind,
                    &d.id,
                    &d.sort,
                    &d.parent,
                    &d.status,
                    &d.version,
                    &d.body,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn load_stream(&self, s: &RawStream) -> Result<()> {
        let client = self.pool.get().await?;
        let i = &s.info;
        client
            .execute(
                "INSERT INTO log_streams (account, region, grp, stream, creation_time, last_seq,
                   first_timestamp, last_timestamp, last_ingestion_time, stored_bytes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &s.scope.account,
                    &s.scope.region,
                    &s.group,
                    &i.name,
                    &i.creation_time,
                    &i.last_seq,
                    &i.first_event_timestamp,
                    &i.last_event_timestamp,
                    &i.last_ingestion_time,
                    &i.stored_bytes,
                ],
            )
            .await?;
        Ok(())
    }

    async fn load_events(&self, s: &RawStream, events: Vec<Event>) -> Result<()> {
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        let stamps: Vec<i64> = events.iter().map(|e| e.timestamp).collect();
        let ingested: Vec<i64> = events.iter().map(|e| e.ingestion_time).collect();
        let messages: Vec<&[u8]> = events.iter().map(|e| e.message.as_bytes()).collect();
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO log_events
                   (account, region, grp, stream, seq, ts, ingestion_time, message)
                 SELECT $1, $2, $3, $4, s, t, i, m
                 FROM unnest($5::bigint[], $6::bigint[], $7::bigint[], $8::bytea[])
                   AS e(s, t, i, m)",
                &[
                    &s.scope.account,
                    &s.scope.region,
                    &s.group,
                    &s.info.name,
                    &seqs,
                    &stamps,
                    &ingested,
                    &messages,
                ],
            )
            .await?;
        Ok(())
    }
}
