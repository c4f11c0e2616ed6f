/// Who is calling and where: everything a handler knows about a request
/// besides its input. Built by the server after SigV4 verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// 12-digit AWS account id the access key belongs to.
    pub account_id: String,
    /// Region taken from the signature's credential scope.
    pub region: String,
    /// ARN of the calling principal, e.g. `arn:aws:iam::123456789012:root`.
    pub principal_arn: String,
    /// The access key that signed the request.
    pub access_key_id: String,
    /// Echoed in `x-amzn-RequestId`.
    pub request_id: String,
}

impl RequestContext {
    /// A context for tests and embedded callers.
    pub fn for_account(account_id: &str, region: &str) -> Self {
        RequestContext {
            account_id: account_id.to_string(),
            region: region.to_string(),
            principal_arn: format!("arn:aws:iam::{account_id}:root"),
            access_key_id: String::new(),
            request_id: String::new(),
        }
    }
}
