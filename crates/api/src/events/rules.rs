//! Rules of the default event bus and their targets.

use super::Events;
use crate::records::{self, load, retry, scope, Attempt, Record, Versioned};
use berth_core::event_pattern;
use berth_core::pagination::PageKey;
use berth_store::{Expect, Query, Write};
use berth_wire::events::*;
use berth_wire::{ApiError, RequestContext};
use serde::{Deserialize, Serialize};

pub const KIND: &str = "events-rule";

/// Targets a rule may have, as on EventBridge.
const MAX_TARGETS: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleDoc {
    pub name: String,
    pub event_pattern: Option<String>,
    pub schedule_expression: Option<String>,
    pub state: String,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    #[serde(default)]
    pub targets: Vec<Target>,
}

impl Record for RuleDoc {
    const KIND: &'static str = KIND;
    fn id(&self) -> String {
        self.name.clone()
    }
}

impl RuleDoc {
    pub fn enabled(&self) -> bool {
        self.state != "DISABLED"
    }
}

pub fn rule_arn(ctx_account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{ctx_account}:rule/{name}")
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::client("ValidationException", message)
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::client("ResourceNotFoundException", message)
}

/// Only the default bus exists: by name or by ARN.
fn check_bus(ctx: &RequestContext, bus: Option<&str>) -> Result<(), ApiError> {
    let default_arn = format!(
        "arn:aws:events:{}:{}:event-bus/default",
        ctx.region, ctx.account_id
    );
    match bus {
        None | Some("default") => Ok(()),
        Some(b) if b == default_arn => Ok(()),
        Some(b) => Err(not_found(format!("Event bus {b} does not exist."))),
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+ and have length between 1 and 64"
        )))
    }
}

async fn find(
    ev: &Events,
    ctx: &RequestContext,
    name: &str,
) -> Result<Versioned<RuleDoc>, ApiError> {
    load::<RuleDoc>(ev.store(), &scope(ctx), name)
        .await?
        .ok_or_else(|| not_found(format!("Rule {name} does not exist on EventBus default.")))
}

pub async fn put_rule(
    ev: &Events,
    ctx: &RequestContext,
    input: PutRuleRequest,
) -> Result<PutRuleResponse, ApiError> {
    check_name(&input.name)?;
    check_bus(ctx, input.event_bus_name.as_deref())?;
    if input.event_pattern.is_none() && input.schedule_expression.is_none() {
        return Err(validation(
            "Parameter(s) EventPattern or ScheduleExpression must be specified.",
        ));
    }
    if let Some(p) = &input.event_pattern {
        event_pattern::parse(p)
            .map_err(|e| ApiError::client("InvalidEventPatternException", e.to_string()))?;
    }
    if let Some(s) = &input.schedule_expression {
        let ok = (s.starts_with("rate(") || s.starts_with("cron(")) && s.ends_with(')');
        if !ok {
            return Err(validation("Parameter ScheduleExpression is not valid."));
        }
    }
    let state = match &input.state {
        None => "ENABLED".to_string(),
        Some(s) if s.is_known() => s.as_str().to_string(),
        Some(s) => return Err(validation(format!("Invalid State {s}."))),
    };
    let sc = scope(ctx);
    retry(ev.store(), async || {
        let current = load::<RuleDoc>(ev.store(), &sc, &input.name).await?;
        let (targets, version) = current
            .map(|c| (c.value.targets, c.version))
            .unwrap_or_default();
        let mut doc = Versioned::new(RuleDoc {
            name: input.name.clone(),
            event_pattern: input.event_pattern.clone(),
            schedule_expression: input.schedule_expression.clone(),
            state: state.clone(),
            description: input.description.clone(),
            role_arn: input.role_arn.clone(),
            targets,
        });
        doc.version = version;
        Ok::<_, ApiError>(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![doc.write()],
            value: (),
        })
    })
    .await?;
    Ok(PutRuleResponse {
        rule_arn: Some(rule_arn(&ctx.account_id, &ctx.region, &input.name)),
    })
}

