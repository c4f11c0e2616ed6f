//! ECS's service throttle: tasks that keep failing to start are retried
//! ever more slowly (up to 27 minutes apart), never in a hot loop.
//!
//! A failure is a task that stopped before it ran, or (stricter than ECS,
//! whose tasks take seconds to start where berth's process runtime takes
//! milliseconds) one that ran for less than the settle time
//! ([`DEFAULT_SETTLE_MS`] unless the service's rules say otherwise). A task that
//! stays up that long, or a new deployment, ends the throttling.

use serde::{Deserialize, Serialize};

/// How long a task must run to count as started successfully, by default.
pub const DEFAULT_SETTLE_MS: i64 = 10_000;
/// Failures in a row before launches are delayed at all.
const FREE_RETRIES: u32 = 2;
const FIRST_DELAY_MS: i64 = 5_000;
/// ECS's ceiling on the delay between attempts.
const MAX_DELAY_MS: i64 = 27 * 60 * 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Start failures in a row.
    pub failures: u32,
    pub last_failure_at: i64,
}

impl Throttle {
    /// The delay before the next launch after `failures` failures in a row.
    pub fn delay_ms(failures: u32) -> i64 {
        if failures <= FREE_RETRIES {
            return 0;
        }
        let doublings = (failures - FREE_RETRIES - 1).min(20);
        (FIRST_DELAY_MS << doublings).min(MAX_DELAY_MS)
    }

    /// When launches may resume (`None`: they may now).
    pub fn blocked_until(&self, now: i64) -> Option<i64> {
        let until = self.last_failure_at + Self::delay_ms(self.failures);
        (self.failures > FREE_RETRIES && until > now).then_some(until)
    }

    /// Records a failure; returns whether launches are now throttled (the
    /// moment ECS says "is unable to consistently start tasks").
    pub fn failed(&mut self, now: i64) -> bool {
        self.failures += 1;
        self.last_failure_at = now;
        self.failures > FREE_RETRIES
    }

    pub fn reset(&mut self) {
        *self = Throttle::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_ecs_ceiling() {
        assert_eq!(Throttle::delay_ms(1), 0);
        assert_eq!(Throttle::delay_ms(2), 0);
        assert_eq!(Throttle::delay_ms(3), 5_000);
        assert_eq!(Throttle::delay_ms(4), 10_000);
        assert_eq!(Throttle::delay_ms(12), MAX_DELAY_MS);
        assert_eq!(Throttle::delay_ms(u32::MAX), MAX_DELAY_MS);
        let mut t = Throttle::default();
        assert!(!t.failed(100));
        assert!(!t.failed(200));
        assert_eq!(t.blocked_until(200), None);
        assert!(t.failed(300));
        assert_eq!(t.blocked_until(301), Some(5_300));
        assert_eq!(t.blocked_until(5_300), None);
    }
}
