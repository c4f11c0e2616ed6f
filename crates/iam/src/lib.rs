//! IAM-style identity policies, as AWS evaluates them for one principal:
//! a request for an action on a resource is allowed when some statement
//! allows it and none denies it — an explicit Deny always wins, and what no
//! statement allows is denied.
//!
//! Supported: `Version`, `Statement` (one or a list), `Sid`, `Effect`,
//! `Action` / `NotAction`, `Resource` / `NotResource`, with `*` and `?`
//! wildcards (actions match case-insensitively, resources exactly). Not
//! supported, and refused when the policy is loaded rather than silently
//! ignored: `Condition` and `Principal` (which identity policies cannot
//! carry anyway).

mod pattern;

pub use pattern::Pattern;

use serde_json::Value;

/// Why a policy document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy: {0}")]
pub struct PolicyError(pub String);

fn bad(msg: impl Into<String>) -> PolicyError {
    PolicyError(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Which actions or resources a statement names: the listed ones, or
/// every one but them (`NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    Any(Vec<Pattern>),
    AllBut(Vec<Pattern>),
}

impl Matcher {
    fn matches(&self, value: &str, action: bool) -> bool {
        let hit = |ps: &[Pattern]| {
            ps.iter().any(|p| {
                if action {
                    p.matches_ignore_case(value)
                } else {
                    p.matches_arn(value)
                }
            })
        };
        match self {
            Matcher::Any(ps) => hit(ps),
            Matcher::AllBut(ps) => !hit(ps),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    actions: Matcher,
    resources: Matcher,
}

impl Statement {
    fn applies(&self, action: &str, resource: &str) -> bool {
        self.actions.matches(action, true) && self.resources.matches(resource, false)
    }
}

/// One policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("{what} must list strings")))
            })
            .collect(),
        _ => Err(bad(format!(
            "{what} must be a string or a non-empty list of strings"
        ))),
    }
}

fn matcher(
    s: &serde_json::Map<String, Value>,
    key: &str,
    not_key: &str,
    check: impl Fn(&str) -> Result<(), PolicyError>,
) -> Result<Matcher, PolicyError> {
    let (list, all_but) = match (s.get(key), s.get(not_key)) {
        (Some(v), None) => (strings(v, key)?, false),
        (None, Some(v)) => (strings(v, not_key)?, true),
        (Some(_), Some(_)) => return Err(bad(format!("a statement has both {key} and {not_key}"))),
        (None, None) => return Err(bad(format!("a statement needs {key} or {not_key}"))),
    };
    for p in &list {
        check(p)?;
    }
    let patterns = list.iter().map(|p| Pattern::new(p)).collect();
    Ok(if all_but {
        Matcher::AllBut(patterns)
    } else {
        Matcher::Any(patterns)
    })
}

fn check_action(a: &str) -> Result<(), PolicyError> {
    if a == "*" {
        return Ok(());
    }
    match a.split_once(':') {
        Some((svc, name)) if !svc.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(bad(format!(
            "action '{a}' must be '*' or 'service:Action' (wildcards allowed)"
        ))),
    }
}

fn check_resource(r: &str) -> Result<(), PolicyError> {
    if r == "*" || r.starts_with("arn:") {
        Ok(())
    } else {
        Err(bad(format!(
            "resource '{r}' must be '*' or an ARN (wildcards allowed)"
        )))
    }
}

impl Policy {
    /// Parses a policy document (JSON).
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        Policy::from_value(&doc)
    }

    pub fn from_value(doc: &Value) -> Result<Policy, PolicyError> {
        let obj = doc
            .as_object()
            .ok_or_else(|| bad("a policy must be a JSON object"))?;
        for k in obj.keys() {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return Err(bad(format!("unknown policy element '{k}'")));
            }
        }
        match obj.get("Version").and_then(Value::as_str) {
            None | Some("2012-10-17" | "2008-10-17") => {}
            Some(v) => return Err(bad(format!("unknown policy Version '{v}'"))),
        }
        let raw = match obj.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => return Err(bad("a policy needs a Statement (an object or a list)")),
        };
        let statements = raw
            .iter()
            .map(|s| {
                let s = s.as_object().ok_or_else(|| bad("a statement must be an object"))?;
                for k in s.keys() {
                    match k.as_str() {
                        "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" => {}
                        "Condition" => {
                            return Err(bad(
                                "berth does not evaluate Condition blocks; write the statement without one",
                            ))
                        }
                        "Principal" | "NotPrincipal" => {
                            return Err(bad("an identity policy cannot name a Principal"))
                        }
                        other => return Err(bad(format!("unknown statement element '{other}'"))),
                    }
                }
                let effect = match s.get("Effect").and_then(Value::as_str) {
                    Some("Allow") => Effect::Allow,
                    Some("Deny") => Effect::Deny,
                    _ => return Err(bad("Effect must be \"Allow\" or \"Deny\"")),
                };
                Ok(Statement {
                    sid: s.get("Sid").and_then(Value::as_str).map(str::to_string),
                    effect,
                    actions: matcher(s, "Action", "NotAction", check_action)?,
                    resources: matcher(s, "Resource", "NotResource", check_resource)?,
                })
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Ok(Policy { statements })
    }
}

/// The outcome of evaluating a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No statement allows the action on this resource.
    NotAllowed {
        resource: String,
    },
    /// A statement denies the action on this resource.
    Denied {
        resource: String,
    },
}

/// Evaluates `action` on every one of `resources` against all of a
/// principal's `policies`: allowed only if each resource is allowed and
/// none is denied.
pub fn evaluate(policies: &[Policy], action: &str, resources: &[String]) -> Decision {
    let statements = || policies.iter().flat_map(|p| &p.statements);
    let mut first_unallowed = None;
    for r in resources {
        if statements().any(|s| s.effect == Effect::Deny && s.applies(action, r)) {
            return Decision::Denied {
                resource: r.clone(),
            };
        }
        let allowed = statements().any(|s| s.effect == Effect::Allow && s.applies(action, r));
        if !allowed && first_unallowed.is_none() {
            first_unallowed = Some(r.clone());
        }
    }
    match first_unallowed {
        Some(resource) => Decision::NotAllowed { resource },
        None => Decision::Allowed,
    }
}

/// AWS's AccessDenied message for a refused decision.
pub fn denial_message(principal: &str, action: &str, d: &Decision) -> Option<String> {
    match d {
        Decision::Allowed => None,
        Decision::NotAllowed { resource } => Some(format!(
            "User: {principal} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"
        )),
        Decision::Denied { resource } => Some(format!(
            "User: {principal} is not authorized to perform: {action} on resource: {resource} with an explicit deny in an identity-based policy"
        )),
    }
}

#[cfg(test)]
mod tests;
