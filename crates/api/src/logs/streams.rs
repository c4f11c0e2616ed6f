//! Log streams: CreateLogStream, DeleteLogStream, DescribeLogStreams.

use super::groups::load_group;
use super::{group_arn, group_name, limit, now_ms, Logs, LogsError};
use crate::records::scope;
use berth_core::pagination::PageKey;
use berth_store::{StreamCursor, StreamInfo, StreamOrder, StreamQuery};
use berth_wire::logs::*;
use berth_wire::RequestContext;

const MAX_NAME_LEN: usize = 512;

pub fn validate_name(name: &str) -> Result<(), LogsError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN || name.contains([':', '*']) {
        return Err(LogsError::invalid(format!(
            "Log stream name '{name}' is invalid: it must be 1-{MAX_NAME_LEN} characters, without ':' or '*'."
        )));
    }
    Ok(())
}

/// The token PutLogEvents hands out; AWS ignores sequence tokens now, and
/// so does berth, but clients still read them.
pub fn sequence_token(last_seq: i64) -> String {
    format!("{last_seq:056}")
}

pub async fn create(
    logs: &Logs,
    ctx: &RequestContext,
    input: CreateLogStreamRequest,
) -> Result<(), LogsError> {
    validate_name(&input.log_stream_name)?;
    let sc = scope(ctx);
    // Held so that the group cannot be deleted between the check and the insert.
    let _serialized = logs.lock(&sc, &input.log_group_name).await;
    load_group(logs, &sc, &input.log_group_name).await?;
    let created = logs
        .events
        .create_stream(&sc, &input.log_group_name, &input.log_stream_name, now_ms())
        .await?;
    if !created {
        return Err(LogsError::ResourceAlreadyExists(
            "The specified log stream already exists".into(),
        ));
    }
    Ok(())
}

pub async fn delete(
    logs: &Logs,
    ctx: &RequestContext,
    input: DeleteLogStreamRequest,
) -> Result<(), LogsError> {
    let sc = scope(ctx);
    load_group(logs, &sc, &input.log_group_name).await?;
    let deleted = logs
        .events
        .delete_stream(&sc, &input.log_group_name, &input.log_stream_name)
        .await?;
    if !deleted {
        return Err(LogsError::stream_not_found());
    }
    Ok(())
}

pub async fn describe(
    logs: &Logs,
    ctx: &RequestContext,
    input: DescribeLogStreamsRequest,
) -> Result<DescribeLogStreamsResponse, LogsError> {
    let group = group_name(
        ctx,
        input.log_group_name.as_deref(),
        input.log_group_identifier.as_deref(),
    )?;
    let order = match input.order_by.unwrap_or_default() {
        OrderBy::LastEventTime => StreamOrder::LastEventTime,
        _ => StreamOrder::Name,
    };
    if order == StreamOrder::LastEventTime && input.log_stream_name_prefix.is_some() {
        return Err(LogsError::invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let descending = input.descending.unwrap_or(false);
    let page_size = limit(input.limit, 50)?;
    let sc = scope(ctx);
    load_group(logs, &sc, &group).await?;
    let filter = serde_json::json!([
        group,
        input.log_stream_name_prefix,
        order == StreamOrder::LastEventTime,
        descending
    ])
    .to_string();
    let page = PageKey {
        operation: "DescribeLogStreams",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &filter,
    };
    let after = match &input.next_token {
        Some(t) => Some(decode_cursor(&logs.tokens.decode(&page, t)?, t)?),
        None => None,
    };
    let mut found = logs
        .events
        .list_streams(
            &sc,
            &group,
            &StreamQuery {
                prefix: input.log_stream_name_prefix.clone(),
                order,
                descending,
                after,
                limit: page_size + 1,
            },
        )
        .await?;
    let next_token = (found.len() > page_size).then(|| {
        found.truncate(page_size);
        let last = &found[page_size - 1];
        logs.tokens.encode(
            &page,
            &format!("{}/{}", last.last_event_timestamp.unwrap_or(0), last.name),
        )
    });
    let arn = group_arn(ctx, &group);
    Ok(DescribeLogStreamsResponse {
        log_streams: Some(found.into_iter().map(|s| to_wire(&arn, s)).collect()),
        next_token,
    })
}

/// The cursor inside a (signed) DescribeLogStreams token: `<time>/<name>`.
fn decode_cursor(cursor: &str, token: &str) -> Result<StreamCursor, LogsError> {
    cursor
        .split_once('/')
        .and_then(|(t, name)| {
            Some(StreamCursor {
                last_event_time: t.parse().ok()?,
                name: name.to_string(),
            })
        })
        .ok_or_else(|| LogsError::invalid(format!("Invalid token {token}")))
}

/// AWS reports `storedBytes` of streams as 0 since 2019 (groups still count).
fn to_wire(group_arn: &str, s: StreamInfo) -> LogStream {
    let has_events = s.last_seq > 0;
    LogStream {
        arn: Some(format!("{group_arn}:log-stream:{}", s.name)),
        log_stream_name: Some(s.name),
        creation_time: Some(s.creation_time),
        first_event_timestamp: s.first_event_timestamp,
        last_event_timestamp: s.last_event_timestamp,
        last_ingestion_time: s.last_ingestion_time,
        upload_sequence_token: has_events.then(|| sequence_token(s.last_seq)),
        stored_bytes: Some(0),
    }
}
