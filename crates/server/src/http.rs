//! One handler for every request: refuse from the headers alone what can be
//! refused (authentication, operation, signature scope and clock, content
//! type, length, throttling), read the body within the memory budget and
//! its deadline, verify the signature, dispatch, and answer in the request's
//! protocol (`protocol`: AWS JSON, or the XML of EC2's and STS/IAM's form
//! protocols). Nothing a client sends reaches a panic: every failure
//! becomes an `ApiError`.

use crate::config::HttpOptions;
use crate::gate::{self, BodyBudget, Throttle};
use crate::protocol::{self, Protocol, QueryService};
use crate::services::{self, Service};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use berth_auth::{Pending, SignedRequest, Verifier};
use berth_core::names;
use berth_wire::query::Params;
use berth_wire::{ApiError, RequestContext};
use futures::FutureExt;
use http::HeaderValue;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub struct AppState {
    /// Per-key IAM-style policies (a key without one may do everything
    /// in its account).
    policies: crate::authorize::Policies,
    pub(crate) services: crate::services::Services,
    verifier: Verifier,
    regions: Option<Vec<String>>,
    budget: BodyBudget,
    body_read_timeout: Duration,
    throttle: Option<Throttle>,
    /// Open event streams, capped per key and in all.
    pub(crate) streams: crate::sse::Streams,
}

impl AppState {
    pub fn new(
        services: crate::services::Services,
        verifier: Verifier,
        regions: Option<Vec<String>>,
        http: &HttpOptions,
        policies: crate::authorize::Policies,
    ) -> Arc<Self> {
        Arc::new(AppState {
            policies,
            services,
            verifier,
            regions,
            budget: BodyBudget::new(http.max_body_memory),
            body_read_timeout: http.body_read_timeout,
            throttle: http.throttle.map(|t| Throttle::new(t.rate, t.burst)),
            streams: crate::sse::Streams::default(),
        })
    }

    fn region_ok(&self, region: &str) -> bool {
        match &self.regions {
            Some(list) => list.iter().any(|r| r == region),
            None => names::is_valid_region(region),
        }
    }
}

/// Answers one request (`conn` calls this for every request it reads), in
/// the protocol its headers name (`protocol::classify`), errors included.
pub async fn serve_request(state: Arc<AppState>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    if crate::sse::is_stream_request(&parts) {
        return crate::sse::serve(state, parts, request_id).await;
    }
    let protocol = protocol::classify(&header_list(&parts), parts.uri.query().unwrap_or(""));
    let result = admit_and_process(&state, protocol, &parts, body, &request_id).await;
    match result {
        Ok(body) => protocol::ok_response(protocol, body, &request_id),
        Err(e) => {
            if e.status >= 500 && e.status != 503 {
                tracing::error!(code = %e.code, message = %e.message, request_id, "request failed");
            } else {
                tracing::debug!(code = %e.code, message = %e.message, request_id, "request refused");
            }
            let mut r = protocol::error_response(protocol, &e, &request_id);
            if e.status == 408 {
                // The body is half read: the connection cannot carry another request.
                r.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
    }
}

/// What was decided from the headers alone.
struct Admitted {
    route: Route,
    pending: Pending,
    length: Option<usize>,
}

/// Where a request goes: an AWS JSON operation (known from the target), or
/// a form-protocol service (its `Action` is in the body).
enum Route {
    Json {
        service: Service,
        op: String,
        target: String,
    },
    Query(QueryService),
}

async fn admit_and_process(
    state: &AppState,
    protocol: Protocol,
    parts: &http::request::Parts,
    body: Body,
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let admitted = admit(state, protocol, parts)?;
    // Room for the body in the memory budget, held until the answer is ready.
    let room = state.budget.reserve(admitted.length).await?;
    let bytes = gate::read_body(body, state.body_read_timeout).await?;
    // A long poll gives its room back before it waits; its body is small.
    let _room = match admitted.long_poll() {
        Some(op) => {
            if bytes.len() > LONG_POLL_MAX_BODY {
                return Err(ApiError::client(
                    "SerializationException",
                    format!("A {op} request body is at most {LONG_POLL_MAX_BODY} bytes."),
                ));
            }
            drop(room);
            None
        }
        None => Some(room),
    };
    let work = process(state, parts, admitted, &bytes, request_id);
    // A bug must cost one request a ServerException, never the connection.
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::server(
                "ServerException",
                "An internal error occurred.",
            ))
        })
}

