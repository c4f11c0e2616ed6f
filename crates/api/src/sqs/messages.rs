//! Messages: one document each, under its queue's generation, ordered by
//! the time it was sent. Receiving is a read–decide–commit like every
//! other mutation: the messages handed out are written back with their
//! new visibility in the same version-checked commit, so two consumers
//! never both get a message within its visibility timeout, and a message
//! is only ever gone once DeleteMessage (or its retention) removed it.

use super::errors::{self, invalid_value, receipt_invalid};
use super::queues::{self, QueueDoc};
use super::{now_ms, Sqs};
use crate::records::{self, retry, scope, Attempt, Record, Versioned};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use berth_store::{Expect, Query, Scope, Write};
use berth_wire::sqs::*;
use berth_wire::{ApiError, RequestContext};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub const KIND: &str = "sqs-message";

/// How many messages one receive looks at: the oldest first.
const SCAN: usize = 2000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageDoc {
    pub id: String,
    /// The queue's generation.
    pub queue: String,
    pub body: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, MessageAttributeValue>,
    pub sender: String,
    pub sent_ms: i64,
    /// Not receivable before this (delay, then visibility timeouts).
    pub visible_at_ms: i64,
    pub receive_count: i64,
    #[serde(default)]
    pub first_receive_ms: Option<i64>,
    /// Changes on every receive: the current receipt handle names it.
    #[serde(default)]
    pub nonce: String,
}

impl Record for MessageDoc {
    const KIND: &'static str = KIND;
    fn id(&self) -> String {
        self.id.clone()
    }
    fn sort(&self) -> String {
        format!("{:015}{}", self.sent_ms, self.id)
    }
    fn parent(&self) -> String {
        self.queue.clone()
    }
}

impl MessageDoc {
    /// A new message for `queue`, receivable after `delay_s`.
    pub fn new(
        queue: &QueueDoc,
        body: String,
        attributes: BTreeMap<String, MessageAttributeValue>,
        delay_s: i64,
        sender: &str,
    ) -> MessageDoc {
        let now = now_ms();
        MessageDoc {
            id: uuid::Uuid::new_v4().to_string(),
            queue: queue.generation.clone(),
            body,
            attributes,
            sender: sender.to_string(),
            sent_ms: now,
            visible_at_ms: now + delay_s * 1000,
            receive_count: 0,
            first_receive_ms: None,
            nonce: String::new(),
        }
    }
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// SQS's digest of message attributes: for each, by name, the name, the
/// data type, a transport byte (1 string/number, 2 binary) and the value,
/// each length-prefixed (4 bytes, big-endian).
pub fn md5_of_attributes(attrs: &BTreeMap<String, MessageAttributeValue>) -> Option<String> {
    if attrs.is_empty() {
        return None;
    }
    let mut buf = Vec::new();
    let put = |b: &[u8], buf: &mut Vec<u8>| {
        buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        buf.extend_from_slice(b);
    };
    for (name, v) in attrs {
        put(name.as_bytes(), &mut buf);
        put(v.data_type.as_bytes(), &mut buf);
        match (&v.string_value, &v.binary_value) {
            (Some(s), _) => {
                buf.push(1);
                put(s.as_bytes(), &mut buf);
            }
            (None, Some(b)) => {
                buf.push(2);
                put(&b.0, &mut buf);
            }
            (None, None) => {}
        }
    }
    Some(md5_hex(&buf))
}

fn check_body(body: &str) -> Result<(), ApiError> {
    if body.is_empty() {
        return Err(errors::missing("MessageBody"));
    }
    let allowed = |c: char| matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}');
    if let Some(c) = body.chars().find(|c| !allowed(*c)) {
        return Err(ApiError::client(
            "InvalidMessageContents",
            format!(
                "Invalid characters found in the message body (U+{:04X}).",
                c as u32
            ),
        ));
    }
    Ok(())
}

