//! Opaque, tamper-evident pagination tokens.
//!
//! A token carries the sort key of the last item returned, bound to the
//! operation, account and region that produced it, and signed with a
//! server-held key. A forged, truncated or foreign token is refused with
//! `InvalidParameterException`, as ECS does.

use crate::EcsError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct TokenCodec {
    key: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    o: String,
    a: String,
    r: String,
    f: String,
    k: String,
}

/// What a token is bound to: the operation, the caller, and the request's
/// filters (a token is only good for the listing that issued it, so
/// changing `sort` or `status` mid-way cannot skip or repeat items).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey<'a> {
    pub operation: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub filter: &'a str,
}

impl TokenCodec {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        TokenCodec { key: key.into() }
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("hmac takes any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    pub fn encode(&self, page: &PageKey, last_sort_key: &str) -> String {
        let payload = serde_json::to_vec(&Payload {
            o: page.operation.into(),
            a: page.account.into(),
            r: page.region.into(),
            f: page.filter.into(),
            k: last_sort_key.into(),
        })
        .expect("token payload serializes");
        let mac = self.mac(&payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// Returns the sort key to continue after.
    pub fn decode(&self, page: &PageKey, token: &str) -> Result<String, EcsError> {
        let invalid = || EcsError::invalid("Invalid token ".to_string() + token);
        let (p, m) = token.split_once('.').ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| invalid())?;
        let mac = URL_SAFE_NO_PAD.decode(m).map_err(|_| invalid())?;
        if !bool::from(self.mac(&payload).ct_eq(&mac)) {
            return Err(invalid());
        }
        let payload: Payload = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        if payload.o != page.operation
            || payload.a != page.account
            || payload.r != page.region
            || payload.f != page.filter
        {
            return Err(invalid());
        }
        Ok(payload.k)
    }
}

/// Validates `maxResults` against the operation's range, returning the page size.
pub fn page_size(max_results: Option<i32>, default: usize, max: usize) -> Result<usize, EcsError> {
    match max_results {
        None => Ok(default),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) => Err(EcsError::invalid(format!(
            "maxResults must be between 1 and {max}, got {n}."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: PageKey = PageKey {
        operation: "ListClusters",
        account: "1",
        region: "us-east-1",
        filter: "",
    };

    #[test]
    fn round_trip_and_refusals() {
        let c = TokenCodec::new(b"secret".to_vec());
        let t = c.encode(&PAGE, "web\t0000000003");
        assert_eq!(c.decode(&PAGE, &t).unwrap(), "web\t0000000003");
        let other_op = PageKey {
            operation: "ListTaskDefinitions",
            ..PAGE
        };
        assert!(c.decode(&other_op, &t).is_err());
        let other_account = PageKey {
            account: "2",
            ..PAGE
        };
        assert!(c.decode(&other_account, &t).is_err());
        let other_filter = PageKey {
            filter: "DESC",
            ..PAGE
        };
        assert!(c.decode(&other_filter, &t).is_err());
        assert!(TokenCodec::new(b"other".to_vec())
            .decode(&PAGE, &t)
            .is_err());
        assert!(c.decode(&PAGE, "garbage").is_err());
        let mut forged = t.clone();
        forged.replace_range(0..2, "ey");
        let _ = c.decode(&PAGE, &forged); // must not panic
        assert!(c.decode(&PAGE, &(t + "x")).is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None, 100, 100).unwrap(), 100);
        assert_eq!(page_size(Some(3), 100, 100).unwrap(), 3);
        assert!(page_size(Some(0), 100, 100).is_err());
        assert!(page_size(Some(101), 100, 100).is_err());
    }
}
