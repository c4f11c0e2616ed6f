//! [`LogEventStore`] on SQLite: `log_streams` rows and `log_events`, written
//! by the same group-commit writer thread as documents.

use super::{prefix_end, refs, Params, SqliteStore};
use crate::log_events::*;
use crate::{Result, Scope};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, ToSql};

const STREAM_COLUMNS: &str = "stream, creation_time, last_seq, first_timestamp, last_timestamp,
     last_ingestion_time, stored_bytes";

fn row_to_stream(r: &rusqlite::Row) -> rusqlite::Result<StreamInfo> {
    Ok(StreamInfo {
        name: r.get(0)?,
        creation_time: r.get(1)?,
        last_seq: r.get(2)?,
        first_event_timestamp: r.get(3)?,
        last_event_timestamp: r.get(4)?,
        last_ingestion_time: r.get(5)?,
        stored_bytes: r.get(6)?,
    })
}

fn row_to_event(r: &rusqlite::Row) -> rusqlite::Result<Event> {
    Ok(Event {
        stream: r.get(0)?,
        seq: r.get(1)?,
        timestamp: r.get(2)?,
        ingestion_time: r.get(3)?,
        message: r.get(4)?,
    })
}

fn load_stream(
    conn: &Connection,
    scope: &Scope,
    group: &str,
    stream: &str,
) -> Result<Option<StreamInfo>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {STREAM_COLUMNS} FROM log_streams
         WHERE account=?1 AND region=?2 AND grp=?3 AND stream=?4"
    ))?;
    Ok(st
        .query_row(
            params![scope.account, scope.region, group, stream],
            row_to_stream,
        )
        .optional()?)
}

