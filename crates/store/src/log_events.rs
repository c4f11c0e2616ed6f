//! Log streams and their events.
//!
//! Events are too many and too small to be documents: they are appended in
//! batches, read as ordered ranges and expire by age. A stream's metadata
//! (its sequence counter, first/last event times, stored bytes) changes with
//! every append, so it lives beside its events, updated in the same
//! transaction, rather than in a document rewritten on every batch. Log
//! groups stay documents of the [`Store`](crate::Store).
//!
//! Within a stream, events are ordered by [`EventKey`] (timestamp, then the
//! sequence number the append assigned); across a group's streams by
//! [`GroupKey`] (timestamp, stream, sequence). Reads continue strictly after
//! (or before) a key, so a reader can page with nothing but the last key it
//! saw, and appends never move what was already read.

use crate::{Result, Scope};
use async_trait::async_trait;

/// An event as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub timestamp: i64,
    pub message: String,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub stream: String,
    /// Per stream, from 1, in append order; never reused.
    pub seq: i64,
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub message: String,
}

impl Event {
    pub fn key(&self) -> EventKey {
        EventKey {
            timestamp: self.timestamp,
            seq: self.seq,
        }
    }

    pub fn group_key(&self) -> GroupKey {
        GroupKey {
            timestamp: self.timestamp,
            stream: self.stream.clone(),
            seq: self.seq,
        }
    }
}

/// The order of events within a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    pub timestamp: i64,
    pub seq: i64,
}

/// The order of events across the streams of a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub timestamp: i64,
    pub stream: String,
    pub seq: i64,
}

/// A stream and what its events add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub name: String,
    pub creation_time: i64,
    /// The sequence number of the last event appended (0: none yet).
    pub last_seq: i64,
    pub first_event_timestamp: Option<i64>,
    pub last_event_timestamp: Option<i64>,
    pub last_ingestion_time: Option<i64>,
    /// UTF-8 bytes of the stored messages.
    pub stored_bytes: i64,
}

/// A range of one stream's events. Time bounds are inclusive start,
/// exclusive end; `after`/`before` are exclusive.
#[derive(Debug, Clone, Default)]
pub struct StreamRead {
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub after: Option<EventKey>,
    pub before: Option<EventKey>,
    /// Newest first; the caller reverses if it wants chronological order.
    pub descending: bool,
    pub limit: usize,
}

/// Which streams of a group a [`GroupRead`] covers.
#[derive(Debug, Clone, Default)]
pub enum StreamSelector {
    #[default]
    All,
    Names(Vec<String>),
    Prefix(String),
}

/// A range of a group's events across streams, ascending by [`GroupKey`].
#[derive(Debug, Clone, Default)]
pub struct GroupRead {
    pub streams: StreamSelector,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub after: Option<GroupKey>,
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamOrder {
    #[default]
    Name,
    /// By last event timestamp (streams without events count as 0), then name.
    LastEventTime,
}

/// Where a stream listing continues: strictly after this stream in the
/// listing's order (`last_event_time` only matters for `LastEventTime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCursor {
    pub last_event_time: i64,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct StreamQuery {
    pub prefix: Option<String>,
    pub order: StreamOrder,
    pub descending: bool,
    pub after: Option<StreamCursor>,
    pub limit: usize,
}

#[async_trait]
pub trait LogEventStore: Send + Sync + 'static {
    /// Creates an empty stream; `false` if it already exists.
    async fn create_stream(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        creation_time: i64,
    ) -> Result<bool>;

    /// Deletes a stream and its events atomically; `false` if it did not exist.
    async fn delete_stream(&self, scope: &Scope, group: &str, stream: &str) -> Result<bool>;

    /// Deletes every stream of a group and their events atomically; returns
    /// how many streams there were.
    async fn delete_group(&self, scope: &Scope, group: &str) -> Result<u64>;

    async fn stream(&self, scope: &Scope, group: &str, stream: &str) -> Result<Option<StreamInfo>>;

    async fn list_streams(
        &self,
        scope: &Scope,
        group: &str,
        query: &StreamQuery,
    ) -> Result<Vec<StreamInfo>>;

    /// Appends `events` to a stream in one durable transaction, numbering
    /// them after the stream's last sequence number. `None` if the stream
    /// does not exist (checked in the same transaction, so an append racing
    /// a delete never leaves orphaned events). Returns the updated stream.
    async fn append(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        events: Vec<NewEvent>,
        ingestion_time: i64,
    ) -> Result<Option<StreamInfo>>;

    async fn read_stream(
        &self,
        scope: &Scope,
        group: &str,
        stream: &str,
        read: &StreamRead,
    ) -> Result<Vec<Event>>;

    async fn read_group(&self, scope: &Scope, group: &str, read: &GroupRead) -> Result<Vec<Event>>;

    /// UTF-8 bytes of all messages stored in a group.
    async fn group_stored_bytes(&self, scope: &Scope, group: &str) -> Result<i64>;

    /// Deletes at most `max` of the group's events older than `cutoff` (ms),
    /// oldest first, keeping the streams' metadata right; returns how many.
    /// Bounded so that a large expiry does not hold the writer for long.
    async fn delete_before(
        &self,
        scope: &Scope,
        group: &str,
        cutoff: i64,
        max: usize,
    ) -> Result<u64>;

    /// Every (scope, group) that has at least one stream: what a retention
    /// sweep has to visit.
    async fn groups_with_streams(&self) -> Result<Vec<(Scope, String)>>;
}
