//! PostgreSQL schema migrations, applied in order at start and recorded in
//! `berth_migrations`. Text that orders listings is `COLLATE "C"`: byte
//! order, as SQLite compares, whatever the database's locale.

pub const MIGRATIONS: &[&str] = &[
    // 1: documents, log streams and log events, with the indexes the
    // SQLite schema has (see crate::sqlite::schema for why each exists).
    // Messages are UTF-8 bytes: TEXT cannot hold the NUL character, which
    // a log message (and SQLite's TEXT) may.
    r#"CREATE TABLE docs (
        account TEXT COLLATE "C" NOT NULL,
        region TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL,
        sort TEXT COLLATE "C" NOT NULL,
        parent TEXT COLLATE "C" NOT NULL,
        status TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL,
        body BYTEA NOT NULL,
        PRIMARY KEY (account, region, kind, id)
    );
    CREATE UNIQUE INDEX docs_by_sort ON docs (account, region, kind, sort);
    CREATE INDEX docs_by_parent ON docs (account, region, kind, parent, sort);
    CREATE INDEX docs_by_status ON docs (account, region, kind, status, sort);
    CREATE INDEX docs_by_parent_status ON docs (account, region, kind, parent, status);
    CREATE INDEX docs_by_kind ON docs (kind, account, region);
    CREATE TABLE log_streams (
        account TEXT COLLATE "C" NOT NULL,
        region TEXT COLLATE "C" NOT NULL,
        grp TEXT COLLATE "C" NOT NULL,
        stream TEXT COLLATE "C" NOT NULL,
        creation_time BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        first_timestamp BIGINT,
        last_timestamp BIGINT,
        last_ingestion_time BIGINT,
        stored_bytes BIGINT NOT NULL,
        PRIMARY KEY (account, region, grp, stream)
    );
    CREATE INDEX log_streams_by_last_event ON log_streams
        (account, region, grp, (COALESCE(last_timestamp, 0)), stream);
    CREATE TABLE log_events (
        account TEXT COLLATE "C" NOT NULL,
        region TEXT COLLATE "C" NOT NULL,
        grp TEXT COLLATE "C" NOT NULL,
        stream TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        ingestion_time BIGINT NOT NULL,
        message BYTEA NOT NULL,
        PRIMARY KEY (account, region, grp, stream, seq)
    );
    CREATE INDEX log_events_by_stream_time ON log_events
        (account, region, grp, stream, ts, seq);
    CREATE INDEX log_events_by_group_time ON log_events
        (account, region, grp, ts, stream, seq);"#,
];
