//! Striped in-process locks that serialize writers of the same resource.
//!
//! Optimistic commits alone are correct but livelock-prone when many
//! requests hit one hot document (say, forty registrations in one family):
//! each round only one wins. Queuing same-key writers in this process makes
//! conflicts rare; the store's version checks still decide between
//! processes, for control planes that share a PostgreSQL store.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 256;

pub struct StripedLocks {
    stripes: Vec<Mutex<()>>,
}

impl Default for StripedLocks {
    fn default() -> Self {
        StripedLocks {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }
}

impl StripedLocks {
    /// Holds the lock for `key` until the guard drops. Take at most one at a
    /// time: two stripes taken in different orders could deadlock.
    pub async fn lock(&self, key: &[&str]) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        self.stripes[(h.finish() as usize) % STRIPES].lock().await
    }
}
