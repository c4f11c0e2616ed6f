//! ECS-style requests signed by botocore (gen_botocore_vectors.py) must verify,
//! and must stop verifying when any signed part is altered.

mod common;

use std::fs;
use std::sync::Arc;

use berth_auth::{AuthError, Credential, SignedRequest, StaticCredentials, Verifier};
use common::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    access_key_id: String,
    secret_access_key: String,
    region: String,
    service: String,
    now_unix: u64,
    requests: Vec<Req>,
}

#[derive(Deserialize)]
struct Req {
    name: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn load() -> (File, Verifier) {
    let text = fs::read_to_string(vectors_dir().join("botocore.json")).unwrap();
    let f: File = serde_json::from_str(&text).unwrap();
    let v = Verifier::new(Arc::new(StaticCredentials::new(vec![Credential {
        access_key_id: f.access_key_id.clone(),
        secret_access_key: f.secret_access_key.clone(),
        account_id: "111122223333".into(),
        principal_arn: "arn:aws:iam::111122223333:root".into(),
    }])));
    (f, v)
}

fn check(
    v: &Verifier,
    f: &File,
    r: &Req,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), AuthError> {
    let req = SignedRequest {
        method: &r.method,
        path: &r.path,
        query: &r.query,
        headers,
        body,
    };
    let region = f.region.clone();
    v.verify(&req, &f.service, &|r| r == region, at_unix(f.now_unix))
        .map(|ok| {
            assert_eq!(ok.account_id, "111122223333");
            assert_eq!(ok.region, f.region);
            assert_eq!(ok.service, "ecs");
        })
}

#[test]
fn botocore_signed_requests_verify() {
    let (f, v) = load();
    assert!(f.requests.len() >= 4);
    for r in &f.requests {
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        check(&v, &f, r, &headers, r.body.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e:?}", r.name));
    }
}

#[test]
fn botocore_signed_requests_reject_tampering() {
    let (f, v) = load();
    for r in &f.requests {
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        // Body altered by one byte.
        let mut body = r.body.clone().into_bytes();
        body.push(b' ');
        assert!(
            matches!(
                check(&v, &f, r, &headers, &body),
                Err(AuthError::InvalidSignature(_))
            ),
            "{}",
            r.name
        );
        // A signed header retargeted to another operation.
        let tampered: Vec<(&str, &str)> = headers
            .iter()
            .map(|&(n, val)| {
                if n == "X-Amz-Target" {
                    (n, "AmazonEC2ContainerServiceV20141113.DeleteCluster")
                } else {
                    (n, val)
                }
            })
            .collect();
        assert!(
            matches!(
                check(&v, &f, r, &tampered, r.body.as_bytes()),
                Err(AuthError::InvalidSignature(_))
            ),
            "{}",
            r.name
        );
    }
}
