//! CPU time used during a run, from `/proc`: by the server (all threads), by
//! this client, and by everything else on the machine. The servers and the
//! client share the machine's cores, and other processes (builds, tests)
//! skew the figures: the "other" share tells how quiet the machine was.

use std::time::{Duration, Instant};

/// Linux reports these fields in clock ticks; USER_HZ is 100 on every
/// mainstream architecture.
const TICKS_PER_SEC: u64 = 100;

fn ticks(t: u64) -> Duration {
    Duration::from_millis(t * 1000 / TICKS_PER_SEC)
}

/// Sum of two fields (numbered as in proc(5), from 1) of `/proc/PID/stat`,
/// or of this process's when `None`.
fn stat_pair(pid: Option<u32>, a: usize, b: usize) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces), starting at
    // field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let x: u64 = fields.get(a - 3)?.parse().ok()?;
    let y: u64 = fields.get(b - 3)?.parse().ok()?;
    Some(ticks(x + y))
}

/// CPU time of `pid`, or of this process when `None`; `None` if unreadable
/// (not Linux, or the process is gone).
pub fn process_cpu(pid: Option<u32>) -> Option<Duration> {
    // utime and stime.
    stat_pair(pid, 14, 15)
}

/// CPU time of the children `pid` has waited for (cutime and cstime),
/// including their own waited-for children: for berth, the shims it
/// reaped and the container processes they reaped.
pub fn children_cpu(pid: u32) -> Option<Duration> {
    stat_pair(Some(pid), 16, 17)
}

/// Busy time of all CPUs together (everything but idle and iowait).
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest is in user).
    let busy: u64 = v.iter().take(8).sum::<u64>() - v.get(3)? - v.get(4)?;
    Some(ticks(busy))
}

/// What the CPUs did during a run.
#[derive(Clone, Copy, Default)]
pub struct CpuUse {
    pub server: Option<Duration>,
    pub client: Option<Duration>,
    /// Cores' worth of CPU used by other processes (0.5 = half a core).
    pub other_cores: Option<f64>,
}

pub struct CpuSample {
    server_pid: Option<u32>,
    at: Instant,
    server: Option<Duration>,
    client: Option<Duration>,
    machine: Option<Duration>,
}

impl CpuSample {
    pub fn start(server_pid: Option<u32>) -> CpuSample {
        CpuSample {
            server_pid,
            at: Instant::now(),
            server: server_pid.and_then(|p| process_cpu(Some(p))),
            client: process_cpu(None),
            machine: machine_busy(),
        }
    }

    pub fn since(&self) -> CpuUse {
        let diff =
            |before: Option<Duration>, now: Option<Duration>| Some(now?.saturating_sub(before?));
        let server = diff(
            self.server,
            self.server_pid.and_then(|p| process_cpu(Some(p))),
        );
        let client = diff(self.client, process_cpu(None));
        let machine = diff(self.machine, machine_busy());
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let other_cores = machine.map(|m| {
            let ours = server.unwrap_or_default() + client.unwrap_or_default();
            m.saturating_sub(ours).as_secs_f64() / wall
        });
        CpuUse {
            server,
            client,
            other_cores,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_time_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu(None).is_some());
            assert!(machine_busy().is_some());
            assert!(children_cpu(std::process::id()).is_some());
        }
    }
}
