//! Which agents are alive: every poll from an agent marks its container
//! instance seen. Kept in memory — heartbeats are too frequent to be worth
//! a durable write each — so after a control-plane restart every instance
//! counts as seen at startup, and gets a full grace period to poll again.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

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
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            agent_disconnect_grace: Duration::from_secs(60),
            agent_lost_timeout: Duration::from_secs(300),
            stopped_task_retention: Duration::from_secs(3600),
            max_poll_wait: Duration::from_secs(20),
        }
    }
}

pub struct Liveness {
    started: Instant,
    seen: Mutex<HashMap<String, Instant>>,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            started: Instant::now(),
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl Liveness {
    /// Records a sign of life from the instance with this ARN.
    pub fn seen(&self, instance_arn: &str) {
        self.seen
            .lock()
            .insert(instance_arn.to_string(), Instant::now());
    }

    /// How long since the instance was last heard from.
    pub fn silence(&self, instance_arn: &str) -> Duration {
        let last = self
            .seen
            .lock()
            .get(instance_arn)
            .copied()
            .unwrap_or(self.started);
        last.elapsed()
    }

    pub fn forget(&self, instance_arn: &str) {
        self.seen.lock().remove(instance_arn);
    }
}
