//! Client-side signing, used by tests and the benchmark to produce requests
//! the verifier must accept. It shares `canonical` with the verifier.

use std::time::{Duration, SystemTime};

use crate::canonical::{self, sha256_hex, uri_encode, ALGORITHM};
use crate::date;
use crate::key::{derive_signing_key, hmac_sha256};

/// Headers never signed: they are rewritten by proxies or are the signature itself
/// (same list botocore skips, plus `authorization`).
const UNSIGNABLE: &[&str] = &["authorization", "user-agent", "expect", "x-amzn-trace-id"];

/// Hex signature of `string_to_sign` with the key for (date, region, service).
pub fn signature(
    secret: &str,
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    hex::encode(hmac_sha256(
        &derive_signing_key(secret, date, region, service),
        string_to_sign.as_bytes(),
    ))
}

/// Sorted, deduplicated lowercase names of the headers to sign.
fn signed_header_names(headers: &[(&str, &str)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| !UNSIGNABLE.contains(&n.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Signs a request with an `Authorization` header. Signs every header given
/// (which must include `host`) plus `x-amz-date`, set from `now` (any
/// `x-amz-date` passed in is replaced). The payload hash is the
/// `x-amz-content-sha256` header if given, else the body's SHA-256.
///
/// Returns the headers to add: `x-amz-date` and `authorization`.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    cred_access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: SystemTime,
) -> Vec<(String, String)> {
    let amz_date = date::format_amz(date::from_system(now));
    let day = &amz_date[..8];
    let mut all: Vec<(&str, &str)> = headers
        .iter()
        .copied()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"))
        .collect();
    all.push(("x-amz-date", &amz_date));
    let names = signed_header_names(&all);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let payload_hash = all
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| sha256_hex(body));
    let creq =
        canonical::canonical_request(method, path, query, &all, &names, &payload_hash, false);
    let scope = canonical::credential_scope(day, region, service);
    let sts = canonical::string_to_sign(&amz_date, &scope, &creq);
    let sig = signature(secret, day, region, service, &sts);
    let authorization = format!(
        "{ALGORITHM} Credential={cred_access_key}/{scope}, SignedHeaders={}, Signature={sig}",
        names.join(";")
    );
    vec![
        ("x-amz-date".to_owned(), amz_date),
        ("authorization".to_owned(), authorization),
    ]
}

/// Presigns a request: returns the full query string to use (the original
/// `query` followed by `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
/// `X-Amz-Expires`, `X-Amz-SignedHeaders` and `X-Amz-Signature`). Every header
/// given is signed (include `host`); the body's SHA-256 is signed, since this
/// JSON API never accepts `UNSIGNED-PAYLOAD`.
#[allow(clippy::too_many_arguments)]
pub fn presign_query(
    cred_access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    expires: Duration,
    now: SystemTime,
) -> String {
    let amz_date = date::format_amz(date::from_system(now));
    let day = &amz_date[..8];
    let names = signed_header_names(headers);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let scope = canonical::credential_scope(day, region, service);

    let mut q = String::from(query);
    let mut param = |k: &str, v: &str| {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(k);
        q.push('=');
        uri_encode(v.as_bytes(), false, &mut q);
    };
    param("X-Amz-Algorithm", ALGORITHM);
    param("X-Amz-Credential", &format!("{cred_access_key}/{scope}"));
    param("X-Amz-Date", &amz_date);
    param("X-Amz-Expires", &expires.as_secs().to_string());
    param("X-Amz-SignedHeaders", &names.join(";"));

    let creq =
        canonical::canonical_request(method, path, &q, headers, &names, &sha256_hex(body), true);
    let sts = canonical::string_to_sign(&amz_date, &scope, &creq);
    let sig = signature(secret, day, region, service, &sts);
    q.push_str("&X-Amz-Signature=");
    q.push_str(&sig);
    q
}
