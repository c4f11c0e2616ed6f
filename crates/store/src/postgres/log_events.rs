//! [`LogEventStore`] on PostgreSQL: `log_streams` rows and `log_events`.
//!
//! Every write locks the rows of the streams it changes first (READ
//! COMMITTED, `FOR UPDATE`, or a DELETE of the stream row), so writers of
//! one stream queue instead of aborting each other, and each statement
//! after the lock sees everything committed before it: an append numbers
//! its events after the last committed sequence number, and an append
//! racing a delete either lands before it (and is deleted with the stream)
//! or finds no stream.

use super::{prefix_end, refs, transaction, Params, PostgresStore};
use crate::log_events::*;
use crate::{Result, Scope};
use async_trait::async_trait;
use tokio_postgres::{IsolationLevel, Row};

const STREAM_COLUMNS: &str = "stream, creation_time, last_seq, first_timestamp, last_timestamp,
     last_ingestion_time, stored_bytes";

fn row_to_stream(r: &Row) -> StreamInfo {
    StreamInfo {
        name: r.get(0),
        creation_time: r.get(1),
        last_seq: r.get(2),
        first_event_timestamp: r.get(3),
        last_event_timestamp: r.get(4),
        last_ingestion_time: r.get(5),
        stored_bytes: r.get(6),
    }
}

