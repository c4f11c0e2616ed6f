//! FilterLogEvents, and the part of the filter pattern syntax berth
//! understands: unstructured terms.
//!
//! * `ERROR timeout`: every term must appear (case-sensitive substring);
//! * `"connection reset"`: a quoted phrase is one term, spaces included;
//! * `?ERROR ?WARN`: at least one of the `?` terms must appear;
//! * `ERROR -healthcheck`: a `-` term must not appear;
//! * an empty pattern matches everything.
//!
//! JSON (`{ $.level = ... }`), space-delimited (`[ip, user, ...]`) and regex
//! (`%...%`) patterns are refused with `InvalidParameterException`.

use super::events::{event_size, visible_start, MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
use super::groups::load_group;
use super::tokens::event_id;
use super::{group_name, limit, Logs, LogsError};
use crate::records::scope;
use berth_core::pagination::PageKey;
use berth_store::{GroupKey, GroupRead, StreamSelector};
use berth_wire::logs::*;
use berth_wire::RequestContext;

/// Events read from the store per round trip.
const CHUNK: usize = 1_000;
/// Events examined per call at most; past that, the caller gets what matched
/// so far (perhaps nothing) and a token, as AWS documents.
const MAX_SCANNED: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pattern {
    all: Vec<String>,
    any: Vec<String>,
    none: Vec<String>,
}

impl Pattern {
    pub fn parse(pattern: &str) -> Result<Pattern, LogsError> {
        let text = pattern.trim();
        if text.starts_with(['{', '[']) || (text.len() > 1 && text.starts_with('%')) {
            return Err(LogsError::invalid(format!(
                "berth supports only term and phrase filter patterns, not JSON, space-delimited or regex patterns: {pattern}"
            )));
        }
        let mut out = Pattern::default();
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else {
                return Ok(out);
            };
            let list = match first {
                '?' => &mut out.any,
                '-' => &mut out.none,
                _ => &mut out.all,
            };
            if first == '?' || first == '-' {
                chars.next();
            }
            let term: String = if chars.next_if_eq(&'"').is_some() {
                let mut phrase = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break phrase,
                        Some(c) => phrase.push(c),
                        None => {
                            return Err(LogsError::invalid(format!(
                                "Unterminated quoted phrase in filter pattern: {pattern}"
                            )))
                        }
                    }
                }
            } else {
                std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())).collect()
            };
            if !term.is_empty() {
                list.push(term);
            }
        }
    }

    pub fn matches(&self, message: &str) -> bool {
        self.all.iter().all(|t| message.contains(t.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str())))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
    }
}

pub async fn filter(
    logs: &Logs,
    ctx: &RequestContext,
    input: FilterLogEventsRequest,
) -> Result<FilterLogEventsResponse, LogsError> {
    let group = group_name(
        ctx,
        input.log_group_name.as_deref(),
        input.log_group_identifier.as_deref(),
    )?;
    let streams = match (&input.log_stream_names, &input.log_stream_name_prefix) {
        (Some(_), Some(_)) => {
            return Err(LogsError::invalid(
                "logStreamNames and logStreamNamePrefix are mutually exclusive.",
            ))
        }
        (Some(names), None) => StreamSelector::Names(names.clone()),
        (None, Some(prefix)) => StreamSelector::Prefix(prefix.clone()),
        (None, None) => StreamSelector::All,
    };
    let pattern = Pattern::parse(input.filter_pattern.as_deref().unwrap_or(""))?;
    let page_size = limit(input.limit, MAX_BATCH_EVENTS)?;
    let filter = serde_json::json!([
        group,
        input.log_stream_names,
        input.log_stream_name_prefix,
        input.filter_pattern,
        input.start_time,
        input.end_time
    ])
    .to_string();
    let page = PageKey {
        operation: "FilterLogEvents",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &filter,
    };
    let mut after = match &input.next_token {
        Some(t) => Some(decode_key(&logs.tokens.decode(&page, t)?, t)?),
        None => None,
    };
    let sc = scope(ctx);
    let g = load_group(logs, &sc, &group).await?.value;
    let mut read = GroupRead {
        streams,
        start_time: visible_start(&g, input.start_time),
        // FilterLogEvents' endTime is inclusive (GetLogEvents' is not).
        end_time: input.end_time.map(|e| e.saturating_add(1)),
        after: None,
        limit: CHUNK,
    };
    let (mut found, mut bytes, mut scanned) = (Vec::new(), 0, 0);
    let more = 'scan: loop {
        read.after = after.clone();
        let batch = logs.events.read_group(&sc, &group, &read).await?;
        let exhausted = batch.len() < CHUNK;
        for e in batch {
            if pattern.matches(&e.message) {
                let size = event_size(&e.message);
                if found.len() == page_size || bytes + size > MAX_BATCH_BYTES {
                    break 'scan true;
                }
                bytes += size;
                found.push(FilteredLogEvent {
                    event_id: Some(event_id(&e.stream, e.key())),
                    log_stream_name: Some(e.stream.clone()),
                    timestamp: Some(e.timestamp),
                    ingestion_time: Some(e.ingestion_time),
                    message: Some(e.message.clone()),
                });
            }
            after = Some(e.group_key());
            scanned += 1;
        }
        if exhausted {
            break false;
        }
        if scanned >= MAX_SCANNED {
            break true;
        }
    };
    let next_token = match (more, &after) {
        (true, Some(k)) => Some(
            logs.tokens
                .encode(&page, &format!("{}/{}/{}", k.timestamp, k.seq, k.stream)),
        ),
        _ => None,
    };
    Ok(FilterLogEventsResponse {
        events: Some(found),
        searched_log_streams: None,
        next_token,
    })
}

