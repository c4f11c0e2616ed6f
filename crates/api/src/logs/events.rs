//! PutLogEvents and GetLogEvents.

use super::groups::{load_group, LogGroupRecord, DAY_MS};
use super::streams::sequence_token;
use super::tokens::{Direction, StreamTokens};
use super::{group_name, limit, now_ms, Logs, LogsError};
use crate::records::scope;
use berth_store::{Event, EventKey, NewEvent, StreamRead};
use berth_wire::logs::*;
use berth_wire::RequestContext;

pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Both the largest PutLogEvents batch and the largest read response.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// What each event adds to a batch's size besides its message.
const EVENT_OVERHEAD: usize = 26;
const MAX_AGE_MS: i64 = 14 * DAY_MS;
const MAX_FUTURE_MS: i64 = 2 * 60 * 60 * 1000;
const MAX_SPAN_MS: i64 = DAY_MS;

pub fn event_size(message: &str) -> usize {
    message.len() + EVENT_OVERHEAD
}

/// The earliest timestamp a read may return: its own start, raised to the
/// group's retention cutoff so expired events stay hidden until the sweep.
pub fn visible_start(group: &LogGroupRecord, start: Option<i64>) -> Option<i64> {
    match (start, group.retention_cutoff(now_ms())) {
        (Some(s), Some(c)) => Some(s.max(c)),
        (s, c) => s.or(c),
    }
}

