//! SQLite schema migrations, applied in order and recorded in `user_version`.

pub const MIGRATIONS: &[&str] = &[
    // 1: versioned JSON documents with the three indexes listings use.
    "CREATE TABLE docs (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        sort TEXT NOT NULL,
        parent TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (account, region, kind, id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX docs_by_sort ON docs (account, region, kind, sort);
    CREATE INDEX docs_by_parent ON docs (account, region, kind, parent, sort);
    CREATE INDEX docs_by_status ON docs (account, region, kind, status, sort);",
    // 2: log streams (one row each, updated with every append) and their
    // events. A rowid table for events, since messages can be large; the
    // primary key numbers a stream's events, the two indexes serve
    // GetLogEvents (one stream by time) and FilterLogEvents and retention
    // (a group by time).
    "CREATE TABLE log_streams (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        grp TEXT NOT NULL,
        stream TEXT NOT NULL,
        creation_time INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        first_timestamp INTEGER,
        last_timestamp INTEGER,
        last_ingestion_time INTEGER,
        stored_bytes INTEGER NOT NULL,
        PRIMARY KEY (account, region, grp, stream)
    ) WITHOUT ROWID;
    CREATE INDEX log_streams_by_last_event ON log_streams
        (account, region, grp, COALESCE(last_timestamp, 0), stream);
    CREATE TABLE log_events (
        account TEXT NOT NULL,
        region TEXT NOT NULL,
        grp TEXT NOT NULL,
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        ingestion_time INTEGER NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (account, region, grp, stream, seq)
    );
    CREATE INDEX log_events_by_stream_time ON log_events
        (account, region, grp, stream, timestamp, seq);
    CREATE INDEX log_events_by_group_time ON log_events
        (account, region, grp, timestamp, stream, seq);",
    // 3: counts by owner and status (DescribeClusters' task and instance
    // counts) from the index alone: with only the (parent, sort) index they
    // walked every task of the cluster (350 ms at 100,000 tasks).
    "CREATE INDEX docs_by_parent_status ON docs (account, region, kind, parent, status);",
    // 4: which accounts and regions hold a kind (the sweeps' scopes()),
    // without walking every document.
    "CREATE INDEX docs_by_kind ON docs (kind, account, region);",
];
