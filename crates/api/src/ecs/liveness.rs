//! Which agents are alive: every poll from an agent marks its container
//! instance seen. Kept in memory — heartbeats are too frequent to be worth
//! a durable write each — so after a control-plane restart every instance
//! counts as seen at startup, and gets a full grace period to poll again.
//! Silence is measured on the control plane's monotonic clock.

use berth_core::clock::Clock;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Timings of agent liveness and task retention.
#[derive(Debug, Clone)]
pub struct Timings {
    /// An instance whose agent has not polled for this long is shown with
    /// `agentConnected=false` and gets no new tasks.
    pub agent_disconnect_grace: Duration,
    /// After this much longer without a poll, its tasks are stopped and
    /// their resources freed.
    pub agent_lost_timeout: Duration,
    /// How long STOPPED tasks stay describable.
    pub stopped_task_retention: Duration,
    /// The longest a PollWork may be held open.
    pub max_poll_wait: Duration,
    /// How long a service's task without health checks must run to count
    /// as started successfully (deployments, the circuit breaker, the
    /// throttle).
    pub service_task_settle: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            agent_disconnect_grace: Duration::from_secs(60),
            agent_lost_timeout: Duration::from_secs(300),
            stopped_task_retention: Duration::from_secs(3600),
            max_poll_wait: Duration::from_secs(20),
            service_task_settle: Duration::from_millis(
                berth_scheduler::service::DEFAULT_SETTLE_MS as u64,
            ),
        }
    }
}

pub struct Liveness {
    clock: Arc<dyn Clock>,
    /// When this control plane started, on `clock`'s monotonic time.
    started: Duration,
    seen: Mutex<HashMap<String, Duration>>,
    /// An instance silent for this long counts as disconnected.
    grace: Duration,
    /// Grows whenever an instance silent past the grace is heard from again
    /// (its `connected` flips back), so cached views re-read liveness.
    epoch: AtomicU64,
}

impl Liveness {
    pub fn new(clock: Arc<dyn Clock>, grace: Duration) -> Self {
        Liveness {
            started: clock.monotonic(),
            clock,
            seen: Mutex::new(HashMap::new()),
            grace,
            epoch: AtomicU64::new(0),
        }
    }

    /// Records a sign of life from the instance with this ARN.
    pub fn seen(&self, instance_arn: &str) {
        let now = self.clock.monotonic();
        let before = self.seen.lock().insert(instance_arn.to_string(), now);
        let last = before.unwrap_or(self.started);
        if now.saturating_sub(last) >= self.grace {
            self.epoch.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a sign of life from each of these instances (simulated hosts).
    pub fn seen_all<'a>(&self, instance_arns: impl IntoIterator<Item = &'a str>) {
        for arn in instance_arns {
            self.seen(arn);
        }
    }

    /// Changes whenever an instance's agent reconnects.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// How long since the instance was last heard from.
    pub fn silence(&self, instance_arn: &str) -> Duration {
        let last = self
            .seen
            .lock()
            .get(instance_arn)
            .copied()
            .unwrap_or(self.started);
        self.clock.monotonic().saturating_sub(last)
    }

    pub fn forget(&self, instance_arn: &str) {
        self.seen.lock().remove(instance_arn);
    }
}