fn validate_batch(events: &[InputLogEvent]) -> Result<(), LogsError> {
    if events.is_empty() || events.len() > MAX_BATCH_EVENTS {
        return Err(LogsError::invalid(format!(
            "A PutLogEvents batch must contain between 1 and {MAX_BATCH_EVENTS} log events."
        )));
    }
    let bytes: usize = events.iter().map(|e| event_size(&e.message)).sum();
    if bytes > MAX_BATCH_BYTES {
        return Err(LogsError::invalid(format!(
            "The batch of log events is {bytes} bytes; the maximum is {MAX_BATCH_BYTES} (UTF-8 message bytes plus {EVENT_OVERHEAD} per event)."
        )));
    }
    if events.iter().any(|e| e.message.is_empty()) {
        return Err(LogsError::invalid("Log event messages must not be empty."));
    }
    if events.windows(2).any(|w| w[0].timestamp > w[1].timestamp) {
        return Err(LogsError::invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    Ok(())
}

/// Splits a chronological batch into the events to store and what
/// `rejectedLogEventsInfo` reports: too old (a prefix), expired under the
/// group's retention (a longer prefix, reported only where it goes beyond
/// the too-old ones), too new (a suffix).
fn classify(
    events: &[InputLogEvent],
    group: &LogGroupRecord,
    now: i64,
) -> (std::ops::Range<usize>, Option<RejectedLogEventsInfo>) {
    let older_than = |cutoff: i64| events.partition_point(|e| e.timestamp < cutoff);
    let too_old = older_than(now - MAX_AGE_MS);
    let expired = group
        .retention_cutoff(now)
        .map_or(0, older_than)
        .max(too_old);
    let too_new = events.partition_point(|e| e.timestamp <= now + MAX_FUTURE_MS);
    let end_index = |n: usize| (n > 0).then(|| n as i32 - 1);
    let info = RejectedLogEventsInfo {
        too_old_log_event_end_index: end_index(too_old),
        expired_log_event_end_index: (expired > too_old).then(|| expired as i32 - 1),
        too_new_log_event_start_index: (too_new < events.len()).then_some(too_new as i32),
    };
    let rejected = info != RejectedLogEventsInfo::default();
    (expired..too_new.max(expired), rejected.then_some(info))
}

pub async fn put(
    logs: &Logs,
    ctx: &RequestContext,
    input: PutLogEventsRequest,
) -> Result<PutLogEventsResponse, LogsError> {
    // The sequence token is accepted and ignored, as AWS does since 2023.
    validate_batch(&input.log_events)?;
    let (group, stream) = (&input.log_group_name, &input.log_stream_name);
    let sc = scope(ctx);
    let g = load_group(logs, &sc, group).await?.value;
    let now = now_ms();
    let (accepted, rejected) = classify(&input.log_events, &g, now);
    let batch = &input.log_events[accepted];
    if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
        if last.timestamp - first.timestamp > MAX_SPAN_MS {
            return Err(LogsError::invalid(
                "The log events in a single PutLogEvents request cannot span more than 24 hours.",
            ));
        }
    }
    let new: Vec<NewEvent> = batch
        .iter()
        .map(|e| NewEvent {
            timestamp: e.timestamp,
            message: e.message.clone(),
        })
        .collect();
    let info = if new.is_empty() {
        logs.events.stream(&sc, group, stream).await?
    } else {
        logs.events.append(&sc, group, stream, new, now).await?
    };
    let info = info.ok_or_else(LogsError::stream_not_found)?;
    Ok(PutLogEventsResponse {
        next_sequence_token: Some(sequence_token(info.last_seq)),
        rejected_log_events_info: rejected,
        rejected_entity_info: None,
    })
}

/// Keeps the events (in read order) that fit in one response.
fn cap_bytes(events: &mut Vec<Event>) {
    let mut total = 0;
    let fits = events
        .iter()
        .take_while(|e| {
            total += event_size(&e.message);
            total <= MAX_BATCH_BYTES
        })
        .count();
    events.truncate(fits);
}

pub async fn get(
    logs: &Logs,
    ctx: &RequestContext,
    input: GetLogEventsRequest,
) -> Result<GetLogEventsResponse, LogsError> {
    let group = group_name(
        ctx,
        input.log_group_name.as_deref(),
        input.log_group_identifier.as_deref(),
    )?;
    let stream = &input.log_stream_name;
    let page_size = limit(input.limit, MAX_BATCH_EVENTS)?;
    let tokens = StreamTokens::new(&logs.tokens, ctx, &group, stream);
    let cursor = input
        .next_token
        .as_deref()
        .map(|t| tokens.decode(t))
        .transpose()?;
    let sc = scope(ctx);
    let g = load_group(logs, &sc, &group).await?.value;
    if logs.events.stream(&sc, &group, stream).await?.is_none() {
        return Err(LogsError::stream_not_found());
    }
    let start = visible_start(&g, input.start_time);
    let mut read = StreamRead {
        start_time: start,
        end_time: input.end_time,
        limit: page_size,
        ..Default::default()
    };
    // Without a token, startFromHead picks the first or the last page.
    let forward = match cursor {
        Some((Direction::Forward, k)) => {
            read.after = Some(k);
            true
        }
        Some((Direction::Backward, k)) => {
            read.before = Some(k);
            false
        }
        None => input.start_from_head.unwrap_or(false),
    };
    read.descending = !forward;
    let mut events = logs.events.read_stream(&sc, &group, stream, &read).await?;
    cap_bytes(&mut events);
    if !forward {
        events.reverse();
    }
    // Tokens name the gap after (forward) or before (backward) an event.
    // At the end of the stream the token passed in comes back unchanged.
    let (fwd, back) = match (events.first(), events.last(), cursor) {
        (Some(first), Some(last), _) => (last.key(), first.key()),
        (_, _, Some((Direction::Forward, k))) => (
            k,
            EventKey {
                seq: k.seq + 1,
                ..k
            },
        ),
        (_, _, Some((Direction::Backward, k))) => (
            EventKey {
                seq: k.seq - 1,
                ..k
            },
            k,
        ),
        (_, _, None) => {
            let head = EventKey {
                timestamp: start.unwrap_or(i64::MIN),
                seq: 0,
            };
            (head, head)
        }
    };
    Ok(GetLogEventsResponse {
        events: Some(
            events
                .into_iter()
                .map(|e| OutputLogEvent {
                    timestamp: Some(e.timestamp),
                    message: Some(e.message),
                    ingestion_time: Some(e.ingestion_time),
                })
                .collect(),
        ),
        next_forward_token: Some(tokens.encode(Direction::Forward, fwd)),
        next_backward_token: Some(tokens.encode(Direction::Backward, back)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(retention_in_days: Option<i32>) -> LogGroupRecord {
        LogGroupRecord {
            name: "g".into(),
            creation_time: 0,
            retention_in_days,
            tags: Default::default(),
            class: LogGroupClass::Standard,
        }
    }

    fn batch(timestamps: &[i64]) -> Vec<InputLogEvent> {
        timestamps
            .iter()
            .map(|&t| InputLogEvent {
                timestamp: t,
                message: "m".into(),
            })
            .collect()
    }

    #[test]
    fn classify_splits_too_old_expired_and_too_new() {
        let now = 100 * DAY_MS;
        let events = batch(&[
            now - 15 * DAY_MS,
            now - 3 * DAY_MS,
            now - 1000,
            now,
            now + 3 * 3_600_000,
        ]);
        let (ok, info) = classify(&events, &group(Some(1)), now);
        assert_eq!(ok, 2..4);
        let info = info.unwrap();
        assert_eq!(info.too_old_log_event_end_index, Some(0));
        assert_eq!(info.expired_log_event_end_index, Some(1));
        assert_eq!(info.too_new_log_event_start_index, Some(4));
        // Without retention, only age and future matter.
        let (ok, info) = classify(&events, &group(None), now);
        assert_eq!(ok, 1..4);
        assert_eq!(info.unwrap().expired_log_event_end_index, None);
        // All good: nothing reported.
        let (ok, info) = classify(&events[2..4], &group(Some(1)), now);
        assert_eq!((ok, info), (0..2, None));
        // All rejected: an empty range.
        let (ok, _) = classify(&events[..1], &group(None), now);
        assert!(ok.is_empty());
    }

    #[test]
    fn batches_are_validated() {
        assert!(validate_batch(&[]).is_err());
        assert!(validate_batch(&batch(&[2, 1])).is_err());
        assert!(validate_batch(&batch(&[1, 1, 2])).is_ok());
        let big = vec![
            InputLogEvent {
                timestamp: 1,
                message: "x".repeat(MAX_BATCH_BYTES - EVENT_OVERHEAD),
            };
            1
        ];
        assert!(validate_batch(&big).is_ok());
        let mut too_big = big.clone();
        too_big[0].message.push('x');
        assert!(validate_batch(&too_big).is_err());
        assert!(validate_batch(&batch(&vec![1; MAX_BATCH_EVENTS + 1])).is_err());
    }
}
