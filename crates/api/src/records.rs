//! Typed documents: how each resource is keyed, indexed and serialized in
//! the store, and the read–decide–commit loop every mutation uses.

use berth_core::EcsError;
use berth_store::{Doc, Query, Scope, Store, StoreError, Write};
use berth_wire::RequestContext;
use serde::{de::DeserializeOwned, Serialize};

/// A resource kept as one document.
pub trait Record: Serialize + DeserializeOwned + Send + Sync {
    const KIND: &'static str;
    fn id(&self) -> String;
    fn sort(&self) -> String {
        self.id()
    }
    fn parent(&self) -> String {
        String::new()
    }
    fn status(&self) -> String {
        String::new()
    }
}

/// A record with the version it was read at (0: not stored yet).
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub version: i64,
}

impl<T: Record> Versioned<T> {
    pub fn new(value: T) -> Self {
        Versioned { value, version: 0 }
    }

    /// A write of the (modified) value that fails if anyone wrote it since it was read.
    pub fn write(&self) -> Write {
        Write::put_over(to_doc(&self.value, self.version))
    }
}

pub fn scope(ctx: &RequestContext) -> Scope {
    Scope::new(&ctx.account_id, &ctx.region)
}

pub fn store_error(e: StoreError) -> EcsError {
    tracing::error!(error = %e, "store failure");
    EcsError::Server("The service could not complete the request; try again.".into())
}

/// The document for `value`, as read at `version` (0: never stored).
pub fn to_doc<T: Record>(value: &T, version: i64) -> Doc {
    let mut d = Doc::new(
        T::KIND,
        value.id(),
        serde_json::to_vec(value).expect("records serialize"),
    )
    .with_sort(value.sort())
    .with_parent(value.parent())
    .with_status(value.status());
    d.version = version;
    d
}

fn from_doc<T: Record>(d: Doc) -> Result<Versioned<T>, EcsError> {
    let value = serde_json::from_slice(&d.body).map_err(|e| {
        tracing::error!(kind = T::KIND, id = %d.id, error = %e, "undecodable document");
        EcsError::Server("A stored resource could not be read.".into())
    })?;
    Ok(Versioned {
        value,
        version: d.version,
    })
}

pub async fn load<T: Record>(
    store: &dyn Store,
    scope: &Scope,
    id: &str,
) -> Result<Option<Versioned<T>>, EcsError> {
    match store.get(scope, T::KIND, id).await.map_err(store_error)? {
        Some(d) => Ok(Some(from_doc(d)?)),
        None => Ok(None),
    }
}

pub async fn list<T: Record>(
    store: &dyn Store,
    scope: &Scope,
    q: &Query,
) -> Result<Vec<Versioned<T>>, EcsError> {
    store
        .list(scope, T::KIND, q)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(from_doc)
        .collect()
}

/// How many times a read–decide–commit loop retries on conflicting writers.
pub const MAX_ATTEMPTS: usize = 32;

/// Commits `writes`; `Ok(false)` means someone else wrote first: re-read and
/// retry (after a short random pause, so competing writers spread out).
pub async fn try_commit(
    store: &dyn Store,
    scope: &Scope,
    writes: Vec<Write>,
) -> Result<bool, EcsError> {
    match store.commit(scope, writes).await {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict { .. }) => {
            let pause = rand::random::<u64>() % 5_000;
            tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
            Ok(false)
        }
        Err(e) => Err(store_error(e)),
    }
}

pub fn too_contended() -> EcsError {
    EcsError::Server("Too many concurrent updates to the same resource; try again.".into())
}

/// Document kinds of resources that other operations count or look up.
pub mod kind {
    pub const CLUSTER: &str = "cluster";
    pub const TASK_DEFINITION: &str = "task-definition";
    pub const TASK_DEFINITION_FAMILY: &str = "task-definition-family";
    pub const ACCOUNT_SETTING: &str = "account-setting";
    pub const CONTAINER_INSTANCE: &str = "container-instance";
    pub const TASK: &str = "task";
    pub const SERVICE: &str = "service";
    pub const ASSIGNMENT: &str = "assignment";
    pub const RUN_TOKEN: &str = "run-task-token";
}
