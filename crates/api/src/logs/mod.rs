//! The CloudWatch Logs API (`Logs_20140328`).
//!
//! Log groups are documents of the [`Store`]; streams and events live in the
//! [`LogEventStore`] of the same backend (see `berth_store::log_events` for
//! why). Retention is enforced twice: reads never return events older than
//! the group's retention, and [`Logs::sweep_expired`] deletes them.

mod error;
mod events;
mod filter;
mod groups;
mod streams;
mod tags;
mod tokens;

pub use error::LogsError;

use crate::locks::StripedLocks;
use berth_core::arn::Arn;
use berth_core::pagination::TokenCodec;
use berth_store::{LogEventStore, Scope, Store};
use berth_wire::logs::*;
use berth_wire::{ApiError, RequestContext};
use std::sync::Arc;

/// CloudWatch Logs over one store.
#[derive(Clone)]
pub struct Logs {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) events: Arc<dyn LogEventStore>,
    pub(crate) tokens: TokenCodec,
    pub(crate) locks: Arc<StripedLocks>,
}

impl Logs {
    /// `token_key` signs pagination tokens; keep it stable across restarts.
    pub fn new<S: Store + LogEventStore>(store: Arc<S>, token_key: Vec<u8>) -> Self {
        Logs {
            store: store.clone(),
            events: store,
            tokens: TokenCodec::new(token_key),
            locks: Arc::default(),
        }
    }

    /// Deletes every event older than its group's retention (and the streams
    /// of groups that no longer exist). Run it periodically; returns how many
    /// events it deleted.
    pub async fn sweep_expired(&self) -> Result<u64, LogsError> {
        groups::sweep(self).await
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Serializes this process's writers of one log group: group changes,
    /// and stream creation against group deletion.
    pub(crate) async fn lock(&self, scope: &Scope, group: &str) -> tokio::sync::MutexGuard<'_, ()> {
        self.locks
            .lock(&[&scope.account, &scope.region, "log-group", group])
            .await
    }
}

/// Milliseconds since the epoch: CloudWatch Logs' unit for every time.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub(crate) fn group_arn(ctx: &RequestContext, group: &str) -> String {
    format!(
        "arn:aws:logs:{}:{}:log-group:{group}",
        ctx.region, ctx.account_id
    )
}

/// The log group a `logGroupName` or `logGroupIdentifier` (a name or an
/// ARN, with or without the trailing `:*`) names; exactly one must be given.
pub(crate) fn group_name(
    ctx: &RequestContext,
    name: Option<&str>,
    identifier: Option<&str>,
) -> Result<String, LogsError> {
    let id = match (name, identifier) {
        (Some(n), None) => return Ok(n.to_string()),
        (None, Some(id)) => id,
        _ => {
            return Err(LogsError::invalid(
                "Exactly one of logGroupName and logGroupIdentifier must be specified.",
            ))
        }
    };
    if !id.starts_with("arn:") {
        return Ok(id.to_string());
    }
    group_from_arn(ctx, id)?.ok_or_else(LogsError::group_not_found)
}

/// The group a log-group ARN names; `None` if it is in another account or
/// region (berth has no cross-account observability).
pub(crate) fn group_from_arn(ctx: &RequestContext, arn: &str) -> Result<Option<String>, LogsError> {
    let invalid = || LogsError::invalid(format!("'{arn}' is not a log group ARN."));
    let a = Arn::parse(arn)
        .filter(|a| a.service == "logs")
        .ok_or_else(invalid)?;
    let name = a
        .resource
        .strip_prefix("log-group:")
        .map(|r| r.strip_suffix(":*").unwrap_or(r))
        .filter(|n| !n.is_empty() && !n.contains(':'))
        .ok_or_else(invalid)?;
    if a.account != ctx.account_id || a.region != ctx.region {
        return Ok(None);
    }
    Ok(Some(name.to_string()))
}

