//! Credentials and where they come from.

use std::collections::HashMap;

/// One access key and the identity it authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: String,
    pub principal_arn: String,
}

/// Looks up credentials by access key id. Several keys may map to several accounts.
pub trait CredentialStore: Send + Sync {
    fn lookup(&self, access_key_id: &str) -> Option<Credential>;
}

/// A fixed, in-memory set of credentials (config file, tests, benchmark).
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials(HashMap<String, Credential>);

impl StaticCredentials {
    /// Later entries win when access key ids repeat.
    pub fn new(creds: Vec<Credential>) -> Self {
        StaticCredentials(
            creds
                .into_iter()
                .map(|c| (c.access_key_id.clone(), c))
                .collect(),
        )
    }
}

impl CredentialStore for StaticCredentials {
    fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        self.0.get(access_key_id).cloned()
    }
}
