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

use crate::records::{self, load, retry, Attempt, Record, Versioned};
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
    decide: impl Fn(Option<Versioned<T>>) -> Result<(Change<T>, R), ApiError>,
) -> Result<R, ApiError> {
    // The store's errors become the service's fault; `decide`'s own
    // errors pass through as the attempt's outcome.
    let outcome = retry(store, async || {
        let current = load::<T>(store, scope, id).await?;
        let (change, out) = match decide(current) {
            Ok(decided) => decided,
            Err(e) => return Ok(Attempt::Done(Err(e))),
        };
        let write = match change {
            Change::Keep => return Ok(Attempt::Done(Ok(out))),
            Change::Put(v) => v.write(),
            Change::Delete(version) => Write::Delete {
                kind: T::KIND,
                id: id.to_string(),
                expect: Expect::Version(version),
            },
        };
        Ok::<_, EcsError>(Attempt::Commit {
            scope: scope.clone(),
            writes: vec![write],
            value: Ok(out),
        })
    })
    .await;
    outcome.map_err(internal(fault))?
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
