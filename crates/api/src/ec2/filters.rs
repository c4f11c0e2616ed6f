//! EC2's `Filter.N.Name` / `Filter.N.Value.M`: a resource matches when, for
//! every filter, one of its values for that name matches one of the
//! filter's values (`*` and `?` are wildcards). A name the resource kind
//! does not know is refused, as EC2 refuses it.

use berth_wire::ec2::{Filter, Tag};
use berth_wire::ApiError;

/// A resource's values for a filter name; `None`: no such filter.
pub type Lookup<'a> = dyn Fn(&str) -> Option<Vec<String>> + 'a;

/// Refuses any filter `lookup` does not know, before anything is matched.
pub fn check(filters: &[Filter], known: &[&str]) -> Result<(), ApiError> {
    for f in filters {
        let name = f.name.as_deref().unwrap_or_default();
        if !known.contains(&name) && !name.starts_with("tag:") {
            return Err(ApiError::client(
                "InvalidParameterValue",
                format!("The filter '{name}' is invalid"),
            ));
        }
    }
    Ok(())
}

pub fn matches(filters: &[Filter], lookup: &Lookup) -> bool {
    filters.iter().all(|f| {
        let name = f.name.as_deref().unwrap_or_default();
        let have = lookup(name).unwrap_or_default();
        let want = f.values.as_deref().unwrap_or_default();
        want.iter().any(|w| have.iter().any(|h| glob(w, h)))
    })
}

/// The values of `tag:<key>` and `tag-key` filters.
pub fn tag_values(tags: Option<&Vec<Tag>>, name: &str) -> Option<Vec<String>> {
    let tags = tags.map(Vec::as_slice).unwrap_or_default();
    if name == "tag-key" {
        return Some(tags.iter().filter_map(|t| t.key.clone()).collect());
    }
    let key = name.strip_prefix("tag:")?;
    Some(
        tags.iter()
            .filter(|t| t.key.as_deref() == Some(key))
            .filter_map(|t| t.value.clone())
            .collect(),
    )
}

/// `*` any run, `?` one character; everything else literal.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

pub fn bool_value(b: Option<bool>) -> Vec<String> {
    vec![b.unwrap_or(false).to_string()]
}

pub fn one(v: Option<&String>) -> Vec<String> {
    v.cloned().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(name: &str, values: &[&str]) -> Filter {
        Filter {
            name: Some(name.into()),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn every_filter_must_match_one_value() {
        let lookup = |n: &str| match n {
            "vpc-id" => Some(vec!["vpc-123".to_string()]),
            "is-default" => Some(vec!["true".to_string()]),
            _ => None,
        };
        assert!(matches(&[filter("vpc-id", &["vpc-1*"])], &lookup));
        assert!(matches(
            &[
                filter("vpc-id", &["x", "vpc-123"]),
                filter("is-default", &["true"])
            ],
            &lookup
        ));
        assert!(!matches(
            &[
                filter("vpc-id", &["vpc-123"]),
                filter("is-default", &["false"])
            ],
            &lookup
        ));
        assert!(glob("a?c*", "abcdef") && !glob("a?c", "abcd"));
        assert!(check(&[filter("bogus", &["x"])], &["vpc-id"]).is_err());
        assert!(check(&[filter("tag:Name", &["x"])], &["vpc-id"]).is_ok());
    }
}
