//! XML answers, as botocore's `QueryParser` and `EC2QueryParser` read them:
//! members by `locationName` (else the member name); lists as
//! `<name><member>…</member></name>` (EC2: `<item>`), or the name repeated
//! when flattened; maps as `<entry><key>…</key><value>…</value></entry>`;
//! timestamps ISO 8601 with milliseconds; booleans `true`/`false`. Text is
//! escaped by quick-xml.

use super::schema::{Protocol, Schema, Shape};
use crate::{ApiError, Timestamp};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde::Serialize;
use serde_json::Value;

/// The content type of every XML answer.
pub const CONTENT_TYPE: &str = "text/xml";

struct Xml(Writer<Vec<u8>>);

impl Xml {
    fn new() -> Xml {
        let mut w = Writer::new(Vec::new());
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
            .expect("writing to a Vec");
        Xml(w)
    }

    fn open(&mut self, tag: &str, xmlns: Option<&str>) {
        let mut start = BytesStart::new(tag);
        if let Some(ns) = xmlns {
            start.push_attribute(("xmlns", ns));
        }
        self.0
            .write_event(Event::Start(start))
            .expect("writing to a Vec");
    }

    fn close(&mut self, tag: &str) {
        self.0
            .write_event(Event::End(BytesEnd::new(tag)))
            .expect("writing to a Vec");
    }

    fn text(&mut self, tag: &str, text: &str) {
        self.open(tag, None);
        self.0
            .write_event(Event::Text(BytesText::new(text)))
            .expect("writing to a Vec");
        self.close(tag);
    }

    fn finish(self) -> Vec<u8> {
        self.0.into_inner()
    }
}

/// The answer's namespace as AWS writes it (with the trailing slash EC2's
/// model metadata leaves off).
fn namespace(schema: &Schema) -> String {
    let ns = schema.namespace;
    if ns.ends_with('/') {
        ns.to_string()
    } else {
        format!("{ns}/")
    }
}

/// The answer to operation `op`: `output` (of output shape `shape`, with
/// the query protocol's `result_wrapper`) in `<{op}Response>`, with the
/// request id where the protocol puts it.
pub fn encode_output<T: Serialize>(
    schema: &Schema,
    op: &str,
    shape: Option<&str>,
    result_wrapper: Option<&str>,
    request_id: &str,
    output: &T,
) -> Result<Vec<u8>, ApiError> {
    let value = serde_json::to_value(output).map_err(|e| {
        ApiError::server("ServerException", format!("response encoding failed: {e}"))
    })?;
    let root = format!("{op}Response");
    let mut x = Xml::new();
    x.open(&root, Some(&namespace(schema)));
    match schema.protocol {
        Protocol::Ec2 => {
            x.text("requestId", request_id);
            if let Some(shape) = shape {
                members(&mut x, schema, shape, &value);
            }
        }
        Protocol::Query => {
            if let Some(shape) = shape {
                let wrapper = result_wrapper
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{op}Result"));
                x.open(&wrapper, None);
                members(&mut x, schema, shape, &value);
                x.close(&wrapper);
            }
            x.open("ResponseMetadata", None);
            x.text("RequestId", request_id);
            x.close("ResponseMetadata");
        }
    }
    x.close(&root);
    Ok(x.finish())
}

/// The members of a structure value, in model order; absent ones omitted.
fn members(x: &mut Xml, schema: &Schema, shape: &str, value: &Value) {
    let Shape::Structure(ms) = schema.shape(shape) else {
        unreachable!("{shape} is not a structure")
    };
    for m in ms.iter() {
        match value.get(m.name) {
            None | Some(Value::Null) => {}
            Some(v) => element(
                x,
                schema,
                m.element(schema),
                m.shape,
                m.flattened(schema),
                v,
            ),
        }
    }
}

fn element(x: &mut Xml, schema: &Schema, tag: &str, shape: &str, flat: bool, v: &Value) {
    let s = schema.shape(shape);
    let item_flat = |shape: &str| {
        matches!(
            schema.shape(shape),
            Shape::List {
                flattened: true,
                ..
            } | Shape::Map {
                flattened: true,
                ..
            }
        )
    };
    match s {
        Shape::Structure(_) => {
            x.open(tag, None);
            members(x, schema, shape, v);
            x.close(tag);
        }
        Shape::List {
            member,
            member_name,
            ..
        } => {
            let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
            if flat {
                for item in items {
                    element(x, schema, tag, member, item_flat(member), item);
                }
            } else {
                let name = member_name.unwrap_or("member");
                x.open(tag, None);
                for item in items {
                    element(x, schema, name, member, item_flat(member), item);
                }
                x.close(tag);
            }
        }
        Shape::Map {
            key,
            value,
            key_name,
            value_name,
            ..
        } => {
            let (kn, vn) = (key_name.unwrap_or("key"), value_name.unwrap_or("value"));
            let entries = v.as_object().into_iter().flatten();
            let entry_tag = if flat { tag } else { "entry" };
            if !flat {
                x.open(tag, None);
            }
            for (k, val) in entries {
                x.open(entry_tag, None);
                element(x, schema, kn, key, false, &Value::String(k.clone()));
                element(x, schema, vn, value, item_flat(value), val);
                x.close(entry_tag);
            }
            if !flat {
                x.close(tag);
            }
        }
        Shape::Timestamp => {
            let t: Option<Timestamp> = serde_json::from_value(v.clone()).ok();
            x.text(tag, &t.map(format_timestamp).unwrap_or_default());
        }
        Shape::String | Shape::Blob => x.text(tag, v.as_str().unwrap_or_default()),
        Shape::Boolean | Shape::Integer | Shape::Long | Shape::Double => {
            x.text(tag, &v.to_string())
        }
    }
}

/// `2026-12-02T12:00:00.000Z`, as AWS's XML services write timestamps.
pub fn format_timestamp(t: Timestamp) -> String {
    let ms = t.as_millis();
    let secs = ms.div_euclid(1000);
    let dt =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        ms.rem_euclid(1000)
    )
}

/// An ISO 8601 / RFC 3339 timestamp, or epoch seconds (botocore accepts both).
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return secs
            .is_finite()
            .then(|| Timestamp::from_millis((secs * 1000.0).round() as i64));
    }
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(Timestamp::from_millis(
        (dt.unix_timestamp_nanos() / 1_000_000) as i64,
    ))
}

/// EC2's error answer: `<Response><Errors><Error><Code>…` with `RequestID`.
pub fn ec2_error(code: &str, message: &str, request_id: &str) -> Vec<u8> {
    let mut x = Xml::new();
    x.open("Response", None);
    x.open("Errors", None);
    x.open("Error", None);
    x.text("Code", code);
    x.text("Message", message);
    x.close("Error");
    x.close("Errors");
    x.text("RequestID", request_id);
    x.close("Response");
    x.finish()
}

/// The query protocol's error answer: `<ErrorResponse><Error><Type>…`,
/// `Sender` for a client's fault and `Receiver` for the server's.
pub fn query_error(code: &str, message: &str, status: u16, request_id: &str) -> Vec<u8> {
    let mut x = Xml::new();
    x.open("ErrorResponse", None);
    x.open("Error", None);
    x.text("Type", if status >= 500 { "Receiver" } else { "Sender" });
    x.text("Code", code);
    x.text("Message", message);
    x.close("Error");
    x.text("RequestId", request_id);
    x.close("ErrorResponse");
    x.finish()
}

#[cfg(test)]
mod tests;
