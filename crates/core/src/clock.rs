//! Time as the control plane reads it: wall time for the timestamps it
//! writes, and a monotonic reading for "how long since" decisions (agent
//! liveness, expiry gates). Injected, so tests decide by time without
//! sleeping: they hold a [`ManualClock`] and move it.

use berth_wire::Timestamp;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub trait Clock: Send + Sync {
    /// Wall time, for timestamps shown to clients (`createdAt`, `stoppedAt`, …).
    fn now(&self) -> Timestamp;
    /// Time since an arbitrary, fixed origin; never goes backwards. Only
    /// differences between two readings mean anything.
    fn monotonic(&self) -> Duration;
}

/// The machine's clocks.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to. Clones share one time, so a test
/// keeps a clone and moves the clock the code under test reads.
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    wall_ms: i64,
    monotonic: Duration,
}

impl ManualClock {
    /// A clock showing wall time `start`, its monotonic reading at zero.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            state: Arc::new(Mutex::new(ManualState {
                wall_ms: start.as_millis(),
                monotonic: Duration::ZERO,
            })),
        }
    }

    /// Moves both readings forward by `d`, as real time passing does.
    pub fn advance(&self, d: Duration) {
        let mut s = self.state.lock().expect("clock lock");
        s.wall_ms += d.as_millis() as i64;
        s.monotonic += d;
    }

    /// Sets the wall time only (as a clock adjustment would): elapsed-time
    /// decisions, which read the monotonic time, do not see the jump.
    pub fn set(&self, wall: Timestamp) {
        self.state.lock().expect("clock lock").wall_ms = wall.as_millis();
    }
}

impl Default for ManualClock {
    /// Starts at 2024-01-01T00:00:00Z, a fixed and readable point.
    fn default() -> Self {
        Self::new(Timestamp::from_millis(1_704_067_200_000))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.state.lock().expect("clock lock").wall_ms)
    }

    fn monotonic(&self) -> Duration {
        self.state.lock().expect("clock lock").monotonic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_share_it() {
        let c = ManualClock::new(Timestamp::from_millis(1_000));
        let shared = c.clone();
        assert_eq!(c.now(), Timestamp::from_millis(1_000));
        assert_eq!(c.monotonic(), Duration::ZERO);
        shared.advance(Duration::from_millis(1_500));
        assert_eq!(c.now(), Timestamp::from_millis(2_500));
        assert_eq!(c.monotonic(), Duration::from_millis(1_500));
        shared.set(Timestamp::from_millis(0));
        assert_eq!(c.now(), Timestamp::from_millis(0));
        assert_eq!(c.monotonic(), Duration::from_millis(1_500));
    }

    #[test]
    fn the_system_clock_is_monotonic() {
        let c = SystemClock::new();
        let a = c.monotonic();
        assert!(c.monotonic() >= a);
        assert!(c.now().as_millis() > 1_600_000_000_000);
    }
}
