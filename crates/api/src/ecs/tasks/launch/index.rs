//! The placement index: per cluster, its instances as read and as the
//! scheduler sees them (live reservations counted), kept in memory so a
//! RunTask does not decode every instance and assignment of the cluster.
//!
//! The store stays the truth. Every commit of this process that writes an
//! instance or an assignment bumps its scope's generation
//! ([`placement_written`], called by `records`); an entry read at an older
//! generation is read again. A launch that lands while nothing else wrote
//! in between ([`PlacementIndex::landed`]) applies its own reservations and
//! instance versions instead, so back-to-back RunTasks reuse the entry. The
//! commit still guards every used instance at the version read: a stale
//! entry can only cost a conflict and a re-read, never an oversubscription.
//!
//! Agent liveness is not a write: `connected` is refreshed from memory when
//! the clock moved or an agent came back ([`super::super::super::liveness`]).

use super::super::*;
use super::plan::Launched;
use berth_core::query;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// How many commits wrote instances or assignments, by scope,
/// process-wide (writes go through `records`, which knows no `Ecs`).
static GENERATIONS: LazyLock<Mutex<HashMap<Scope, u64>>> = LazyLock::new(Default::default);

/// Whether a batch writes an instance or an assignment: once it lands (or
/// is undone), [`placement_written`] must hear of it.
pub(crate) fn touches_placement(writes: &[Write]) -> bool {
    writes.iter().any(|w| {
        let k = match w {
            Write::Put { doc, .. } => doc.kind,
            Write::Delete { kind, .. } => kind,
        };
        k == kind::ASSIGNMENT || k == kind::CONTAINER_INSTANCE
    })
}

/// Bumps the scope's generation: its instances or assignments changed.
pub(crate) fn placement_written(scope: &Scope) {
    *GENERATIONS.lock().entry(scope.clone()).or_default() += 1;
}

fn generation(scope: &Scope) -> u64 {
    GENERATIONS.lock().get(scope).copied().unwrap_or(0)
}

/// One cluster's instances, as read and as the scheduler sees them.
#[derive(Clone)]
pub(crate) struct Pool {
    /// Not INACTIVE, with the versions read (the commit guards these).
    pub instances: Vec<Versioned<InstanceDoc>>,
    /// The same instances as the scheduler sees them, in the same order.
    pub pool: Vec<scheduler::Instance>,
    by_id: HashMap<String, usize>,
    /// Verdicts of `memberOf` expressions that read only what instances
    /// registered, per instance, by the expressions' text: they hold for
    /// as long as this pool (a write to an instance makes a new one).
    members: Arc<Mutex<HashMap<String, Arc<Vec<bool>>>>>,
}

impl Pool {
    pub fn new(
        ecs: &Ecs,
        instances: Vec<Versioned<InstanceDoc>>,
        reservations: &[AssignmentDoc],
    ) -> Pool {
        let mut by_instance: HashMap<&str, Vec<&AssignmentDoc>> = HashMap::new();
        for a in reservations {
            by_instance.entry(&a.instance_id).or_default().push(a);
        }
        let pool = instances
            .iter()
            .map(|d| {
                let mine = by_instance.get(d.value.id.as_str());
                super::place::scheduler_instance(ecs, &d.value, mine.into_iter().flatten().copied())
            })
            .collect();
        let by_id = instances
            .iter()
            .enumerate()
            .map(|(i, d)| (d.value.id.clone(), i))
            .collect();
        Pool {
            instances,
            pool,
            by_id,
            members: Default::default(),
        }
    }

    /// Whether each instance is a member of every one of `exprs` (which
    /// must read only what instances registered), cached.
    pub fn members(&self, exprs: &[&query::Expr]) -> Arc<Vec<bool>> {
        let key = exprs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(m) = self.members.lock().get(&key) {
            return m.clone();
        }
        let verdicts: Arc<Vec<bool>> = Arc::new(
            self.pool
                .iter()
                .map(|inst| exprs.iter().all(|e| e.matches(inst)))
                .collect(),
        );
        let mut cache = self.members.lock();
        // A bounded cache: requests with ever new expressions start over.
        if cache.len() >= 64 {
            cache.clear();
        }
        cache.insert(key, verdicts.clone());
        verdicts
    }

    /// Only the instances with these ids (StartTask).
    pub fn only(&self, ids: &[String]) -> Pool {
        self.filtered(|d| ids.contains(&d.id))
    }

