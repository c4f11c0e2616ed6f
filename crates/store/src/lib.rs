//! berth's durable state.
//!
//! State is a set of JSON documents, each identified by (account, region,
//! kind, id), carrying a `version` for optimistic concurrency, a `sort` key
//! that orders listings and pages, and two indexed attributes (`parent`,
//! `status`) that listings filter on. Domain code reads documents, decides,
//! and commits a batch of conditional writes that applies atomically or not
//! at all ([`StoreError::Conflict`] → re-read and retry). This is the model
//! of etcd/Kubernetes and of Nomad's plan apply: it needs nothing from a
//! backend but conditional batch writes and ordered range reads, so the
//! embedded SQLite backend ([`SqliteStore`]) and the PostgreSQL backend for
//! control planes of several servers ([`PostgresStore`]) implement the same
//! small trait, and pass one test suite (`tests/suite`).
//!
//! Log events are the exception: see [`LogEventStore`], the second trait a
//! backend implements, in the same database.

pub mod copy;
mod log_events;
mod postgres;
mod sqlite;

pub use log_events::{
    Event, EventKey, GroupKey, GroupRead, LogEventStore, NewEvent, StreamCursor, StreamInfo,
    StreamOrder, StreamQuery, StreamRead, StreamSelector,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// The partition every document lives in: an account in a region.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Scope {
            account: account.into(),
            region: region.into(),
        }
    }
}

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    pub kind: &'static str,
    pub id: String,
    /// Orders listings; unique within a kind and scope.
    pub sort: String,
    /// An indexed owner, e.g. the cluster of a task or the family of a revision.
    pub parent: String,
    /// An indexed lifecycle status, e.g. `ACTIVE`.
    pub status: String,
    /// Starts at 1 and grows by one on every write.
    pub version: i64,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl Doc {
    /// A new document whose sort key is its id.
    pub fn new(kind: &'static str, id: impl Into<String>, body: Vec<u8>) -> Self {
        let id = id.into();
        Doc {
            kind,
            sort: id.clone(),
            id,
            parent: String::new(),
            status: String::new(),
            version: 0,
            body,
        }
    }

    pub fn with_sort(mut self, sort: impl Into<String>) -> Self {
        self.sort = sort.into();
        self
    }

    pub fn with_parent(mut self, parent: impl Into<String>) -> Self {
        self.parent = parent.into();
        self
    }

    pub fn with_status(mut self, status: impl Into<String>) -> Self {
        self.status = status.into();
        self
    }
}

/// What must hold for a write to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Apply whatever is stored.
    Any,
    /// The document must not exist.
    Absent,
    /// The document must exist at exactly this version.
    Version(i64),
}

#[derive(Debug, Clone)]
pub enum Write {
    /// Insert or replace `doc` (its `version` field is ignored).
    Put { doc: Doc, expect: Expect },
    Delete {
        kind: &'static str,
        id: String,
        expect: Expect,
    },
}

impl Write {
    /// Put `doc`, requiring that nobody changed it since it was read at
    /// `doc.version` (0 meaning "it did not exist").
    pub fn put_over(doc: Doc) -> Write {
        let expect = if doc.version == 0 {
            Expect::Absent
        } else {
            Expect::Version(doc.version)
        };
        Write::Put { doc, expect }
    }
}

/// A filtered, ordered page of one kind.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub parent: Option<String>,
    pub status: Option<String>,
    /// Only sort keys starting with this.
    pub sort_prefix: Option<String>,
    /// Continue strictly after (or, descending, before) this sort key.
    pub after: Option<String>,
    pub descending: bool,
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A precondition failed: someone else wrote first. Re-read and retry.
    #[error("write conflict on {kind}/{id}")]
    Conflict { kind: &'static str, id: String },
    #[error("store failure: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, scope: &Scope, kind: &'static str, id: &str) -> Result<Option<Doc>>;

    async fn list(&self, scope: &Scope, kind: &'static str, query: &Query) -> Result<Vec<Doc>>;

    /// How many documents of `kind` match `parent` and `status` (when given).
    async fn count(
        &self,
        scope: &Scope,
        kind: &'static str,
        parent: Option<&str>,
        status: Option<&str>,
    ) -> Result<u64>;

    /// Applies all writes atomically and durably, or none. Returns the new
    /// version of each written document (0 for deletes), in order.
    async fn commit(&self, scope: &Scope, writes: Vec<Write>) -> Result<Vec<i64>>;

    /// Every scope holding documents of `kind`: for sweeps that look across
    /// accounts and regions (lost agents, expired tasks).
    async fn scopes(&self, kind: &'static str) -> Result<Vec<Scope>>;
}