/// The append itself, on the writer thread.
fn append_events(
    conn: &Connection,
    scope: &Scope,
    group: &str,
    stream: &str,
    events: &[NewEvent],
    ingestion_time: i64,
) -> Result<Option<StreamInfo>> {
    let Some(mut info) = load_stream(conn, scope, group, stream)? else {
        return Ok(None);
    };
    if events.is_empty() {
        return Ok(Some(info));
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO log_events
           (account, region, grp, stream, seq, timestamp, ingestion_time, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for e in events {
        info.last_seq += 1;
        insert.execute(params![
            scope.account,
            scope.region,
            group,
            stream,
            info.last_seq,
            e.timestamp,
            ingestion_time,
            e.message
        ])?;
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
    conn.prepare_cached(
        "UPDATE log_streams SET last_seq=?5, first_timestamp=?6, last_timestamp=?7,
           last_ingestion_time=?8, stored_bytes=?9
         WHERE account=?1 AND region=?2 AND grp=?3 AND stream=?4",
    )?
    .execute(params![
        scope.account,
        scope.region,
        group,
        stream,
        info.last_seq,
        info.first_event_timestamp,
        info.last_event_timestamp,
        info.last_ingestion_time,
        info.stored_bytes
    ])?;
    Ok(Some(info))
}

/// Deletes up to `max` events older than `cutoff`, on the writer thread.
fn expire_events(
    conn: &Connection,
    scope: &Scope,
    group: &str,
    cutoff: i64,
    max: usize,
) -> Result<u64> {
    let victims = conn
        .prepare_cached(
            "SELECT rowid, stream, length(CAST(message AS BLOB)) FROM log_events
             WHERE account=?1 AND region=?2 AND grp=?3 AND timestamp < ?4
             ORDER BY timestamp LIMIT ?5",
        )?
        .query_map(
            params![scope.account, scope.region, group, cutoff, max as i64],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut freed = std::collections::BTreeMap::<String, i64>::new();
    let mut delete = conn.prepare_cached("DELETE FROM log_events WHERE rowid=?1")?;
    for (rowid, stream, bytes) in &victims {
        delete.execute([rowid])?;
        *freed.entry(stream.clone()).or_default() += bytes;
    }
    let mut update = conn.prepare_cached(
        "UPDATE log_streams SET stored_bytes = stored_bytes - ?5,
           first_timestamp = COALESCE((SELECT MIN(timestamp) FROM log_events
             WHERE account=?1 AND region=?2 AND grp=?3 AND stream=?4), first_timestamp)
         WHERE account=?1 AND region=?2 AND grp=?3 AND stream=?4",
    )?;
    for (stream, bytes) in &freed {
        update.execute(params![scope.account, scope.region, group, stream, bytes])?;
    }
    Ok(victims.len() as u64)
}

/// Collects a query's rows with boxed parameters (for SQL built per call).
fn query_events(conn: &Connection, sql: &str, args: &Params) -> Result<Vec<Event>> {
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(refs(args).as_slice(), row_to_event)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

#[async_trait]
impl LogEventStore for SqliteStore {
    async fn create_stream(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        creation_time: i64,
    ) -> Result<bool> {
        let (scope, group, stream) = (scope.clone(), group.to_string(), stream.to_string());
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO log_streams (account, region, grp, stream, creation_time,
                       last_seq, stored_bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0, 0) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    scope.account,
                    scope.region,
                    group,
                    stream,
                    creation_time
                ])?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_stream(&self, scope: &Scope, group: &str, stream: &str) -> Result<bool> {
        let (scope, group, stream) = (scope.clone(), group.to_string(), stream.to_string());
        self.write(move |conn| {
            let key = params![scope.account, scope.region, group, stream];
            conn.prepare_cached(
                "DELETE FROM log_events WHERE account=?1 AND region=?2 AND grp=?3 AND stream=?4",
            )?
            .execute(key)?;
            let n = conn
                .prepare_cached(
                    "DELETE FROM log_streams
                     WHERE account=?1 AND region=?2 AND grp=?3 AND stream=?4",
                )?
                .execute(key)?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_group(&self, scope: &Scope, group: &str) -> Result<u64> {
        let (scope, group) = (scope.clone(), group.to_string());
        self.write(move |conn| {
            let key = params![scope.account, scope.region, group];
            conn.prepare_cached(
                "DELETE FROM log_events WHERE account=?1 AND region=?2 AND grp=?3",
            )?
            .execute(key)?;
            let n = conn
                .prepare_cached(
                    "DELETE FROM log_streams WHERE account=?1 AND region=?2 AND grp=?3",
                )?
                .execute(key)?;
            Ok(n as u64)
        })
        .await
    }

    async fn stream(&self, scope: &Scope, group: &str, stream: &str) -> Result<Option<StreamInfo>> {
        let (scope, group, stream) = (scope.clone(), group.to_string(), stream.to_string());
        self.read(move |c| load_stream(c, &scope, &group, &stream))
            .await
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
            "SELECT {STREAM_COLUMNS} FROM log_streams WHERE account=?1 AND region=?2 AND grp=?3"
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
            sql += &format!(" AND stream >= ?{} AND stream < ?{n}", n - 1);
        }
        if let Some(after) = &q.after {
            let cmp = if q.descending { "<" } else { ">" };
            if q.order == StreamOrder::LastEventTime {
                args.push(Box::new(after.last_event_time));
            }
            args.push(Box::new(after.name.clone()));
            let n = args.len();
            sql += &match q.order {
                StreamOrder::Name => format!(" AND stream {cmp} ?{n}"),
                StreamOrder::LastEventTime => format!(
                    " AND (COALESCE(last_timestamp, 0), stream) {cmp} (?{}, ?{n})",
                    n - 1
                ),
            };
        }
        let dir = if q.descending { "DESC" } else { "ASC" };
        let order: Vec<String> = sort.iter().map(|c| format!("{c} {dir}")).collect();
        sql += &format!(" ORDER BY {} LIMIT {}", order.join(", "), q.limit);
        self.read(move |c| {
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(refs(&args).as_slice(), row_to_stream)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn append(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        events: Vec<NewEvent>,
        ingestion_time: i64,
    ) -> Result<Option<StreamInfo>> {
        let (scope, group, stream) = (scope.clone(), group.to_string(), stream.to_string());
        self.write(move |conn| {
            append_events(conn, &scope, &group, &stream, &events, ingestion_time)
        })
        .await
    }

    async fn read_stream(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        r: &StreamRead,
    ) -> Result<Vec<Event>> {
        // Absent bounds become the extremes, so there is one statement per direction.
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
            "SELECT stream, seq, timestamp, ingestion_time, message FROM log_events
             WHERE account=?1 AND region=?2 AND grp=?3 AND stream=?4
               AND timestamp >= ?5 AND timestamp < ?6
               AND (timestamp, seq) > (?7, ?8) AND (timestamp, seq) < (?9, ?10)
             ORDER BY timestamp {dir}, seq {dir} LIMIT ?11"
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
            Box::new(r.limit as i64),
        ];
        self.read(move |c| query_events(c, &sql, &args)).await
    }

    async fn read_group(&self, scope: &Scope, group: &str, r: &GroupRead) -> Result<Vec<Event>> {
        let mut sql = String::from(
            "SELECT stream, seq, timestamp, ingestion_time, message FROM log_events
             WHERE account=?1 AND region=?2 AND grp=?3
               AND timestamp >= ?4 AND timestamp < ?5",
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
            sql += &format!(
                " AND (timestamp, stream, seq) > (?{}, ?{}, ?{n})",
                n - 2,
                n - 1
            );
        }
        match &r.streams {
            StreamSelector::All => {}
            StreamSelector::Names(names) => {
                let first = args.len() + 1;
                args.extend(
                    names
                        .iter()
                        .map(|n| Box::new(n.clone()) as Box<dyn ToSql + Send>),
                );
                let marks: Vec<String> = (first..=args.len()).map(|i| format!("?{i}")).collect();
                sql += &format!(" AND stream IN ({})", marks.join(", "));
            }
            StreamSelector::Prefix(p) => {
                args.push(Box::new(p.clone()));
                args.push(Box::new(prefix_end(p)));
                let n = args.len();
                sql += &format!(" AND stream >= ?{} AND stream < ?{n}", n - 1);
            }
        }
        sql += &format!(" ORDER BY timestamp, stream, seq LIMIT {}", r.limit);
        self.read(move |c| query_events(c, &sql, &args)).await
    }

    async fn group_stored_bytes(&self, scope: &Scope, group: &str) -> Result<i64> {
        let (scope, group) = (scope.clone(), group.to_string());
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT COALESCE(SUM(stored_bytes), 0) FROM log_streams
                 WHERE account=?1 AND region=?2 AND grp=?3",
            )?
            .query_row(params![scope.account, scope.region, group], |r| r.get(0))?)
        })
        .await
    }

    async fn delete_before(
        &self,
        scope: &Scope,
        group: &str,
        cutoff: i64,
        max: usize,
    ) -> Result<u64> {
        let (scope, group) = (scope.clone(), group.to_string());
        self.write(move |conn| expire_events(conn, &scope, &group, cutoff, max))
            .await
    }

    async fn groups_with_streams(&self) -> Result<Vec<(Scope, String)>> {
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT DISTINCT account, region, grp FROM log_streams")?;
            let rows = st.query_map([], |r| {
                Ok((
                    Scope::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    r.get(2)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
