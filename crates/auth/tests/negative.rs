//! Rejections: each failure mode yields the AWS error code, status and message
//! style an AWS JSON service would.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_auth::{
    presign_query, sign_headers, AuthError, Credential, SignedRequest, StaticCredentials, Verifier,
};
use common::*;

const KEY: &str = "AKIAECSEXAMPLE000001";
const SECRET: &str = "ecs-secret-0123456789abcdefghijklmnopqrs";
const HOST: &str = "ecs.us-west-2.amazonaws.com";
const TARGET: &str = "AmazonEC2ContainerServiceV20141113.ListClusters";
const BODY: &[u8] = br#"{"maxResults":10}"#;
const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. \
Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// 2015-08-30T12:36:00Z.
fn t0() -> SystemTime {
    suite_time()
}

fn verifier() -> Verifier {
    Verifier::new(Arc::new(StaticCredentials::new(vec![
        Credential {
            access_key_id: KEY.into(),
            secret_access_key: SECRET.into(),
            account_id: "111122223333".into(),
            principal_arn: "arn:aws:iam::111122223333:user/ops".into(),
        },
        Credential {
            access_key_id: "AKIAOTHERACCOUNT0001".into(),
            secret_access_key: "other-secret".into(),
            account_id: "444455556666".into(),
            principal_arn: "arn:aws:iam::444455556666:root".into(),
        },
    ])))
}

fn base_headers() -> Vec<(String, String)> {
    vec![
        ("Host".into(), HOST.into()),
        ("Content-Type".into(), "application/x-amz-json-1.1".into()),
        ("X-Amz-Target".into(), TARGET.into()),
    ]
}

/// An ECS-style request signed with the given key/secret/scope at `at`.
fn signed(
    key: &str,
    secret: &str,
    region: &str,
    service: &str,
    at: SystemTime,
) -> Vec<(String, String)> {
    let mut h = base_headers();
    let refs: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let added = sign_headers(
        key, secret, region, service, "POST", "/", "", &refs, BODY, at,
    );
    h.extend(added);
    h
}

fn good() -> Vec<(String, String)> {
    signed(KEY, SECRET, "us-west-2", "ecs", t0())
}

fn verify_at(
    headers: &[(String, String)],
    query: &str,
    body: &[u8],
    now: SystemTime,
) -> Result<berth_auth::Verified, AuthError> {
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query,
        headers: &refs,
        body,
    };
    verifier().verify(&req, "ecs", &|r| r == "us-west-2" || r == "eu-west-1", now)
}

fn verify(headers: &[(String, String)]) -> Result<berth_auth::Verified, AuthError> {
    verify_at(headers, "", BODY, t0())
}

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    for (n, v) in headers.iter_mut() {
        if n.eq_ignore_ascii_case(name) {
            *v = value.to_owned();
        }
    }
}

fn authz(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap()
        .1
        .clone()
}

fn with_authz(value: &str) -> Vec<(String, String)> {
    let mut h = good();
    set(&mut h, "authorization", value);
    h
}

fn incomplete_message(r: Result<berth_auth::Verified, AuthError>) -> String {
    match r {
        Err(e @ AuthError::IncompleteSignature(_)) => {
            assert_eq!(e.aws_code(), "IncompleteSignatureException");
            assert_eq!(e.http_status_code(), 400);
            e.message()
        }
        other => panic!("expected IncompleteSignature, got {other:?}"),
    }
}

#[test]
fn good_request_verifies_with_identity() {
    let ok = verify(&good()).unwrap();
    assert_eq!(ok.access_key_id, KEY);
    assert_eq!(ok.account_id, "111122223333");
    assert_eq!(ok.principal_arn, "arn:aws:iam::111122223333:user/ops");
    assert_eq!(
        (ok.region.as_str(), ok.service.as_str(), ok.date.as_str()),
        ("us-west-2", "ecs", "20150830")
    );
    // A second key maps to a second account.
    let other = signed(
        "AKIAOTHERACCOUNT0001",
        "other-secret",
        "eu-west-1",
        "ecs",
        t0(),
    );
    assert_eq!(verify(&other).unwrap().account_id, "444455556666");
}

