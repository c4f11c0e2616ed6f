//! Queues: their document, attributes, URLs and the queue operations.

use super::errors::{self, invalid_attribute_name, invalid_attribute_value, queue_missing};
use super::{messages, now_ms, Sqs};
use crate::records::{self, load, retry, scope, Attempt, Record, Versioned};
use berth_core::pagination::PageKey;
use berth_store::{Query, Write};
use berth_wire::sqs::*;
use berth_wire::{ApiError, RequestContext};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const KIND: &str = "sqs-queue";

/// A queue. Its messages are documents of their own whose parent is the
/// queue's `generation`, so a queue deleted and created again under the
/// same name never sees the old one's messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueDoc {
    pub name: String,
    pub generation: String,
    pub created_s: i64,
    pub modified_s: i64,
    /// The settable attributes, as given (defaults are filled in on read).
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub last_purge_ms: i64,
}

impl Record for QueueDoc {
    const KIND: &'static str = KIND;
    fn id(&self) -> String {
        self.name.clone()
    }
}

/// Settable attributes and their defaults (`None`: no default, absent
/// until set).
const SETTABLE: &[(&str, Option<&str>)] = &[
    ("DelaySeconds", Some("0")),
    ("MaximumMessageSize", Some("262144")),
    ("MessageRetentionPeriod", Some("345600")),
    ("Policy", None),
    ("ReceiveMessageWaitTimeSeconds", Some("0")),
    ("VisibilityTimeout", Some("30")),
    ("RedrivePolicy", None),
    ("RedriveAllowPolicy", None),
    ("KmsMasterKeyId", None),
    ("KmsDataKeyReusePeriodSeconds", None),
    ("SqsManagedSseEnabled", Some("true")),
];

/// Computed on every read.
const COMPUTED: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
];

/// The largest attribute values SQS takes, in seconds or bytes.
fn range_of(name: &str) -> Option<(i64, i64)> {
    Some(match name {
        "DelaySeconds" => (0, 900),
        "MaximumMessageSize" => (1024, 262_144),
        "MessageRetentionPeriod" => (60, 1_209_600),
        "ReceiveMessageWaitTimeSeconds" => (0, 20),
        "VisibilityTimeout" => (0, 43_200),
        "KmsDataKeyReusePeriodSeconds" => (60, 86_400),
        _ => return None,
    })
}

impl QueueDoc {
    pub fn arn(&self, ctx_account: &str, region: &str) -> String {
        format!("arn:aws:sqs:{region}:{ctx_account}:{}", self.name)
    }

