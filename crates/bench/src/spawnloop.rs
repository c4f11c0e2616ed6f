//! The bare spawn rate: how often this machine forks, execs and reaps
//! `sh -c true` from one plain loop, measured in the same run as the task
//! throughput so the two share the machine's state (issue 11's yardstick:
//! one agent should start tasks at 30 % of it or more).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What the loop did.
pub struct SpawnRate {
    pub spawned: u64,
    pub elapsed: Duration,
}

impl SpawnRate {
    pub fn per_sec(&self) -> f64 {
        self.spawned as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Spawns and reaps `sh -c true` one after the other for `duration` (on a
/// blocking thread: the loop must not share the async workers).
pub async fn measure(duration: Duration) -> anyhow::Result<SpawnRate> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<SpawnRate> {
        let start = Instant::now();
        let mut spawned = 0u64;
        while start.elapsed() < duration {
            let status = Command::new("sh")
                .args(["-c", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "`sh -c true` failed: {status}");
            spawned += 1;
        }
        Ok(SpawnRate {
            spawned,
            elapsed: start.elapsed(),
        })
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spawns_something() {
        let r = measure(Duration::from_millis(50)).await.unwrap();
        assert!(r.spawned >= 1);
        assert!(r.per_sec() > 0.0);
    }
}