/// The largest body a long poll (ReceiveMessage) may send: it is held,
/// outside the body budget, while the poll waits.
const LONG_POLL_MAX_BODY: usize = 64 * 1024;

impl Admitted {
    /// The operation, when it is a long poll.
    fn long_poll(&self) -> Option<&str> {
        match &self.route {
            Route::Json { service, op, .. } if service.is_long_poll(op) => Some(op),
            _ => None,
        }
    }
}

fn has_auth(parts: &http::request::Parts) -> bool {
    parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature") || q.contains("X-Amz-Credential"))
}

fn header_list(parts: &http::request::Parts) -> Vec<(&str, &str)> {
    parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect()
}

/// Everything the headers alone decide, before a byte of the body is read:
/// some authentication, a known operation, a well-formed and fresh
/// signature of a known key that binds the operation, the content type,
/// the method, the declared length, and the caller's request rate.
fn admit(
    state: &AppState,
    protocol: Protocol,
    parts: &http::request::Parts,
) -> Result<Admitted, ApiError> {
    if !has_auth(parts) {
        return Err(ApiError::new(
            "MissingAuthenticationTokenException",
            403,
            "Missing Authentication Token",
        ));
    }
    let headers = header_list(parts);
    let query = parts.uri.query().unwrap_or("");
    let route = match protocol {
        Protocol::Json(_) => {
            let target = berth_auth::request_target(&headers, query).unwrap_or_default();
            if parts.headers.get_all("x-amz-target").iter().count() > 1 {
                return Err(services::unknown_operation(&target));
            }
            let (service, op) = Service::from_target(&target)
                .ok_or_else(|| services::unknown_operation(&target))?;
            if !services::is_operation(service, op) {
                return Err(services::unknown_operation(&target));
            }
            Route::Json {
                service,
                op: op.to_string(),
                target,
            }
        }
        Protocol::Query(QueryService::Unserved) => return Err(services::unserved_service()),
        Protocol::Query(service) => Route::Query(service),
    };
    let signing_name = match &route {
        Route::Json { service, .. } => service.signing_name(),
        Route::Query(service) => service.signing_name(),
    };

    let head = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query,
        headers: &headers,
        body: &[],
    };
    let region_ok = |r: &str| state.region_ok(r);
    let pending = state
        .verifier
        .begin(&head, signing_name, &region_ok, SystemTime::now())
        .map_err(auth_error)?;

    match &route {
        Route::Json {
            target, service, ..
        } => {
            if parts.method != http::Method::POST {
                return Err(services::unknown_operation(target));
            }
            gate::check_content_type_is(&parts.headers, service.content_type())?;
        }
        Route::Query(_) => {
            if parts.method != http::Method::POST && parts.method != http::Method::GET {
                return Err(ApiError::client(
                    "InvalidAction",
                    format!("{} requests are not supported.", parts.method),
                ));
            }
            protocol::check_form_content_type(&parts.method, &parts.headers)?;
        }
    }
    let length = gate::declared_length(&parts.headers)?;
    if let Some(t) = throttled(state, &route) {
        if !t.has_room(pending.access_key_id(), Instant::now()) {
            return Err(gate::throttled());
        }
    }
    Ok(Admitted {
        route,
        pending,
        length,
    })
}

/// The throttle that applies to `service`: none for berth's agent channel,
/// whose long polls are the agents' heartbeats.
fn throttled<'a>(state: &'a AppState, route: &Route) -> Option<&'a Throttle> {
    state.throttle.as_ref().filter(|_| {
        !matches!(
            route,
            Route::Json {
                service: Service::Agent,
                ..
            }
        )
    })
}

fn auth_error(e: berth_auth::AuthError) -> ApiError {
    ApiError::new(e.aws_code(), e.http_status_code(), e.message())
}