    /// A numeric attribute (its default when unset).
    pub fn number(&self, name: &str) -> i64 {
        self.attributes
            .get(name)
            .map(String::as_str)
            .or_else(|| SETTABLE.iter().find(|(n, _)| *n == name).and_then(|d| d.1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The dead-letter queue's name and the receive count that sends a
    /// message there.
    pub fn redrive(&self) -> Option<(String, i64)> {
        let v: serde_json::Value =
            serde_json::from_str(self.attributes.get("RedrivePolicy")?).ok()?;
        let arn = v.get("deadLetterTargetArn")?.as_str()?;
        let max = match v.get("maxReceiveCount")? {
            serde_json::Value::String(s) => s.parse().ok()?,
            n => n.as_i64()?,
        };
        Some((arn.rsplit(':').next()?.to_string(), max))
    }
}

/// Checks attributes given to CreateQueue or SetQueueAttributes; returns
/// them by name.
fn check_attributes(
    ctx: &RequestContext,
    given: &BTreeMap<QueueAttributeName, String>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in given {
        let name = k.as_str();
        if name == "FifoQueue"
            || name == "ContentBasedDeduplication"
            || name == "DeduplicationScope"
            || name == "FifoThroughputLimit"
        {
            if name == "FifoQueue" && v == "false" {
                continue;
            }
            return Err(errors::unsupported(
                "berth serves standard queues only; FIFO queues are not supported.",
            ));
        }
        if !SETTABLE.iter().any(|(n, _)| *n == name) {
            return Err(invalid_attribute_name(name));
        }
        if let Some((lo, hi)) = range_of(name) {
            match v.trim().parse::<i64>() {
                Ok(n) if (lo..=hi).contains(&n) => {}
                _ => {
                    return Err(invalid_attribute_value(
                        name,
                        &format!("must be an integer from {lo} to {hi}."),
                    ))
                }
            }
        }
        match name {
            "Policy" | "RedriveAllowPolicy"
                if !v.is_empty()
                    && serde_json::from_str::<serde_json::Value>(v)
                        .map_or(true, |j| !j.is_object()) =>
            {
                return Err(invalid_attribute_value(name, "must be a JSON object."));
            }
            "RedrivePolicy" if !v.is_empty() => check_redrive(ctx, v)?,
            "SqsManagedSseEnabled" if v != "true" && v != "false" => {
                return Err(invalid_attribute_value(name, "must be true or false."))
            }
            _ => {}
        }
        out.insert(name.to_string(), v.clone());
    }
    Ok(out)
}

fn check_redrive(ctx: &RequestContext, v: &str) -> Result<(), ApiError> {
    let bad = |why: &str| invalid_attribute_value("RedrivePolicy", why);
    let j: serde_json::Value =
        serde_json::from_str(v).map_err(|_| bad("must be a JSON object."))?;
    let arn = j
        .get("deadLetterTargetArn")
        .and_then(|a| a.as_str())
        .ok_or_else(|| bad("deadLetterTargetArn is required."))?;
    let prefix = format!("arn:aws:sqs:{}:{}:", ctx.region, ctx.account_id);
    if !arn.starts_with(&prefix) || !is_queue_name(&arn[prefix.len()..]) {
        return Err(bad(
            "deadLetterTargetArn must name a queue of the same account and region.",
        ));
    }
    let max = match j.get("maxReceiveCount") {
        Some(serde_json::Value::String(s)) => s.parse::<i64>().ok(),
        Some(n) => n.as_i64(),
        None => None,
    };
    if !max.is_some_and(|m| (1..=1000).contains(&m)) {
        return Err(bad("maxReceiveCount must be an integer from 1 to 1000."));
    }
    Ok(())
}

pub fn is_queue_name(name: &str) -> bool {
    (1..=80).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The URL clients use: berth's endpoint, then `/ACCOUNT/NAME`, as AWS's
/// `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`.
pub fn url(sqs: &Sqs, ctx: &RequestContext, name: &str) -> String {
    format!("{}/{}/{name}", sqs.endpoint, ctx.account_id)
}

/// The queue name a URL names, if it names one of the caller's queues.
/// Any host is accepted (berth's or AWS's); the path must be
/// `/ACCOUNT/NAME` with the caller's account.
pub fn name_from_url<'a>(ctx: &RequestContext, url: &'a str) -> Result<&'a str, ApiError> {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    if account != ctx.account_id || !is_queue_name(name) {
        return Err(queue_missing());
    }
    Ok(name)
}

pub async fn find(
    sqs: &Sqs,
    ctx: &RequestContext,
    url: &str,
) -> Result<Versioned<QueueDoc>, ApiError> {
    let name = name_from_url(ctx, url)?;
    load::<QueueDoc>(sqs.store(), &scope(ctx), name)
        .await?
        .ok_or_else(queue_missing)
}

pub async fn create(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: CreateQueueRequest,
) -> Result<CreateQueueResult, ApiError> {
    let name = input.queue_name;
    if name.ends_with(".fifo") {
        return Err(errors::unsupported(
            "berth serves standard queues only; FIFO queues are not supported.",
        ));
    }
    if !is_queue_name(&name) {
        return Err(errors::invalid_parameter(
            "QueueName",
            &name,
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    let attributes = check_attributes(ctx, &input.attributes.unwrap_or_default())?;
    let tags = input.tags.unwrap_or_default();
    let sc = scope(ctx);
    retry(sqs.store(), async || {
        if let Some(existing) = load::<QueueDoc>(sqs.store(), &sc, &name).await? {
            // Idempotent when every given attribute equals what is set.
            let same = attributes.iter().all(|(k, v)| {
                existing.value.attributes.get(k) == Some(v)
                    || (!existing.value.attributes.contains_key(k)
                        && SETTABLE.iter().any(|(n, d)| n == k && *d == Some(v.as_str())))
            });
            if !same {
                return Err(ApiError::client(
                    "QueueNameExists",
                    "A queue already exists with the same name and a different value for attribute(s).",
                ));
            }
            return Ok(Attempt::Done(()));
        }
        let now = now_ms() / 1000;
        let doc = QueueDoc {
            name: name.clone(),
            generation: uuid::Uuid::new_v4().to_string(),
            created_s: now,
            modified_s: now,
            attributes: attributes.clone(),
            tags: tags.clone(),
            last_purge_ms: 0,
        };
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![Versioned::new(doc).write()],
            value: (),
        })
    })
    .await?;
    Ok(CreateQueueResult {
        queue_url: Some(url(sqs, ctx, &name)),
    })
}

pub async fn get_url(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: GetQueueUrlRequest,
) -> Result<GetQueueUrlResult, ApiError> {
    // Another account's queue is never visible, shared or not.
    if input
        .queue_owner_aws_account_id
        .as_deref()
        .is_some_and(|a| a != ctx.account_id)
    {
        return Err(queue_missing());
    }
    if !is_queue_name(&input.queue_name) {
        return Err(queue_missing());
    }
    load::<QueueDoc>(sqs.store(), &scope(ctx), &input.queue_name)
        .await?
        .ok_or_else(queue_missing)?;
    Ok(GetQueueUrlResult {
        queue_url: Some(url(sqs, ctx, &input.queue_name)),
    })
}

pub async fn get_attributes(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: GetQueueAttributesRequest,
) -> Result<GetQueueAttributesResult, ApiError> {
    let q = find(sqs, ctx, &input.queue_url).await?.value;
    let wanted: Vec<String> = input
        .attribute_names
        .unwrap_or_default()
        .iter()
        .map(|n| n.as_str().to_string())
        .collect();
    for w in &wanted {
        if w != "All" && !SETTABLE.iter().any(|(n, _)| n == w) && !COMPUTED.contains(&w.as_str()) {
            return Err(invalid_attribute_name(w));
        }
    }
    let all = wanted.iter().any(|w| w == "All");
    let want = |n: &str| all || wanted.iter().any(|w| w == n);
    let mut out = BTreeMap::new();
    for (n, default) in SETTABLE {
        if want(n) {
            if let Some(v) = q
                .attributes
                .get(*n)
                .cloned()
                .or(default.map(str::to_string))
            {
                out.insert(QueueAttributeName::from(*n), v);
            }
        }
    }
    if COMPUTED[..3].iter().any(|n| want(n)) {
        let c = messages::counts(sqs, ctx, &q).await?;
        for (n, v) in [
            ("ApproximateNumberOfMessages", c.visible),
            ("ApproximateNumberOfMessagesNotVisible", c.in_flight),
            ("ApproximateNumberOfMessagesDelayed", c.delayed),
        ] {
            if want(n) {
                out.insert(QueueAttributeName::from(n), v.to_string());
            }
        }
    }
    for (n, v) in [
        ("CreatedTimestamp", q.created_s.to_string()),
        ("LastModifiedTimestamp", q.modified_s.to_string()),
        ("QueueArn", q.arn(&ctx.account_id, &ctx.region)),
    ] {
        if want(n) {
            out.insert(QueueAttributeName::from(n), v);
        }
    }
    Ok(GetQueueAttributesResult {
        attributes: (!out.is_empty()).then_some(out),
    })
}

pub async fn set_attributes(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: SetQueueAttributesRequest,
) -> Result<(), ApiError> {
    let name = name_from_url(ctx, &input.queue_url)?.to_string();
    let given = check_attributes(ctx, &input.attributes)?;
    let sc = scope(ctx);
    retry(sqs.store(), async || {
        let mut q = load::<QueueDoc>(sqs.store(), &sc, &name)
            .await?
            .ok_or_else(queue_missing)?;
        for (k, v) in &given {
            // An empty RedrivePolicy or Policy removes it.
            if v.is_empty()
                && matches!(
                    k.as_str(),
                    "RedrivePolicy" | "Policy" | "RedriveAllowPolicy"
                )
            {
                q.value.attributes.remove(k);
            } else {
                q.value.attributes.insert(k.clone(), v.clone());
            }
        }
        q.value.modified_s = now_ms() / 1000;
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![q.write()],
            value: (),
        })
    })
    .await
}

