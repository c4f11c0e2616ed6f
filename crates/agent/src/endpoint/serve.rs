//! The endpoint's HTTP: routes, in ECS's paths.
//!
//! - `/v4/<token>` (and `/v3/<token>`): the container; `/task`, `/stats`,
//!   `/task/stats` below it.
//! - `/v2/credentials/<id>` with `Authorization: <token>`: the task role's
//!   credentials.
//! - `/api/<token>/task-protection/v1/state` (`ECS_AGENT_URI`): the task's
//!   scale-in protection, GET and PUT.

use super::{Endpoint, TaskEntry};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Accepts connections until the endpoint is gone. `only`: answer for
/// this task alone (a listener inside its network namespace).
pub async fn serve(
    listener: tokio::net::TcpListener,
    endpoint: Weak<Endpoint>,
    only: Option<String>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if endpoint.strong_count() == 0 {
            return;
        }
        let (endpoint, only) = (endpoint.clone(), only.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let (endpoint, only) = (endpoint.clone(), only.clone());
                async move {
                    let r = match endpoint.upgrade() {
                        Some(e) => answer(&e, only.as_deref(), req).await,
                        None => text(StatusCode::SERVICE_UNAVAILABLE, "The agent is stopping."),
                    };
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = json!({ "Message": message }).to_string();
    respond(status, body)
}

fn respond(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn ok(v: &Value) -> Response<Full<Bytes>> {
    respond(StatusCode::OK, v.to_string())
}

async fn answer(e: &Endpoint, only: Option<&str>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    if let ["api", token, "task-protection", "v1", "state"] = parts.as_slice() {
        return protection(e, only, token, req).await;
    }
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "Only GET is served here.");
    }
    match parts.as_slice() {
        ["v2", "credentials", id] => {
            let auth = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            match e.by_credentials(id, auth, only) {
                Some(task) => credentials(e, &task).await,
                None => text(
                    StatusCode::BAD_REQUEST,
                    "CredentialsV2Request: Credentials not found",
                ),
            }
        }
        ["v3" | "v4", token, rest @ ..] => {
            let Some((task, name)) = e.by_token(token, only) else {
                return text(StatusCode::NOT_FOUND, "No such task or container.");
            };
            let now = task.now.lock().clone();
            match rest {
                [] => task.facts.container(&name, &now).map_or_else(
                    || text(StatusCode::NOT_FOUND, "No such container."),
                    |v| ok(&v),
                ),
                ["task"] => ok(&task.facts.task(&now)),
                ["stats"] => {
                    let key = Endpoint::container_key(&task, &name);
                    match e.runtime.stats(&key).await {
                        Ok(Some(s)) => ok(&s),
                        Ok(None) => ok(&Value::Null),
                        Err(err) => text(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
                    }
                }
                ["task", "stats"] => {
                    let mut all = serde_json::Map::new();
                    for (container, state) in &now.containers {
                        let Some(id) = &state.docker_id else { continue };
                        let key = Endpoint::container_key(&task, container);
                        let s = e.runtime.stats(&key).await.ok().flatten();
                        all.insert(id.clone(), s.unwrap_or(Value::Null));
                    }
                    ok(&Value::Object(all))
                }
                _ => text(StatusCode::NOT_FOUND, "No such metadata path."),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "No such path."),
    }
}

async fn credentials(e: &Endpoint, task: &Arc<TaskEntry>) -> Response<Full<Bytes>> {
    match e.credentials(task).await {
        Ok(c) => ok(&json!({
            "RoleArn": c.role_arn,
            "AccessKeyId": c.access_key_id,
            "SecretAccessKey": c.secret_access_key,
            "Token": c.session_token,
            "Expiration": rfc3339(c.expiration),
        })),
        Err(err) => {
            // The control plane's reason, never a credential.
            tracing::warn!(task = %task.facts.task_arn(), error = %err, "task credentials unavailable");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "CredentialsV2Request: Credentials unavailable for the task",
            )
        }
    }
}

/// `${ECS_AGENT_URI}/task-protection/v1/state`: GET the task's scale-in
/// protection, or PUT `{"ProtectionEnabled": bool, "ExpiresInMinutes": n}`.
async fn protection(
    e: &Endpoint,
    only: Option<&str>,
    token: &str,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    use http_body_util::BodyExt;
    let Some((task, _)) = e.by_token(token, only) else {
        return text(StatusCode::NOT_FOUND, "No such task or container.");
    };
    let arn = task.facts.task_arn().to_string();
    let failure = |status: StatusCode, code: &str, message: &str| {
        let body = json!({"error": {"Arn": arn, "Code": code, "Message": message}});
        respond(status, body.to_string())
    };
    let update = match *req.method() {
        Method::GET => None,
        Method::PUT => {
            let Ok(body) = http_body_util::Limited::new(req.into_body(), 4096)
                .collect()
                .await
            else {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "Unreadable body.",
                );
            };
            let v: Value = serde_json::from_slice(&body.to_bytes()).unwrap_or(Value::Null);
            let Some(enabled) = v.get("ProtectionEnabled").and_then(Value::as_bool) else {
                return failure(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "Invalid request: does not contain 'ProtectionEnabled' field",
                );
            };
            let minutes = v
                .get("ExpiresInMinutes")
                .and_then(Value::as_i64)
                .map(|m| m.clamp(i32::MIN as i64, i32::MAX as i64) as i32);
            Some((enabled, minutes))
        }
        _ => {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "Only GET and PUT are served here.",
            )
        }
    };
    let result = e
        .control
        .task_protection(&task.facts.cluster(), &arn, update)
        .await;
    match result {
        Ok(out) => {
            if let Some(f) = out.failures.into_iter().flatten().next() {
                let body =
                    json!({"failure": {"Arn": f.arn, "Reason": f.reason, "Detail": f.detail}});
                return respond(StatusCode::OK, body.to_string());
            }
            let p = out
                .protected_tasks
                .into_iter()
                .flatten()
                .next()
                .unwrap_or_default();
            let mut protection = serde_json::Map::new();
            protection.insert(
                "ProtectionEnabled".into(),
                json!(p.protection_enabled.unwrap_or(false)),
            );
            protection.insert("TaskArn".into(), json!(p.task_arn.unwrap_or(arn)));
            if let Some(at) = p.expiration_date {
                protection.insert("ExpirationDate".into(), rfc3339(at.0 as i64));
            }
            ok(&json!({ "protection": protection }))
        }
        Err(err) => {
            let msg = err.to_string();
            let (code, message) = msg.split_once(": ").unwrap_or(("ServerException", &msg));
            failure(StatusCode::BAD_REQUEST, code, message)
        }
    }
}

fn rfc3339(secs: i64) -> Value {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}