pub async fn describe_rule(
    ev: &Events,
    ctx: &RequestContext,
    input: DescribeRuleRequest,
) -> Result<DescribeRuleResponse, ApiError> {
    check_bus(ctx, input.event_bus_name.as_deref())?;
    let r = find(ev, ctx, &input.name).await?.value;
    Ok(DescribeRuleResponse {
        arn: Some(rule_arn(&ctx.account_id, &ctx.region, &r.name)),
        name: Some(r.name),
        event_pattern: r.event_pattern,
        schedule_expression: r.schedule_expression,
        state: Some(RuleState::from(r.state.as_str())),
        description: r.description,
        role_arn: r.role_arn,
        managed_by: None,
        event_bus_name: Some("default".into()),
        created_by: Some(ctx.account_id.clone()),
    })
}

fn limit(given: Option<i32>) -> Result<usize, ApiError> {
    match given {
        None => Ok(100),
        Some(n) if (1..=100).contains(&n) => Ok(n as usize),
        Some(n) => Err(validation(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100"
        ))),
    }
}

pub async fn list_rules(
    ev: &Events,
    ctx: &RequestContext,
    input: ListRulesRequest,
) -> Result<ListRulesResponse, ApiError> {
    check_bus(ctx, input.event_bus_name.as_deref())?;
    let limit = limit(input.limit)?;
    let prefix = input.name_prefix.unwrap_or_default();
    let page = PageKey {
        operation: "ListRules",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &prefix,
    };
    let after = match &input.next_token {
        Some(t) => Some(
            ev.tokens
                .decode(&page, t)
                .map_err(|_| validation("The provided NextToken is not valid."))?,
        ),
        None => None,
    };
    let mut docs = records::list::<RuleDoc>(
        ev.store(),
        &scope(ctx),
        &Query {
            sort_prefix: (!prefix.is_empty()).then(|| prefix.clone()),
            after,
            limit: limit + 1,
            ..Query::default()
        },
    )
    .await?;
    let more = docs.len() > limit;
    docs.truncate(limit);
    let next_token = more
        .then(|| docs.last().map(|d| ev.tokens.encode(&page, &d.value.name)))
        .flatten();
    let rules: Vec<Rule> = docs
        .into_iter()
        .map(|d| {
            let r = d.value;
            Rule {
                arn: Some(rule_arn(&ctx.account_id, &ctx.region, &r.name)),
                name: Some(r.name),
                event_pattern: r.event_pattern,
                state: Some(RuleState::from(r.state.as_str())),
                description: r.description,
                schedule_expression: r.schedule_expression,
                role_arn: r.role_arn,
                managed_by: None,
                event_bus_name: Some("default".into()),
            }
        })
        .collect();
    Ok(ListRulesResponse {
        rules: Some(rules),
        next_token,
    })
}

pub async fn delete_rule(
    ev: &Events,
    ctx: &RequestContext,
    input: DeleteRuleRequest,
) -> Result<(), ApiError> {
    check_bus(ctx, input.event_bus_name.as_deref())?;
    let sc = scope(ctx);
    retry(ev.store(), async || {
        let Some(r) = load::<RuleDoc>(ev.store(), &sc, &input.name).await? else {
            // Deleting a rule that does not exist succeeds, as on EventBridge.
            return Ok(Attempt::Done(()));
        };
        if !r.value.targets.is_empty() {
            return Err(validation("Rule can't be deleted since it has targets."));
        }
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![Write::Delete {
                kind: KIND,
                id: r.value.name.clone(),
                expect: Expect::Version(r.version),
            }],
            value: (),
        })
    })
    .await
}

/// Why berth will not accept `t`, if it will not: only SQS queues of the
/// rule's own account and region are delivered to.
fn refuse_target(ctx: &RequestContext, t: &Target) -> Option<(&'static str, String)> {
    let ok_id = (1..=64).contains(&t.id.len())
        && t.id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !ok_id {
        return Some((
            "ValidationException",
            format!("Target Id '{}' is not valid.", t.id),
        ));
    }
    let prefix = format!("arn:aws:sqs:{}:{}:", ctx.region, ctx.account_id);
    let queue_ok = t
        .arn
        .strip_prefix(&prefix)
        .is_some_and(crate::sqs::queues::is_queue_name);
    if !queue_ok {
        return Some((
            "ValidationException",
            format!(
                "berth delivers events only to SQS queues of this account and region ({prefix}NAME); {} is not one.",
                t.arn
            ),
        ));
    }
    if t.input_transformer.is_some() {
        return Some((
            "ValidationException",
            "berth does not apply InputTransformer; use Input, InputPath or neither.".into(),
        ));
    }
    None
}

