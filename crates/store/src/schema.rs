//! Schema migrations, applied in order and recorded in `user_version`.

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
];
