//! Temporary credentials (a task role's), verified without any stored
//! state: the session token is the session itself, sealed
//! (XChaCha20-Poly1305) under a key only the server holds, and the secret
//! access key is derived from the access key id under that key.
//!
//! Why stateless: a task's credentials are asked for on every refresh by
//! every task, and any server holding the key (after a restart, or a
//! second node) verifies them with no lookup and no write. What a sealed
//! token cannot know (that its task has stopped since) the server checks
//! against the task itself; expiry is in the token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::key::hmac_sha256;

/// Access key ids of temporary credentials start so, as on AWS.
pub const TEMPORARY_KEY_PREFIX: &str = "ASIA";
const NONCE_LEN: usize = 24;
const AAD: &[u8] = b"berth-session-v1";

/// Who a session is and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    #[serde(rename = "k")]
    pub access_key_id: String,
    #[serde(rename = "a")]
    pub account_id: String,
    /// The role assumed, `arn:aws:iam::ACCOUNT:role/NAME`.
    #[serde(rename = "r")]
    pub role_arn: String,
    /// The task the role was assumed for (its id is the session name):
    /// the session dies with the task. None for `sts:AssumeRole`'s.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    /// The `RoleSessionName` of an `sts:AssumeRole` session.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// Seconds since the epoch.
    #[serde(rename = "x")]
    pub expires: i64,
}

impl SessionClaims {
    /// `arn:aws:sts::ACCOUNT:assumed-role/ROLE_NAME/SESSION_NAME`; a task
    /// role's session is named by its task's id, as on ECS.
    pub fn principal_arn(&self) -> String {
        let role_name = self.role_arn.rsplit('/').next().unwrap_or_default();
        let session = match (&self.session_name, &self.task_arn) {
            (Some(name), _) => name.as_str(),
            (None, Some(task)) => task.rsplit('/').next().unwrap_or_default(),
            (None, None) => "",
        };
        format!(
            "arn:aws:sts::{}:assumed-role/{role_name}/{session}",
            self.account_id
        )
    }
}

/// Whom a session is for: a task (it lives while the task does), or the
/// `RoleSessionName` of an `sts:AssumeRole` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFor<'a> {
    Task(&'a str),
    Name(&'a str),
}

/// Temporary credentials as handed to a task.
#[derive(Clone, PartialEq, Eq)]
pub struct TemporaryCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires: i64,
}

impl std::fmt::Debug for TemporaryCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Why a session token was not accepted (the client sees one message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// Not sealed by this key, tampered with, or not for this access key.
    Invalid,
    Expired,
}

/// The server's session key: seals tokens and derives secrets.
pub struct SessionKey {
    cipher: XChaCha20Poly1305,
    secret_key: [u8; 32],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// `key`: at least 32 random bytes. Two keys are derived from it, one
    /// to seal tokens and one to derive secrets, so neither use weakens the other.
    pub fn new(key: &[u8]) -> Option<SessionKey> {
        if key.len() < 32 {
            return None;
        }
        let seal = hmac_sha256(key, b"berth-session-seal");
        Some(SessionKey {
            cipher: XChaCha20Poly1305::new((&seal).into()),
            secret_key: hmac_sha256(key, b"berth-session-secret"),
        })
    }

