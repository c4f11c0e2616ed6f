//! The errors CloudWatch Logs operations answer, named after the modeled
//! exceptions (every operation models `InvalidParameterException`,
//! `ResourceNotFoundException` and the `ServiceUnavailableException` fault,
//! except where noted at the call site).

use berth_core::EcsError;
use berth_wire::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogsError {
    InvalidParameter(String),
    ResourceNotFound(String),
    ResourceAlreadyExists(String),
    /// TagResource's answer to more than 50 tags.
    TooManyTags(String),
    /// The store failed; the only fault the model has (500).
    ServiceUnavailable(String),
}

impl LogsError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        LogsError::InvalidParameter(msg.into())
    }

    pub fn group_not_found() -> Self {
        LogsError::ResourceNotFound("The specified log group does not exist.".into())
    }

    pub fn stream_not_found() -> Self {
        LogsError::ResourceNotFound("The specified log stream does not exist.".into())
    }

    pub fn aws_code(&self) -> &'static str {
        match self {
            LogsError::InvalidParameter(_) => "InvalidParameterException",
            LogsError::ResourceNotFound(_) => "ResourceNotFoundException",
            LogsError::ResourceAlreadyExists(_) => "ResourceAlreadyExistsException",
            LogsError::TooManyTags(_) => "TooManyTagsException",
            LogsError::ServiceUnavailable(_) => "ServiceUnavailableException",
        }
    }

    pub fn http_status_code(&self) -> u16 {
        match self {
            LogsError::ServiceUnavailable(_) => 500,
            _ => 400,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            LogsError::InvalidParameter(m)
            | LogsError::ResourceNotFound(m)
            | LogsError::ResourceAlreadyExists(m)
            | LogsError::TooManyTags(m)
            | LogsError::ServiceUnavailable(m) => m,
        }
    }
}

impl std::fmt::Display for LogsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.aws_code(), self.message())
    }
}

impl std::error::Error for LogsError {}

/// The shared helpers (`records`, pagination tokens) speak `EcsError`.
impl From<EcsError> for LogsError {
    fn from(e: EcsError) -> Self {
        match e {
            EcsError::InvalidParameter(m) | EcsError::Client(m) => LogsError::InvalidParameter(m),
            EcsError::ResourceNotFound(m) => LogsError::ResourceNotFound(m),
            other if other.http_status_code() >= 500 => {
                LogsError::ServiceUnavailable(other.to_string())
            }
            other => LogsError::InvalidParameter(other.to_string()),
        }
    }
}

impl From<berth_store::StoreError> for LogsError {
    fn from(e: berth_store::StoreError) -> Self {
        crate::records::store_error(e).into()
    }
}

impl From<LogsError> for ApiError {
    fn from(e: LogsError) -> Self {
        ApiError::new(e.aws_code(), e.http_status_code(), e.message())
    }
}
