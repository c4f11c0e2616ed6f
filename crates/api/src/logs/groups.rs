//! Log groups: CreateLogGroup, DeleteLogGroup, DescribeLogGroups,
//! PutRetentionPolicy, DeleteRetentionPolicy, and the retention sweep.

use super::{group_arn, group_from_arn, limit, now_ms, tags, Logs, LogsError};
use crate::records::{load, retry, scope, Attempt, Record, Versioned};
use berth_core::pagination::PageKey;
use berth_store::{Expect, Query, Scope, StoreError, Write};
use berth_wire::logs::*;
use berth_wire::RequestContext;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const KIND: &str = "log-group";
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const MAX_NAME_LEN: usize = 512;
/// The values PutRetentionPolicy accepts (days).
const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
/// Events the sweep deletes per writer transaction.
const SWEEP_BATCH: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogGroupRecord {
    pub name: String,
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<i32>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub class: LogGroupClass,
}

impl Record for LogGroupRecord {
    const KIND: &'static str = KIND;
    fn id(&self) -> String {
        self.name.clone()
    }
}

impl LogGroupRecord {
    /// Events older than this (ms) have expired: never returned, and deleted
    /// by the sweep.
    pub fn retention_cutoff(&self, now: i64) -> Option<i64> {
        self.retention_in_days.map(|d| now - i64::from(d) * DAY_MS)
    }
}

pub fn validate_name(name: &str) -> Result<(), LogsError> {
    let ok_char = |b: u8| b.is_ascii_alphanumeric() || b"._-/#".contains(&b);
    if name.is_empty() || name.len() > MAX_NAME_LEN || !name.bytes().all(ok_char) {
        return Err(LogsError::invalid(format!(
            "Log group name '{name}' is invalid: it must be 1-{MAX_NAME_LEN} characters of a-z, A-Z, 0-9, '_', '-', '/', '.' and '#'."
        )));
    }
    if name.starts_with("aws/") {
        return Err(LogsError::invalid(
            "Log group names starting with 'aws/' are reserved for AWS services.",
        ));
    }
    Ok(())
}

/// The group, or `ResourceNotFoundException`.
pub async fn load_group(
    logs: &Logs,
    scope: &Scope,
    name: &str,
) -> Result<Versioned<LogGroupRecord>, LogsError> {
    load::<LogGroupRecord>(logs.store(), scope, name)
        .await?
        .ok_or_else(LogsError::group_not_found)
}

/// Applies `change` to a group with optimistic retries; returns the result.
pub async fn modify(
    logs: &Logs,
    ctx: &RequestContext,
    name: &str,
    change: impl Fn(&mut LogGroupRecord) -> Result<(), LogsError>,
) -> Result<LogGroupRecord, LogsError> {
    let sc = scope(ctx);
    let _serialized = logs.lock(&sc, name).await;
    retry(logs.store(), async || {
        let mut g = load_group(logs, &sc, name).await?;
        change(&mut g.value)?;
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![g.write()],
            value: g.value,
        })
    })
    .await
}