/// Validates an optional `limit` against `1..=max`.
pub(crate) fn limit(limit: Option<i32>, max: usize) -> Result<usize, LogsError> {
    match limit {
        None => Ok(max),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) => Err(LogsError::invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

/// Routes each operation to its module.
#[async_trait::async_trait]
impl LogsApi for Logs {
    async fn create_log_group(
        &self,
        ctx: &RequestContext,
        input: CreateLogGroupRequest,
    ) -> Result<(), ApiError> {
        Ok(groups::create(self, ctx, input).await?)
    }
    async fn delete_log_group(
        &self,
        ctx: &RequestContext,
        input: DeleteLogGroupRequest,
    ) -> Result<(), ApiError> {
        Ok(groups::delete(self, ctx, input).await?)
    }
    async fn describe_log_groups(
        &self,
        ctx: &RequestContext,
        input: DescribeLogGroupsRequest,
    ) -> Result<DescribeLogGroupsResponse, ApiError> {
        Ok(groups::describe(self, ctx, input).await?)
    }
    async fn put_retention_policy(
        &self,
        ctx: &RequestContext,
        input: PutRetentionPolicyRequest,
    ) -> Result<(), ApiError> {
        Ok(groups::put_retention(self, ctx, input).await?)
    }
    async fn delete_retention_policy(
        &self,
        ctx: &RequestContext,
        input: DeleteRetentionPolicyRequest,
    ) -> Result<(), ApiError> {
        Ok(groups::delete_retention(self, ctx, input).await?)
    }
    async fn tag_log_group(
        &self,
        ctx: &RequestContext,
        input: TagLogGroupRequest,
    ) -> Result<(), ApiError> {
        Ok(tags::tag_log_group(self, ctx, input).await?)
    }
    async fn untag_log_group(
        &self,
        ctx: &RequestContext,
        input: UntagLogGroupRequest,
    ) -> Result<(), ApiError> {
        Ok(tags::untag_log_group(self, ctx, input).await?)
    }
    async fn list_tags_log_group(
        &self,
        ctx: &RequestContext,
        input: ListTagsLogGroupRequest,
    ) -> Result<ListTagsLogGroupResponse, ApiError> {
        Ok(tags::list_tags_log_group(self, ctx, input).await?)
    }
    async fn tag_resource(
        &self,
        ctx: &RequestContext,
        input: TagResourceRequest,
    ) -> Result<(), ApiError> {
        Ok(tags::tag_resource(self, ctx, input).await?)
    }
    async fn untag_resource(
        &self,
        ctx: &RequestContext,
        input: UntagResourceRequest,
    ) -> Result<(), ApiError> {
        Ok(tags::untag_resource(self, ctx, input).await?)
    }
    async fn list_tags_for_resource(
        &self,
        ctx: &RequestContext,
        input: ListTagsForResourceRequest,
    ) -> Result<ListTagsForResourceResponse, ApiError> {
        Ok(tags::list_tags_for_resource(self, ctx, input).await?)
    }
    async fn create_log_stream(
        &self,
        ctx: &RequestContext,
        input: CreateLogStreamRequest,
    ) -> Result<(), ApiError> {
        Ok(streams::create(self, ctx, input).await?)
    }
    async fn delete_log_stream(
        &self,
        ctx: &RequestContext,
        input: DeleteLogStreamRequest,
    ) -> Result<(), ApiError> {
        Ok(streams::delete(self, ctx, input).await?)
    }
    async fn describe_log_streams(
        &self,
        ctx: &RequestContext,
        input: DescribeLogStreamsRequest,
    ) -> Result<DescribeLogStreamsResponse, ApiError> {
        Ok(streams::describe(self, ctx, input).await?)
    }
    async fn put_log_events(
        &self,
        ctx: &RequestContext,
        input: PutLogEventsRequest,
    ) -> Result<PutLogEventsResponse, ApiError> {
        Ok(events::put(self, ctx, input).await?)
    }
    async fn get_log_events(
        &self,
        ctx: &RequestContext,
        input: GetLogEventsRequest,
    ) -> Result<GetLogEventsResponse, ApiError> {
        Ok(events::get(self, ctx, input).await?)
    }
    async fn filter_log_events(
        &self,
        ctx: &RequestContext,
        input: FilterLogEventsRequest,
    ) -> Result<FilterLogEventsResponse, ApiError> {
        Ok(filter::filter(self, ctx, input).await?)
    }
}
