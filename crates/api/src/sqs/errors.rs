//! SQS's errors as its JSON protocol answers them: the modeled shape name
//! in `__type`, and the query protocol's code (what clients report as the
//! error code, e.g. `AWS.SimpleQueueService.NonExistentQueue`) in the
//! `x-amzn-query-error` header.

use berth_wire::ApiError;

/// The query code each modeled SQS error (and the validation errors SQS
/// answers without a model) carries.
fn query_code(shape: &str) -> &str {
    match shape {
        "QueueDoesNotExist" => "AWS.SimpleQueueService.NonExistentQueue",
        "QueueNameExists" => "QueueAlreadyExists",
        "MessageNotInflight" => "AWS.SimpleQueueService.MessageNotInflight",
        "PurgeQueueInProgress" => "AWS.SimpleQueueService.PurgeQueueInProgress",
        "QueueDeletedRecently" => "AWS.SimpleQueueService.QueueDeletedRecently",
        "BatchEntryIdsNotDistinct" => "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        "EmptyBatchRequest" => "AWS.SimpleQueueService.EmptyBatchRequest",
        "TooManyEntriesInBatchRequest" => "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        "InvalidBatchEntryId" => "AWS.SimpleQueueService.InvalidBatchEntryId",
        "BatchRequestTooLong" => "AWS.SimpleQueueService.BatchRequestTooLong",
        "UnsupportedOperation" => "AWS.SimpleQueueService.UnsupportedOperation",
        // Decoding: a missing member, a value out of range.
        "InvalidParameterException" => "MissingParameter",
        "ValidationException" => "InvalidParameterValue",
        "SerializationException" => "MalformedQueryString",
        other => other,
    }
}

/// Any error on its way out of the SQS endpoint, in SQS's form: a missing
/// member (the codec's `InvalidParameterException`) becomes SQS's
/// `ValidationException`, and every error gets its query code.
pub fn query_compatible(e: ApiError) -> ApiError {
    if e.query_error.is_some() {
        return e;
    }
    let code = query_code(&e.code).to_string();
    let e = if e.code == "InvalidParameterException" {
        ApiError::client("ValidationException", e.message)
    } else {
        e
    };
    e.with_query_code(&code)
}

pub fn queue_missing() -> ApiError {
    ApiError::client("QueueDoesNotExist", "The specified queue does not exist.")
}

pub fn invalid_value(message: impl Into<String>) -> ApiError {
    ApiError::client("ValidationException", message)
}

pub fn invalid_parameter(name: &str, value: impl std::fmt::Display, reason: &str) -> ApiError {
    invalid_value(format!(
        "Value {value} for parameter {name} is invalid. Reason: {reason}"
    ))
}

pub fn missing(name: &str) -> ApiError {
    ApiError::client(
        "ValidationException",
        format!("The request must contain the parameter {name}."),
    )
    .with_query_code("MissingParameter")
}

pub fn invalid_attribute_name(name: &str) -> ApiError {
    ApiError::client("InvalidAttributeName", format!("Unknown Attribute {name}."))
}

pub fn invalid_attribute_value(name: &str, reason: &str) -> ApiError {
    ApiError::client(
        "InvalidAttributeValue",
        format!("Invalid value for the parameter {name}. Reason: {reason}"),
    )
}

pub fn receipt_invalid(handle: &str) -> ApiError {
    ApiError::client(
        "ReceiptHandleIsInvalid",
        format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
    )
}

pub fn unsupported(what: &str) -> ApiError {
    ApiError::client("UnsupportedOperation", what.to_string())
}

pub fn throttled(why: &str) -> ApiError {
    ApiError::client("RequestThrottled", why.to_string())
}

pub fn server(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "sqs: store failure");
    ApiError::server(
        "InternalError",
        "The request processing has failed because of an unknown error. Please retry.",
    )
}

/// From the shared read–decide–commit helpers (whose errors are ECS's).
pub fn from_core(e: berth_core::EcsError) -> ApiError {
    server(e)
}
