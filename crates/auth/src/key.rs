//! Signing-key derivation and its cache.
//!
//! The derived key depends only on (secret, day, region, service), so caching
//! it turns the 4-HMAC chain into a map lookup and leaves one HMAC (over the
//! string to sign) plus the SHA-256s per request.

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;
use std::collections::HashMap;

use crate::canonical::TERMINATOR;

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The SigV4 signing key: HMAC chain over date, region, service, terminator.
pub fn derive_signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_secret = format!("AWS4{secret}");
    let k_date = hmac_sha256(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// Cache key. The secret itself is part of it (not just the access key id) so
/// a rotated secret can never be served a stale key.
#[derive(Hash, PartialEq, Eq)]
struct CacheId {
    access_key_id: String,
    secret: String,
    date: String,
    region: String,
    service: String,
}

/// Bounded cache of derived keys. When full it is simply cleared: entries are
/// per-day, so old ones die anyway and a refill costs 4 HMACs per key.
pub struct KeyCache {
    capacity: usize,
    map: Mutex<HashMap<CacheId, [u8; 32]>>,
}

impl KeyCache {
    pub fn new(capacity: usize) -> Self {
        KeyCache {
            capacity: capacity.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn get_or_derive(
        &self,
        access_key_id: &str,
        secret: &str,
        date: &str,
        region: &str,
        service: &str,
    ) -> [u8; 32] {
        let id = CacheId {
            access_key_id: access_key_id.to_owned(),
            secret: secret.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        };
        if let Some(key) = self.map.lock().get(&id) {
            return *key;
        }
        // Derive outside the lock; a racing duplicate derivation is harmless.
        let key = derive_signing_key(secret, date, region, service);
        let mut map = self.map.lock();
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(id, key);
        key
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_key_matches_aws_documentation_example() {
        // AWS General Reference, "Examples of how to derive a signing key" (iam, 20120215).
        let key = derive_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn cache_is_bounded_and_keyed_by_secret() {
        let cache = KeyCache::new(2);
        let a = cache.get_or_derive("AK", "s1", "20150830", "r", "svc");
        let b = cache.get_or_derive("AK", "s2", "20150830", "r", "svc");
        assert_ne!(a, b);
        assert_eq!(cache.len(), 2);
        cache.get_or_derive("AK", "s3", "20150830", "r", "svc");
        assert!(cache.len() <= 2);
        assert_eq!(a, cache.get_or_derive("AK", "s1", "20150830", "r", "svc"));
    }
}
