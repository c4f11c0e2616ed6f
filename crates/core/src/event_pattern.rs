//! EventBridge event patterns: checking one (`PutRule`) and matching an
//! event against it (every delivery). Pure functions over JSON values.
//!
//! The rules, as EventBridge documents them:
//! * a pattern is a JSON object; each key must match (AND);
//! * a nested object matches the event's nested object, key by key;
//! * a leaf is a non-empty array of alternatives (OR); the event's value
//!   matches when it equals one of them, or, when the event's value is an
//!   array, when any of its elements does;
//! * an alternative is a scalar (exact: strings, numbers compared as
//!   numbers, booleans, `null`) or a content filter: `prefix`, `suffix`,
//!   `equals-ignore-case`, `anything-but` (a value, a list, or a `prefix` /
//!   `suffix`), `numeric` (up to two comparisons), `exists`, `wildcard`;
//! * `"$or": [pattern, …]` at any level matches when one of them does.
//!
//! A field the event lacks matches nothing but `{"exists": false}`.

use serde_json::{Map, Value};

/// Why a pattern is refused (EventBridge's `InvalidEventPatternException`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Event pattern is not valid. Reason: {}", self.0)
    }
}

fn bad<T>(why: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError(why.into()))
}

/// Parses and checks a pattern's text.
pub fn parse(text: &str) -> Result<Value, PatternError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| PatternError(format!("the pattern is not JSON ({e})")))?;
    match &v {
        Value::Object(m) if m.is_empty() => bad("Empty event pattern"),
        Value::Object(m) => check_object(m).map(|()| v.clone()),
        _ => bad("the pattern must be a JSON object"),
    }
}

fn check_object(m: &Map<String, Value>) -> Result<(), PatternError> {
    for (k, v) in m {
        if k == "$or" {
            let Value::Array(alts) = v else {
                return bad("\"$or\" must be an array of patterns");
            };
            if alts.len() < 2 {
                return bad("\"$or\" needs at least two patterns");
            }
            for a in alts {
                match a {
                    Value::Object(o) if !o.is_empty() => check_object(o)?,
                    _ => return bad("each \"$or\" alternative must be a non-empty object"),
                }
            }
            continue;
        }
        match v {
            Value::Object(o) if o.is_empty() => return bad(format!("\"{k}\" is an empty object")),
            Value::Object(o) => check_object(o)?,
            Value::Array(alts) if alts.is_empty() => {
                return bad(format!("\"{k}\" must list at least one value"))
            }
            Value::Array(alts) => {
                for a in alts {
                    check_alternative(k, a)?;
                }
            }
            _ => {
                return bad(format!(
                    "\"{k}\" must be an object or an array of values, not a single value"
                ))
            }
        }
    }
    Ok(())
}

fn check_alternative(key: &str, a: &Value) -> Result<(), PatternError> {
    let Value::Object(f) = a else {
        return match a {
            Value::Array(_) => bad(format!("\"{key}\": arrays cannot be nested")),
            _ => Ok(()),
        };
    };
    if f.len() != 1 {
        return bad(format!(
            "\"{key}\": a content filter has exactly one operator"
        ));
    }
    let (op, arg) = f.iter().next().expect("one entry");
    let ok = match op.as_str() {
        "prefix" | "suffix" => {
            arg.is_string() || arg.get("equals-ignore-case").is_some_and(Value::is_string)
        }
        "equals-ignore-case" | "wildcard" => arg.is_string(),
        "exists" => arg.is_boolean(),
        "anything-but" => match arg {
            Value::Array(l) => !l.is_empty() && l.iter().all(|x| x.is_string() || x.is_number()),
            Value::Object(o) => {
                o.len() == 1
                    && o.iter().all(|(k, v)| {
                        matches!(k.as_str(), "prefix" | "suffix" | "equals-ignore-case")
                            && (v.is_string() || v.is_array())
                    })
            }
            v => v.is_string() || v.is_number(),
        },
        "numeric" => numeric_ranges(arg).is_some(),
        "cidr" => arg.is_string(),
        _ => return bad(format!("\"{key}\": unknown operator \"{op}\"")),
    };
    if ok {
        Ok(())
    } else {
        bad(format!("\"{key}\": invalid argument for \"{op}\""))
    }
}

