//! Amazon EventBridge (`AWSEvents`): the default event bus, rules with
//! event patterns, SQS queue targets, PutEvents, and ECS's own events.
//!
//! Every event — ECS's and PutEvents' alike — goes through the outbox
//! ([`outbox`]); [`Events::deliver_pending`] matches it against the
//! enabled rules of its account and region (with `core::event_pattern`)
//! and enqueues it on their queue targets. Scheduled rules are kept and
//! listed but never fire.

pub mod outbox;
pub mod rules;

use crate::records::{self, load, scope, Versioned};
use crate::sqs::messages::MessageDoc;
use crate::sqs::queues::QueueDoc;
use crate::sqs::Sqs;
use berth_core::event_pattern;
use berth_core::pagination::TokenCodec;
use berth_store::{Expect, Query, Scope, Store, Write};
use berth_wire::events::*;
use berth_wire::{ApiError, RequestContext};
use outbox::OutboxDoc;
use rules::RuleDoc;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

#[derive(Clone)]
pub struct Events {
    store: Arc<dyn Store>,
    tokens: TokenCodec,
    sqs: Sqs,
    /// Every delivered event, for live streams (`berth server`'s SSE
    /// endpoint): bounded, so a reader that falls behind skips (and
    /// learns it was lagged) instead of growing memory.
    tap: broadcast::Sender<Arc<Tapped>>,
}

/// An event as it left the outbox, for a live stream.
#[derive(Debug)]
pub struct Tapped {
    pub account: String,
    pub region: String,
    pub id: String,
    pub detail_type: String,
    pub event: Value,
}

/// How many events the tap holds for its slowest reader.
const TAP_CAPACITY: usize = 1024;

impl Events {
    pub fn new(store: Arc<dyn Store>, token_key: Vec<u8>, sqs: Sqs) -> Events {
        Events {
            store,
            tokens: TokenCodec::new(token_key),
            sqs,
            tap: broadcast::channel(TAP_CAPACITY).0,
        }
    }

    /// Every event delivered from now on, of every account: the reader
    /// keeps only its caller's. Dropping the receiver releases it.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Tapped>> {
        self.tap.subscribe()
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Delivers what the outboxes hold, woken by every commit that adds to
    /// one and at least every second (for what a restart left behind).
    pub async fn run_deliverer(self) {
        loop {
            let woken = outbox::WAKE.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match self.deliver_pending().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "event delivery failed; retrying"),
            }
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// One pass over every outbox; returns how many events it handled.
    pub async fn deliver_pending(&self) -> Result<usize, ApiError> {
        let mut handled = 0;
        let scopes = self
            .store()
            .scopes(outbox::KIND)
            .await
            .map_err(crate::sqs::errors::server)?;
        for sc in scopes {
            handled += self.deliver_scope(&sc).await?;
        }
        Ok(handled)
    }

    async fn deliver_scope(&self, sc: &Scope) -> Result<usize, ApiError> {
        let pending = records::list::<OutboxDoc>(
            self.store(),
            sc,
            &Query {
                limit: 200,
                ..Query::default()
            },
        )
        .await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let rules: Vec<RuleDoc> = records::list::<RuleDoc>(
            self.store(),
            sc,
            &Query {
                limit: 10_000,
                ..Query::default()
            },
        )
        .await?
        .into_iter()
        .map(|r| r.value)
        .filter(|r| r.enabled() && !r.targets.is_empty())
        .collect();
        let patterns: Vec<(RuleDoc, Value)> = rules
            .into_iter()
            .filter_map(|r| {
                let p = event_pattern::parse(r.event_pattern.as_deref()?).ok()?;
                Some((r, p))
            })
            .collect();
        // One commit for the whole batch: each event leaves the outbox in
        // the commit that enqueues it, and a quiet account (no rules)
        // costs one delete per batch, not one commit per event.
        let handled = pending.len();
        let mut writes = Vec::new();
        let mut woken = Vec::new();
        let mut tapped = Vec::new();
        for ev in pending {
            writes.push(Write::Delete {
                kind: outbox::KIND,
                id: ev.value.id.clone(),
                expect: Expect::Version(ev.version),
            });
            for (rule, pattern) in &patterns {
                if !event_pattern::matches(pattern, &ev.value.event) {
                    continue;
                }
                for t in &rule.targets {
                    let Some(name) = t.arn.rsplit(':').next() else {
                        continue;
                    };
                    // A target whose queue is gone loses the event, as on
                    // EventBridge without a dead-letter queue.
                    let Some(q) = load::<QueueDoc>(self.store(), sc, name).await? else {
                        tracing::debug!(rule = %rule.name, queue = name, "event target queue does not exist");
                        continue;
                    };
                    let body = target_body(t, &ev.value.event);
                    let delay = q.value.number("DelaySeconds");
                    let m = MessageDoc::new(
                        &q.value,
                        body,
                        Default::default(),
                        delay,
                        "events.amazonaws.com",
                    );
                    writes.push(Versioned::new(m).write());
                    woken.push(q.value.generation.clone());
                }
            }
            if self.tap.receiver_count() > 0 {
                tapped.push(ev.value);
            }
        }
        if records::try_commit(self.store(), sc, writes).await? {
            for g in woken {
                self.sqs.waiters.wake(sc, &g);
            }
            // Only once committed: a retried batch is streamed once.
            for ev in tapped {
                let detail_type = ev.event["detail-type"].as_str().unwrap_or("").to_string();
                let _ = self.tap.send(Arc::new(Tapped {
                    account: sc.account.clone(),
                    region: sc.region.clone(),
                    id: ev.id,
                    detail_type,
                    event: ev.event,
                }));
            }
        }
        Ok(handled)
    }

