//! Parameter Store's rules: names and hierarchies, name references
//! (ARNs, `:version` selectors), page sizes and ParameterFilters.

use super::parameters::Param;
use berth_core::arn::Arn;
use berth_wire::ssm::{ParameterStringFilter, ParameterType};
use berth_wire::{ApiError, RequestContext};

pub(super) const MAX_LEVELS: usize = 15;

pub(super) fn validation(msg: impl Into<String>) -> ApiError {
    ApiError::client("ValidationException", msg)
}

pub(super) fn not_found(name: &str) -> ApiError {
    ApiError::client("ParameterNotFound", format!("Parameter {name} not found."))
}

/// SSM's naming rules; the error says what is wrong.
pub(super) fn check_name(name: &str) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_.-/".contains(c);
    let bare = name.strip_prefix('/').unwrap_or(name).to_ascii_lowercase();
    let why = if name.is_empty() || name.len() > 1011 {
        "must be 1 to 1011 characters"
    } else if !name.chars().all(ok_char) {
        "may use only letters, digits, '.', '-', '_' and '/'"
    } else if name.contains('/') && !name.starts_with('/') {
        "must begin with '/' when it is hierarchical"
    } else if name.len() > 1 && (name.ends_with('/') || name.contains("//")) {
        "may not have empty path segments"
    } else if bare.starts_with("aws") || bare.starts_with("ssm") {
        "can't be prefixed with \"aws\" or \"ssm\" (case-insensitive)"
    } else {
        return Ok(());
    };
    Err(validation(format!("Parameter name {name}: {why}.")))
}

pub(super) fn levels(name: &str) -> usize {
    name.trim_start_matches('/').split('/').count()
}

pub(super) fn arn(ctx: &RequestContext, name: &str) -> String {
    format!(
        "arn:aws:ssm:{}:{}:parameter/{}",
        ctx.region,
        ctx.account_id,
        name.trim_start_matches('/')
    )
}

/// A name as GetParameter takes it: a name or ARN, maybe with `:version`.
pub(super) fn parse_ref(
    ctx: &RequestContext,
    given: &str,
) -> Result<(String, Option<String>), ApiError> {
    let mut name = given.to_string();
    if given.starts_with("arn:") {
        let a = Arn::parse(given)
            .filter(|a| a.service == "ssm" && a.account == ctx.account_id && a.region == ctx.region)
            .ok_or_else(|| not_found(given))?;
        let rest = a
            .resource
            .strip_prefix("parameter/")
            .ok_or_else(|| not_found(given))?;
        // Hierarchical names lose their leading '/' in ARNs.
        name = if rest.contains('/') {
            format!("/{rest}")
        } else {
            rest.to_string()
        };
    }
    let (name, selector) = match name.rsplit_once(':') {
        Some((n, s)) => (n.to_string(), Some(s.to_string())),
        None => (name, None),
    };
    check_name(&name)?;
    Ok((name, selector))
}

pub(super) fn is_secure(t: &ParameterType) -> bool {
    *t == ParameterType::SecureString
}

pub(super) fn page_limit(given: Option<i32>, max: i32) -> Result<usize, ApiError> {
    match given {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {max}"
        ))),
    }
}

/// ParameterFilters: Name (Equals, BeginsWith, Contains), Path (OneLevel,
/// Recursive; DescribeParameters only), Type, KeyId, Tier (Equals) and
/// `tag:<key>` (Equals).
pub(super) struct Filters {
    list: Vec<(String, String, Vec<String>)>,
    /// A stable rendering, binding pagination tokens to the filters.
    pub(super) key: String,
}

impl Filters {
    pub(super) fn new(
        given: Vec<ParameterStringFilter>,
        allow_path: bool,
    ) -> Result<Self, ApiError> {
        let mut list = Vec::new();
        for f in given {
            let options: &[&str] = match f.key.as_str() {
                "Name" if allow_path => &["Equals", "BeginsWith", "Contains"],
                "Path" if allow_path => &["OneLevel", "Recursive"],
                "Type" | "KeyId" | "Tier" => &["Equals"],
                k if k.starts_with("tag:") && k.len() > 4 => &["Equals"],
                k => {
                    return Err(ApiError::client(
                        "InvalidFilterKey",
                        format!("The filter key {k} is not valid here."),
                    ))
                }
            };
            let option = f.option.unwrap_or_else(|| options[0].to_string());
            if !options.contains(&option.as_str()) {
                return Err(ApiError::client(
                    "InvalidFilterOption",
                    format!("The filter option {option} is not valid for key {}.", f.key),
                ));
            }
            let values = f.values.unwrap_or_default();
            if values.is_empty() && !f.key.starts_with("tag:") {
                return Err(ApiError::client(
                    "InvalidFilterValue",
                    format!("The filter {} needs at least one value.", f.key),
                ));
            }
            list.push((f.key, option, values));
        }
        let key = format!("{list:?}");
        Ok(Filters { list, key })
    }

    pub(super) fn matches(&self, p: &Param) -> bool {
        self.list.iter().all(|(key, option, values)| {
            let tag = key.strip_prefix("tag:");
            if let Some(k) = tag {
                return p
                    .tags
                    .iter()
                    .any(|t| t.key == k && (values.is_empty() || values.contains(&t.value)));
            }
            values
                .iter()
                .any(|v| match (key.as_str(), option.as_str()) {
                    ("Name", "BeginsWith") => p.name.starts_with(v.as_str()),
                    ("Name", "Contains") => p.name.contains(v.as_str()),
                    ("Name", _) => p.name == *v,
                    ("Path", opt) => {
                        let prefix = format!("{}/", v.trim_end_matches('/'));
                        p.name
                            .strip_prefix(&prefix)
                            .is_some_and(|rest| opt == "Recursive" || !rest.contains('/'))
                    }
                    ("Type", _) => p.r#type.as_str() == v,
                    ("KeyId", _) => p.key_id.as_deref() == Some(v.as_str()),
                    ("Tier", _) => p.tier.as_str() == v,
                    _ => false,
                })
        })
    }
}
