//! Encryption at rest for secret values and SecureString parameters.
//!
//! XChaCha20-Poly1305 with a random 24-byte nonce per value (random nonces
//! of that size never realistically collide), and associated data naming
//! the service, account, region, resource and version: a sealed value
//! copied onto another resource fails to open instead of leaking there.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::sync::Arc;

const NONCE_LEN: usize = 24;

/// The key that seals values; cheap to clone.
#[derive(Clone)]
pub struct Vault {
    cipher: Arc<XChaCha20Poly1305>,
}

/// Never prints the key.
impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// `key` must hold at least 32 bytes; the first 32 are the key.
    pub fn new(key: &[u8]) -> Result<Self, String> {
        let key = key
            .get(..32)
            .ok_or_else(|| "a secrets key needs 32 bytes".to_string())?;
        Ok(Vault {
            cipher: Arc::new(XChaCha20Poly1305::new(key.into())),
        })
    }

    /// base64(nonce ‖ ciphertext ‖ tag), bound to `context`.
    pub(crate) fn seal(&self, context: &[&str], plaintext: &[u8]) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let aad = associated_data(context);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("encrypting into memory cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        STANDARD.encode(out)
    }

    /// The plaintext, or `None` if `sealed` was not sealed with this key
    /// for this `context`.
    pub(crate) fn open(&self, context: &[&str], sealed: &str) -> Option<Vec<u8>> {
        let raw = STANDARD.decode(sealed).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let aad = associated_data(context);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .ok()
    }
}

/// Length-prefixed parts, so ("a:b", "c") and ("a", "b:c") differ.
fn associated_data(context: &[&str]) -> Vec<u8> {
    let mut aad = b"berth-vault-v1".to_vec();
    for part in context {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_context() {
        let v = Vault::new(&[7u8; 32]).unwrap();
        let sealed = v.seal(&["a", "b"], b"hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(v.open(&["a", "b"], &sealed).unwrap(), b"hunter2");
        assert!(v.open(&["a", "c"], &sealed).is_none());
        assert!(v.open(&["ab"], &sealed).is_none());
        let other = Vault::new(&[8u8; 32]).unwrap();
        assert!(other.open(&["a", "b"], &sealed).is_none());
        assert_ne!(
            sealed,
            v.seal(&["a", "b"], b"hunter2"),
            "fresh nonce per value"
        );
    }
}