pub async fn put_targets(
    ev: &Events,
    ctx: &RequestContext,
    input: PutTargetsRequest,
) -> Result<PutTargetsResponse, ApiError> {
    check_bus(ctx, input.event_bus_name.as_deref())?;
    if input.targets.is_empty() || input.targets.len() > 10 {
        return Err(validation(
            "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10",
        ));
    }
    let sc = scope(ctx);
    let failed = retry(ev.store(), async || {
        let mut r = find(ev, ctx, &input.rule).await?;
        let mut failed = Vec::new();
        for t in &input.targets {
            if let Some((code, message)) = refuse_target(ctx, t) {
                failed.push(PutTargetsResultEntry {
                    target_id: Some(t.id.clone()),
                    error_code: Some(code.into()),
                    error_message: Some(message),
                });
                continue;
            }
            match r.value.targets.iter_mut().find(|x| x.id == t.id) {
                Some(x) => *x = t.clone(),
                None => r.value.targets.push(t.clone()),
            }
        }
        if r.value.targets.len() > MAX_TARGETS {
            return Err(ApiError::client(
                "LimitExceededException",
                format!("The requested resource exceeds the maximum number allowed ({MAX_TARGETS} targets per rule)."),
            ));
        }
        Ok(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![r.write()],
            value: failed,
        })
    })
    .await?;
    Ok(PutTargetsResponse {
        failed_entry_count: Some(failed.len() as i32),
        failed_entries: Some(failed),
    })
}

pub async fn remove_targets(
    ev: &Events,
    ctx: &RequestContext,
    input: RemoveTargetsRequest,
) -> Result<RemoveTargetsResponse, ApiError> {
    check_bus(ctx, input.event_bus_name.as_deref())?;
    if input.ids.is_empty() || input.ids.len() > 100 {
        return Err(validation(
            "1 validation error detected: Value at 'ids' failed to satisfy constraint: Member must have length between 1 and 100",
        ));
    }
    let sc = scope(ctx);
    retry(ev.store(), async || {
        let mut r = find(ev, ctx, &input.rule).await?;
        r.value.targets.retain(|t| !input.ids.contains(&t.id));
        Ok::<_, ApiError>(Attempt::Commit {
            scope: sc.clone(),
            writes: vec![r.write()],
            value: (),
        })
    })
    .await?;
    Ok(RemoveTargetsResponse {
        failed_entry_count: Some(0),
        failed_entries: Some(Vec::new()),
    })
}

pub async fn list_targets(
    ev: &Events,
    ctx: &RequestContext,
    input: ListTargetsByRuleRequest,
) -> Result<ListTargetsByRuleResponse, ApiError> {
    check_bus(ctx, input.event_bus_name.as_deref())?;
    let limit = limit(input.limit)?;
    let r = find(ev, ctx, &input.rule).await?.value;
    let page = PageKey {
        operation: "ListTargetsByRule",
        account: &ctx.account_id,
        region: &ctx.region,
        filter: &r.name,
    };
    let start = match &input.next_token {
        Some(t) => {
            let after = ev
                .tokens
                .decode(&page, t)
                .map_err(|_| validation("The provided NextToken is not valid."))?;
            r.targets
                .iter()
                .position(|t| t.id == after)
                .map_or(r.targets.len(), |i| i + 1)
        }
        None => 0,
    };
    let targets: Vec<Target> = r.targets.iter().skip(start).take(limit).cloned().collect();
    let next_token = (start + targets.len() < r.targets.len())
        .then(|| targets.last().map(|t| ev.tokens.encode(&page, &t.id)))
        .flatten();
    Ok(ListTargetsByRuleResponse {
        targets: Some(targets),
        next_token,
    })
}
