//! Which AWS protocol a request speaks, decided from its headers alone, and
//! how answers and errors look in it. Every answer goes through here, so
//! that a refusal made before the body is read (authentication, throttling,
//! the body budget) is already in the shape the client's parser expects:
//!
//! * AWS JSON (`X-Amz-Target: Prefix.Operation`): ECS, Logs, Secrets
//!   Manager, SSM, berth's agent channel. `{"__type", "message"}` errors.
//! * `ec2` (form body, credential scope `ec2`): XML, errors as
//!   `<Response><Errors><Error>`.
//! * `query` (form body, credential scope `sts` or `iam`): XML, errors as
//!   `<ErrorResponse><Error><Type>`.
//!
//! Errors are made once, in AWS JSON's vocabulary (`ThrottlingException`,
//! `AccessDeniedException`, …); [`error_response`] renames the ones the XML
//! protocols spell differently.

use crate::services::Service;
use axum::body::Body;
use axum::response::Response;
use berth_wire::query::{ec2_error, query_error, xml};
use berth_wire::ApiError;
use http::{HeaderValue, StatusCode};

/// A service that speaks a form-encoded protocol, by its signing name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryService {
    Ec2,
    Sts,
    Iam,
    /// A form-encoded request for any other service: refused in the query
    /// protocol's shape.
    Unserved,
}

impl QueryService {
    fn from_signing_name(name: &str) -> Option<QueryService> {
        match name {
            "ec2" => Some(QueryService::Ec2),
            "sts" => Some(QueryService::Sts),
            "iam" => Some(QueryService::Iam),
            _ => None,
        }
    }

    /// The credential scope's service, and the IAM action prefix.
    pub fn signing_name(self) -> &'static str {
        match self {
            QueryService::Ec2 => berth_wire::ec2::SIGNING_NAME,
            QueryService::Sts => berth_wire::sts::SIGNING_NAME,
            QueryService::Iam | QueryService::Unserved => "iam",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// AWS JSON 1.1 (and 1.0): routed by `X-Amz-Target`; the service it
    /// names, when it names one, sets the media type (SQS: 1.0) and
    /// whether errors carry a query-protocol code (SQS).
    Json(Option<Service>),
    /// `query` or `ec2`: routed by the form's `Action`.
    Query(QueryService),
}

/// The protocol of a request: AWS JSON when it names an `X-Amz-Target`;
/// else the form protocol of the service its credential scope names (EC2,
/// STS, IAM); else, for a form-encoded body, the query protocol of a
/// service berth does not serve (SNS, CloudFormation, …: `Unserved`), so
/// that its client reads the refusal. Anything else is answered as AWS JSON.
pub fn classify(headers: &[(&str, &str)], query: &str) -> Protocol {
    if let Some(target) = berth_auth::request_target(headers, query) {
        return Protocol::Json(Service::from_target(&target).map(|(s, _)| s));
    }
    if let Some(s) =
        berth_auth::scope_service(headers, query).and_then(|s| QueryService::from_signing_name(&s))
    {
        return Protocol::Query(s);
    }
    let form = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("content-type")
            && v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
    });
    if form {
        Protocol::Query(QueryService::Unserved)
    } else {
        Protocol::Json(None)
    }
}

/// Form-encoded requests must say so (botocore sends
/// `application/x-www-form-urlencoded; charset=utf-8`); a presigned GET
/// carries no body and may name no type.
pub fn check_form_content_type(
    method: &http::Method,
    headers: &http::HeaderMap,
) -> Result<(), ApiError> {
    let values: Vec<&HeaderValue> = headers.get_all(http::header::CONTENT_TYPE).iter().collect();
    let ok = match values.as_slice() {
        [] => method == http::Method::GET,
        [one] => one.to_str().is_ok_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        }),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::client(
            "MalformedQueryString",
            "This endpoint expects a form-encoded request: \
Content-Type: application/x-www-form-urlencoded.",
        ))
    }
}

/// A successful answer's body in its protocol's content type.
pub fn ok_response(protocol: Protocol, body: Vec<u8>, request_id: &str) -> Response {
    respond(protocol, StatusCode::OK, body, request_id, None)
}