/// `[">", 0, "<=", 5]` → the comparisons, or `None` if malformed.
fn numeric_ranges(arg: &Value) -> Option<Vec<(&str, f64)>> {
    let list = arg.as_array()?;
    if list.is_empty() || list.len() % 2 != 0 || list.len() > 4 {
        return None;
    }
    list.chunks(2)
        .map(|c| {
            let op = c[0].as_str()?;
            matches!(op, "<" | "<=" | "=" | ">" | ">=").then_some(())?;
            Some((op, c[1].as_f64()?))
        })
        .collect()
}

/// Whether `event` matches `pattern` (a pattern [`parse`] accepted).
pub fn matches(pattern: &Value, event: &Value) -> bool {
    match pattern {
        Value::Object(m) => object_matches(m, Some(event)),
        _ => false,
    }
}

fn object_matches(pattern: &Map<String, Value>, event: Option<&Value>) -> bool {
    pattern.iter().all(|(k, p)| {
        if k == "$or" {
            return p.as_array().is_some_and(|alts| {
                alts.iter()
                    .any(|a| a.as_object().is_some_and(|o| object_matches(o, event)))
            });
        }
        let field = event.and_then(|e| e.get(k));
        match p {
            // Into an array of objects: any element may match.
            Value::Object(inner) => match field {
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|i| i.is_object() && object_matches(inner, Some(i))),
                f => object_matches(inner, f.filter(|f| f.is_object())),
            },
            Value::Array(alts) => leaf_matches(alts, field),
            _ => false,
        }
    })
}

fn leaf_matches(alts: &[Value], field: Option<&Value>) -> bool {
    let values: Vec<&Value> = match field {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    };
    // `exists` is about the field, not about one of its values.
    let present = field.is_some_and(|f| !f.is_object());
    alts.iter()
        .any(|a| match a.get("exists").and_then(Value::as_bool) {
            Some(want) if a.as_object().is_some_and(|o| o.len() == 1) => want == present,
            _ => values.iter().any(|v| alternative_matches(a, v)),
        })
}

fn alternative_matches(alt: &Value, v: &Value) -> bool {
    let Value::Object(filter) = alt else {
        return scalar_eq(alt, v);
    };
    let Some((op, arg)) = filter.iter().next() else {
        return false;
    };
    let s = v.as_str();
    match op.as_str() {
        "prefix" => text_filter(arg, s, |s, p| s.starts_with(p)),
        "suffix" => text_filter(arg, s, |s, p| s.ends_with(p)),
        "equals-ignore-case" => s
            .zip(arg.as_str())
            .is_some_and(|(s, p)| s.to_lowercase() == p.to_lowercase()),
        "wildcard" => s.zip(arg.as_str()).is_some_and(|(s, p)| wildcard(p, s)),
        "anything-but" => anything_but(arg, v),
        "numeric" => v.as_f64().is_some_and(|n| {
            numeric_ranges(arg).is_some_and(|rs| rs.iter().all(|(op, x)| compare(n, op, *x)))
        }),
        "cidr" => false,
        _ => false,
    }
}

/// `prefix`/`suffix` take a string or `{"equals-ignore-case": s}`.
fn text_filter(arg: &Value, s: Option<&str>, test: impl Fn(&str, &str) -> bool) -> bool {
    let Some(s) = s else { return false };
    match arg {
        Value::String(p) => test(s, p),
        Value::Object(o) => o
            .get("equals-ignore-case")
            .and_then(Value::as_str)
            .is_some_and(|p| test(&s.to_lowercase(), &p.to_lowercase())),
        _ => false,
    }
}

fn anything_but(arg: &Value, v: &Value) -> bool {
    match arg {
        Value::Array(list) => !list.iter().any(|x| scalar_eq(x, v)),
        Value::Object(o) => {
            let Some(s) = v.as_str() else { return false };
            o.iter().all(|(k, p)| {
                let list: Vec<&str> = match p {
                    Value::Array(l) => l.iter().filter_map(Value::as_str).collect(),
                    p => p.as_str().into_iter().collect(),
                };
                !list.iter().any(|p| match k.as_str() {
                    "prefix" => s.starts_with(p),
                    "suffix" => s.ends_with(p),
                    _ => s.to_lowercase() == p.to_lowercase(),
                })
            })
        }
        x => !scalar_eq(x, v),
    }
}

fn compare(n: f64, op: &str, x: f64) -> bool {
    match op {
        "<" => n < x,
        "<=" => n <= x,
        "=" => n == x,
        ">" => n > x,
        ">=" => n >= x,
        _ => false,
    }
}

/// Numbers compare by value (5 equals 5.0); everything else exactly.
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (a, b) => a == b,
    }
}