async fn process(
    state: &AppState,
    parts: &http::request::Parts,
    admitted: Admitted,
    body: &[u8],
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    let Admitted { route, pending, .. } = admitted;
    let headers = header_list(parts);
    let query = parts.uri.query().unwrap_or("");
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query,
        headers: &headers,
        body,
    };
    let verified = state
        .verifier
        .finish(pending, &signed)
        .map_err(auth_error)?;
    if let Some(t) = throttled(state, &route) {
        if !t.take(&verified.access_key_id, Instant::now()) {
            return Err(gate::throttled());
        }
    }

    let ctx = RequestContext {
        account_id: verified.account_id.clone(),
        region: verified.region.clone(),
        principal_arn: verified.principal_arn.clone(),
        access_key_id: verified.access_key_id.clone(),
        request_id: request_id.to_string(),
    };
    let agent_channel = matches!(
        route,
        Route::Json {
            service: Service::Agent,
            ..
        }
    );
    let role = match &verified.session {
        Some(session) => Some(check_session(state, session, agent_channel).await?),
        None => None,
    };
    match route {
        Route::Json {
            service,
            op,
            target,
        } => {
            tracing::debug!(target = %target, account = %ctx.account_id, region = %ctx.region, request_id, "request");
            state.policies.check(&ctx, role, service, &op, body)?;
            services::call(&state.services, service, &op, &target, &ctx, body).await
        }
        Route::Query(service) => {
            // A presigned GET carries its parameters in the query string.
            let mut params = Params::parse(query.as_bytes())?;
            params.extend(Params::parse(body)?);
            let action = params.action().ok_or_else(|| {
                ApiError::client(
                    "MissingAction",
                    "The request must contain the parameter Action.",
                )
            })?;
            let op = services::query_operation(service, action)?;
            tracing::debug!(action, account = %ctx.account_id, region = %ctx.region, request_id, "request");
            state.policies.check_query(&ctx, role, service, &params)?;
            services::call_query(&state.services, op, &ctx, &params).await
        }
    }
}

/// The caller of a request without a body (berth's event stream), its
/// signature verified, throttled and checked against its policies for
/// `service:op` like any other request.
pub(crate) async fn authenticate_bodiless(
    state: &AppState,
    parts: &http::request::Parts,
    service: Service,
    op: &str,
    request_id: &str,
) -> Result<RequestContext, ApiError> {
    if !has_auth(parts) {
        return Err(ApiError::new(
            "MissingAuthenticationTokenException",
            403,
            "Missing Authentication Token",
        ));
    }
    let headers = header_list(parts);
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &[],
    };
    let region_ok = |r: &str| state.region_ok(r);
    let pending = state
        .verifier
        .begin(
            &signed,
            service.signing_name(),
            &region_ok,
            SystemTime::now(),
        )
        .map_err(auth_error)?;
    let verified = state
        .verifier
        .finish(pending, &signed)
        .map_err(auth_error)?;
    if let Some(t) = &state.throttle {
        if !t.take(&verified.access_key_id, Instant::now()) {
            return Err(gate::throttled());
        }
    }
    let ctx = RequestContext {
        account_id: verified.account_id.clone(),
        region: verified.region.clone(),
        principal_arn: verified.principal_arn.clone(),
        access_key_id: verified.access_key_id.clone(),
        request_id: request_id.to_string(),
    };
    let role = match &verified.session {
        Some(session) => Some(check_session(state, session, false).await?),
        None => None,
    };
    state.policies.check(&ctx, role, service, op, b"")?;
    Ok(ctx)
}

/// What temporary credentials may not do even when their token is valid:
/// act for a task that has stopped (a task role's die with it), or
/// speak for an agent (whose channel hands out other tasks' credentials).
/// Returns the role, whose policies then apply.
async fn check_session<'a>(
    state: &AppState,
    session: &'a berth_auth::SessionClaims,
    agent_channel: bool,
) -> Result<&'a str, ApiError> {
    if agent_channel {
        return Err(ApiError::new(
            "AccessDeniedException",
            400,
            format!(
                "User: {} is not authorized to use the agent channel.",
                session.principal_arn()
            ),
        ));
    }
    // A task's session dies with its task; an AssumeRole session only expires.
    let task_stopped = match &session.task_arn {
        Some(task) => !state.services.ecs.task_is_live(task).await?,
        None => false,
    };
    if task_stopped {
        let e = berth_auth::AuthError::ExpiredToken;
        return Err(ApiError::new(
            e.aws_code(),
            e.http_status_code(),
            e.message(),
        ));
    }
    Ok(&session.role_arn)
}
