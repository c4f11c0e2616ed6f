//! The outbox: events waiting for delivery, written in the same commit as
//! the change that caused them, and moved into the matching rules' queues
//! by the deliverer, which deletes each from the outbox in the same commit
//! as it enqueues it. An event is therefore never lost (a crash before the
//! delivery commit leaves it in the outbox) and delivered once per
//! matching target (at-least-once in general).
//!
//! ECS's events are derived here, once, from the documents a commit writes
//! (see `records::try_commit`): every write of a task is an "ECS Task State
//! Change" (a task document is only written when the task changes, and its
//! `version` grows each time), every write of a container instance an
//! "ECS Container Instance State Change".

use crate::records::{kind, Record};
use berth_store::{Doc, Scope, Write};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;

pub const KIND: &str = "events-outbox";

/// Wakes the deliverer when a commit put events in an outbox.
pub(crate) static WAKE: Notify = Notify::const_new();

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxDoc {
    pub id: String,
    pub at_ms: i64,
    /// The event, in EventBridge's envelope.
    pub event: Value,
}

impl Record for OutboxDoc {
    const KIND: &'static str = KIND;
    fn id(&self) -> String {
        self.id.clone()
    }
    fn sort(&self) -> String {
        format!("{:015}{}", self.at_ms, self.id)
    }
}

pub(crate) fn now_ms() -> i64 {
    crate::sqs::now_ms()
}

/// `2024-05-01T12:00:00Z` (EventBridge's `time`) or, with `millis`,
/// `2024-05-01T12:00:00.123Z` (ECS's timestamps inside `detail`).
pub fn iso8601(ms: i64, millis: bool) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    if millis {
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
            t.millisecond()
        )
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// An event in EventBridge's envelope.
pub fn envelope(
    sc: &Scope,
    id: &str,
    source: &str,
    detail_type: &str,
    resources: Vec<String>,
    detail: Value,
    at_ms: i64,
) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": detail_type,
        "source": source,
        "account": sc.account,
        "time": iso8601(at_ms, false),
        "region": sc.region,
        "resources": resources,
        "detail": detail,
    })
}

/// The outbox write of one event.
pub fn put(event: Value, id: String, at_ms: i64) -> Write {
    Write::put_over(crate::records::to_doc(&OutboxDoc { id, at_ms, event }, 0))
}

/// ECS's epoch-second timestamps become ISO-8601 strings in events.
fn iso_timestamps(v: &mut Value, keys: &[&str]) {
    for k in keys {
        if let Some(slot) = v.get_mut(*k) {
            if let Some(secs) = slot.as_f64() {
                *slot = Value::String(iso8601((secs * 1000.0).round() as i64, true));
            }
        }
    }
}

const TASK_TIMES: &[&str] = &[
    "connectivityAt",
    "createdAt",
    "executionStoppedAt",
    "pullStartedAt",
    "pullStoppedAt",
    "startedAt",
    "stoppedAt",
    "stoppingAt",
];

/// The ECS event a written document stands for, if any.
fn ecs_event(sc: &Scope, doc: &Doc, at_ms: i64) -> Option<(Value, String)> {
    let body: Value = serde_json::from_slice(&doc.body).ok()?;
    let (detail_type, mut detail, arn_key, times) = match doc.kind {
        kind::TASK => (
            "ECS Task State Change",
            body.get("task")?.clone(),
            "taskArn",
            TASK_TIMES,
        ),
        kind::CONTAINER_INSTANCE => (
            "ECS Container Instance State Change",
            body.get("containerInstance")?.clone(),
            "containerInstanceArn",
            &["registeredAt"][..],
        ),
        _ => return None,
    };
    iso_timestamps(&mut detail, times);
    if let Value::Object(m) = &mut detail {
        m.insert("updatedAt".into(), Value::String(iso8601(at_ms, true)));
        // Task-level tags are not part of the event, as on ECS.
        m.remove("tags");
    }
    let resources = detail
        .get(arn_key)
        .and_then(Value::as_str)
        .map(|a| vec![a.to_string()])
        .unwrap_or_default();
    let id = uuid::Uuid::new_v4().to_string();
    let event = envelope(sc, &id, "aws.ecs", detail_type, resources, detail, at_ms);
    Some((event, id))
}