    fn secret_for(&self, access_key_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac_sha256(&self.secret_key, access_key_id.as_bytes()))
    }

    /// New credentials for `account`'s `role_arn`, assumed for `who`,
    /// valid until `expires` (epoch seconds).
    pub fn issue(
        &self,
        account_id: &str,
        role_arn: &str,
        who: SessionFor<'_>,
        expires: i64,
    ) -> TemporaryCredentials {
        let (task_arn, session_name) = match who {
            SessionFor::Task(t) => (Some(t.to_string()), None),
            SessionFor::Name(n) => (None, Some(n.to_string())),
        };
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let random: [u8; 16] = rand::random();
        let suffix: String = random
            .iter()
            .map(|b| ALPHABET[usize::from(b % 32)] as char)
            .collect();
        let claims = SessionClaims {
            access_key_id: format!("{TEMPORARY_KEY_PREFIX}{suffix}"),
            account_id: account_id.to_string(),
            role_arn: role_arn.to_string(),
            task_arn,
            session_name,
            expires,
        };
        let plain = serde_json::to_vec(&claims).expect("claims serialize");
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: AAD,
                },
            )
            .expect("encrypting into memory cannot fail");
        let mut token = nonce.to_vec();
        token.extend_from_slice(&sealed);
        TemporaryCredentials {
            secret_access_key: self.secret_for(&claims.access_key_id),
            access_key_id: claims.access_key_id,
            session_token: URL_SAFE_NO_PAD.encode(token),
            expires,
        }
    }

    /// The session `token` carries, if this key sealed it for
    /// `access_key_id` and it has not expired at `now` (epoch seconds);
    /// with the secret that signs for it.
    pub fn open(
        &self,
        access_key_id: &str,
        token: &str,
        now: i64,
    ) -> Result<(SessionClaims, String), SessionError> {
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| SessionError::Invalid)?;
        if raw.len() <= NONCE_LEN {
            return Err(SessionError::Invalid);
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: AAD,
                },
            )
            .map_err(|_| SessionError::Invalid)?;
        let claims: SessionClaims =
            serde_json::from_slice(&plain).map_err(|_| SessionError::Invalid)?;
        if !bool::from(
            claims
                .access_key_id
                .as_bytes()
                .ct_eq(access_key_id.as_bytes()),
        ) {
            return Err(SessionError::Invalid);
        }
        if claims.expires <= now {
            return Err(SessionError::Expired);
        }
        let secret = self.secret_for(&claims.access_key_id);
        Ok((claims, secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = "arn:aws:ecs:us-east-1:111111111111:task/c/0123456789abcdef";
    const ROLE: &str = "arn:aws:iam::111111111111:role/app/writer";
    const T: SessionFor = SessionFor::Task(TASK);

    #[test]
    fn issued_credentials_open_until_they_expire() {
        let key = SessionKey::new(&[7; 32]).unwrap();
        let c = key.issue("111111111111", ROLE, T, 1_000);
        assert!(c.access_key_id.starts_with("ASIA") && c.access_key_id.len() == 20);
        let (claims, secret) = key.open(&c.access_key_id, &c.session_token, 999).unwrap();
        assert_eq!(secret, c.secret_access_key);
        assert_eq!(claims.role_arn, ROLE);
        assert_eq!(
            claims.principal_arn(),
            "arn:aws:sts::111111111111:assumed-role/writer/0123456789abcdef"
        );
        assert_eq!(
            key.open(&c.access_key_id, &c.session_token, 1_000),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn foreign_tampered_or_borrowed_tokens_are_invalid() {
        let key = SessionKey::new(&[7; 32]).unwrap();
        let c = key.issue("111111111111", ROLE, T, 1_000);
        let other = key.issue("111111111111", ROLE, T, 1_000);
        // Another session's token with this key id.
        assert_eq!(
            key.open(&c.access_key_id, &other.session_token, 0),
            Err(SessionError::Invalid)
        );
        // Sealed by another server's key.
        let stranger = SessionKey::new(&[8; 32]).unwrap();
        assert_eq!(
            stranger.open(&c.access_key_id, &c.session_token, 0),
            Err(SessionError::Invalid)
        );
        // Any byte changed.
        let mut raw = URL_SAFE_NO_PAD.decode(&c.session_token).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let t = URL_SAFE_NO_PAD.encode(&raw);
            assert_eq!(
                key.open(&c.access_key_id, &t, 0),
                Err(SessionError::Invalid)
            );
            raw[i] ^= 1;
        }
        assert_eq!(
            key.open(&c.access_key_id, "", 0),
            Err(SessionError::Invalid)
        );
        assert_eq!(
            key.open(&c.access_key_id, "not base64!", 0),
            Err(SessionError::Invalid)
        );
        assert!(SessionKey::new(&[1; 31]).is_none());
    }

    #[test]
    fn named_sessions_are_their_name_and_tokens_of_either_kind_open() {
        let key = SessionKey::new(&[7; 32]).unwrap();
        let c = key.issue("111111111111", ROLE, SessionFor::Name("ci-run.7"), 1_000);
        let (claims, _) = key.open(&c.access_key_id, &c.session_token, 0).unwrap();
        assert_eq!(claims.task_arn, None);
        assert_eq!(
            claims.principal_arn(),
            "arn:aws:sts::111111111111:assumed-role/writer/ci-run.7"
        );
        // A task session's claims as sealed before named sessions existed.
        let old: SessionClaims = serde_json::from_str(
            r#"{"k":"ASIAX","a":"111111111111","r":"arn:aws:iam::111111111111:role/w","t":"arn:aws:ecs:us-east-1:111111111111:task/c/abc","x":5}"#,
        )
        .unwrap();
        assert_eq!(old.session_name, None);
        assert_eq!(
            old.principal_arn(),
            "arn:aws:sts::111111111111:assumed-role/w/abc"
        );
    }
}