    async fn put_events(
        &self,
        ctx: &RequestContext,
        input: PutEventsRequest,
    ) -> Result<PutEventsResponse, ApiError> {
        if input.entries.is_empty() || input.entries.len() > 10 {
            return Err(ApiError::client(
                "ValidationException",
                "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10",
            ));
        }
        let sc = scope(ctx);
        let now = outbox::now_ms();
        let mut writes = Vec::new();
        let mut entries = Vec::new();
        for e in input.entries {
            match custom_event(ctx, &sc, e, now) {
                Ok((event, id)) => {
                    writes.push(outbox::put(event, id.clone(), now));
                    entries.push(PutEventsResultEntry {
                        event_id: Some(id),
                        error_code: None,
                        error_message: None,
                    });
                }
                Err((code, message)) => entries.push(PutEventsResultEntry {
                    event_id: None,
                    error_code: Some(code.into()),
                    error_message: Some(message),
                }),
            }
        }
        let failed = entries.iter().filter(|e| e.error_code.is_some()).count();
        if !writes.is_empty() {
            records::try_commit(self.store(), &sc, writes).await?;
            outbox::WAKE.notify_waiters();
        }
        Ok(PutEventsResponse {
            failed_entry_count: Some(failed as i32),
            entries: Some(entries),
        })
    }
}

/// What a target receives: the event, or its `Input`, or the part its
/// `InputPath` (`$` or `$.a.b`) selects.
fn target_body(t: &Target, event: &Value) -> String {
    if let Some(input) = &t.input {
        return input.clone();
    }
    let selected = t.input_path.as_deref().and_then(|p| {
        let rest = p.strip_prefix('$')?;
        rest.split('.')
            .filter(|s| !s.is_empty())
            .try_fold(event, |v, k| v.get(k))
    });
    match selected.unwrap_or(event) {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// A PutEvents entry as an event, or the entry's error code and message.
fn custom_event(
    ctx: &RequestContext,
    sc: &Scope,
    e: PutEventsRequestEntry,
    now: i64,
) -> Result<(Value, String), (&'static str, String)> {
    let invalid = |what: &str| {
        (
            "InvalidArgument",
            format!("Parameter {what} is not valid. Reason: {what} is missing or empty."),
        )
    };
    let source = e
        .source
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("Source"))?;
    let detail_type = e
        .detail_type
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("DetailType"))?;
    let detail = e
        .detail
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("Detail"))?;
    let detail: Value = serde_json::from_str(&detail)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| ("MalformedDetail", "Detail is malformed.".to_string()))?;
    if source.starts_with("aws.") {
        return Err((
            "NotAuthorizedForSourceException",
            format!("Not authorized for the source {source}."),
        ));
    }
    let default_arn = format!(
        "arn:aws:events:{}:{}:event-bus/default",
        ctx.region, ctx.account_id
    );
    if let Some(b) = e
        .event_bus_name
        .as_deref()
        .filter(|b| *b != "default" && *b != default_arn)
    {
        return Err((
            "ResourceNotFoundException",
            format!("Event bus {b} does not exist."),
        ));
    }
    let at = e.time.map_or(now, |t| t.as_millis());
    let id = uuid::Uuid::new_v4().to_string();
    let event = outbox::envelope(
        sc,
        &id,
        &source,
        &detail_type,
        e.resources.unwrap_or_default(),
        detail,
        at,
    );
    Ok((event, id))
}

#[async_trait::async_trait]
impl EventsApi for Events {
    async fn put_rule(
        &self,
        ctx: &RequestContext,
        input: PutRuleRequest,
    ) -> Result<PutRuleResponse, ApiError> {
        rules::put_rule(self, ctx, input).await
    }

    async fn describe_rule(
        &self,
        ctx: &RequestContext,
        input: DescribeRuleRequest,
    ) -> Result<DescribeRuleResponse, ApiError> {
        rules::describe_rule(self, ctx, input).await
    }

    async fn list_rules(
        &self,
        ctx: &RequestContext,
        input: ListRulesRequest,
    ) -> Result<ListRulesResponse, ApiError> {
        rules::list_rules(self, ctx, input).await
    }

    async fn delete_rule(
        &self,
        ctx: &RequestContext,
        input: DeleteRuleRequest,
    ) -> Result<(), ApiError> {
        rules::delete_rule(self, ctx, input).await
    }

    async fn put_targets(
        &self,
        ctx: &RequestContext,
        input: PutTargetsRequest,
    ) -> Result<PutTargetsResponse, ApiError> {
        rules::put_targets(self, ctx, input).await
    }

    async fn remove_targets(
        &self,
        ctx: &RequestContext,
        input: RemoveTargetsRequest,
    ) -> Result<RemoveTargetsResponse, ApiError> {
        rules::remove_targets(self, ctx, input).await
    }

    async fn list_targets_by_rule(
        &self,
        ctx: &RequestContext,
        input: ListTargetsByRuleRequest,
    ) -> Result<ListTargetsByRuleResponse, ApiError> {
        rules::list_targets(self, ctx, input).await
    }

    async fn put_events(
        &self,
        ctx: &RequestContext,
        input: PutEventsRequest,
    ) -> Result<PutEventsResponse, ApiError> {
        Events::put_events(self, ctx, input).await
    }
}
