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
const MAX_ATTEMPTS: usize = 32;

/// What one attempt of a read–decide–commit loop decided.
pub enum Attempt<T> {
    /// Nothing (more) to write: finish with `value`.
    Done(T),
    /// Commit `writes` in `scope`; finish with `value` once they land.
    Commit {
        scope: Scope,
        writes: Vec<Write>,
        value: T,
    },
    /// Commit each batch in its own scope, in order, for changes that span
    /// scopes (managed capacity's documents and a customer's tasks). A
    /// conflict in any batch retries from the read; the batches committed
    /// before it are undone by their `undo` writes (or stay, if they have
    /// none: then they must be harmless alone and when repeated).
    CommitInOrder { batches: Vec<Batch>, value: T },
}

/// One scope's writes of an [`Attempt::CommitInOrder`].
pub struct Batch {
    pub scope: Scope,
    pub writes: Vec<Write>,
    /// Committed should a later batch conflict (unconditional writes).
    pub undo: Vec<Write>,
}

impl Batch {
    pub fn new(scope: Scope, writes: Vec<Write>) -> Batch {
        Batch {
            scope,
            writes,
            undo: Vec::new(),
        }
    }

    pub fn undone_by(mut self, undo: Vec<Write>) -> Batch {
        self.undo = undo;
        self
    }
}

impl<T> Attempt<T> {
    /// The same attempt, finishing with `f` of its value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U> {
        match self {
            Attempt::Done(v) => Attempt::Done(f(v)),
            Attempt::Commit {
                scope,
                writes,
                value,
            } => Attempt::Commit {
                scope,
                writes,
                value: f(value),
            },
            Attempt::CommitInOrder { batches, value } => Attempt::CommitInOrder {
                batches,
                value: f(value),
            },
        }
    }
}

/// Runs `attempt` (read, decide) and commits what it decided, until the
/// commit lands without conflict; between attempts it pauses a random
/// moment, so competing writers spread out. Gives up after `MAX_ATTEMPTS`
/// with `too_contended()`.
///
/// Each attempt calls a fresh copy of `attempt`, an `async` closure that
/// captures by reference (so copying it is free). It is an `AsyncFnOnce +
/// Clone` rather than an `AsyncFnMut` because the operations' futures must
/// be `Send`, and rustc cannot yet prove that for a future that holds an
/// `AsyncFnMut`'s call future, which borrows the closure ("implementation
/// of `Send` is not general enough").
pub async fn retry<T, E: From<EcsError>>(
    store: &dyn Store,
    attempt: impl AsyncFnOnce() -> Result<Attempt<T>, E> + Clone,
) -> Result<T, E> {
    for _ in 0..MAX_ATTEMPTS {
        let (batches, value) = match attempt.clone()().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Commit {
                scope,
                writes,
                value,
            } => (vec![Batch::new(scope, writes)], value),
            Attempt::CommitInOrder { batches, value } => (batches, value),
        };
        if commit_in_order(store, batches).await? {
            return Ok(value);
        }
    }
    Err(too_contended().into())
}

/// Commits `batches` in order; on a conflict, undoes the ones that landed
/// and answers `false`.
async fn commit_in_order(store: &dyn Store, batches: Vec<Batch>) -> Result<bool, EcsError> {
    let mut landed: Vec<(Scope, Vec<Write>)> = Vec::new();
    for b in batches {
        if !try_commit(store, &b.scope, b.writes).await? {
            for (scope, undo) in landed.into_iter().rev().filter(|(_, u)| !u.is_empty()) {
                let placement = crate::ecs::touches_placement(&undo);
                store.commit(&scope, undo).await.map_err(store_error)?;
                if placement {
                    crate::ecs::placement_written(&scope);
                }
            }
            return Ok(false);
        }
        landed.push((b.scope, b.undo));
    }
    Ok(true)
}

/// Commits `writes`; `Ok(false)` means someone else wrote first: re-read and
/// retry (after a short random pause, so competing writers spread out).
pub async fn try_commit(
    store: &dyn Store,
    scope: &Scope,
    writes: Vec<Write>,
) -> Result<bool, EcsError> {
    // The ECS events these writes cause land in the same commit (the outbox).
    let (writes, events) = crate::events::outbox::with_ecs_events(scope, writes);
    // Tell the placement index, once it landed (see ecs::tasks::launch::index).
    let placement = crate::ecs::touches_placement(&writes);
    match store.commit(scope, writes).await {
        Ok(_) => {
            if placement {
                crate::ecs::placement_written(scope);
            }
            if events {
                crate::events::outbox::WAKE.notify_waiters();
            }
            Ok(true)
        }
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
    pub const SERVICE_DEPLOYMENT: &str = "service-deployment";
    pub const SERVICE_REVISION: &str = "service-revision";
    pub const DAEMON: &str = "daemon";
    pub const DAEMON_TASK_DEFINITION: &str = "daemon-task-definition";
    pub const DAEMON_TASK_DEFINITION_FAMILY: &str = "daemon-task-definition-family";
    pub const ASSIGNMENT: &str = "assignment";
    pub const RUN_TOKEN: &str = "run-task-token";
    pub const CAPACITY_PROVIDER: &str = "capacity-provider";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Counter {
        n: u32,
    }

    impl Record for Counter {
        const KIND: &'static str = "counter";
        fn id(&self) -> String {
            "c".into()
        }
    }

    #[tokio::test]
    async fn a_conflicting_writer_makes_the_attempt_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = berth_store::SqliteStore::open(dir.path().join("t.db")).unwrap();
        let sc = Scope::new("a", "r");
        let attempts = AtomicUsize::new(0);
        let n = retry(&store, async || {
            let current = load::<Counter>(&store, &sc, "c").await?;
            if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                // Someone else writes between this attempt's read and commit.
                let other = Versioned::new(Counter { n: 10 }).write();
                store.commit(&sc, vec![other]).await.unwrap();
            }
            let mut c = current.unwrap_or_else(|| Versioned::new(Counter { n: 0 }));
            c.value.n += 1;
            Ok::<_, EcsError>(Attempt::CommitInOrder {
                batches: vec![
                    Batch::new(sc.clone(), vec![]),
                    Batch::new(sc.clone(), vec![c.write()]),
                ],
                value: c.value.n,
            })
        })
        .await
        .unwrap();
        assert_eq!((n, attempts.load(Ordering::SeqCst)), (11, 2));
        let stored = load::<Counter>(&store, &sc, "c").await.unwrap().unwrap();
        assert_eq!(stored.value.n, 11);

        let done = retry(&store, async || Ok::<_, EcsError>(Attempt::Done("kept")));
        assert_eq!(done.await.unwrap(), "kept");
    }
}
