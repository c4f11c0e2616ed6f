//! Secrets Manager (`secretsmanager`) and SSM Parameter Store (`AmazonSSM`)
//! over the document store. Secret values and SecureString parameters are
//! sealed by a [`Vault`] before they reach the store, and never logged.

mod manager;
mod parameter_rules;
mod parameters;
mod secret;
mod vault;

pub use manager::SecretsManager;
pub use parameters::ParameterStore;
pub use vault::Vault;

use crate::records::{self, load, try_commit, Record, Versioned};
use berth_core::EcsError;
use berth_store::{Expect, Query, Scope, Store, Write};
use berth_wire::{ApiError, Timestamp};

/// What a read–decide step wants committed.
pub(crate) enum Change<T> {
    Keep,
    Put(Versioned<T>),
    Delete(i64),
}

/// Reads the `T` with `id`, lets `decide` choose a change, commits it
/// conditionally, and retries from the read if someone wrote in between.
/// `fault` is the service's 500 error code.
pub(crate) async fn mutate<T: Record, R>(
    store: &dyn Store,
    scope: &Scope,
    id: &str,
    fault: &'static str,
    mut decide: impl FnMut(Option<Versioned<T>>) -> Result<(Change<T>, R), ApiError>,
) -> Result<R, ApiError> {
    for _ in 0..records::MAX_ATTEMPTS {
        let current = load::<T>(store, scope, id).await.map_err(internal(fault))?;
        let (change, out) = decide(current)?;
        let write = match change {
            Change::Keep => return Ok(out),
            Change::Put(v) => v.write(),
            Change::Delete(version) => Write::Delete {
                kind: T::KIND,
                id: id.to_string(),
                expect: Expect::Version(version),
            },
        };
        if try_commit(store, scope, vec![write])
            .await
            .map_err(internal(fault))?
        {
            return Ok(out);
        }
    }
    Err(internal(fault)(records::too_contended()))
}

/// Up to `want` records after `after` (in sort order) that `keep` accepts,
/// reading the store in batches; the flag says whether more follow.
pub(crate) async fn scan<T: Record>(
    store: &dyn Store,
    scope: &Scope,
    prefix: Option<String>,
    mut after: Option<String>,
    descending: bool,
    want: usize,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<T>, bool), EcsError> {
    const BATCH: usize = 500;
    let mut out = Vec::new();
    loop {
        let q = Query {
            sort_prefix: prefix.clone(),
            after: after.clone(),
            descending,
            limit: BATCH,
            ..Default::default()
        };
        let batch = records::list::<T>(store, scope, &q).await?;
        let full = batch.len() == BATCH;
        for v in batch {
            after = Some(v.value.sort());
            if keep(&v.value) {
                if out.len() == want {
                    return Ok((out, true));
                }
                out.push(v.value);
            }
        }
        if !full {
            return Ok((out, false));
        }
    }
}

/// Maps a shared-helper error to the service's fault, or to a validation
/// error for the client's mistakes.
pub(crate) fn internal(fault: &'static str) -> impl Fn(EcsError) -> ApiError {
    move |e| {
        if e.http_status_code() >= 500 {
            ApiError::server(
                fault,
                "The service could not complete the request; try again.",
            )
        } else {
            ApiError::client("ValidationException", e.to_string())
        }
    }
}

pub(crate) fn now() -> f64 {
    Timestamp::now().0
}
