use std::borrow::Cow;
use std::fmt;

/// An error as it goes on the wire: `{"__type": code, "message": message}`
/// with `x-amzn-ErrorType: code` and the given HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Cow<'static, str>,
    pub message: String,
    pub status: u16,
    /// For services that moved from the query protocol (SQS): the query
    /// error code and fault, sent as `x-amzn-query-error: <code>;<fault>`,
    /// which clients report as the error's code.
    pub query_error: Option<String>,
}

impl ApiError {
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        status: u16,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            code: code.into(),
            status,
            message: message.into(),
            query_error: None,
        }
    }

    /// The same error, carrying the query protocol's code (`Sender` fault
    /// for 4xx, `Receiver` for 5xx).
    pub fn with_query_code(mut self, code: &str) -> Self {
        let fault = if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        };
        self.query_error = Some(format!("{code};{fault}"));
        self
    }

    /// A 400 client error with the given modeled code.
    pub fn client(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, 400, message)
    }

    /// The body is not JSON, or a member has the wrong JSON type.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }

    /// What an operation that berth routes but does not implement yet answers.
    pub fn not_implemented(code: &'static str, service: &str, operation: &str) -> Self {
        Self::client(
            code,
            format!("{operation} is not implemented by berth's {service} endpoint yet"),
        )
    }

    /// An internal failure: 500, never leaking details beyond the message.
    pub fn server(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, 500, message)
    }

    /// The JSON body of the envelope.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "__type": self.code,
            "message": self.message,
        }))
        .expect("error envelope serializes")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}