fn check_attributes(attrs: &BTreeMap<String, MessageAttributeValue>) -> Result<usize, ApiError> {
    if attrs.len() > 10 {
        return Err(invalid_value(
            "Number of message attributes [{}] exceeds the allowed maximum [10].",
        ));
    }
    let mut size = 0;
    for (name, v) in attrs {
        let name_ok = (1..=256).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !name.to_ascii_lowercase().starts_with("aws.")
            && !name.to_ascii_lowercase().starts_with("amazon.");
        if !name_ok {
            return Err(invalid_value(format!(
                "Message attribute name '{name}' is invalid."
            )));
        }
        let base = v.data_type.split('.').next().unwrap_or_default();
        let ok = match base {
            "String" | "Number" => v.string_value.is_some() && v.binary_value.is_none(),
            "Binary" => v.binary_value.is_some() && v.string_value.is_none(),
            _ => false,
        };
        if !ok || v.string_list_values.is_some() || v.binary_list_values.is_some() {
            return Err(invalid_value(format!(
                "Message attribute '{name}' must have a DataType of String, Number or Binary (optionally with a custom suffix) and the matching StringValue or BinaryValue."
            )));
        }
        if base == "Number"
            && v.string_value
                .as_deref()
                .is_some_and(|s| s.parse::<f64>().is_err())
        {
            return Err(invalid_value(format!(
                "Message attribute '{name}' has an invalid number value."
            )));
        }
        size += name.len()
            + v.data_type.len()
            + v.string_value.as_ref().map_or(0, String::len)
            + v.binary_value.as_ref().map_or(0, |b| b.0.len());
    }
    Ok(size)
}

/// Checks one message for `queue`; returns its document.
fn prepare(
    ctx: &RequestContext,
    queue: &QueueDoc,
    body: String,
    attributes: Option<BTreeMap<String, MessageAttributeValue>>,
    delay: Option<i32>,
) -> Result<MessageDoc, ApiError> {
    check_body(&body)?;
    let attributes = attributes.unwrap_or_default();
    let size = body.len() + check_attributes(&attributes)?;
    let max = queue.number("MaximumMessageSize");
    if size as i64 > max {
        return Err(invalid_value(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {max} bytes."
        )));
    }
    let delay = match delay {
        None => queue.number("DelaySeconds"),
        Some(d) if (0..=900).contains(&d) => i64::from(d),
        Some(d) => {
            return Err(errors::invalid_parameter(
                "DelaySeconds",
                d,
                "must be between 0 and 900, if provided.",
            ))
        }
    };
    Ok(MessageDoc::new(
        queue,
        body,
        attributes,
        delay,
        &ctx.account_id,
    ))
}

pub async fn send(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: SendMessageRequest,
) -> Result<SendMessageResult, ApiError> {
    let q = queues::find(sqs, ctx, &input.queue_url).await?.value;
    let m = prepare(
        ctx,
        &q,
        input.message_body,
        input.message_attributes,
        input.delay_seconds,
    )?;
    let out = SendMessageResult {
        md5_of_message_body: Some(md5_hex(m.body.as_bytes())),
        md5_of_message_attributes: md5_of_attributes(&m.attributes),
        md5_of_message_system_attributes: None,
        message_id: Some(m.id.clone()),
        sequence_number: None,
    };
    let sc = scope(ctx);
    if !records::try_commit(sqs.store(), &sc, vec![Versioned::new(m).write()]).await? {
        return Err(errors::server("a new message's id collided"));
    }
    sqs.waiters.wake(&sc, &q.generation);
    Ok(out)
}

fn check_entry_ids<'a>(ids: impl Iterator<Item = &'a str>) -> Result<usize, ApiError> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !(1..=80).contains(&id.len())
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ApiError::client(
                "InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id) {
            return Err(ApiError::client(
                "BatchEntryIdsNotDistinct",
                format!("Id {id} repeated."),
            ));
        }
    }
    match seen.len() {
        0 => Err(ApiError::client(
            "EmptyBatchRequest",
            "There should be at least one batch entry in the request.",
        )),
        n if n > 10 => Err(ApiError::client(
            "TooManyEntriesInBatchRequest",
            format!("Maximum number of entries per request are 10. You have sent {n}."),
        )),
        n => Ok(n),
    }
}

