//! A secret as stored: one document with its metadata and every version's
//! sealed value, and the rules on names, values and staging labels.

use super::now;
use crate::records::{Record, Versioned};
use berth_wire::secretsmanager::{Filter, Tag};
use berth_wire::{ApiError, Blob};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub(super) const CURRENT: &str = "AWSCURRENT";
const PREVIOUS: &str = "AWSPREVIOUS";
/// Versions kept per secret; older unlabeled ones are dropped, as AWS does.
const MAX_VERSIONS: usize = 100;
const MAX_VALUE: usize = 65_536;

#[derive(Serialize, Deserialize, Clone)]
pub(super) struct Secret {
    pub(super) name: String,
    pub(super) arn: String,
    pub(super) description: Option<String>,
    pub(super) kms_key_id: Option<String>,
    pub(super) tags: Vec<Tag>,
    pub(super) created: f64,
    pub(super) changed: f64,
    /// When DeleteSecret was called, and when the secret is then gone.
    pub(super) deleted: Option<f64>,
    pub(super) purge_after: Option<f64>,
    /// Oldest first.
    pub(super) versions: Vec<SecretVersion>,
}

#[derive(Serialize, Deserialize, Clone)]
pub(super) struct SecretVersion {
    pub(super) id: String,
    pub(super) stages: Vec<String>,
    pub(super) created: f64,
    pub(super) binary: bool,
    pub(super) sealed: String,
}

impl Record for Secret {
    const KIND: &'static str = "secret";
    fn id(&self) -> String {
        self.name.clone()
    }
}

/// A value as given: exactly one of a string and a binary.
#[derive(PartialEq)]
pub(super) enum Value {
    Text(String),
    Binary(Vec<u8>),
}

pub(super) fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::client("InvalidParameterException", msg)
}

pub(super) fn not_found() -> ApiError {
    ApiError::client(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

pub(super) fn marked_for_deletion() -> ApiError {
    ApiError::client(
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

pub(super) fn check_name(name: &str) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    if name.is_empty() || name.len() > 512 || !name.chars().all(ok_char) {
        return Err(invalid(format!(
            "Invalid name '{name}': a secret name must be 1 to 512 characters of letters, digits and /_+=.@-"
        )));
    }
    Ok(())
}

pub(super) fn value(text: Option<String>, binary: Option<Blob>) -> Result<Option<Value>, ApiError> {
    let v = match (text, binary) {
        (Some(_), Some(_)) => return Err(invalid(
            "You can't specify both a binary secret value and a string value in the same secret.",
        )),
        (Some(s), None) => Some(Value::Text(s)),
        (None, Some(b)) => Some(Value::Binary(b.0)),
        (None, None) => None,
    };
    let len = match &v {
        Some(Value::Text(s)) => s.len(),
        Some(Value::Binary(b)) => b.len(),
        None => 0,
    };
    if len > MAX_VALUE {
        return Err(invalid(format!(
            "The secret value exceeds the maximum size of {MAX_VALUE} bytes."
        )));
    }
    Ok(v)
}

/// The version id: the caller's idempotency token, or a fresh one.
pub(super) fn version_id(token: Option<String>) -> Result<String, ApiError> {
    match token {
        Some(t) if (32..=64).contains(&t.len()) => Ok(t),
        Some(_) => Err(invalid(
            "ClientRequestToken must be between 32 and 64 characters long.",
        )),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

pub(super) fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

impl Secret {
    /// Gone for good: its recovery window has passed.
    pub(super) fn purged(&self, now: f64) -> bool {
        self.purge_after.is_some_and(|t| t <= now)
    }

    pub(super) fn labeled(&self) -> BTreeMap<String, Vec<String>> {
        self.versions
            .iter()
            .filter(|v| !v.stages.is_empty())
            .map(|v| (v.id.clone(), v.stages.clone()))
            .collect()
    }

    pub(super) fn tags(&self) -> Option<Vec<Tag>> {
        (!self.tags.is_empty()).then(|| self.tags.clone())
    }

    /// Adds a version carrying `stages`, moving each label off the version
    /// that had it; the version losing AWSCURRENT becomes AWSPREVIOUS.
    pub(super) fn add_version(&mut self, v: SecretVersion) {
        let takes_current = v.stages.iter().any(|s| s == CURRENT);
        for old in &mut self.versions {
            let was_current = old.stages.iter().any(|s| s == CURRENT);
            old.stages.retain(|s| !v.stages.contains(s));
            if takes_current {
                old.stages.retain(|s| s != PREVIOUS);
                if was_current {
                    old.stages.push(PREVIOUS.to_string());
                }
            }
        }
        self.versions.push(v);
        while self.versions.len() > MAX_VERSIONS {
            match self.versions.iter().position(|v| v.stages.is_empty()) {
                Some(i) => self.versions.remove(i),
                None => break,
            };
        }
    }
}

/// The stored secret unless it is absent, purged, or not the one a full
/// ARN named (the name was reused since).
pub(super) fn live(
    found: Option<Versioned<Secret>>,
    arn: Option<&str>,
) -> Result<Versioned<Secret>, ApiError> {
    found
        .filter(|s| !s.value.purged(now()) && arn.is_none_or(|a| a == s.value.arn))
        .ok_or_else(not_found)
}

/// ListSecrets filters: prefix matches, any value of a filter, a leading
/// `!` negating; berth has no replicas or owning services, so those keys
/// match nothing (and their negations everything).
pub(super) fn matches(s: &Secret, f: &Filter) -> bool {
    let key = f.key.as_ref().map(|k| k.as_str()).unwrap_or("");
    f.values.iter().flatten().any(|v| {
        let (neg, v) = match v.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, v.as_str()),
        };
        let tag_keys = || s.tags.iter().filter_map(|t| t.key.as_deref());
        let tag_values = || s.tags.iter().filter_map(|t| t.value.as_deref());
        let desc = s.description.as_deref();
        let hit = match key {
            "name" => s.name.starts_with(v),
            "description" => desc.is_some_and(|d| d.starts_with(v)),
            "tag-key" => tag_keys().any(|k| k.starts_with(v)),
            "tag-value" => tag_values().any(|k| k.starts_with(v)),
            "all" => {
                s.name.starts_with(v)
                    || desc.is_some_and(|d| d.starts_with(v))
                    || tag_keys().chain(tag_values()).any(|k| k.starts_with(v))
            }
            _ => false,
        };
        hit != neg
    })
}
