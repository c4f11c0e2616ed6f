//! Form-encoded requests into typed input, by the rules botocore's
//! `QuerySerializer` and `EC2Serializer` encode them with: structure
//! members `A.B`; lists `Name.member.N` (query) or `Name.N` (EC2 and
//! flattened lists); maps `Name.entry.N.key` / `.value`; booleans
//! `true`/`false`; timestamps ISO 8601. The keys are read into a tree,
//! walked along the input shape into the JSON the generated types
//! deserialize from, so one set of types serves every protocol.

use super::schema::{Member, Protocol, Schema, Shape};
use crate::ApiError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A request's parameters, in order (the body's, then the query string's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

/// Keys that carry the request itself or its signature, not input members.
fn is_envelope(key: &str) -> bool {
    key == "Action" || key == "Version" || key.starts_with("X-Amz-")
}

impl Params {
    /// Parses an `application/x-www-form-urlencoded` body or query string.
    /// Not UTF-8 is refused (`MalformedQueryString`), as AWS refuses it.
    pub fn parse(form: &[u8]) -> Result<Params, ApiError> {
        std::str::from_utf8(form).map_err(|_| {
            ApiError::client(
                "MalformedQueryString",
                "The request body is not valid UTF-8 form data.",
            )
        })?;
        Ok(Params(
            form_urlencoded::parse(form)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }

    /// Adds `other`'s parameters after these (a presigned GET carries its
    /// `Action` in the query string).
    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn action(&self) -> Option<&str> {
        self.get("Action").filter(|a| !a.is_empty())
    }
}

/// The keys below one prefix.
#[derive(Debug, Default)]
struct Node {
    value: Option<String>,
    children: BTreeMap<String, Node>,
}

/// No model nests deeper than this (EC2's deepest input keys have about
/// eight parts); a longer key is refused before it becomes a tree whose
/// recursive drop could exhaust the stack.
const MAX_KEY_PARTS: usize = 32;

impl Node {
    fn from_params(params: &Params, invalid: &Invalid) -> Result<Node, ApiError> {
        let mut root = Node::default();
        for (k, v) in params.0.iter().filter(|(k, _)| !is_envelope(k)) {
            if k.split('.').nth(MAX_KEY_PARTS).is_some() {
                let shown: String = k.chars().take(64).collect();
                return Err(invalid.unknown(&format!("{shown}…")));
            }
            let mut node = &mut root;
            for part in k.split('.') {
                node = node.children.entry(part.to_string()).or_default();
            }
            node.value = Some(v.clone());
        }
        Ok(root)
    }

    /// The children keyed `1`, `2`, …, in numeric order.
    fn items<'a>(&'a self, path: &str, invalid: &Invalid) -> Result<Vec<&'a Node>, ApiError> {
        let mut items = Vec::with_capacity(self.children.len());
        for (k, n) in &self.children {
            match k.parse::<u32>() {
                Ok(i) if i > 0 && !k.starts_with('0') => items.push((i, n)),
                _ => return Err(invalid.unknown(&format!("{path}.{k}"))),
            }
        }
        items.sort_by_key(|(i, _)| *i);
        Ok(items.into_iter().map(|(_, n)| n).collect())
    }
}

/// How the service names a bad request.
struct Invalid {
    protocol: Protocol,
    /// The service's code for a malformed value (`InvalidParameterValue`).
    code: &'static str,
}

impl Invalid {
    fn value(&self, path: &str, value: &str, expected: &str) -> ApiError {
        ApiError::client(
            self.code,
            format!("Invalid value '{value}' for {path}: expected {expected}."),
        )
    }

    fn unknown(&self, path: &str) -> ApiError {
        let code = match self.protocol {
            Protocol::Ec2 => "UnknownParameter",
            Protocol::Query => "InvalidParameter",
        };
        ApiError::client(code, format!("The parameter {path} is not recognized"))
    }

    fn missing(&self, path: &str) -> ApiError {
        ApiError::client(
            "MissingParameter",
            format!("The request must contain the parameter {path}"),
        )
    }
}