pub(super) fn row_to_event(r: &Row) -> Event {
    let message: Vec<u8> = r.get(4);
    Event {
        stream: r.get(0),
        seq: r.get(1),
        timestamp: r.get(2),
        ingestion_time: r.get(3),
        // Written from a String, so always UTF-8.
        message: String::from_utf8(message)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

const RC: IsolationLevel = IsolationLevel::ReadCommitted;

impl PostgresStore {
    async fn query_events(&self, sql: &str, args: &Params) -> Result<Vec<Event>> {
        let client = self.pool.get().await?;
        let st = client.prepare_cached(sql).await?;
        let rows = client.query(&st, &refs(args)).await?;
        Ok(rows.iter().map(row_to_event).collect())
    }
}

#[async_trait]
impl LogEventStore for PostgresStore {
    async fn create_stream(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        creation_time: i64,
    ) -> Result<bool> {
        let client = self.pool.get().await?;
        let st = client
            .prepare_cached(
                "INSERT INTO log_streams (account, region, grp, stream, creation_time,
                   last_seq, stored_bytes)
                 VALUES ($1, $2, $3, $4, $5, 0, 0) ON CONFLICT DO NOTHING",
            )
            .await?;
        let n = client
            .execute(
                &st,
                &[
                    &scope.account,
                    &scope.region,
                    &group,
                    &stream,
                    &creation_time,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn delete_stream(&self, scope: &Scope, group: &str, stream: &str) -> Result<bool> {
        transaction!(self, RC, |tx| {
            let key: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&scope.account, &scope.region, &group, &stream];
            // The stream row first: it waits for appends in flight.
            let n = tx
                .execute(
                    "DELETE FROM log_streams
                     WHERE account=$1 AND region=$2 AND grp=$3 AND stream=$4",
                    &key,
                )
                .await?;
            tx.execute(
                "DELETE FROM log_events WHERE account=$1 AND region=$2 AND grp=$3 AND stream=$4",
                &key,
            )
            .await?;
            n == 1
        })
    }

    async fn delete_group(&self, scope: &Scope, group: &str) -> Result<u64> {
        transaction!(self, RC, |tx| {
            let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                [&scope.account, &scope.region, &group];
            let n = tx
                .execute(
                    "DELETE FROM log_streams WHERE account=$1 AND region=$2 AND grp=$3",
                    &key,
                )
                .await?;
            tx.execute(
                "DELETE FROM log_events WHERE account=$1 AND region=$2 AND grp=$3",
                &key,
            )
            .await?;
            n
        })
    }

    async fn stream(&self, scope: &Scope, group: &str, stream: &str) -> Result<Option<StreamInfo>> {
        let client = self.pool.get().await?;
        let st = client
            .prepare_cached(&format!(
                "SELECT {STREAM_COLUMNS} FROM log_streams
                 WHERE account=$1 AND region=$2 AND grp=$3 AND stream=$4"
            ))
            .await?;
        let row = client
            .query_opt(&st, &[&scope.account, &scope.region, &group, &stream])
            .await?;
        Ok(row.as_ref().map(row_to_stream))
    }

    async fn list_streams(
        &self,
        scope: &Scope,
        group: &str,
        q: &StreamQuery,
    ) -> Result<Vec<StreamInfo>> {
        let sort: &[&str] = match q.order {
            StreamOrder::Name => &["stream"],
            StreamOrder::LastEventTime => &["COALESCE(last_timestamp, 0)", "stream"],
        };
        let mut sql = format!(
            "SELECT {STREAM_COLUMNS} FROM log_streams WHERE account=$1 AND region=$2 AND grp=$3"
        );
        let mut args: Params = vec![
            Box::new(scope.account.clone()),
            Box::new(scope.region.clone()),
            Box::new(group.to_string()),
        ];
        if let Some(p) = &q.prefix {
            args.push(Box::new(p.clone()));
            args.push(Box::new(prefix_end(p)));
            let n = args.len();
            sql += &format!(" AND stream >= ${} AND stream < ${n}", n - 1);
        }
        if let Some(after) = &q.after {
            let cmp = if q.descending { "<" } else { ">" };
            if q.order == StreamOrder::LastEventTime {
                args.push(Box::new(after.last_event_time));
            }
            args.push(Box::new(after.name.clone()));
            let n = args.len();
            sql += &match q.order {
                StreamOrder::Name => format!(" AND stream {cmp} ${n}"),
                StreamOrder::LastEventTime => format!(
                    " AND (COALESCE(last_timestamp, 0), stream) {cmp} (${}, ${n})",
                    n - 1
                ),
            };
        }
        let dir = if q.descending { "DESC" } else { "ASC" };
        let order: Vec<String> = sort.iter().map(|c| format!("{c} {dir}")).collect();
        sql += &format!(" ORDER BY {} LIMIT {}", order.join(", "), q.limit);
        let client = self.pool.get().await?;
        let st = client.prepare_cached(&sql).await?;
        let rows = client.query(&st, &refs(&args)).await?;
        Ok(rows.iter().map(row_to_stream).collect())
    }

    async fn append(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        events: Vec<NewEvent>,
        ingestion_time: i64,
    ) -> Result<Option<StreamInfo>> {
        transaction!(self, RC, |tx| {
            let row = tx
                .query_opt(
                    &tx.prepare_cached(&format!(
                        "SELECT {STREAM_COLUMNS} FROM log_streams
                         WHERE account=$1 AND region=$2 AND grp=$3 AND stream=$4 FOR UPDATE"
                    ))
                    .await?,
                    &[&scope.account, &scope.region, &group, &stream],
                )
                .await?;
            match row.as_ref().map(row_to_stream) {
                None => None,
                Some(info) if events.is_empty() => Some(info),
                Some(mut info) => {
                    let mut seqs = Vec::with_capacity(events.len());
                    let mut stamps = Vec::with_capacity(events.len());
                    let mut messages = Vec::with_capacity(events.len());
                    for e in &events {
                        info.last_seq += 1;
                        seqs.push(info.last_seq);
                        stamps.push(e.timestamp);
                        messages.push(e.message.as_bytes());
                        info.stored_bytes += e.message.len() as i64;
                        info.first_event_timestamp = Some(
                            info.first_event_timestamp
                                .map_or(e.timestamp, |t| t.min(e.timestamp)),
                        );
                        info.last_event_timestamp = Some(
                            info.last_event_timestamp
                                .map_or(e.timestamp, |t| t.max(e.timestamp)),
                        );
                    }
                    info.last_ingestion_time = Some(ingestion_time);
                    // The whole batch in one statement.
                    let insert = tx
                        .prepare_cached(
                            "INSERT INTO log_events
                               (account, region, grp, stream, seq, ts, ingestion_time, message)
                             SELECT $1, $2, $3, $4, s, t, $5, m
                             FROM unnest($6::bigint[], $7::bigint[], $8::bytea[]) AS e(s, t, m)",
                        )
                        .await?;
                    tx.execute(
                        &insert,
                        &[
                            &scope.account,
                            &scope.region,
                            &group,
                            &stream,
                            &ingestion_time,
                            &seqs,
                            &stamps,
                            &messages,
                        ],
                    )
                    .await?;
                    let update = tx
                        .prepare_cached(
                            "UPDATE log_streams SET last_seq=$5, first_timestamp=$6,
                               last_timestamp=$7, last_ingestion_time=$8, stored_bytes=$9
                             WHERE account=$1 AND region=$2 AND grp=$3 AND stream=$4",
                        )
                        .await?;
                    tx.execute(
                        &update,
                        &[
                            &scope.account,
                            &scope.region,
                            &group,
                            &stream,
                            &info.last_seq,
                            &info.first_event_timestamp,
                            &info.last_event_timestamp,
                            &info.last_ingestion_time,
                            &info.stored_bytes,
                        ],
                    )
                    .await?;
                    Some(info)
                }
            }
        })
    }

    async fn read_stream(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        r: &StreamRead,
    ) -> Result<Vec<Event>> {
        let after = r.after.unwrap_or(EventKey {
            timestamp: i64::MIN,
            seq: i64::MIN,
        });
        let before = r.before.unwrap_or(EventKey {
            timestamp: i64::MAX,
            seq: i64::MAX,
        });
        let dir = if r.descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT stream, seq, ts, ingestion_time, message FROM log_events
             WHERE account=$1 AND region=$2 AND grp=$3 AND stream=$4
               AND ts >= $5 AND ts < $6
               AND (ts, seq) > ($7, $8) AND (ts, seq) < ($9, $10)
             ORDER BY ts {dir}, seq {dir} LIMIT $11"
        );
        let args: Params = vec![
            Box::new(scope.account.clone()),
            Box::new(scope.region.clone()),
            Box::new(group.to_string()),
            Box::new(stream.to_string()),
            Box::new(r.start_time.unwrap_or(i64::MIN)),
            Box::new(r.end_time.unwrap_or(i64::MAX)),
            Box::new(after.timestamp),
            Box::new(after.seq),
            Box::new(before.timestamp),
            Box::new(before.seq),
            Box::new(r.limit.min(i64::MAX as usize) as i64),
        ];
        self.query_events(&sql, &args).await
    }

    async fn read_group(&self, scope: &Scope, group: &str, r: &GroupRead) -> Result<Vec<Event>> {
        let mut sql = String::from(
            "SELECT stream, seq, ts, ingestion_time, message FROM log_events
             WHERE account=$1 AND region=$2 AND grp=$3 AND ts >= $4 AND ts < $5",
        );
        let mut args: Params = vec![
            Box::new(scope.account.clone()),
            Box::new(scope.region.clone()),
            Box::new(group.to_string()),
            Box::new(r.start_time.unwrap_or(i64::MIN)),
            Box::new(r.end_time.unwrap_or(i64::MAX)),
        ];
        if let Some(a) = &r.after {
            args.push(Box::new(a.timestamp));
            args.push(Box::new(a.stream.clone()));
            args.push(Box::new(a.seq));
            let n = args.len();
            sql += &format!(" AND (ts, stream, seq) > (${}, ${}, ${n})", n - 2, n - 1);
        }
        match &r.streams {
            StreamSelector::All => {}
            StreamSelector::Names(names) => {
                args.push(Box::new(names.clone()));
                sql += &format!(" AND stream = ANY(${})", args.len());
            }
            StreamSelector::Prefix(p) => {
                args.push(Box::new(p.clone()));
                args.push(Box::new(prefix_end(p)));
                let n = args.len();
                sql += &format!(" AND stream >= ${} AND stream < ${n}", n - 1);
            }
        }
        sql += &format!(" ORDER BY ts, stream, seq LIMIT {}", r.limit);
        self.query_events(&sql, &args).await
    }

    async fn group_stored_bytes(&self, scope: &Scope, group: &str) -> Result<i64> {
        let client = self.pool.get().await?;
        let st = client
            .prepare_cached(
                "SELECT COALESCE(SUM(stored_bytes), 0)::bigint FROM log_streams
                 WHERE account=$1 AND region=$2 AND grp=$3",
            )
            .await?;
        Ok(client
            .query_one(&st, &[&scope.account, &scope.region, &group])
            .await?
            .get(0))
    }

    async fn delete_before(
        &self,
        scope: &Scope,
        group: &str,
        cutoff: i64,
        max: usize,
    ) -> Result<u64> {
        let max = max.min(i64::MAX as usize) as i64;
        transaction!(self, RC, |tx| {
            // The group's streams first, so that appends wait and the
            // recomputed first timestamps see every committed event.
            tx.execute(
                "SELECT 1 FROM log_streams WHERE account=$1 AND region=$2 AND grp=$3 FOR UPDATE",
                &[&scope.account, &scope.region, &group],
            )
            .await?;
            let freed = tx
                .query(
                    "WITH victims AS (
                       DELETE FROM log_events e USING (
                         SELECT stream, seq FROM log_events
                         WHERE account=$1 AND region=$2 AND grp=$3 AND ts < $4
                         ORDER BY ts LIMIT $5) v
                       WHERE e.account=$1 AND e.region=$2 AND e.grp=$3
                         AND e.stream=v.stream AND e.seq=v.seq
                       RETURNING e.stream, octet_length(e.message)::bigint AS bytes)
                     SELECT stream, SUM(bytes)::bigint, COUNT(*) FROM victims GROUP BY stream",
                    &[&scope.account, &scope.region, &group, &cutoff, &max],
                )
                .await?;
            let mut deleted = 0i64;
            for row in &freed {
                let (stream, bytes, n): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
                deleted += n;
                tx.execute(
                    "UPDATE log_streams SET stored_bytes = stored_bytes - $5,
                       first_timestamp = COALESCE((SELECT MIN(ts) FROM log_events
                         WHERE account=$1 AND region=$2 AND grp=$3 AND stream=$4), first_timestamp)
                     WHERE account=$1 AND region=$2 AND grp=$3 AND stream=$4",
                    &[&scope.account, &scope.region, &group, &stream, &bytes],
                )
                .await?;
            }
            deleted as u64
        })
    }

    async fn groups_with_streams(&self) -> Result<Vec<(Scope, String)>> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT DISTINCT account, region, grp FROM log_streams", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    Scope::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                    r.get(2),
                )
            })
            .collect())
    }
}
