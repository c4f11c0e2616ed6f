//! Tag rules as ECS documents them: at most 50 user tags per resource, keys
//! of 1–128 and values of 0–256 characters from letters, digits, spaces and
//! `+ - = . _ : / @`, and the `aws:` prefix reserved.

use crate::EcsError;
use berth_wire::ecs::Tag;

pub const MAX_TAGS: usize = 50;
pub const MAX_KEY_LEN: usize = 128;
pub const MAX_VALUE_LEN: usize = 256;

fn allowed(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c)
}

fn validate_key(key: &str) -> Result<(), EcsError> {
    let n = key.chars().count();
    if n == 0 || n > MAX_KEY_LEN {
        return Err(EcsError::invalid(format!(
            "Tag keys must be between 1 and {MAX_KEY_LEN} characters in length."
        )));
    }
    if !key.chars().all(allowed) {
        return Err(EcsError::invalid(format!(
            "Tag key '{key}' contains characters that are not allowed. Allowed are letters, numbers, spaces and + - = . _ : / @"
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(EcsError::invalid(format!(
            "Tag key '{key}' uses the reserved prefix 'aws:'."
        )));
    }
    Ok(())
}

/// Validates tags given in a request.
pub fn validate(tags: &[Tag]) -> Result<(), EcsError> {
    for t in tags {
        let key = t
            .key
            .as_deref()
            .ok_or_else(|| EcsError::invalid("Tag key must not be empty."))?;
        validate_key(key)?;
        let value = t.value.as_deref().unwrap_or("");
        if value.chars().count() > MAX_VALUE_LEN {
            return Err(EcsError::invalid(format!(
                "Tag values must be at most {MAX_VALUE_LEN} characters in length."
            )));
        }
        if !value.chars().all(allowed) {
            return Err(EcsError::invalid(format!(
                "Tag value for key '{key}' contains characters that are not allowed."
            )));
        }
    }
    Ok(())
}

pub fn validate_keys(keys: &[String]) -> Result<(), EcsError> {
    keys.iter().try_for_each(|k| validate_key(k))
}

/// Adds or replaces `new` in `existing`, keeping first-set order, and
/// enforces the per-resource limit on the result.
pub fn merge(existing: &mut Vec<Tag>, new: &[Tag]) -> Result<(), EcsError> {
    validate(new)?;
    for t in new {
        match existing.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = Some(t.value.clone().unwrap_or_default()),
            None => existing.push(Tag {
                key: t.key.clone(),
                value: Some(t.value.clone().unwrap_or_default()),
            }),
        }
    }
    if existing.len() > MAX_TAGS {
        return Err(EcsError::invalid(format!(
            "A resource can have at most {MAX_TAGS} tags; this request would leave it with {}.",
            existing.len()
        )));
    }
    Ok(())
}

/// Tags for a new resource: validated, last value wins for repeated keys.
pub fn initial(tags: Option<&Vec<Tag>>) -> Result<Vec<Tag>, EcsError> {
    let mut out = Vec::new();
    if let Some(t) = tags {
        merge(&mut out, t)?;
    }
    Ok(out)
}

pub fn remove(existing: &mut Vec<Tag>, keys: &[String]) {
    existing.retain(|t| !keys.iter().any(|k| Some(k) == t.key.as_ref()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: Some(k.into()),
            value: Some(v.into()),
        }
    }

    #[test]
    fn limits() {
        assert!(validate(&[tag("env", "prod"), tag("a b:c/d@e", "")]).is_ok());
        assert!(validate(&[tag("aws:foo", "x")]).is_err());
        assert!(validate(&[tag("AWS:foo", "x")]).is_err());
        assert!(validate(&[tag(&"k".repeat(129), "x")]).is_err());
        assert!(validate(&[tag("k", &"v".repeat(257))]).is_err());
        assert!(validate(&[tag("k{", "v")]).is_err());
        let mut many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert!(merge(&mut many, &[tag("k1", "changed")]).is_ok());
        assert_eq!(many[1].value.as_deref(), Some("changed"));
        assert!(merge(&mut many, &[tag("one-too-many", "v")]).is_err());
    }
}
