//! SigV4 parsing and verification under hostile input: arbitrary
//! Authorization headers, dates, query strings and bodies, and valid
//! signatures with one part mutated. Nothing panics; nothing but the
//! untouched request verifies. (proptest stands in for a coverage-guided
//! fuzzer: it runs in `cargo test`, bounded, on the stable toolchain.)

mod common;

use berth_auth::{sign_headers, Credential, SignedRequest, StaticCredentials, Verifier};
use common::*;
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "AKIAFUZZEXAMPLE00001";
const SECRET: &str = "fuzz-secret-0123456789abcdefghijklmnopq";
const TARGET: &str = "AmazonEC2ContainerServiceV20141113.ListClusters";

fn verifier() -> Verifier {
    Verifier::new(Arc::new(StaticCredentials::new(vec![Credential {
        access_key_id: KEY.into(),
        secret_access_key: SECRET.into(),
        account_id: "111122223333".into(),
        principal_arn: "arn:aws:iam::111122223333:root".into(),
    }])))
}

fn verifies(headers: &[(String, String)], query: &str, body: &[u8]) -> bool {
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let req = SignedRequest {
        method: "POST",
        path: "/",
        query,
        headers: &h,
        body,
    };
    verifier()
        .verify(
            &req,
            "ecs",
            &|_| true,
            suite_time() + Duration::from_secs(1),
        )
        .is_ok()
}

fn signed(body: &[u8]) -> Vec<(String, String)> {
    let base = [
        ("host", "127.0.0.1:8450"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", TARGET),
    ];
    let mut h: Vec<(String, String)> = base
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    h.extend(sign_headers(
        KEY,
        SECRET,
        "us-east-1",
        "ecs",
        "POST",
        "/",
        "",
        &base,
        body,
        suite_time(),
    ));
    h
}

fn auth_header() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,120}",
        // Shapes close to a real one, so the parser goes deep.
        (
            "[A-Z0-9]{0,24}",
            "[0-9]{0,9}",
            "[a-z0-9-]{0,12}",
            "[a-z]{0,6}",
            "[a-z0-9;-]{0,40}",
            "[0-9a-f]{0,70}",
        )
            .prop_map(|(k, d, r, s, sh, sig)| format!(
                "AWS4-HMAC-SHA256 Credential={k}/{d}/{r}/{s}/aws4_request, SignedHeaders={sh}, Signature={sig}"
            )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_authorization_is_refused(
        auth in auth_header(),
        date in "[0-9TZ]{0,20}",
        query in "[a-zA-Z0-9=&%-]{0,80}",
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let headers = vec![
            ("host".to_string(), "127.0.0.1:8450".to_string()),
            ("x-amz-target".to_string(), TARGET.to_string()),
            ("x-amz-date".to_string(), date),
            ("authorization".to_string(), auth),
        ];
        prop_assert!(!verifies(&headers, &query, &body));
        prop_assert!(!verifies(&[], &query, &body));
    }

    /// A valid request verifies; changing any one signed header's value,
    /// the signature, or the body makes it fail.
    #[test]
    fn one_changed_byte_breaks_the_signature(which in 0usize..6, flip in any::<u8>(), body in "\\{\"cluster\":\"[a-z]{1,8}\"\\}") {
        let body = body.into_bytes();
        let mut h = signed(&body);
        prop_assert!(verifies(&h, "", &body));
        let mut b = body.clone();
        if which < h.len() {
            let authorization = h[which].0.eq_ignore_ascii_case("authorization");
            let v = &mut h[which].1;
            let mut bytes = v.clone().into_bytes();
            // The Authorization header's own layout is not signed (its
            // separators may be any whitespace, as AWS allows): change the
            // signature it carries.
            let from = if authorization { bytes.len() - 64 } else { 0 };
            let i = from + (flip as usize) % (bytes.len() - from).max(1);
            if bytes.is_empty() {
                bytes.push(b'x');
            } else {
                bytes[i] ^= 1 + (flip % 0x3f);
            }
            *v = String::from_utf8_lossy(&bytes).into_owned();
            prop_assume!(*v != signed(&body)[which].1);
        } else {
            b.push(flip);
        }
        prop_assert!(!verifies(&h, "", &b));
    }
}