fn failed(id: &str, e: &ApiError) -> BatchResultErrorEntry {
    let code = errors::query_compatible(e.clone())
        .query_error
        .and_then(|q| q.split(';').next().map(str::to_string))
        .unwrap_or_else(|| e.code.to_string());
    BatchResultErrorEntry {
        id: id.to_string(),
        sender_fault: e.status < 500,
        code,
        message: Some(e.message.clone()),
    }
}

pub async fn send_batch(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: SendMessageBatchRequest,
) -> Result<SendMessageBatchResult, ApiError> {
    check_entry_ids(input.entries.iter().map(|e| e.id.as_str()))?;
    let q = queues::find(sqs, ctx, &input.queue_url).await?.value;
    let total: usize = input.entries.iter().map(|e| e.message_body.len()).sum();
    if total as i64 > q.number("MaximumMessageSize") {
        return Err(ApiError::client(
            "BatchRequestTooLong",
            "Batch requests cannot be longer than the queue's maximum message size.",
        ));
    }
    let mut writes = Vec::new();
    let mut successful = Vec::new();
    let mut failures = Vec::new();
    for e in input.entries {
        match prepare(
            ctx,
            &q,
            e.message_body,
            e.message_attributes,
            e.delay_seconds,
        ) {
            Ok(m) => {
                successful.push(SendMessageBatchResultEntry {
                    id: e.id,
                    message_id: m.id.clone(),
                    md5_of_message_body: md5_hex(m.body.as_bytes()),
                    md5_of_message_attributes: md5_of_attributes(&m.attributes),
                    md5_of_message_system_attributes: None,
                    sequence_number: None,
                });
                writes.push(Versioned::new(m).write());
            }
            Err(err) => failures.push(failed(&e.id, &err)),
        }
    }
    let sc = scope(ctx);
    if !writes.is_empty() {
        if !records::try_commit(sqs.store(), &sc, writes).await? {
            return Err(errors::server("a new message's id collided"));
        }
        sqs.waiters.wake(&sc, &q.generation);
    }
    Ok(SendMessageBatchResult {
        successful,
        failed: failures,
    })
}

/// What a receive asks for.
struct Ask {
    max: usize,
    visibility_s: i64,
    system: Vec<String>,
    attributes: Vec<String>,
}