#[test]
fn repeated_verification_uses_cached_key_consistently() {
    let v = verifier();
    let h = good();
    let refs: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &refs,
        body: BODY,
    };
    for _ in 0..3 {
        v.verify(&req, "ecs", &|_| true, t0()).unwrap();
    }
}

#[test]
fn wrong_secret() {
    let e = verify(&signed(KEY, "not-the-secret", "us-west-2", "ecs", t0())).unwrap_err();
    assert_eq!(e, AuthError::InvalidSignature(MISMATCH.into()));
    assert_eq!(e.aws_code(), "InvalidSignatureException");
    assert_eq!(e.http_status_code(), 400);
}

#[test]
fn unknown_key() {
    let e = verify(&signed(
        "AKIANOBODY0000000000",
        SECRET,
        "us-west-2",
        "ecs",
        t0(),
    ))
    .unwrap_err();
    assert_eq!(e, AuthError::UnrecognizedClient);
    assert_eq!(e.aws_code(), "UnrecognizedClientException");
    assert_eq!(e.http_status_code(), 400);
    assert_eq!(
        e.message(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn clock_skew() {
    let h = good();
    let min = |m: u64| Duration::from_secs(m * 60);
    // Server clock 16 minutes ahead of the request: expired.
    let e = verify_at(&h, "", BODY, t0() + min(16)).unwrap_err();
    assert_eq!(e.aws_code(), "InvalidSignatureException");
    assert_eq!(e.http_status_code(), 400);
    assert_eq!(
        e.message(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z (20150830T125200Z - 15 min.)"
    );
    // Server clock 16 minutes behind the request: not yet current.
    let e = verify_at(&h, "", BODY, t0() - min(16)).unwrap_err();
    assert!(matches!(e, AuthError::SignatureExpired(_)));
    assert_eq!(
        e.message(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123500Z (20150830T122000Z + 15 min.)"
    );
    // 14 minutes either way is fine, as is exactly 15.
    for now in [
        t0() + min(14),
        t0() - min(14),
        t0() + min(15),
        t0() - min(15),
    ] {
        verify_at(&h, "", BODY, now).unwrap();
    }
    // A custom window.
    let v = verifier().with_max_skew(Duration::from_secs(60));
    let refs: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &refs,
        body: BODY,
    };
    assert!(v.verify(&req, "ecs", &|_| true, t0() + min(2)).is_err());
    assert!(v
        .verify(&req, "ecs", &|_| true, t0() + Duration::from_secs(59))
        .is_ok());
}

#[test]
fn tampered_signed_header() {
    let mut h = good();
    set(
        &mut h,
        "X-Amz-Target",
        "AmazonEC2ContainerServiceV20141113.DeleteCluster",
    );
    assert_eq!(
        verify(&h).unwrap_err(),
        AuthError::InvalidSignature(MISMATCH.into())
    );
    // Adding a second value to a signed header also changes the canonical form.
    let mut h = good();
    h.push(("content-type".into(), "text/plain".into()));
    assert_eq!(
        verify(&h).unwrap_err(),
        AuthError::InvalidSignature(MISMATCH.into())
    );
    // An unsigned header may change freely.
    let mut h = good();
    h.push(("User-Agent".into(), "curl".into()));
    verify(&h).unwrap();
}

#[test]
fn tampered_body() {
    let e = verify_at(&good(), "", br#"{"maxResults":11}"#, t0()).unwrap_err();
    assert_eq!(e, AuthError::InvalidSignature(MISMATCH.into()));
}

#[test]
fn content_sha256_header_must_match_body() {
    let mut h = base_headers();
    let hash = berth_auth::canonical::sha256_hex(BODY);
    h.push(("x-amz-content-sha256".into(), hash));
    let refs: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let added = sign_headers(
        KEY,
        SECRET,
        "us-west-2",
        "ecs",
        "POST",
        "/",
        "",
        &refs,
        BODY,
        t0(),
    );
    h.extend(added);
    verify(&h).unwrap();
    let e = verify_at(&h, "", b"{}", t0()).unwrap_err();
    assert_eq!(
        e,
        AuthError::InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into()
        )
    );
    // UNSIGNED-PAYLOAD is not accepted by this JSON API.
    let mut h = base_headers();
    h.push(("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
    let refs: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let added = sign_headers(
        KEY,
        SECRET,
        "us-west-2",
        "ecs",
        "POST",
        "/",
        "",
        &refs,
        BODY,
        t0(),
    );
    h.extend(added);
    assert!(matches!(verify(&h), Err(AuthError::InvalidSignature(_))));
}

#[test]
fn wrong_service_in_scope() {
    let e = verify(&signed(KEY, SECRET, "us-west-2", "logs", t0())).unwrap_err();
    assert_eq!(
        e,
        AuthError::InvalidSignature(
            "Credential should be scoped to correct service: 'ecs'. ".into()
        )
    );
    assert_eq!(e.aws_code(), "InvalidSignatureException");
}

#[test]
fn region_rejected() {
    let e = verify(&signed(KEY, SECRET, "ap-south-1", "ecs", t0())).unwrap_err();
    assert_eq!(
        e,
        AuthError::InvalidSignature("Credential should be scoped to a valid region. ".into())
    );
}

#[test]
fn missing_authorization() {
    let mut h = good();
    h.retain(|(n, _)| n != "authorization");
    let e = verify(&h).unwrap_err();
    assert_eq!(e, AuthError::MissingAuthenticationToken);
    assert_eq!(e.aws_code(), "MissingAuthenticationTokenException");
    assert_eq!(e.http_status_code(), 403);
    assert_eq!(e.message(), "Missing Authentication Token");
}

#[test]
fn incomplete_signature_variants() {
    let a = authz(&good());
    let (cred, rest) = a.split_once(", ").unwrap();
    let (signed_headers, signature) = rest.split_once(", ").unwrap();

    let no_cred = format!("AWS4-HMAC-SHA256 {signed_headers}, {signature}");
    assert_eq!(
        incomplete_message(verify(&with_authz(&no_cred))),
        format!("Authorization header requires 'Credential' parameter. Authorization={no_cred}")
    );
    let no_sh = format!("{cred}, {signature}");
    assert_eq!(
        incomplete_message(verify(&with_authz(&no_sh))),
        format!("Authorization header requires 'SignedHeaders' parameter. Authorization={no_sh}")
    );
    let no_sig = format!("{cred}, {signed_headers}");
    assert_eq!(
        incomplete_message(verify(&with_authz(&no_sig))),
        format!("Authorization header requires 'Signature' parameter. Authorization={no_sig}")
    );
    let bare = "AWS4-HMAC-SHA256";
    assert_eq!(
        incomplete_message(verify(&with_authz(bare))),
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256"
    );

    // Scope shape.
    let short = a.replace("/us-west-2/ecs/aws4_request", "/us-west-2/ecs");
    assert!(incomplete_message(verify(&with_authz(&short)))
        .starts_with("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '"));
    let bad_term = a.replace("aws4_request", "aws5_request");
    assert_eq!(
        incomplete_message(verify(&with_authz(&bad_term))),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
    );

    // Unsupported algorithm.
    let sha1 = a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1");
    assert!(incomplete_message(verify(&with_authz(&sha1)))
        .starts_with("Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'."));

    // No date at all.
    let mut h = good();
    h.retain(|(n, _)| n != "x-amz-date");
    assert_eq!(
        incomplete_message(verify(&h)),
        format!("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={a}")
    );
    // Malformed date.
    let mut h = good();
    set(&mut h, "x-amz-date", "2015-08-30T12:36:00Z");
    assert!(incomplete_message(verify(&h))
        .starts_with("Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'."));

    // Host and the date header must be signed.
    let no_host = a.replace(
        "content-type;host;x-amz-date;x-amz-target",
        "content-type;x-amz-date;x-amz-target",
    );
    assert!(incomplete_message(verify(&with_authz(&no_host)))
        .starts_with("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."));
    let no_date = a.replace(
        "content-type;host;x-amz-date;x-amz-target",
        "content-type;host;x-amz-target",
    );
    assert_eq!(
        incomplete_message(verify(&with_authz(&no_date))),
        "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn scope_date_must_match_request_date() {
    let a = authz(&good()).replace("/20150830/", "/20150831/");
    let e = verify(&with_authz(&a)).unwrap_err();
    assert_eq!(
        e,
        AuthError::InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
'20150831' != '20150830', from '20150830T123600Z'."
                .into()
        )
    );
}

#[test]
fn http_date_header_fallback() {
    // A client that dates the request only with a signed HTTP `Date` header.
    let h: Vec<(String, String)> = vec![
        ("Host".into(), HOST.into()),
        ("Date".into(), "Sun, 30 Aug 2015 12:36:00 GMT".into()),
        ("X-Amz-Target".into(), TARGET.into()),
    ];
    let refs: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let signed_names = ["date", "host", "x-amz-target"];
    let creq = berth_auth::canonical::canonical_request(
        "POST",
        "/",
        "",
        &refs,
        &signed_names,
        &berth_auth::canonical::sha256_hex(BODY),
        false,
    );
    let scope = berth_auth::canonical::credential_scope("20150830", "us-west-2", "ecs");
    let sts = berth_auth::canonical::string_to_sign("20150830T123600Z", &scope, &creq);
    let sig = berth_auth::signature(SECRET, "20150830", "us-west-2", "ecs", &sts);
    let mut h = h.clone();
    h.push((
        "Authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders=date;host;x-amz-target, Signature={sig}"),
    ));
    verify(&h).unwrap();
    // Skew is measured from the Date header too.
    assert!(matches!(
        verify_at(&h, "", BODY, t0() + Duration::from_secs(20 * 60)),
        Err(AuthError::SignatureExpired(_))
    ));
    // The Date header must itself be signed.
    let unsigned = h
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                v.replace("SignedHeaders=date;host;", "SignedHeaders=host;"),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(
        incomplete_message(verify(&unsigned)),
        "'Date' must be a 'SignedHeader' in the AWS Authorization."
    );
}

fn presigned(expires: Duration, at: SystemTime) -> String {
    let h = [("Host", HOST)];
    presign_query(
        KEY,
        SECRET,
        "us-west-2",
        "ecs",
        "POST",
        "/",
        "Action=Probe",
        &h,
        BODY,
        expires,
        at,
    )
}

fn verify_presigned(query: &str, now: SystemTime) -> Result<berth_auth::Verified, AuthError> {
    verify_at(&[("Host".into(), HOST.into())], query, BODY, now)
}

#[test]
fn presigned_ok() {
    let q = presigned(Duration::from_secs(300), t0());
    assert!(q.starts_with("Action=Probe&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAECSEXAMPLE000001%2F20150830%2Fus-west-2%2Fecs%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature="));
    let ok = verify_presigned(&q, t0() + Duration::from_secs(299)).unwrap();
    assert_eq!(ok.account_id, "111122223333");
    // Tampering with a signed query parameter breaks it.
    let tampered = q.replace("Action=Probe", "Action=Other");
    assert_eq!(
        verify_presigned(&tampered, t0()).unwrap_err(),
        AuthError::InvalidSignature(MISMATCH.into())
    );
}

#[test]
fn presigned_expired() {
    let q = presigned(Duration::from_secs(300), t0());
    let e = verify_presigned(&q, t0() + Duration::from_secs(301)).unwrap_err();
    assert!(matches!(e, AuthError::SignatureExpired(_)));
    assert_eq!(e.aws_code(), "InvalidSignatureException");
    assert_eq!(
        e.message(),
        "Request has expired: 20150830T123600Z + 300 sec. is now earlier than 20150830T124101Z."
    );
    // Presigned in the future beyond the skew window.
    let e = verify_presigned(&q, t0() - Duration::from_secs(16 * 60)).unwrap_err();
    assert!(e.message().starts_with("Signature not yet current:"));
}

#[test]
fn presigned_expires_limits() {
    // A week is allowed...
    let q = presigned(Duration::from_secs(604_800), t0());
    verify_presigned(&q, t0() + Duration::from_secs(604_000)).unwrap();
    // ...a second more is not.
    let q = presigned(Duration::from_secs(604_801), t0());
    assert_eq!(
        incomplete_message(verify_presigned(&q, t0())),
        "X-Amz-Expires must be less than a week (in seconds) that is 604800"
    );
    // Missing parameters.
    let q = presigned(Duration::from_secs(60), t0());
    let without_expires: String = q
        .split('&')
        .filter(|p| !p.starts_with("X-Amz-Expires="))
        .collect::<Vec<_>>()
        .join("&");
    assert!(incomplete_message(verify_presigned(&without_expires, t0()))
        .starts_with("Query-string authentication version 4 requires"));
}
