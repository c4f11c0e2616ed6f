//! SQLite-only checks; what every backend must do is in tests/suite.

use super::*;
use crate::Store;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("berth.db")).unwrap();
    (dir, s)
}

fn scope() -> Scope {
    Scope::new("123456789012", "us-east-1")
}

#[test]
fn range_reads_use_the_indexes() {
    let (_d, s) = store();
    let plan = |sql: &str| -> String {
        s.with_reader(|c| {
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            let rows = st.query_map([], |r| r.get::<_, String>(3))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?.join("; "))
        })
        .unwrap()
    };
    let stream = plan(
        "SELECT message FROM log_events WHERE account='a' AND region='r' AND grp='g'
         AND stream='s' AND timestamp >= 0 AND timestamp < 9 AND (timestamp, seq) > (1, 2)
         ORDER BY timestamp, seq LIMIT 10",
    );
    assert!(stream.contains("log_events_by_stream_time"), "{stream}");
    assert!(!stream.contains("TEMP B-TREE"), "{stream}");
    let group = plan(
        "SELECT message FROM log_events WHERE account='a' AND region='r' AND grp='g'
         AND timestamp >= 0 AND timestamp < 9 AND (timestamp, stream, seq) > (1, 's', 2)
         ORDER BY timestamp, stream, seq LIMIT 10",
    );
    assert!(group.contains("log_events_by_group_time"), "{group}");
    assert!(!group.contains("TEMP B-TREE"), "{group}");
    let by_time = plan(
        "SELECT stream FROM log_streams WHERE account='a' AND region='r' AND grp='g'
         ORDER BY COALESCE(last_timestamp, 0) DESC, stream DESC LIMIT 10",
    );
    assert!(by_time.contains("log_streams_by_last_event"), "{by_time}");
}

#[tokio::test]
async fn a_version_1_store_is_migrated_and_keeps_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(crate::sqlite::schema::MIGRATIONS[0])
            .unwrap();
        c.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO docs VALUES ('123456789012', 'us-east-1', 'k', 'a', 'a', '', '', 1, x'');",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert!(s.get(&scope(), "k", "a").await.unwrap().is_some());
    assert!(s.create_stream(&scope(), "g", "a", 0).await.unwrap());
}
