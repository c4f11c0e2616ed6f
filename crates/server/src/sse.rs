//! `GET /events`: the caller's account and region's events (ECS's and
//! PutEvents') as they are delivered, as server-sent events, for people
//! and scripts (`curl --no-buffer --aws-sigv4 "aws:amz:REGION:events"`).
//!
//! The stream taps the deliverer in-process (`Events::subscribe`): it
//! holds no rule, no queue, nothing stored, so a client that goes away
//! leaves nothing behind, and a server that dies takes nothing with it.
//! The tap is a bounded broadcast: a reader that falls behind by more
//! than its capacity is told so and its stream ends (it may reconnect),
//! and one that stops reading altogether is closed by the connection's
//! stream write timeout (`conn`). Streams are capped per key and in all.
//!
//! One message per event: `id:` the event id, `event:` its detail-type,
//! `data:` the event (EventBridge's envelope) on one line; a comment every
//! 15 s keeps proxies from closing a quiet stream. `?pattern=` takes an
//! EventBridge event pattern (URL-encoded JSON), as a rule's.

use crate::http::{authenticate_bodiless, AppState};
use crate::protocol::{self, Protocol};
use crate::services::Service;
use axum::body::Body;
use axum::response::Response;
use berth_api::events::Tapped;
use berth_core::event_pattern;
use berth_wire::query::Params;
use berth_wire::{ApiError, RequestContext};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};

/// Where the stream is served.
pub const PATH: &str = "/events";
/// The IAM action a policy must allow (berth's own; AWS has no stream).
const ACTION: &str = "StreamEvents";
const HEARTBEAT: Duration = Duration::from_secs(15);
const MAX_PER_KEY: usize = 8;
const MAX_TOTAL: usize = 256;

/// Marks a streamed answer, for the connection's clocks (`conn`).
#[derive(Clone, Copy)]
pub struct Streaming;

/// A GET of [`PATH`] that names no operation.
pub fn is_stream_request(parts: &http::request::Parts) -> bool {
    parts.method == http::Method::GET
        && parts.uri.path() == PATH
        && !parts.headers.contains_key("x-amz-target")
}

/// Open streams, per access key.
#[derive(Clone, Default)]
pub struct Streams(Arc<Mutex<HashMap<String, usize>>>);

/// One open stream's place; dropping it gives the place back.
struct Slot {
    streams: Streams,
    key: String,
}

impl Streams {
    fn open(&self, key: &str) -> Result<Slot, ApiError> {
        let mut open = self.0.lock();
        let total: usize = open.values().sum();
        let mine = open.get(key).copied().unwrap_or(0);
        if mine >= MAX_PER_KEY || total >= MAX_TOTAL {
            return Err(ApiError::client(
                "LimitExceededException",
                format!(
                    "Too many open event streams (at most {MAX_PER_KEY} per access key, \
{MAX_TOTAL} in all)."
                ),
            ));
        }
        open.insert(key.to_string(), mine + 1);
        Ok(Slot {
            streams: self.clone(),
            key: key.to_string(),
        })
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        self.0.lock().values().sum()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.0.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Answers a stream request: an error in AWS JSON's envelope, or the stream.
pub async fn serve(
    state: Arc<AppState>,
    parts: http::request::Parts,
    request_id: String,
) -> Response {
    match open(&state, &parts, &request_id).await {
        Ok(feed) => respond(feed, &request_id),
        Err(e) => {
            tracing::debug!(code = %e.code, message = %e.message, request_id, "event stream refused");
            protocol::error_response(Protocol::Json(Some(Service::Events)), &e, &request_id)
        }
    }
}

async fn open(
    state: &AppState,
    parts: &http::request::Parts,
    request_id: &str,
) -> Result<Feed, ApiError> {
    let ctx = authenticate_bodiless(state, parts, Service::Events, ACTION, request_id).await?;
    let pattern = pattern(parts.uri.query().unwrap_or(""))?;
    let slot = state.streams.open(&ctx.access_key_id)?;
    tracing::debug!(account = %ctx.account_id, region = %ctx.region, request_id, "event stream opened");
    Ok(Feed::new(
        state.services.events.subscribe(),
        &ctx,
        pattern,
        slot,
    ))
}

/// The `pattern` parameter, parsed; any other parameter (but the
/// signature's) is refused.
fn pattern(query: &str) -> Result<Option<Value>, ApiError> {
    let params = Params::parse(query.as_bytes())?;
    let mut pattern = None;
    for (k, v) in params.iter() {
        match k {
            "pattern" => {
                let p = event_pattern::parse(v)
                    .map_err(|e| ApiError::client("InvalidEventPatternException", e.to_string()))?;
                pattern = Some(p);
            }
            k if k.starts_with("X-Amz-") => {}
            k => {
                return Err(ApiError::client(
                    "ValidationException",
                    format!("Unknown parameter {k}: the event stream takes only pattern."),
                ))
            }
        }
    }
    Ok(pattern)
}

/// What one stream reads from the tap, and keeps.
struct Feed {
    rx: broadcast::Receiver<Arc<Tapped>>,
    account: String,
    region: String,
    pattern: Option<Value>,
    heartbeat: tokio::time::Interval,
    done: bool,
    _slot: Slot,
}

impl Feed {
    fn new(
        rx: broadcast::Receiver<Arc<Tapped>>,
        ctx: &RequestContext,
        pattern: Option<Value>,
        slot: Slot,
    ) -> Feed {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Feed {
            rx,
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            pattern,
            heartbeat,
            done: false,
            _slot: slot,
        }
    }

    /// The next chunk to send, or None when the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        loop {
            tokio::select! {
                r = self.rx.recv() => match r {
                    Ok(ev) if self.wants(&ev) => return Some(message(&ev)),
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        self.done = true;
                        return Some(Bytes::from(format!(
                            ": too slow: {n} events were skipped; the stream ends, reconnect\n\n"
                        )));
                    }
                    Err(RecvError::Closed) => return None,
                },
                // The first tick is at once: it opens the stream.
                _ = self.heartbeat.tick() => return Some(Bytes::from_static(b":\n\n")),
            }
        }
    }

    fn wants(&self, ev: &Tapped) -> bool {
        ev.account == self.account
            && ev.region == self.region
            && self
                .pattern
                .as_ref()
                .is_none_or(|p| event_pattern::matches(p, &ev.event))
    }
}