/// `e` in the request's protocol.
pub fn error_response(protocol: Protocol, e: &ApiError, request_id: &str) -> Response {
    // SQS answers every refusal, the front end's too, with its query code.
    let sqs;
    let e = if protocol == Protocol::Json(Some(Service::Sqs)) {
        sqs = berth_api::sqs::query_compatible(e.clone());
        &sqs
    } else {
        e
    };
    let (code, status) = match protocol {
        Protocol::Json(_) => (e.code.as_ref(), e.status),
        Protocol::Query(s) => xml_code(s, e),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match protocol {
        Protocol::Json(_) => e.body(),
        Protocol::Query(QueryService::Ec2) => ec2_error(code, &e.message, request_id),
        Protocol::Query(_) => query_error(code, &e.message, status.as_u16(), request_id),
    };
    let mut r = respond(protocol, status, body, request_id, Some(code));
    if let Some(q) = e
        .query_error
        .as_deref()
        .and_then(|q| HeaderValue::from_str(q).ok())
    {
        r.headers_mut().insert("x-amzn-query-error", q);
    }
    r
}

/// The XML protocols' spelling of the errors berth makes in AWS JSON's
/// vocabulary, with the status EC2/STS/IAM answer them with. Codes a
/// service made itself (`InvalidVpcID.NotFound`) pass unchanged.
fn xml_code(service: QueryService, e: &ApiError) -> (&str, u16) {
    let ec2 = service == QueryService::Ec2;
    match e.code.as_ref() {
        "MissingAuthenticationTokenException" => ("MissingAuthenticationToken", 403),
        "IncompleteSignatureException" => ("IncompleteSignature", 400),
        "UnrecognizedClientException" if ec2 => ("AuthFailure", 401),
        "UnrecognizedClientException" => ("InvalidClientTokenId", 403),
        "InvalidSignatureException" => ("SignatureDoesNotMatch", 403),
        "AccessDeniedException" if ec2 => ("UnauthorizedOperation", 403),
        "AccessDeniedException" => ("AccessDenied", 403),
        "ThrottlingException" if ec2 => ("RequestLimitExceeded", 503),
        "ThrottlingException" => ("Throttling", 400),
        "ServiceUnavailableException" if ec2 => ("Unavailable", 503),
        "ServiceUnavailableException" => ("ServiceUnavailable", 503),
        "RequestEntityTooLargeException" => ("RequestEntityTooLarge", 413),
        "RequestTimeoutException" => ("RequestTimeout", 408),
        "UnknownOperationException" => ("InvalidAction", 400),
        "SerializationException" => ("MalformedQueryString", 400),
        _ if e.status >= 500 && ec2 => ("InternalError", e.status),
        _ if e.status >= 500 => ("InternalFailure", e.status),
        code => (code, e.status),
    }
}

fn respond(
    protocol: Protocol,
    status: StatusCode,
    body: Vec<u8>,
    request_id: &str,
    error: Option<&str>,
) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    let content_type = match protocol {
        Protocol::Json(service) => {
            service.map_or(berth_wire::codec::CONTENT_TYPE, Service::content_type)
        }
        Protocol::Query(_) => xml::CONTENT_TYPE,
    };
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    if let Some(code) = error.and_then(|c| HeaderValue::from_str(c).ok()) {
        if matches!(protocol, Protocol::Json(_)) {
            h.insert("x-amzn-ErrorType", code);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH_EC2: &str = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00";

    #[test]
    fn classified_by_target_then_credential_scope() {
        assert_eq!(
            classify(
                &[
                    (
                        "X-Amz-Target",
                        "AmazonEC2ContainerServiceV20141113.ListClusters"
                    ),
                    ("authorization", AUTH_EC2)
                ],
                ""
            ),
            Protocol::Json(Some(Service::Ecs))
        );
        assert_eq!(
            classify(&[("Authorization", AUTH_EC2)], ""),
            Protocol::Query(QueryService::Ec2)
        );
        assert_eq!(
            classify(&[], "Action=GetCallerIdentity&X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fsts%2Faws4_request"),
            Protocol::Query(QueryService::Sts)
        );
        assert_eq!(classify(&[], ""), Protocol::Json(None));
        let sns = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=00";
        assert_eq!(
            classify(
                &[
                    ("Authorization", sns),
                    (
                        "Content-Type",
                        "application/x-www-form-urlencoded; charset=utf-8"
                    )
                ],
                ""
            ),
            Protocol::Query(QueryService::Unserved)
        );
        assert_eq!(
            classify(&[("Authorization", sns)], ""),
            Protocol::Json(None)
        );
    }

    #[test]
    fn json_vocabulary_is_renamed_per_protocol() {
        let throttled = ApiError::client("ThrottlingException", "Rate exceeded");
        assert_eq!(
            xml_code(QueryService::Ec2, &throttled),
            ("RequestLimitExceeded", 503)
        );
        assert_eq!(xml_code(QueryService::Sts, &throttled), ("Throttling", 400));
        let own = ApiError::client("InvalidVpcID.NotFound", "x");
        assert_eq!(
            xml_code(QueryService::Ec2, &own),
            ("InvalidVpcID.NotFound", 400)
        );
        let r = error_response(Protocol::Query(QueryService::Iam), &throttled, "rid");
        assert_eq!(r.headers()["content-type"], "text/xml");
        assert!(r.headers().get("x-amzn-ErrorType").is_none());
    }
}