/// `*` matches any run of characters; nothing else is special.
fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(pattern: Value, event: Value) -> bool {
        let p = parse(&pattern.to_string()).expect("valid pattern");
        matches(&p, &event)
    }

    fn task_event(status: &str) -> Value {
        json!({
            "source": "aws.ecs",
            "detail-type": "ECS Task State Change",
            "resources": ["arn:aws:ecs:us-east-1:111122223333:task/c/abc"],
            "detail": {"lastStatus": status, "desiredStatus": "STOPPED",
                       "containers": [{"exitCode": 1, "name": "app"}],
                       "cpu": "256", "version": 3, "group": "family:web"}
        })
    }

    #[test]
    fn exact_values_nested_objects_and_arrays() {
        let p = json!({"source": ["aws.ecs"], "detail": {"lastStatus": ["STOPPED"]}});
        assert!(m(p.clone(), task_event("STOPPED")));
        assert!(!m(p, task_event("RUNNING")));
        assert!(m(
            json!({"detail": {"lastStatus": ["RUNNING", "STOPPED"]}}),
            task_event("RUNNING")
        ));
        // An array in the event matches when any element does.
        assert!(m(
            json!({"resources": ["arn:aws:ecs:us-east-1:111122223333:task/c/abc"]}),
            task_event("RUNNING")
        ));
        // Arrays of objects: the pattern reaches into each element.
        assert!(m(
            json!({"detail": {"containers": {"exitCode": [1]}}}),
            task_event("STOPPED")
        ));
        assert!(!m(
            json!({"detail": {"containers": {"exitCode": [0]}}}),
            task_event("STOPPED")
        ));
        // Numbers by value; strings never equal numbers.
        assert!(m(json!({"detail": {"version": [3.0]}}), task_event("X")));
        assert!(!m(json!({"detail": {"cpu": [256]}}), task_event("X")));
        // A missing field matches nothing.
        assert!(!m(json!({"detail": {"nope": ["x"]}}), task_event("X")));
        assert!(!m(
            json!({"detail": {"lastStatus": {"x": ["y"]}}}),
            task_event("X")
        ));
    }

    #[test]
    fn content_filters() {
        let e = task_event("STOPPED");
        assert!(m(
            json!({"detail": {"group": [{"prefix": "family:"}]}}),
            e.clone()
        ));
        assert!(!m(
            json!({"detail": {"group": [{"prefix": "service:"}]}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"group": [{"suffix": ":web"}]}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"lastStatus": [{"equals-ignore-case": "stopped"}]}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"lastStatus": [{"anything-but": "RUNNING"}]}}),
            e.clone()
        ));
        assert!(!m(
            json!({"detail": {"lastStatus": [{"anything-but": ["RUNNING", "STOPPED"]}]}}),
            e.clone()
        ));
        assert!(!m(
            json!({"detail": {"group": [{"anything-but": {"prefix": "family"}}]}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"version": [{"numeric": [">", 0, "<=", 3]}]}}),
            e.clone()
        ));
        assert!(!m(
            json!({"detail": {"version": [{"numeric": ["<", 3]}]}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"lastStatus": [{"exists": true}]}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"stoppedReason": [{"exists": false}]}}),
            e.clone()
        ));
        assert!(!m(
            json!({"detail": {"lastStatus": [{"exists": false}]}}),
            e.clone()
        ));
        assert!(m(
            json!({"detail": {"group": [{"wildcard": "fam*:*b"}]}}),
            e.clone()
        ));
        assert!(!m(
            json!({"detail": {"group": [{"wildcard": "*x*"}]}}),
            e.clone()
        ));
        assert!(m(
            json!({"$or": [{"detail": {"lastStatus": ["RUNNING"]}}, {"source": ["aws.ecs"]}]}),
            e
        ));
    }

    #[test]
    fn refuses_malformed_patterns() {
        for bad in [
            "not json",
            "[]",
            "{}",
            r#"{"source": "aws.ecs"}"#,
            r#"{"source": []}"#,
            r#"{"source": [["a"]]}"#,
            r#"{"detail": {}}"#,
            r#"{"source": [{"prefix": 1}]}"#,
            r#"{"source": [{"numeric": [">"]}]}"#,
            r#"{"source": [{"bogus": "x"}]}"#,
            r#"{"source": [{"prefix": "a", "suffix": "b"}]}"#,
            r#"{"$or": [{"source": ["a"]}]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