/// The position inside a (signed) FilterLogEvents token:
/// `<timestamp>/<seq>/<stream>`, the stream last since it may contain '/'.
fn decode_key(position: &str, token: &str) -> Result<GroupKey, LogsError> {
    let mut parts = position.splitn(3, '/');
    let mut next = || parts.next();
    (|| {
        Some(GroupKey {
            timestamp: next()?.parse().ok()?,
            seq: next()?.parse().ok()?,
            stream: next()?.to_string(),
        })
    })()
    .ok_or_else(|| LogsError::invalid(format!("Invalid token {token}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, message: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(message)
    }

    #[test]
    fn empty_pattern_matches_everything() {
        assert!(matches("", "anything"));
        assert!(matches("   ", ""));
    }

    #[test]
    fn every_plain_term_must_appear_case_sensitively() {
        assert!(matches("ERROR", "2024 ERROR disk full"));
        assert!(matches("ERROR disk", "ERROR: the disk is full"));
        assert!(!matches("ERROR disk", "ERROR: the volume is full"));
        assert!(!matches("error", "ERROR"));
        // Terms are substrings, in any order.
        assert!(matches("full ERR", "ERROR disk full"));
    }

    #[test]
    fn quoted_phrases_match_as_a_whole() {
        assert!(matches("\"disk full\"", "ERROR disk full"));
        assert!(!matches("\"disk full\"", "full disk"));
        assert!(matches("ERROR \"disk full\" 2024", "2024 ERROR disk full"));
        assert_eq!(
            Pattern::parse("\"a b\" c").unwrap().all,
            vec!["a b".to_string(), "c".to_string()]
        );
        assert!(Pattern::parse("\"unterminated").is_err());
        assert!(Pattern::parse("ERROR \"disk").is_err());
    }

    #[test]
    fn optional_and_excluded_terms() {
        assert!(matches("?ERROR ?WARN", "WARN low disk"));
        assert!(matches("?ERROR ?WARN", "ERROR"));
        assert!(!matches("?ERROR ?WARN", "INFO"));
        assert!(matches("ERROR -healthcheck", "ERROR in handler"));
        assert!(!matches("ERROR -healthcheck", "ERROR in healthcheck"));
        assert!(!matches("-\"GET /health\"", "GET /health 200"));
        assert!(matches("-\"GET /health\"", "GET /orders 200"));
    }

    #[test]
    fn structured_and_regex_patterns_are_refused() {
        for p in [
            "{ $.level = \"error\" }",
            "[ip, user, status]",
            "%ERR[0-9]+%",
        ] {
            let e = Pattern::parse(p).unwrap_err();
            assert_eq!(e.aws_code(), "InvalidParameterException", "{p}");
        }
        // A lone '%' is just a term.
        assert!(matches("%", "100%"));
    }

    #[test]
    fn positions_in_tokens_round_trip() {
        let k = decode_key("17/3/app/web/1", "t").unwrap();
        assert_eq!(
            k,
            GroupKey {
                timestamp: 17,
                seq: 3,
                stream: "app/web/1".into()
            }
        );
        assert!(decode_key("17/x/s", "t").is_err());
        assert!(decode_key("17", "t").is_err());
    }
}
