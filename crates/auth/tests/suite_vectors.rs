//! The AWS SigV4 test suite (see gen_suite_vectors.py for provenance): our
//! canonical request, string to sign and Authorization must match each case,
//! and the verifier must accept each signed request.

mod common;

use std::fs;
use std::sync::Arc;

use berth_auth::{canonical, sign_headers, Credential, SignedRequest, StaticCredentials, Verifier};
use common::*;

struct Case {
    name: String,
    req: String,
    creq: String,
    sts: String,
    authz: String,
    presigned: Option<String>,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for entry in fs::read_dir(vectors_dir()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let read = |ext: &str| fs::read_to_string(dir.join(format!("{name}.{ext}")));
        out.push(Case {
            req: read("req").unwrap(),
            creq: read("creq").unwrap(),
            sts: read("sts").unwrap(),
            authz: read("authz").unwrap(),
            presigned: read("presigned").ok(),
            name,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 24,
        "expected the suite vectors, found {}",
        out.len()
    );
    out
}

fn signed_headers_of(authz: &str) -> Vec<String> {
    let sh = authz.split("SignedHeaders=").nth(1).unwrap();
    let sh = sh.split(',').next().unwrap();
    sh.split(';').map(str::to_owned).collect()
}

fn verifier() -> Verifier {
    Verifier::new(Arc::new(StaticCredentials::new(vec![Credential {
        access_key_id: SUITE_KEY.into(),
        secret_access_key: SUITE_SECRET.into(),
        account_id: "123456789012".into(),
        principal_arn: "arn:aws:iam::123456789012:user/example".into(),
    }])))
}

#[test]
fn canonical_request_and_string_to_sign_match() {
    for case in cases() {
        let r = RawRequest::parse(&case.req);
        let signed = signed_headers_of(&case.authz);
        let signed: Vec<&str> = signed.iter().map(String::as_str).collect();
        let creq = canonical::canonical_request(
            &r.method,
            &r.path,
            &r.query,
            &r.header_refs(),
            &signed,
            &canonical::sha256_hex(&r.body),
            false,
        );
        assert_eq!(creq, case.creq, "canonical request for {}", case.name);
        let sts = canonical::string_to_sign(
            "20150830T123600Z",
            &canonical::credential_scope("20150830", "us-east-1", "service"),
            &creq,
        );
        assert_eq!(sts, case.sts, "string to sign for {}", case.name);
    }
}

#[test]
fn signer_produces_published_authorization() {
    for case in cases() {
        let r = RawRequest::parse(&case.req);
        let out = sign_headers(
            SUITE_KEY,
            SUITE_SECRET,
            "us-east-1",
            "service",
            &r.method,
            &r.path,
            &r.query,
            &r.header_refs(),
            &r.body,
            suite_time(),
        );
        let get = |n: &str| out.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-date"), Some("20150830T123600Z"), "{}", case.name);
        assert_eq!(
            get("authorization"),
            Some(case.authz.as_str()),
            "{}",
            case.name
        );
    }
}

#[test]
fn verifier_accepts_every_suite_request() {
    let v = verifier();
    for case in cases() {
        let r = RawRequest::parse(&case.req);
        let mut headers = r.header_refs();
        headers.push(("Authorization", case.authz.as_str()));
        let req = SignedRequest {
            method: &r.method,
            path: &r.path,
            query: &r.query,
            headers: &headers,
            body: &r.body,
        };
        let ok = v
            .verify(&req, "service", &|r| r == "us-east-1", suite_time())
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
        assert_eq!(ok.access_key_id, SUITE_KEY);
        assert_eq!(ok.account_id, "123456789012");
        assert_eq!(ok.region, "us-east-1");
        assert_eq!(ok.service, "service");
        assert_eq!(ok.date, "20150830");
    }
}

#[test]
fn verifier_accepts_published_presigned_requests() {
    let v = verifier();
    let mut seen = 0;
    for case in cases() {
        let Some(text) = case.presigned else { continue };
        seen += 1;
        let r = RawRequest::parse(&text);
        let headers = r.header_refs();
        let req = SignedRequest {
            method: &r.method,
            path: &r.path,
            query: &r.query,
            headers: &headers,
            body: &r.body,
        };
        v.verify(&req, "service", &|r| r == "us-east-1", suite_time())
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
    }
    assert!(seen >= 2);
}