/// Decodes `params` as the input shape `shape` of `schema`'s service into
/// `T`. A missing required member is `MissingParameter`, an unknown key
/// `UnknownParameter` (EC2) or `InvalidParameter`, a malformed value the
/// service's `invalid_code`.
pub fn decode_input<T: DeserializeOwned>(
    schema: &Schema,
    shape: &str,
    params: &Params,
    invalid_code: &'static str,
) -> Result<T, ApiError> {
    let invalid = Invalid {
        protocol: schema.protocol,
        code: invalid_code,
    };
    let root = Node::from_params(params, &invalid)?;
    let value = structure(schema, shape, &root, "", &invalid)?;
    serde_json::from_value(value)
        .map_err(|e| ApiError::client(invalid_code, format!("The request could not be read: {e}")))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn structure(
    schema: &Schema,
    shape: &str,
    node: &Node,
    path: &str,
    invalid: &Invalid,
) -> Result<Value, ApiError> {
    let Shape::Structure(members) = schema.shape(shape) else {
        unreachable!("{shape} is not a structure")
    };
    if let Some(v) = node.value.as_deref().filter(|v| !v.is_empty()) {
        return Err(invalid.value(path, v, "a structure"));
    }
    let keys: Vec<(String, &Member)> = members.iter().map(|m| (m.key(schema), m)).collect();
    for k in node.children.keys() {
        if !keys.iter().any(|(key, _)| key == k) {
            return Err(invalid.unknown(&join(path, k)));
        }
    }
    let mut out = Map::new();
    for (key, m) in &keys {
        let p = join(path, key);
        match node.children.get(key) {
            Some(child) => {
                out.insert(m.name.to_string(), member(schema, m, child, &p, invalid)?);
            }
            None if m.required => return Err(invalid.missing(&p)),
            None => {}
        }
    }
    Ok(Value::Object(out))
}

fn member(
    schema: &Schema,
    m: &Member,
    node: &Node,
    path: &str,
    invalid: &Invalid,
) -> Result<Value, ApiError> {
    let flat = m.flattened(schema) || schema.protocol == Protocol::Ec2;
    value(schema, m.shape, flat, node, path, invalid)
}

/// Whether a list or map that is not a structure member (a list's item,
/// a map's value) is flattened: always on EC2, else as its shape says.
fn nested_flat(schema: &Schema, shape: &str) -> bool {
    schema.protocol == Protocol::Ec2
        || matches!(
            schema.shape(shape),
            Shape::List {
                flattened: true,
                ..
            } | Shape::Map {
                flattened: true,
                ..
            }
        )
}

fn value(
    schema: &Schema,
    shape: &str,
    flat: bool,
    node: &Node,
    path: &str,
    invalid: &Invalid,
) -> Result<Value, ApiError> {
    let s = schema.shape(shape);
    let scalar = || -> Result<&str, ApiError> {
        match (&node.value, node.children.keys().next()) {
            (Some(v), None) => Ok(v),
            (_, Some(k)) => Err(invalid.unknown(&format!("{path}.{k}"))),
            (None, None) => Err(invalid.missing(path)),
        }
    };
    Ok(match s {
        Shape::Structure(_) => structure(schema, shape, node, path, invalid)?,
        Shape::List {
            member,
            member_name,
            ..
        } => {
            // `Name=` with no items is how the query protocol sends [].
            if node.children.is_empty() && node.value.as_deref() == Some("") {
                return Ok(Value::Array(Vec::new()));
            }
            let (holder, base) = if flat {
                (Some(node), path.to_string())
            } else {
                let name = member_name.unwrap_or("member");
                if let Some(k) = node.children.keys().find(|k| *k != name) {
                    return Err(invalid.unknown(&join(path, k)));
                }
                (node.children.get(name), join(path, name))
            };
            let mut items = Vec::new();
            if let Some(h) = holder {
                for (i, item) in h.items(&base, invalid)?.into_iter().enumerate() {
                    let p = format!("{base}.{}", i + 1);
                    items.push(value(
                        schema,
                        member,
                        nested_flat(schema, member),
                        item,
                        &p,
                        invalid,
                    )?);
                }
            }
            Value::Array(items)
        }
        Shape::Map {
            key,
            value: val,
            key_name,
            value_name,
            ..
        } => {
            let (holder, base) = if flat {
                (Some(node), path.to_string())
            } else {
                if let Some(k) = node.children.keys().find(|k| *k != "entry") {
                    return Err(invalid.unknown(&join(path, k)));
                }
                (node.children.get("entry"), join(path, "entry"))
            };
            let (kn, vn) = (key_name.unwrap_or("key"), value_name.unwrap_or("value"));
            let mut out = Map::new();
            if let Some(h) = holder {
                for (i, entry) in h.items(&base, invalid)?.into_iter().enumerate() {
                    let p = format!("{base}.{}", i + 1);
                    let k = entry
                        .children
                        .get(kn)
                        .ok_or_else(|| invalid.missing(&format!("{p}.{kn}")))?;
                    let k = match value(
                        schema,
                        key,
                        nested_flat(schema, key),
                        k,
                        &format!("{p}.{kn}"),
                        invalid,
                    )? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    let v = entry
                        .children
                        .get(vn)
                        .ok_or_else(|| invalid.missing(&format!("{p}.{vn}")))?;
                    out.insert(
                        k,
                        value(
                            schema,
                            val,
                            nested_flat(schema, val),
                            v,
                            &format!("{p}.{vn}"),
                            invalid,
                        )?,
                    );
                }
            }
            Value::Object(out)
        }
        Shape::String | Shape::Blob => Value::String(scalar()?.to_string()),
        Shape::Boolean => match scalar()? {
            v if v.eq_ignore_ascii_case("true") => Value::Bool(true),
            v if v.eq_ignore_ascii_case("false") => Value::Bool(false),
            v => return Err(invalid.value(path, v, "true or false")),
        },
        Shape::Integer => {
            let v = scalar()?;
            let n: i32 = v
                .trim()
                .parse()
                .map_err(|_| invalid.value(path, v, "an integer"))?;
            Value::from(n)
        }
        Shape::Long => {
            let v = scalar()?;
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| invalid.value(path, v, "an integer"))?;
            Value::from(n)
        }
        Shape::Double => {
            let v = scalar()?;
            let n = v
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .ok_or_else(|| invalid.value(path, v, "a number"))?;
            Value::Number(n)
        }
        Shape::Timestamp => {
            let v = scalar()?;
            let t = super::xml::parse_timestamp(v)
                .ok_or_else(|| invalid.value(path, v, "an ISO 8601 timestamp"))?;
            serde_json::to_value(t).expect("timestamps serialize")
        }
    })
}

#[cfg(test)]
mod tests;
