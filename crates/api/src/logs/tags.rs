//! Log group tags, through both APIs: the older TagLogGroup, UntagLogGroup,
//! ListTagsLogGroup (by name) and TagResource, UntagResource,
//! ListTagsForResource (by ARN; log groups are the only taggable resource
//! berth keeps).

use super::groups::{load_group, modify};
use super::{group_from_arn, Logs, LogsError};
use crate::records::scope;
use berth_wire::logs::*;
use berth_wire::RequestContext;
use std::collections::BTreeMap;

pub const MAX_TAGS: usize = 50;
const MAX_KEY_LEN: usize = 128;
const MAX_VALUE_LEN: usize = 256;

/// How an operation reports more than [`MAX_TAGS`] tags: TagResource models
/// `TooManyTagsException`, the others only `InvalidParameterException`.
#[derive(Clone, Copy)]
pub enum TooMany {
    InvalidParameter,
    TooManyTags,
}

/// Letters, digits, separators (spaces) and `_ . : / = + - @`.
fn allowed(c: char) -> bool {
    c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
}

fn validate_key(key: &str) -> Result<(), LogsError> {
    let n = key.chars().count();
    if n == 0 || n > MAX_KEY_LEN || !key.chars().all(allowed) {
        return Err(LogsError::invalid(format!(
            "Tag key '{key}' is invalid: it must be 1-{MAX_KEY_LEN} letters, digits, spaces or _ . : / = + - @"
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(LogsError::invalid(format!(
            "Tag key '{key}' uses the reserved prefix 'aws:'."
        )));
    }
    Ok(())
}

/// Validates a complete tag set (as it would be stored).
pub fn validate(tags: &BTreeMap<String, String>, too_many: TooMany) -> Result<(), LogsError> {
    for (k, v) in tags {
        validate_key(k)?;
        if v.chars().count() > MAX_VALUE_LEN || !v.chars().all(allowed) {
            return Err(LogsError::invalid(format!(
                "The value of tag '{k}' is invalid: it must be at most {MAX_VALUE_LEN} letters, digits, spaces or _ . : / = + - @"
            )));
        }
    }
    if tags.len() > MAX_TAGS {
        let msg = format!("A log group can have at most {MAX_TAGS} tags.");
        return Err(match too_many {
            TooMany::InvalidParameter => LogsError::InvalidParameter(msg),
            TooMany::TooManyTags => LogsError::TooManyTags(msg),
        });
    }
    Ok(())
}

async fn add(
    logs: &Logs,
    ctx: &RequestContext,
    group: &str,
    new: &BTreeMap<String, String>,
    too_many: TooMany,
) -> Result<(), LogsError> {
    if new.is_empty() {
        return Err(LogsError::invalid("At least one tag must be specified."));
    }
    modify(logs, ctx, group, |g| {
        let mut tags = g.tags.clone();
        tags.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
        validate(&tags, too_many)?;
        g.tags = tags;
        Ok(())
    })
    .await?;
    Ok(())
}

async fn remove(
    logs: &Logs,
    ctx: &RequestContext,
    group: &str,
    keys: &[String],
) -> Result<(), LogsError> {
    modify(logs, ctx, group, |g| {
        keys.iter().for_each(|k| {
            g.tags.remove(k);
        });
        Ok(())
    })
    .await?;
    Ok(())
}

/// A group's tags; `None` for none, since the model's `Tags` has at least one.
async fn list(
    logs: &Logs,
    ctx: &RequestContext,
    group: &str,
) -> Result<Option<BTreeMap<String, String>>, LogsError> {
    let tags = load_group(logs, &scope(ctx), group).await?.value.tags;
    Ok((!tags.is_empty()).then_some(tags))
}

/// The group a resource ARN names: another account's or region's group is
/// one that does not exist here.
fn arn_group(ctx: &RequestContext, arn: &str) -> Result<String, LogsError> {
    group_from_arn(ctx, arn)?.ok_or_else(LogsError::group_not_found)
}

pub async fn tag_log_group(
    logs: &Logs,
    ctx: &RequestContext,
    input: TagLogGroupRequest,
) -> Result<(), LogsError> {
    add(
        logs,
        ctx,
        &input.log_group_name,
        &input.tags,
        TooMany::InvalidParameter,
    )
    .await
}

/// UntagLogGroup models only `ResourceNotFoundException`: unknown keys are
/// simply not there to remove.
pub async fn untag_log_group(
    logs: &Logs,
    ctx: &RequestContext,
    input: UntagLogGroupRequest,
) -> Result<(), LogsError> {
    remove(logs, ctx, &input.log_group_name, &input.tags).await
}

pub async fn list_tags_log_group(
    logs: &Logs,
    ctx: &RequestContext,
    input: ListTagsLogGroupRequest,
) -> Result<ListTagsLogGroupResponse, LogsError> {
    Ok(ListTagsLogGroupResponse {
        tags: list(logs, ctx, &input.log_group_name).await?,
    })
}

pub async fn tag_resource(
    logs: &Logs,
    ctx: &RequestContext,
    input: TagResourceRequest,
) -> Result<(), LogsError> {
    let group = arn_group(ctx, &input.resource_arn)?;
    add(logs, ctx, &group, &input.tags, TooMany::TooManyTags).await
}

pub async fn untag_resource(
    logs: &Logs,
    ctx: &RequestContext,
    input: UntagResourceRequest,
) -> Result<(), LogsError> {
    let group = arn_group(ctx, &input.resource_arn)?;
    input.tag_keys.iter().try_for_each(|k| validate_key(k))?;
    remove(logs, ctx, &group, &input.tag_keys).await
}

pub async fn list_tags_for_resource(
    logs: &Logs,
    ctx: &RequestContext,
    input: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResponse, LogsError> {
    let group = arn_group(ctx, &input.resource_arn)?;
    Ok(ListTagsForResourceResponse {
        tags: list(logs, ctx, &group).await?,
    })
}
