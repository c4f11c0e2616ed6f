//! Authentication failures, shaped like the errors AWS JSON-protocol services
//! return so that SDKs and the CLI surface them the way they would against AWS.

/// Why a request was not authenticated.
///
/// The `String` payloads are the exact client-facing messages; `aws_code` and
/// `http_status_code` give the `__type` and status the wire layer should use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The signature material is malformed or incomplete.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not known to the credential store.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// Temporary credentials past their expiry.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// Signature mismatch, wrong scope, or body-hash mismatch.
    #[error("{0}")]
    InvalidSignature(String),
    /// Request time outside the allowed skew, or a presigned URL past its expiry.
    /// AWS JSON services report this as `InvalidSignatureException`.
    #[error("{0}")]
    SignatureExpired(String),
}

/// Message AWS uses when the recomputed signature differs from the provided one.
pub(crate) const SIGNATURE_MISMATCH: &str =
    "The request signature we calculated does not match the \
signature you provided. Check your AWS Secret Access Key and signing method. Consult the service \
documentation for details.";

impl AuthError {
    /// The AWS error code (the JSON `__type`), as AWS JSON 1.1 services send it.
    pub fn aws_code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::ExpiredToken => "ExpiredTokenException",
            AuthError::InvalidSignature(_) | AuthError::SignatureExpired(_) => {
                "InvalidSignatureException"
            }
        }
    }

    /// The HTTP status AWS pairs with `aws_code`.
    pub fn http_status_code(&self) -> u16 {
        match self {
            AuthError::MissingAuthenticationToken => 403,
            _ => 400,
        }
    }

    /// The client-facing message.
    pub fn message(&self) -> String {
        self.to_string()
    }
}
