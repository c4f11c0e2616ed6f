//! Temporary credentials (task roles): a request signed with an issued
//! key, secret and session token verifies as its session; a tampered,
//! foreign, expired or missing token does not; long-term keys are unchanged.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_auth::{
    sign_headers, AuthError, SessionFor, SessionKey, SignedRequest, StaticCredentials,
    TemporaryCredentials, Verifier,
};

const HOST: &str = "127.0.0.1:8450";
const TASK: &str = "arn:aws:ecs:us-east-1:111111111111:task/c/0123456789abcdef";
const ROLE: &str = "arn:aws:iam::111111111111:role/app";

fn now() -> SystemTime {
    SystemTime::now()
}

fn epoch(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn verifier(key: &Arc<SessionKey>) -> Verifier {
    Verifier::new(Arc::new(StaticCredentials::new(vec![]))).with_sessions(key.clone())
}

/// Verifies a ListClusters signed with `key`/`secret`, carrying `token`.
fn verify(
    v: &Verifier,
    key: &str,
    secret: &str,
    token: Option<&str>,
) -> Result<berth_auth::Verified, AuthError> {
    let body = b"{}";
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), HOST.into()),
        ("content-type".into(), "application/x-amz-json-1.1".into()),
        (
            "x-amz-target".into(),
            "AmazonEC2ContainerServiceV20141113.ListClusters".into(),
        ),
    ];
    if let Some(t) = token {
        headers.push(("x-amz-security-token".into(), t.into()));
    }
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let added = sign_headers(
        key,
        secret,
        "us-east-1",
        "ecs",
        "POST",
        "/",
        "",
        &refs,
        body,
        now(),
    );
    headers.extend(added);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &refs,
        body,
    };
    v.verify(&req, "ecs", &|_| true, now())
}

fn issue(key: &SessionKey, lifetime: i64) -> TemporaryCredentials {
    key.issue(
        "111111111111",
        ROLE,
        SessionFor::Task(TASK),
        epoch(now()) + lifetime,
    )
}

#[test]
fn issued_credentials_verify_as_their_session() {
    let key = Arc::new(SessionKey::new(&[3; 32]).unwrap());
    let c = issue(&key, 3600);
    let v = verify(
        &verifier(&key),
        &c.access_key_id,
        &c.secret_access_key,
        Some(&c.session_token),
    )
    .unwrap();
    assert_eq!(v.account_id, "111111111111");
    assert_eq!(
        v.principal_arn,
        "arn:aws:sts::111111111111:assumed-role/app/0123456789abcdef"
    );
    let session = v.session.unwrap();
    assert_eq!(
        (session.role_arn.as_str(), session.task_arn.as_deref()),
        (ROLE, Some(TASK))
    );
}

#[test]
fn assumed_role_sessions_verify_as_their_session_name() {
    let key = Arc::new(SessionKey::new(&[3; 32]).unwrap());
    let c = key.issue(
        "111111111111",
        ROLE,
        SessionFor::Name("deploy@ci"),
        epoch(now()) + 900,
    );
    let v = verify(
        &verifier(&key),
        &c.access_key_id,
        &c.secret_access_key,
        Some(&c.session_token),
    )
    .unwrap();
    assert_eq!(
        v.principal_arn,
        "arn:aws:sts::111111111111:assumed-role/app/deploy@ci"
    );
    assert_eq!(v.session.unwrap().task_arn, None);
}

#[test]
fn bad_tokens_are_refused() {
    let key = Arc::new(SessionKey::new(&[3; 32]).unwrap());
    let v = verifier(&key);
    let c = issue(&key, 3600);
    let (id, secret) = (c.access_key_id.as_str(), c.secret_access_key.as_str());
    // No token, another session's token, a tampered one.
    assert_eq!(
        verify(&v, id, secret, None),
        Err(AuthError::UnrecognizedClient)
    );
    let other = issue(&key, 3600);
    assert_eq!(
        verify(&v, id, secret, Some(&other.session_token)),
        Err(AuthError::UnrecognizedClient)
    );
    let mut t = c.session_token.clone().into_bytes();
    t[30] = if t[30] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        verify(&v, id, secret, Some(std::str::from_utf8(&t).unwrap())),
        Err(AuthError::UnrecognizedClient)
    );
    // Sealed by another server.
    let stranger = SessionKey::new(&[4; 32]).unwrap();
    let s = issue(&stranger, 3600);
    assert_eq!(
        verify(
            &v,
            &s.access_key_id,
            &s.secret_access_key,
            Some(&s.session_token)
        ),
        Err(AuthError::UnrecognizedClient)
    );
    // The right token with a wrong secret.
    assert!(matches!(
        verify(&v, id, "not-the-secret", Some(&c.session_token)),
        Err(AuthError::InvalidSignature(_))
    ));
    // Expired.
    let old = issue(&key, -1);
    assert_eq!(
        verify(
            &v,
            &old.access_key_id,
            &old.secret_access_key,
            Some(&old.session_token)
        ),
        Err(AuthError::ExpiredToken)
    );
    // A server without a session key knows no temporary key.
    let plain = Verifier::new(Arc::new(StaticCredentials::new(vec![])));
    assert_eq!(
        verify(&plain, id, secret, Some(&c.session_token)),
        Err(AuthError::UnrecognizedClient)
    );
}
