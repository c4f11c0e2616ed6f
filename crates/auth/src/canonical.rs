//! The SigV4 canonical request and string to sign, shared by the verifier and
//! the client-side signer so the two cannot drift apart.
//!
//! Everything here works on the request *as received*: the path and query are
//! raw (possibly already percent-encoded) and are normalized the way AWS does
//! for non-S3 services, which is what makes the path "double encoded".

use sha2::{Digest, Sha256};

/// Signing algorithm name, the only one accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986 encoding as SigV4 wants it: everything but unreserved characters
/// (and `/` when `keep_slash`) becomes `%XX` with uppercase hex.
pub fn uri_encode(input: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }
}

/// Decodes `%XX` escapes; malformed escapes are kept literally (as AWS does
/// not reject them either). `+` is a literal plus, not a space.
pub fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Canonical URI: dot segments and empty segments removed (AWS collapses
/// `//`), trailing slash kept, then every byte URI-encoded except `/`.
/// The raw path is *not* decoded first, so `%` in it becomes `%25`: that is
/// the double encoding non-S3 services expect.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::with_capacity(path.len() + 1);
    normalized.push('/');
    normalized.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    let mut out = String::with_capacity(normalized.len());
    uri_encode(normalized.as_bytes(), true, &mut out);
    out
}

/// Canonical query string: each `name=value` pair decoded then re-encoded,
/// sorted by encoded name then value. `exclude_signature` drops
/// `X-Amz-Signature`, which a presigned URL cannot sign over itself.
pub fn canonical_query(query: &str, exclude_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(k);
        if exclude_signature && key == b"X-Amz-Signature" {
            continue;
        }
        let (mut ek, mut ev) = (String::new(), String::new());
        uri_encode(&key, false, &mut ek);
        uri_encode(&percent_decode(v), false, &mut ev);
        pairs.push((ek, ev));
    }
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Canonical header value: trimmed, inner whitespace runs collapsed to one space.
fn push_canonical_value(value: &str, out: &mut String) {
    for (i, word) in value.split_ascii_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The full canonical request.
///
/// `signed_headers` are lowercase names in the order the client listed them
/// (normally sorted); each gets all its received values, in order, joined by
/// `,`. `payload_hash` is the hex SHA-256 of the body.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    signed_headers: &[&str],
    payload_hash: &str,
    exclude_signature: bool,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(method);
    out.push('\n');
    out.push_str(&canonical_uri(path));
    out.push('\n');
    out.push_str(&canonical_query(query, exclude_signature));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if !first {
                out.push(',');
            }
            first = false;
            push_canonical_value(value, &mut out);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// `yyyymmdd/region/service/aws4_request`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{TERMINATOR}")
}

/// The string to sign: algorithm, request time, scope, hash of the canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_normalization() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/../.."), "/");
        // Already-encoded input is encoded again (non-S3 double encoding).
        assert_eq!(canonical_uri("/%E1%88%B4"), "/%25E1%2588%25B4");
        assert_eq!(canonical_uri("/example space/"), "/example%20space/");
    }

    #[test]
    fn query_canonicalization() {
        assert_eq!(canonical_query("", false), "");
        assert_eq!(canonical_query("b=2&a=1&a=0", false), "a=0&a=1&b=2");
        assert_eq!(canonical_query("flag&x=a%2fb", false), "flag=&x=a%2Fb");
        assert_eq!(canonical_query("a=1+2", false), "a=1%2B2");
        assert_eq!(canonical_query("bad=%zz%4", false), "bad=%25zz%254");
        assert_eq!(canonical_query("X-Amz-Signature=abc&a=1", true), "a=1");
        // Sort is on the encoded key: "%E1..." < "P...".
        assert_eq!(canonical_query("P=1&%E1%88%B4=2", false), "%E1%88%B4=2&P=1");
    }

    #[test]
    fn header_values_trimmed_and_collapsed() {
        let mut s = String::new();
        push_canonical_value("  \"a   b \t c\"  ", &mut s);
        assert_eq!(s, "\"a b c\"");
    }
}