pub async fn delete(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: DeleteQueueRequest,
) -> Result<(), ApiError> {
    let q = find(sqs, ctx, &input.queue_url).await?;
    let sc = scope(ctx);
    let write = Write::Delete {
        kind: KIND,
        id: q.value.name.clone(),
        expect: berth_store::Expect::Any,
    };
    records::try_commit(sqs.store(), &sc, vec![write]).await?;
    // Its messages are unreachable now (they name its generation); clear them.
    messages::delete_all(sqs, &sc, &q.value.generation).await?;
    sqs.waiters.forget(&sc, &q.value.generation);
    Ok(())
}

pub async fn purge(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: PurgeQueueRequest,
) -> Result<(), ApiError> {
    let name = name_from_url(ctx, &input.queue_url)?.to_string();
    let sc = scope(ctx);
    let now = now_ms();
    let generation = retry(sqs.store(), async || {
        let mut q = load::<QueueDoc>(sqs.store(), &sc, &name)
            .await?
            .ok_or_else(queue_missing)?;
        if now - q.value.last_purge_ms < 60_000 {
            return Err(ApiError::client(
                "PurgeQueueInProgress",
                format!("Only one PurgeQueue operation on {name} is allowed every 60 seconds."),
            ));
        }
        q.value.last_purge_ms = now;
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![q.write()],
            value: q.value.generation.clone(),
        })
    })
    .await?;
    messages::delete_all(sqs, &sc, &generation).await
}

