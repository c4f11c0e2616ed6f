//! Wake-ups for agents' long polls: each container instance has a version
//! that grows whenever its assignments or their desired status change.
//! In memory: after a restart every version starts over, and an agent whose
//! `knownVersion` no longer matches simply gets its full work list at once.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Default)]
pub struct WorkSignals {
    by_instance: Mutex<HashMap<String, Arc<watch::Sender<u64>>>>,
}

impl WorkSignals {
    fn sender(&self, instance_id: &str) -> Arc<watch::Sender<u64>> {
        self.by_instance
            .lock()
            .entry(instance_id.to_string())
            // Start far from 0 so a restarted server never repeats a version an agent knows.
            .or_insert_with(|| Arc::new(watch::channel(rand::random::<u32>() as u64 + 1).0))
            .clone()
    }

    /// Tells the instance's agent that its work changed.
    pub fn bump(&self, instance_id: &str) {
        self.sender(instance_id).send_modify(|v| *v += 1);
    }

    pub fn current(&self, instance_id: &str) -> u64 {
        *self.sender(instance_id).borrow()
    }

    /// Waits until the version differs from `known` or `wait` passes;
    /// returns the version then.
    pub async fn wait_change(
        &self,
        instance_id: &str,
        known: u64,
        wait: std::time::Duration,
    ) -> u64 {
        let mut rx = self.sender(instance_id).subscribe();
        if *rx.borrow() != known {
            return *rx.borrow();
        }
        let _ = tokio::time::timeout(wait, rx.wait_for(|v| *v != known)).await;
        let v = *rx.borrow();
        v
    }
}
