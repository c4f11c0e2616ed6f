//! The operation (`X-Amz-Target`) is bound by the signature, so a signed
//! request cannot be replayed as another operation; and `begin` refuses
//! from the headers alone what needs no body.

mod common;

use std::sync::Arc;
use std::time::Duration;

use berth_auth::{
    presign_query, request_target, sign_headers, AuthError, Credential, SignedRequest,
    StaticCredentials, Verifier,
};
use common::*;

const KEY: &str = "AKIAECSEXAMPLE000001";
const SECRET: &str = "ecs-secret-0123456789abcdefghijklmnopqrs";
const HOST: &str = "ecs.us-west-2.amazonaws.com";
const LIST: &str = "AmazonEC2ContainerServiceV20141113.ListClusters";
const DELETE: &str = "AmazonEC2ContainerServiceV20141113.DeleteCluster";
const BODY: &[u8] = br#"{"cluster":"prod"}"#;

fn verifier() -> Verifier {
    Verifier::new(Arc::new(StaticCredentials::new(vec![Credential {
        access_key_id: KEY.into(),
        secret_access_key: SECRET.into(),
        account_id: "111122223333".into(),
        principal_arn: "arn:aws:iam::111122223333:root".into(),
    }])))
}

fn refs(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
}

fn verify(h: &[(String, String)], query: &str, body: &[u8]) -> Result<(), AuthError> {
    let r = refs(h);
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query,
        headers: &r,
        body,
    };
    verifier()
        .verify(
            &req,
            "ecs",
            &|_| true,
            suite_time() + Duration::from_secs(1),
        )
        .map(|_| ())
}