/// `writes` plus the outbox writes of the ECS events they cause, and
/// whether they put anything in the outbox. Only customer accounts get
/// events (not berth's managed-capacity scope).
pub(crate) fn with_ecs_events(sc: &Scope, mut writes: Vec<Write>) -> (Vec<Write>, bool) {
    if !sc.account.bytes().all(|b| b.is_ascii_digit()) {
        return (writes, false);
    }
    let at_ms = now_ms();
    let events: Vec<Write> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Put { doc, .. } => ecs_event(sc, doc, at_ms),
            Write::Delete { .. } => None,
        })
        .map(|(event, id)| put(event, id, at_ms))
        .collect();
    writes.extend(events);
    let any = writes
        .iter()
        .any(|w| matches!(w, Write::Put { doc, .. } if doc.kind == KIND));
    (writes, any)
}

/// The outbox write of a service's "ECS Service Action" or "ECS
/// Deployment State Change" event, as the reconciler decides them.
pub(crate) fn service_event(
    sc: &Scope,
    service: &berth_wire::ecs::Service,
    event: &berth_scheduler::service::Event,
) -> Option<Write> {
    use berth_scheduler::service::Event as E;
    let at_ms = now_ms();
    let when = Value::String(iso8601(at_ms, true));
    let (detail_type, event_type, name, deployment) = match event {
        E::SteadyState => ("ECS Service Action", "INFO", "SERVICE_STEADY_STATE", None),
        E::UnableToStartConsistently => (
            "ECS Service Action",
            "WARN",
            "SERVICE_TASK_START_IMPAIRED",
            None,
        ),
        E::DeploymentCompleted { deployment } => (
            "ECS Deployment State Change",
            "INFO",
            "SERVICE_DEPLOYMENT_COMPLETED",
            Some(deployment),
        ),
        E::DeploymentFailed { deployment } => (
            "ECS Deployment State Change",
            "ERROR",
            "SERVICE_DEPLOYMENT_FAILED",
            Some(deployment),
        ),
        _ => return None,
    };
    if !sc.account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut detail = json!({"eventType": event_type, "eventName": name});
    match deployment {
        Some(id) => {
            detail["deploymentId"] = Value::String(id.clone());
            detail["updatedAt"] = when;
            detail["reason"] = Value::String(if name == "SERVICE_DEPLOYMENT_COMPLETED" {
                format!("ECS deployment {id} completed.")
            } else {
                format!("ECS deployment {id} failed: tasks failed to start.")
            });
        }
        None => {
            detail["clusterArn"] = json!(service.cluster_arn);
            detail["createdAt"] = when;
        }
    }
    let resources = service.service_arn.iter().cloned().collect();
    let id = uuid::Uuid::new_v4().to_string();
    let ev = envelope(sc, &id, "aws.ecs", detail_type, resources, detail, at_ms);
    Some(put(ev, id, at_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_as_eventbridge_does() {
        assert_eq!(iso8601(1_700_000_000_123, false), "2023-11-14T22:13:20Z");
        assert_eq!(iso8601(1_700_000_000_123, true), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn a_task_write_carries_its_state_change_event() {
        let sc = Scope::new("111122223333", "us-east-1");
        let body = json!({"task": {"taskArn": "arn:aws:ecs:us-east-1:111122223333:task/c/t",
                                   "lastStatus": "STOPPED", "createdAt": 1_700_000_000.5,
                                   "version": 4}});
        let doc = Doc::new(kind::TASK, "t", serde_json::to_vec(&body).unwrap());
        let (writes, any) = with_ecs_events(&sc, vec![Write::put_over(doc)]);
        assert!(any);
        let Write::Put { doc, .. } = &writes[1] else {
            panic!()
        };
        let out: OutboxDoc = serde_json::from_slice(&doc.body).unwrap();
        assert_eq!(out.event["detail-type"], "ECS Task State Change");
        assert_eq!(out.event["source"], "aws.ecs");
        assert_eq!(out.event["account"], "111122223333");
        assert_eq!(out.event["detail"]["createdAt"], "2023-11-14T22:13:20.500Z");
        assert_eq!(
            out.event["resources"][0],
            "arn:aws:ecs:us-east-1:111122223333:task/c/t"
        );
        // Berth's managed scope has no customer to tell.
        let (w, any) = with_ecs_events(&Scope::new("berth", "managed"), Vec::new());
        assert!(w.is_empty() && !any);
    }
}