/// One SSE message. The id and detail-type are a line each: line breaks a
/// PutEvents caller put in its detail-type would end the field early.
fn message(ev: &Tapped) -> Bytes {
    let one_line = |s: &str| s.replace(['\r', '\n'], " ");
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        one_line(&ev.id),
        one_line(&ev.detail_type),
        ev.event
    ))
}

fn respond(feed: Feed, request_id: &str) -> Response {
    let chunks = futures::stream::unfold(feed, |mut feed| async move {
        let chunk = feed.next().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), feed))
    });
    let mut r = Response::new(Body::from_stream(chunks));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    // Tells nginx-like proxies not to hold the stream back.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    r.extensions_mut().insert(Streaming);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tapped(account: &str, detail_type: &str) -> Arc<Tapped> {
        Arc::new(Tapped {
            account: account.into(),
            region: "us-east-1".into(),
            id: "e1".into(),
            detail_type: detail_type.into(),
            event: serde_json::json!({"source": "aws.ecs", "detail-type": detail_type,
                                      "detail": {"lastStatus": "RUNNING"}}),
        })
    }

    fn ctx(account: &str) -> RequestContext {
        RequestContext {
            account_id: account.into(),
            region: "us-east-1".into(),
            principal_arn: String::new(),
            access_key_id: "AKID".into(),
            request_id: String::new(),
        }
    }

    #[tokio::test]
    async fn only_the_callers_matching_events_and_slots_come_back() {
        let streams = Streams::default();
        let (tx, rx) = broadcast::channel(4);
        let pattern = event_pattern::parse(r#"{"detail":{"lastStatus":["RUNNING"]}}"#).unwrap();
        let mut feed = Feed::new(
            rx,
            &ctx("111"),
            Some(pattern),
            streams.open("AKID").unwrap(),
        );
        assert_eq!(feed.next().await.unwrap(), ":\n\n");
        tx.send(tapped("222", "ECS Task State Change")).unwrap();
        tx.send(tapped("111", "x\ndata: forged")).unwrap();
        let m = feed.next().await.unwrap();
        let m = std::str::from_utf8(&m).unwrap();
        assert!(
            m.starts_with("id: e1\nevent: x data: forged\ndata: {"),
            "{m}"
        );
        assert_eq!(m.matches('\n').count(), 4);
        assert_eq!(streams.count(), 1);
        drop(feed);
        assert_eq!(streams.count(), 0);
    }

    #[tokio::test]
    async fn a_lagging_reader_is_told_and_ended() {
        let (tx, rx) = broadcast::channel(2);
        let mut feed = Feed::new(rx, &ctx("111"), None, Streams::default().open("K").unwrap());
        feed.next().await.unwrap();
        for _ in 0..5 {
            tx.send(tapped("111", "T")).unwrap();
        }
        let m = feed.next().await.unwrap();
        assert!(m.starts_with(b": too slow"));
        assert!(feed.next().await.is_none());
    }

    #[test]
    fn streams_are_capped_per_key() {
        let streams = Streams::default();
        let held: Vec<_> = (0..MAX_PER_KEY)
            .map(|_| streams.open("K").unwrap())
            .collect();
        assert!(streams.open("K").is_err());
        assert!(streams.open("OTHER").is_ok());
        drop(held);
        assert!(streams.open("K").is_ok());
    }

    #[test]
    fn parameters_are_checked() {
        assert!(pattern("").unwrap().is_none());
        assert!(pattern("pattern=%7B%22source%22%3A%5B%22aws.ecs%22%5D%7D")
            .unwrap()
            .is_some());
        assert_eq!(
            pattern("pattern=nope").unwrap_err().code,
            "InvalidEventPatternException"
        );
        assert_eq!(pattern("other=1").unwrap_err().code, "ValidationException");
        assert!(pattern("X-Amz-Signature=00").unwrap().is_none());
    }
}