    /// Only the instances `keep` accepts (a capacity provider's, StartTask's).
    pub fn filtered(&self, keep: impl Fn(&InstanceDoc) -> bool) -> Pool {
        let keep: Vec<usize> = (0..self.instances.len())
            .filter(|&i| keep(&self.instances[i].value))
            .collect();
        let instances: Vec<_> = keep.iter().map(|&i| self.instances[i].clone()).collect();
        let by_id = instances
            .iter()
            .enumerate()
            .map(|(i, d)| (d.value.id.clone(), i))
            .collect();
        Pool {
            pool: keep.iter().map(|&i| self.pool[i].clone()).collect(),
            instances,
            by_id,
            members: Default::default(),
        }
    }

    pub fn instance(&self, id: &str) -> Option<&Versioned<InstanceDoc>> {
        self.by_id.get(id).map(|&i| &self.instances[i])
    }

    /// Agent liveness, read again from memory.
    fn refresh_connected(&mut self, ecs: &Ecs) {
        for (d, p) in self.instances.iter().zip(self.pool.iter_mut()) {
            p.connected = container_instances::connected(ecs, &d.value);
        }
    }
}

struct Entry {
    generation: u64,
    pool: Arc<Pool>,
    /// When `connected` was last read (monotonic), and the liveness epoch then.
    refreshed: Duration,
    epoch: u64,
}

/// The cached pools, by scope and cluster.
#[derive(Default)]
pub(crate) struct PlacementIndex {
    entries: Mutex<HashMap<(Scope, String), Entry>>,
}

/// Agent liveness is re-read at least this often.
const LIVENESS_REFRESH: Duration = Duration::from_secs(1);

impl PlacementIndex {
    /// The scope's generation now: read it before reading the store, and
    /// give it to [`PlacementIndex::put`].
    pub fn generation(&self, scope: &Scope) -> u64 {
        generation(scope)
    }

    /// The cached pool of `cluster`, if nothing wrote since it was read.
    pub fn get(&self, ecs: &Ecs, scope: &Scope, cluster: &str) -> Option<Arc<Pool>> {
        let current = generation(scope);
        let mut entries = self.entries.lock();
        let e = entries.get_mut(&(scope.clone(), cluster.to_string()))?;
        if e.generation != current {
            return None;
        }
        let now = ecs.clock.monotonic();
        let epoch = ecs.liveness.epoch();
        if now.saturating_sub(e.refreshed) >= LIVENESS_REFRESH || epoch != e.epoch {
            Arc::make_mut(&mut e.pool).refresh_connected(ecs);
            e.refreshed = now;
            e.epoch = epoch;
        }
        Some(e.pool.clone())
    }

    /// Caches `pool`, read at `generation`.
    pub fn put(&self, ecs: &Ecs, scope: &Scope, cluster: &str, generation: u64, pool: Arc<Pool>) {
        let entry = Entry {
            generation,
            pool,
            refreshed: ecs.clock.monotonic(),
            epoch: ecs.liveness.epoch(),
        };
        self.entries
            .lock()
            .insert((scope.clone(), cluster.to_string()), entry);
    }

    pub fn forget(&self, scope: &Scope, cluster: &str) {
        self.entries
            .lock()
            .remove(&(scope.clone(), cluster.to_string()));
    }

    /// A launch read at `before` landed: if its commit is the only write
    /// since, account its tasks and the instances' new versions in the
    /// entry; otherwise drop the entry (the next launch reads again).
    pub fn landed(&self, scope: &Scope, cluster: &str, before: u64, launched: &Launched) {
        let key = (scope.clone(), cluster.to_string());
        let mut entries = self.entries.lock();
        let Some(e) = entries.get_mut(&key) else {
            return;
        };
        // Our commit wrote once (nothing if nothing was placed); any other
        // count means someone else wrote too.
        let after = generation(scope);
        let ours = u64::from(!launched.used().is_empty());
        if e.generation != before || after != before + ours {
            entries.remove(&key);
            return;
        }
        let pool = Arc::make_mut(&mut e.pool);
        for id in launched.used() {
            if let Some(&i) = pool.by_id.get(id) {
                pool.instances[i].version += 1;
            }
        }
        for t in &launched.tasks {
            let Some(&i) = t.instance_id.as_ref().and_then(|id| pool.by_id.get(id)) else {
                continue;
            };
            pool.pool[i].reserve(&t.reserved, t.task.group.as_deref());
        }
        e.generation = after;
    }
}
