//! Copying a whole store into another, empty one (SQLite into PostgreSQL
//! and back): `berth store copy`.
//!
//! Rows are copied as they are, versions and sequence numbers included, so
//! that nothing a client or agent holds (a version it read, a log token
//! naming a sequence number) changes meaning on the other side. This goes
//! beside the [`Store`](crate::Store) traits, not through them: a commit
//! numbers versions and an append numbers events afresh. Run it with the
//! servers stopped.

use crate::log_events::{Event, StreamInfo};
use crate::{Result, Scope, StoreError};
use async_trait::async_trait;

/// A document as stored, with its scope and a kind of any name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDoc {
    pub scope: Scope,
    pub kind: String,
    pub id: String,
    pub sort: String,
    pub parent: String,
    pub status: String,
    pub version: i64,
    pub body: Vec<u8>,
}

/// Where a walk over documents continues: strictly after this key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DocKey {
    pub scope_account: String,
    pub scope_region: String,
    pub kind: String,
    pub id: String,
}

impl RawDoc {
    pub fn key(&self) -> DocKey {
        DocKey {
            scope_account: self.scope.account.clone(),
            scope_region: self.scope.region.clone(),
            kind: self.kind.clone(),
            id: self.id.clone(),
        }
    }
}

/// A log stream with the scope and group it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawStream {
    pub scope: Scope,
    pub group: String,
    pub info: StreamInfo,
}

/// What a backend offers for copying: ordered walks and verbatim loads.
#[async_trait]
pub trait Transfer: Send + Sync {
    /// Whether the store holds no documents and no log streams.
    async fn is_empty(&self) -> Result<bool>;
    /// Up to `limit` documents after `after`, by (account, region, kind, id).
    async fn dump_docs(&self, after: Option<&DocKey>, limit: usize) -> Result<Vec<RawDoc>>;
    /// Every log stream (their number is modest; events are walked per stream).
    async fn dump_streams(&self) -> Result<Vec<RawStream>>;
    /// Up to `limit` events of a stream with sequence numbers above `after_seq`, by sequence.
    async fn dump_events(
        &self,
        stream: &RawStream,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Event>>;
    /// Inserts documents as they are, in one transaction.
    async fn load_docs(&self, docs: Vec<RawDoc>) -> Result<()>;
    /// Inserts a stream's row as it is (its counters included).
    async fn load_stream(&self, stream: &RawStream) -> Result<()>;
    /// Inserts events of a stream as they are, in one transaction.
    async fn load_events(&self, stream: &RawStream, events: Vec<Event>) -> Result<()>;
}

/// What a copy moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    pub docs: u64,
    pub streams: u64,
    pub events: u64,
}

const CHUNK: usize = 1000;

/// Copies everything in `from` into `to`, which must be empty.
pub async fn copy(from: &dyn Transfer, to: &dyn Transfer) -> Result<CopyStats> {
    if !to.is_empty().await? {
        return Err(StoreError::Backend(
            "the destination store is not empty: copy only into a new one".into(),
        ));
    }
    let mut stats = CopyStats::default();
    let mut after: Option<DocKey> = None;
    loop {
        let docs = from.dump_docs(after.as_ref(), CHUNK).await?;
        let Some(last) = docs.last() else { break };
        after = Some(last.key());
        stats.docs += docs.len() as u64;
        to.load_docs(docs).await?;
    }
    for stream in from.dump_streams().await? {
        to.load_stream(&stream).await?;
        stats.streams += 1;
        let mut after_seq = 0;
        loop {
            let events = from.dump_events(&stream, after_seq, CHUNK).await?;
            let Some(last) = events.last() else { break };
            after_seq = last.seq;
            stats.events += events.len() as u64;
            to.load_events(&stream, events).await?;
        }
    }
    Ok(stats)
}