pub async fn receive(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ReceiveMessageRequest,
) -> Result<ReceiveMessageResult, ApiError> {
    let max = input.max_number_of_messages.unwrap_or(1);
    if !(1..=10).contains(&max) {
        return Err(errors::invalid_parameter(
            "MaxNumberOfMessages",
            max,
            "Must be between 1 and 10, if provided.",
        ));
    }
    if let Some(w) = input.wait_time_seconds.filter(|w| !(0..=20).contains(w)) {
        return Err(errors::invalid_parameter(
            "WaitTimeSeconds",
            w,
            "Must be >= 0 and <= 20, if provided.",
        ));
    }
    if let Some(v) = input
        .visibility_timeout
        .filter(|v| !(0..=43_200).contains(v))
    {
        return Err(errors::invalid_parameter(
            "VisibilityTimeout",
            v,
            "Must be >= 0 and <= 43200, if provided.",
        ));
    }
    let q = queues::find(sqs, ctx, &input.queue_url).await?.value;
    let mut system: Vec<String> = input
        .message_system_attribute_names
        .unwrap_or_default()
        .iter()
        .map(|n| n.as_str().to_string())
        .collect();
    // The deprecated `AttributeNames` asks for the same system attributes.
    system.extend(
        input
            .attribute_names
            .unwrap_or_default()
            .iter()
            .map(|n| n.as_str().to_string()),
    );
    let ask = Ask {
        max: max as usize,
        visibility_s: input
            .visibility_timeout
            .map_or_else(|| q.number("VisibilityTimeout"), i64::from),
        system,
        attributes: input.message_attribute_names.unwrap_or_default(),
    };
    let wait_s = input
        .wait_time_seconds
        .map_or_else(|| q.number("ReceiveMessageWaitTimeSeconds"), i64::from);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_s.max(0) as u64);
    let sc = scope(ctx);
    let notify = sqs.waiters.get(&sc, &q.generation);
    let mut slot = None;
    loop {
        // Registered before looking, so a send in between still wakes us.
        let woken = notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let (got, next_ms) = take(sqs, ctx, &q, &ask).await?;
        let now = tokio::time::Instant::now();
        if !got.is_empty() || now >= deadline {
            return Ok(ReceiveMessageResult {
                messages: (!got.is_empty()).then_some(got),
            });
        }
        if slot.is_none() {
            slot = Some(sqs.polls.enter(&ctx.account_id).ok_or_else(|| {
                errors::throttled("Too many long polls are waiting for this account; retry later.")
            })?);
        }
        // A send, a visibility change or a dead-lettering wakes us at once;
        // otherwise we look again when the next hidden message shows (or
        // at the deadline), so a waiting poll costs no reads.
        let mut nap = deadline - now;
        if let Some(at) = next_ms {
            let until = u64::try_from(at - now_ms()).unwrap_or(0);
            nap = nap.min(Duration::from_millis(until + 5));
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

/// One attempt at handing out up to `ask.max` messages; also says when
/// the next message now hidden (in flight or delayed) shows again.
async fn take(
    sqs: &Sqs,
    ctx: &RequestContext,
    q: &QueueDoc,
    ask: &Ask,
) -> Result<(Vec<Message>, Option<i64>), ApiError> {
    let sc = scope(ctx);
    let retention_ms = q.number("MessageRetentionPeriod") * 1000;
    let redrive = q.redrive();
    let dlq = match &redrive {
        Some((name, _)) => records::load::<QueueDoc>(sqs.store(), &sc, name).await?,
        None => None,
    };
    let (taken, moved, next) = retry(sqs.store(), async || {
        let docs = records::list::<MessageDoc>(
            sqs.store(),
            &sc,
            &Query {
                parent: Some(q.generation.clone()),
                limit: SCAN,
                ..Query::default()
            },
        )
        .await?;
        let now = now_ms();
        let mut writes = Vec::new();
        let mut taken = Vec::new();
        let mut moved = false;
        let mut next: Option<i64> = None;
        for mut d in docs {
            if taken.len() == ask.max {
                break;
            }
            if d.value.sent_ms + retention_ms <= now {
                writes.push(delete_write(&d));
                continue;
            }
            if d.value.visible_at_ms > now {
                next = Some(next.map_or(d.value.visible_at_ms, |n| n.min(d.value.visible_at_ms)));
                continue;
            }
            if let (Some((_, max)), Some(dlq)) = (&redrive, &dlq) {
                if d.value.receive_count >= *max {
                    writes.push(delete_write(&d));
                    let mut m = d.value.clone();
                    m.queue = dlq.value.generation.clone();
                    m.visible_at_ms = now;
                    writes.push(Versioned::new(m).write());
                    moved = true;
                    continue;
                }
            }
            d.value.receive_count += 1;
            d.value.first_receive_ms.get_or_insert(now);
            d.value.visible_at_ms = now + ask.visibility_s * 1000;
            d.value.nonce = uuid::Uuid::new_v4().simple().to_string();
            writes.push(d.write());
            taken.push(d.value);
        }
        if writes.is_empty() {
            return Ok(Attempt::Done((Vec::new(), false, next)));
        }
        Ok::<_, ApiError>(Attempt::Commit {
            scope: sc.clone(),
            writes,
            value: (taken, moved, next),
        })
    })
    .await?;
    if moved {
        if let Some(dlq) = &dlq {
            sqs.waiters.wake(&sc, &dlq.value.generation);
        }
    }
    Ok((taken.into_iter().map(|m| present(m, ask)).collect(), next))
}

fn delete_write(d: &Versioned<MessageDoc>) -> Write {
    Write::Delete {
        kind: KIND,
        id: d.value.id.clone(),
        expect: Expect::Version(d.version),
    }
}

/// A received message as ReceiveMessage shows it.
fn present(m: MessageDoc, ask: &Ask) -> Message {
    let all_system = ask.system.iter().any(|n| n == "All");
    let want = |n: &str| all_system || ask.system.iter().any(|s| s == n);
    let mut attributes = BTreeMap::new();
    for (n, v) in [
        ("SenderId", Some(m.sender.clone())),
        ("SentTimestamp", Some(m.sent_ms.to_string())),
        ("ApproximateReceiveCount", Some(m.receive_count.to_string())),
        (
            "ApproximateFirstReceiveTimestamp",
            m.first_receive_ms.map(|t| t.to_string()),
        ),
    ] {
        if let Some(v) = v.filter(|_| want(n)) {
            attributes.insert(MessageSystemAttributeName::from(n), v);
        }
    }
    let chosen: BTreeMap<String, MessageAttributeValue> = m
        .attributes
        .iter()
        .filter(|(name, _)| {
            ask.attributes.iter().any(|a| {
                a == "All"
                    || a == ".*"
                    || a == *name
                    || a.strip_suffix(".*")
                        .is_some_and(|p| name.starts_with(&format!("{p}.")))
            })
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let handle = URL_SAFE_NO_PAD.encode(format!("{}/{}/{}", m.queue, m.id, m.nonce));
    Message {
        message_id: Some(m.id),
        receipt_handle: Some(handle),
        md5_of_body: Some(md5_hex(m.body.as_bytes())),
        md5_of_message_attributes: md5_of_attributes(&chosen),
        body: Some(m.body),
        attributes: (!attributes.is_empty()).then_some(attributes),
        message_attributes: (!chosen.is_empty()).then_some(chosen),
    }
}

/// The queue generation, message id and nonce a receipt handle names.
fn parse_handle(handle: &str) -> Result<(String, String, String), ApiError> {
    let text = URL_SAFE_NO_PAD
        .decode(handle)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| receipt_invalid(handle))?;
    let mut parts = text.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(q), Some(id), Some(n)) if !q.is_empty() && !id.is_empty() => {
            Ok((q.to_string(), id.to_string(), n.to_string()))
        }
        _ => Err(receipt_invalid(handle)),
    }
}

/// The message a receipt handle names, in `queue` (`None`: already gone).
async fn by_handle(
    sqs: &Sqs,
    sc: &Scope,
    q: &QueueDoc,
    handle: &str,
) -> Result<Option<Versioned<MessageDoc>>, ApiError> {
    let (generation, id, _) = parse_handle(handle)?;
    if generation != q.generation {
        return Err(receipt_invalid(handle));
    }
    Ok(records::load::<MessageDoc>(sqs.store(), sc, &id)
        .await?
        .filter(|m| m.value.queue == q.generation))
}

/// Deletes the message; deleting one already gone succeeds, as on SQS.
async fn delete_one(sqs: &Sqs, sc: &Scope, q: &QueueDoc, handle: &str) -> Result<(), ApiError> {
    if let Some(m) = by_handle(sqs, sc, q, handle).await? {
        let w = Write::Delete {
            kind: KIND,
            id: m.value.id,
            expect: Expect::Any,
        };
        records::try_commit(sqs.store(), sc, vec![w]).await?;
    }
    Ok(())
}

pub async fn delete(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: DeleteMessageRequest,
) -> Result<(), ApiError> {
    let q = queues::find(sqs, ctx, &input.queue_url).await?.value;
    delete_one(sqs, &scope(ctx), &q, &input.receipt_handle).await
}

pub async fn delete_batch(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: DeleteMessageBatchRequest,
) -> Result<DeleteMessageBatchResult, ApiError> {
    check_entry_ids(input.entries.iter().map(|e| e.id.as_str()))?;
    let q = queues::find(sqs, ctx, &input.queue_url).await?.value;
    let sc = scope(ctx);
    let mut successful = Vec::new();
    let mut failures = Vec::new();
    for e in input.entries {
        match delete_one(sqs, &sc, &q, &e.receipt_handle).await {
            Ok(()) => successful.push(DeleteMessageBatchResultEntry { id: e.id }),
            Err(err) => failures.push(failed(&e.id, &err)),
        }
    }
    Ok(DeleteMessageBatchResult {
        successful,
        failed: failures,
    })
}

pub async fn change_visibility(
    sqs: &Sqs,
    ctx: &RequestContext,
    input: ChangeMessageVisibilityRequest,
) -> Result<(), ApiError> {
    if !(0..=43_200).contains(&input.visibility_timeout) {
        return Err(errors::invalid_parameter(
            "VisibilityTimeout",
            input.visibility_timeout,
            "Must be >= 0 and <= 43200.",
        ));
    }
    let q = queues::find(sqs, ctx, &input.queue_url).await?.value;
    let sc = scope(ctx);
    let (_, _, nonce) = parse_handle(&input.receipt_handle)?;
    let handle = input.receipt_handle.as_str();
    retry(sqs.store(), async || {
        let Some(mut m) = by_handle(sqs, &sc, &q, handle).await? else {
            return Err(receipt_invalid(handle));
        };
        let now = now_ms();
        // Only the receive that holds it may extend it, and only while held.
        if m.value.visible_at_ms <= now || m.value.nonce != nonce {
            return Err(ApiError::client(
                "MessageNotInflight",
                "The message referred to isn't in flight.",
            ));
        }
        m.value.visible_at_ms = now + i64::from(input.visibility_timeout) * 1000;
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![m.write()],
            value: (),
        })
    })
    .await?;
    // A shorter hold may show it sooner than waiting polls expect.
    sqs.waiters.wake(&sc, &q.generation);
    Ok(())
}