pub async fn create(
    logs: &Logs,
    ctx: &RequestContext,
    input: CreateLogGroupRequest,
) -> Result<(), LogsError> {
    let name = input.log_group_name;
    validate_name(&name)?;
    if input.kms_key_id.is_some() {
        return Err(LogsError::invalid(
            "berth does not encrypt log groups with KMS keys; omit kmsKeyId.",
        ));
    }
    if input.deletion_protection_enabled == Some(true) {
        return Err(LogsError::invalid(
            "berth does not support deletion protection for log groups.",
        ));
    }
    let group_tags = input.tags.unwrap_or_default();
    tags::validate(&group_tags, tags::TooMany::InvalidParameter)?;
    let group = LogGroupRecord {
        name: name.clone(),
        creation_time: now_ms(),
        retention_in_days: None,
        tags: group_tags,
        class: input.log_group_class.unwrap_or_default(),
    };
    let sc = scope(ctx);
    let _serialized = logs.lock(&sc, &name).await;
    match logs
        .store()
        .commit(&sc, vec![Versioned::new(group).write()])
        .await
    {
        Ok(_) => {
            // A new group has no streams; clear any that a crash between the
            // two steps of an earlier DeleteLogGroup left behind.
            logs.events.delete_group(&sc, &name).await?;
            Ok(())
        }
        Err(StoreError::Conflict { .. }) => Err(LogsError::ResourceAlreadyExists(
            "The specified log group already exists".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    logs: &Logs,
    ctx: &RequestContext,
    input: DeleteLogGroupRequest,
) -> Result<(), LogsError> {
    let name = input.log_group_name;
    let sc = scope(ctx);
    let _serialized = logs.lock(&sc, &name).await;
    retry(logs.store(), async || {
        let g = load_group(logs, &sc, &name).await?;
        let write = Write::Delete {
            kind: KIND,
            id: name.clone(),
            expect: Expect::Version(g.version),
        };
        Ok::<_, LogsError>(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![write],
            value: (),
        })
    })
    .await?;
    // Under the group's lock no stream can be created in between.
    logs.events.delete_group(&sc, &name).await?;
    Ok(())
}

/// Which groups a DescribeLogGroups request selects (besides its page).
struct Selection {
    prefix: Option<String>,
    pattern: Option<String>,
    class: Option<LogGroupClass>,
    names: Option<Vec<String>>,
}

impl Selection {
    fn from_request(
        ctx: &RequestContext,
        input: &DescribeLogGroupsRequest,
    ) -> Result<Self, LogsError> {
        if input.log_group_name_prefix.is_some() && input.log_group_name_pattern.is_some() {
            return Err(LogsError::invalid(
                "logGroupNamePrefix and logGroupNamePattern are mutually exclusive.",
            ));
        }
        let names = match &input.log_group_identifiers {
            None => None,
            Some(_)
                if input.log_group_name_prefix.is_some()
                    || input.log_group_name_pattern.is_some() =>
            {
                return Err(LogsError::invalid(
                    "logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern.",
                ))
            }
            Some(ids) => Some(
                ids.iter()
                    .map(|id| {
                        if id.starts_with("arn:") {
                            // A group of another account matches nothing.
                            Ok(group_from_arn(ctx, id)?.unwrap_or_default())
                        } else {
                            Ok(id.clone())
                        }
                    })
                    .collect::<Result<Vec<_>, LogsError>>()?,
            ),
        };
        Ok(Selection {
            prefix: input.log_group_name_prefix.clone(),
            pattern: input.log_group_name_pattern.clone(),
            class: input.log_group_class.clone(),
            names,
        })
    }

    fn matches(&self, g: &LogGroupRecord) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| g.name.contains(p.as_str()))
            && self.class.as_ref().is_none_or(|c| &g.class == c)
            && self.names.as_ref().is_none_or(|n| n.contains(&g.name))
    }

    /// What a page token is bound to, so a token only continues its own listing.
    fn token_filter(&self) -> String {
        serde_json::json!([self.prefix, self.pattern, self.class, self.names]).to_string()
    }
}

pub async fn describe(
    logs: &Logs,
    ctx: &RequestContext,
    input: DescribeLogGroupsRequest,
) -> Result<DescribeLogGroupsResponse, LogsError> {
    let sel = Selection::from_request(ctx, &input)?;
    let page_size = limit(input.limit, 50)?;
    let filter = sel.token_filter();
    let page = PageKey {
        operation: "DescribeLogGroups",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &filter,
    };
    let mut after = match &input.next_token {
        Some(t) => Some(logs.tokens.decode(&page, t)?),
        None => None,
    };
    let sc = scope(ctx);
    // Scan by name until one more match than the page holds (so we know
    // whether to hand out a token) or the groups run out.
    const SCAN: usize = 200;
    let mut found = Vec::new();
    while found.len() <= page_size {
        let q = Query {
            sort_prefix: sel.prefix.clone(),
            after: after.clone(),
            limit: SCAN,
            ..Default::default()
        };
        let batch = crate::records::list::<LogGroupRecord>(logs.store(), &sc, &q).await?;
        let exhausted = batch.len() < SCAN;
        after = batch.last().map(|g| g.value.name.clone()).or(after);
        found.extend(
            batch
                .into_iter()
                .map(|g| g.value)
                .filter(|g| sel.matches(g)),
        );
        if exhausted {
            break;
        }
    }
    let next_token = (found.len() > page_size).then(|| {
        found.truncate(page_size);
        logs.tokens.encode(&page, &found[page_size - 1].name)
    });
    let mut out = Vec::with_capacity(found.len());
    for g in found {
        out.push(describe_one(logs, ctx, g, sel.pattern.is_some()).await?);
    }
    Ok(DescribeLogGroupsResponse {
        log_groups: Some(out),
        next_token,
    })
}