/// Header-signed over `signed`, then `extra` added unsigned.
fn header_signed(signed: &[(&str, &str)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = signed
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    h.extend(sign_headers(
        KEY,
        SECRET,
        "us-west-2",
        "ecs",
        "POST",
        "/",
        "",
        signed,
        BODY,
        suite_time(),
    ));
    h.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    h
}

fn incomplete(r: Result<(), AuthError>) -> String {
    match r {
        Err(AuthError::IncompleteSignature(m)) => m,
        other => panic!("expected IncompleteSignature, got {other:?}"),
    }
}

#[test]
fn header_form_with_signed_target_verifies() {
    let h = header_signed(&[("Host", HOST), ("X-Amz-Target", LIST)], &[]);
    verify(&h, "", BODY).unwrap();
}

#[test]
fn header_form_refuses_an_unsigned_target() {
    let h = header_signed(&[("Host", HOST)], &[("X-Amz-Target", DELETE)]);
    assert_eq!(
        incomplete(verify(&h, "", BODY)),
        "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn header_form_without_any_target_is_left_to_the_server() {
    // SigV4 itself does not need a target (the AWS test suite's requests
    // have none); the server answers UnknownOperationException.
    let h = header_signed(&[("Host", HOST)], &[]);
    verify(&h, "", BODY).unwrap();
}

fn presigned(query: &str, headers: &[(&str, &str)]) -> String {
    presign_query(
        KEY,
        SECRET,
        "us-west-2",
        "ecs",
        "POST",
        "/",
        query,
        headers,
        BODY,
        Duration::from_secs(300),
        suite_time(),
    )
}

fn own(h: &[(&str, &str)]) -> Vec<(String, String)> {
    h.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn presigned_with_signed_target_header_cannot_be_replayed() {
    let q = presigned("", &[("Host", HOST), ("X-Amz-Target", LIST)]);
    verify(&own(&[("Host", HOST), ("X-Amz-Target", LIST)]), &q, BODY).unwrap();
    let replay = verify(&own(&[("Host", HOST), ("X-Amz-Target", DELETE)]), &q, BODY);
    assert!(
        matches!(replay, Err(AuthError::InvalidSignature(_))),
        "{replay:?}"
    );
}

#[test]
fn presigned_signing_only_host_cannot_name_another_target() {
    // A URL presigned over `host` alone: the target header is not bound.
    let q = presigned("", &[("Host", HOST)]);
    let replay = verify(&own(&[("Host", HOST), ("X-Amz-Target", DELETE)]), &q, BODY);
    assert!(incomplete(replay).starts_with("'X-Amz-Target' must be one of the X-Amz-SignedHeaders"));
}

#[test]
fn presigned_target_in_the_query_is_bound() {
    let q = presigned(&format!("X-Amz-Target={LIST}"), &[("Host", HOST)]);
    let host = own(&[("Host", HOST)]);
    verify(&host, &q, BODY).unwrap();
    // The query parameter is signed: changing it breaks the signature...
    let other = q.replace(LIST, DELETE);
    assert!(matches!(
        verify(&host, &other, BODY),
        Err(AuthError::InvalidSignature(_))
    ));
    // ...and a header naming another operation is refused.
    let both = own(&[("Host", HOST), ("X-Amz-Target", DELETE)]);
    assert_eq!(
        verify(&both, &q, BODY).unwrap_err(),
        AuthError::InvalidSignature(
            "The X-Amz-Target header and the X-Amz-Target query parameter differ.".into()
        )
    );
    // The same target in both places is fine.
    let same = own(&[("Host", HOST), ("X-Amz-Target", LIST)]);
    verify(&same, &q, BODY).unwrap();
}

#[test]
fn request_target_prefers_the_header() {
    assert_eq!(
        request_target(&[("x-amz-target", LIST)], "X-Amz-Target=x.Y").as_deref(),
        Some(LIST)
    );
    assert_eq!(
        request_target(&[], "a=1&X-Amz-Target=Svc_1.Op").as_deref(),
        Some("Svc_1.Op")
    );
    assert_eq!(request_target(&[("host", HOST)], ""), None);
}

#[test]
fn begin_decides_from_headers_and_finish_checks_the_body() {
    let h = header_signed(&[("Host", HOST), ("X-Amz-Target", LIST)], &[]);
    let r = refs(&h);
    let v = verifier();
    let now = suite_time() + Duration::from_secs(1);
    // `begin` never looks at the body: an empty one is fine there.
    let head = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &r,
        body: b"",
    };
    let pending = v.begin(&head, "ecs", &|_| true, now).unwrap();
    assert_eq!(pending.access_key_id(), KEY);
    let full = SignedRequest { body: BODY, ..head };
    assert_eq!(v.finish(pending, &full).unwrap().account_id, "111122223333");
    // The body is what was signed: another body fails in `finish`.
    let pending = v.begin(&head, "ecs", &|_| true, now).unwrap();
    let tampered = SignedRequest {
        body: b"{}",
        ..head
    };
    assert!(matches!(
        v.finish(pending, &tampered),
        Err(AuthError::InvalidSignature(_))
    ));
}

#[test]
fn begin_refuses_unknown_keys_and_stale_requests_without_a_body() {
    let v = verifier();
    let base = own(&[("Host", HOST), ("X-Amz-Target", LIST)]);
    let r = refs(&base);
    let mut h = base.clone();
    h.extend(sign_headers(
        "AKIANOBODY0000000000",
        SECRET,
        "us-west-2",
        "ecs",
        "POST",
        "/",
        "",
        &r,
        BODY,
        suite_time(),
    ));
    let r = refs(&h);
    let head = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &r,
        body: b"",
    };
    assert_eq!(
        v.begin(&head, "ecs", &|_| true, suite_time()).unwrap_err(),
        AuthError::UnrecognizedClient
    );
    let later = suite_time() + Duration::from_secs(3600);
    let good = header_signed(&[("Host", HOST), ("X-Amz-Target", LIST)], &[]);
    let r = refs(&good);
    let head = SignedRequest {
        headers: &r,
        ..head
    };
    assert!(matches!(
        v.begin(&head, "ecs", &|_| true, later),
        Err(AuthError::SignatureExpired(_))
    ));
}
