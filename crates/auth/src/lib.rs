//! AWS Signature Version 4 verification for berth's AWS-compatible endpoints,
//! implemented by hand (no AWS SDK crates), plus a client-side signer for
//! tests and benchmarks.
//!
//! Errors mirror what AWS JSON-protocol services return (`aws_code`,
//! `http_status_code`, `message`), so SDK clients react as they would to AWS.

pub mod canonical;
mod credentials;
mod date;
mod error;
mod key;
pub mod session;
mod sign;
mod verify;

pub use credentials::{Credential, CredentialStore, StaticCredentials};
pub use error::AuthError;
pub use key::derive_signing_key;
pub use session::{SessionClaims, SessionFor, SessionKey, TemporaryCredentials};
pub use sign::{presign_query, sign_headers, signature};
pub use verify::{
    query_param, request_target, scope_service, Pending, SignedRequest, Verified, Verifier,
    DEFAULT_MAX_SKEW, MAX_PRESIGN_EXPIRES_SECS,
};