/// A group as DescribeLogGroups shows it; with a name pattern AWS returns
/// only the name, ARN and creation time.
async fn describe_one(
    logs: &Logs,
    ctx: &RequestContext,
    g: LogGroupRecord,
    brief: bool,
) -> Result<LogGroup, LogsError> {
    let arn = group_arn(ctx, &g.name);
    let mut out = LogGroup {
        log_group_name: Some(g.name.clone()),
        creation_time: Some(g.creation_time),
        arn: Some(format!("{arn}:*")),
        ..Default::default()
    };
    if !brief {
        out.retention_in_days = g.retention_in_days;
        out.metric_filter_count = Some(0);
        out.stored_bytes = Some(logs.events.group_stored_bytes(&scope(ctx), &g.name).await?);
        out.log_group_class = Some(g.class);
        out.log_group_arn = Some(arn);
    }
    Ok(out)
}

pub async fn put_retention(
    logs: &Logs,
    ctx: &RequestContext,
    input: PutRetentionPolicyRequest,
) -> Result<(), LogsError> {
    let days = input.retention_in_days;
    if !RETENTION_DAYS.contains(&days) {
        return Err(LogsError::invalid(format!(
            "Invalid retentionInDays {days}. Possible values are: {RETENTION_DAYS:?}"
        )));
    }
    let g = modify(logs, ctx, &input.log_group_name, |g| {
        g.retention_in_days = Some(days);
        Ok(())
    })
    .await?;
    // Expire now rather than at the next sweep (reads hide them meanwhile anyway).
    if let Some(cutoff) = g.retention_cutoff(now_ms()) {
        prune(logs, &scope(ctx), &g.name, cutoff).await?;
    }
    Ok(())
}

pub async fn delete_retention(
    logs: &Logs,
    ctx: &RequestContext,
    input: DeleteRetentionPolicyRequest,
) -> Result<(), LogsError> {
    modify(logs, ctx, &input.log_group_name, |g| {
        g.retention_in_days = None;
        Ok(())
    })
    .await?;
    Ok(())
}

/// Deletes a group's events older than `cutoff`, a bounded batch at a time.
async fn prune(logs: &Logs, scope: &Scope, group: &str, cutoff: i64) -> Result<u64, LogsError> {
    let mut total = 0;
    loop {
        let n = logs
            .events
            .delete_before(scope, group, cutoff, SWEEP_BATCH)
            .await?;
        total += n;
        if (n as usize) < SWEEP_BATCH {
            return Ok(total);
        }
    }
}

pub async fn sweep(logs: &Logs) -> Result<u64, LogsError> {
    let now = now_ms();
    let mut deleted = 0;
    for (sc, group) in logs.events.groups_with_streams().await? {
        let _serialized = logs.lock(&sc, &group).await;
        match load::<LogGroupRecord>(logs.store(), &sc, &group).await? {
            // Streams of a deleted group (left by a crash between the two
            // deletes, or by another process): finish the delete.
            None => {
                logs.events.delete_group(&sc, &group).await?;
            }
            Some(g) => {
                if let Some(cutoff) = g.value.retention_cutoff(now) {
                    deleted += prune(logs, &sc, &group, cutoff).await?;
                }
            }
        }
    }
    Ok(deleted)
}
