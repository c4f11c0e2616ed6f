//! One handler for every request: read the body (bounded), find the
//! service and operation, verify the signature, dispatch, and answer in the
//! AWS JSON 1.1 envelope. Nothing a client sends reaches a panic: every
//! failure becomes an `ApiError`.

use crate::services::{self, Service};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use berth_auth::{SignedRequest, Verifier};
use berth_core::names;
use berth_wire::codec::CONTENT_TYPE;
use berth_wire::{ApiError, RequestContext};
use futures::FutureExt;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::SystemTime;

/// The largest request body accepted. ECS's own requests are far smaller;
/// CloudWatch Logs batches are at most 1 MiB.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub struct AppState {
    services: crate::services::Services,
    verifier: Verifier,
    regions: Option<Vec<String>>,
}

impl AppState {
    pub fn new(
        services: crate::services::Services,
        verifier: Verifier,
        regions: Option<Vec<String>>,
    ) -> Arc<Self> {
        Arc::new(AppState {
            services,
            verifier,
            regions,
        })
    }

    fn region_ok(&self, region: &str) -> bool {
        match &self.regions {
            Some(list) => list.iter().any(|r| r == region),
            None => names::is_valid_region(region),
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let result = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(b) => {
            let bytes = b.to_bytes();
            let work = process(&state, &parts, &bytes, &request_id);
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
        Err(_) => Err(ApiError::new(
            "RequestEntityTooLargeException",
            413,
            format!("The request body exceeds the limit of {MAX_BODY_BYTES} bytes."),
        )),
    };
    match result {
        Ok(body) => respond(StatusCode::OK, body, &request_id, None),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(code = %e.code, message = %e.message, request_id, "request failed");
            } else {
                tracing::debug!(code = %e.code, message = %e.message, request_id, "request refused");
            }
            let status =
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            respond(status, e.body(), &request_id, Some(&e.code))
        }
    }
}

fn respond(status: StatusCode, body: Vec<u8>, request_id: &str, error: Option<&str>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    if let Some(code) = error.and_then(|c| HeaderValue::from_str(c).ok()) {
        h.insert("x-amzn-ErrorType", code);
    }
    r
}

fn has_auth(parts: &http::request::Parts) -> bool {
    parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature") || q.contains("X-Amz-Credential"))
}

async fn process(
    state: &AppState,
    parts: &http::request::Parts,
    body: &[u8],
    request_id: &str,
) -> Result<Vec<u8>, ApiError> {
    if !has_auth(parts) {
        return Err(ApiError::new(
            "MissingAuthenticationTokenException",
            403,
            "Missing Authentication Token",
        ));
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (service, op) =
        Service::from_target(&target).ok_or_else(|| services::unknown_operation(&target))?;

    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let region_ok = |r: &str| state.region_ok(r);
    let verified = state
        .verifier
        .verify(
            &signed,
            service.signing_name(),
            &region_ok,
            SystemTime::now(),
        )
        .map_err(|e| ApiError::new(e.aws_code(), e.http_status_code(), e.message()))?;

    if parts.method != http::Method::POST {
        return Err(services::unknown_operation(&target));
    }
    let ctx = RequestContext {
        account_id: verified.account_id,
        region: verified.region,
        principal_arn: verified.principal_arn,
        access_key_id: verified.access_key_id,
        request_id: request_id.to_string(),
    };
    tracing::debug!(target = %target, account = %ctx.account_id, region = %ctx.region, request_id, "request");
    services::call(&state.services, service, op, &target, &ctx, body).await
}