pub async fn list(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ListQueuesRequest,
) -> Result<ListQueuesResult, ApiError> {
    let prefix = input.queue_name_prefix.unwrap_or_default();
    let limit = match input.max_results {
        None => 1000,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(errors::invalid_parameter(
                "MaxResults",
                n,
                "must be between 1 and 1000",
            ))
        }
    };
    if input.next_token.is_some() && input.max_results.is_none() {
        return Err(errors::invalid_value("NextToken requires MaxResults."));
    }
    let page = PageKey {
        operation: "ListQueues",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &prefix,
    };
    let after = match &input.next_token {
        Some(t) => Some(
            sqs.tokens
                .decode(&page, t)
                .map_err(|_| errors::invalid_value("Invalid NextToken value."))?,
        ),
        None => None,
    };
    let q = Query {
        sort_prefix: (!prefix.is_empty()).then(|| prefix.clone()),
        after,
        limit: limit + 1,
        ..Query::default()
    };
    let mut docs = records::list::<QueueDoc>(sqs.store(), &scope(ctx), &q).await?;
    let more = docs.len() > limit;
    docs.truncate(limit);
    let next_token = (more && input.max_results.is_some())
        .then(|| docs.last().map(|d| sqs.tokens.encode(&page, &d.value.name)))
        .flatten();
    let urls: Vec<String> = docs.iter().map(|d| url(sqs, ctx, &d.value.name)).collect();
    Ok(ListQueuesResult {
        queue_urls: (!urls.is_empty()).then_some(urls),
        next_token,
    })
}