/// A queue's messages by state, for its Approximate… attributes.
#[derive(Default)]
pub struct Counts {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

pub async fn counts(sqs: &Sqs, ctx: &RequestContext, q: &QueueDoc) -> Result<Counts, ApiError> {
    let docs = records::list::<MessageDoc>(
        sqs.store(),
        &scope(ctx),
        &Query {
            parent: Some(q.generation.clone()),
            limit: 100_000,
            ..Query::default()
        },
    )
    .await?;
    let now = now_ms();
    let retention_ms = q.number("MessageRetentionPeriod") * 1000;
    let mut c = Counts::default();
    for d in docs.iter().map(|d| &d.value) {
        if d.sent_ms + retention_ms <= now {
            continue;
        }
        match (d.visible_at_ms > now, d.receive_count) {
            (false, _) => c.visible += 1,
            (true, 0) => c.delayed += 1,
            (true, _) => c.in_flight += 1,
        }
    }
    Ok(c)
}

/// Deletes every message of a queue generation, a batch at a time.
pub async fn delete_all(sqs: &Sqs, sc: &Scope, generation: &str) -> Result<(), ApiError> {
    loop {
        let docs = sqs
            .store()
            .list(
                sc,
                KIND,
                &Query {
                    parent: Some(generation.to_string()),
                    limit: 500,
                    ..Query::default()
                },
            )
            .await
            .map_err(errors::server)?;
        if docs.is_empty() {
            return Ok(());
        }
        let writes = docs
            .into_iter()
            .map(|d| Write::Delete {
                kind: KIND,
                id: d.id,
                expect: Expect::Any,
            })
            .collect();
        sqs.store()
            .commit(sc, writes)
            .await
            .map_err(errors::server)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_digest_matches_sqs() {
        // The digest SQS documents for one String attribute.
        let mut a = BTreeMap::new();
        a.insert(
            "attr".to_string(),
            MessageAttributeValue {
                string_value: Some("value".into()),
                binary_value: None,
                string_list_values: None,
                binary_list_values: None,
                data_type: "String".into(),
            },
        );
        let mut buf = Vec::new();
        for part in [&b"attr"[..], b"String"] {
            buf.extend_from_slice(&(part.len() as u32).to_be_bytes());
            buf.extend_from_slice(part);
        }
        buf.push(1);
        buf.extend_from_slice(&5u32.to_be_bytes());
        buf.extend_from_slice(b"value");
        assert_eq!(md5_of_attributes(&a), Some(md5_hex(&buf)));
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
