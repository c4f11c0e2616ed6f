//! AWS JSON 1.1 bodies in and out.

use crate::ApiError;
use serde::{de::DeserializeOwned, Serialize};

/// The content type of every AWS JSON 1.1 request and response.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Decodes a request body into the operation's input type.
///
/// An empty body is read as `{}` (some SDKs send nothing for operations
/// without members). Malformed JSON or a member of the wrong JSON type is a
/// `SerializationException`, as on AWS; a missing required member is an
/// `InvalidParameterException` naming it, which is what an ECS user can act on.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| classify(&e))
}

fn classify(e: &serde_json::Error) -> ApiError {
    let msg = e.to_string();
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return ApiError::client(
            "InvalidParameterException",
            format!("Missing required parameter: {field}"),
        );
    }
    let what = match e.classify() {
        serde_json::error::Category::Data => "a member has a value of the wrong type",
        _ => "the request body is not valid JSON",
    };
    ApiError::serialization(format!("Could not deserialize the request: {what} ({msg})"))
}

/// Encodes an operation's output. `()` (operations without output) is `{}`.
pub fn encode<T: Serialize>(out: &T) -> Result<Vec<u8>, ApiError> {
    let v = serde_json::to_vec(out).map_err(|e| {
        ApiError::server("ServerException", format!("response encoding failed: {e}"))
    })?;
    Ok(if v == b"null" { b"{}".to_vec() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct In {
        #[serde(rename = "name")]
        _name: String,
        #[serde(rename = "count", default)]
        _count: Option<i32>,
    }

    #[test]
    fn classifies_decode_failures() {
        assert_eq!(
            decode::<In>(b"{not json").unwrap_err().code,
            "SerializationException"
        );
        assert_eq!(
            decode::<In>(br#"{"name":"a","count":"3"}"#)
                .unwrap_err()
                .code,
            "SerializationException"
        );
        let e = decode::<In>(b"{}").unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains("name"));
        assert!(decode::<In>(br#"{"name":"a","unknown":1}"#).is_ok());
    }

    #[test]
    fn unit_output_is_an_empty_object() {
        assert_eq!(encode(&()).unwrap(), b"{}");
    }
}
