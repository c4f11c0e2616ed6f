//! CPU time used by a process (user + system, all threads), from
//! `/proc/PID/stat`: tells where the machine's two cores went during a run.

use std::time::Duration;

/// Linux reports these fields in clock ticks; USER_HZ is 100 on every
/// mainstream architecture.
const TICKS_PER_SEC: u64 = 100;

/// CPU time of `pid`, or of this process when `None`; `None` if unreadable
/// (not Linux, or the process is gone).
pub fn process_cpu(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces), starting at
    // field 3 (state); utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis(
        (utime + stime) * 1000 / TICKS_PER_SEC,
    ))
}

/// CPU used by a server and by this client between `start` and now.
pub struct CpuSample {
    server_pid: Option<u32>,
    server: Option<Duration>,
    client: Option<Duration>,
}

impl CpuSample {
    pub fn start(server_pid: Option<u32>) -> CpuSample {
        CpuSample {
            server_pid,
            server: server_pid.and_then(|p| process_cpu(Some(p))),
            client: process_cpu(None),
        }
    }

    /// (server, client) CPU time since `start`.
    pub fn since(&self) -> (Option<Duration>, Option<Duration>) {
        let diff =
            |before: Option<Duration>, now: Option<Duration>| Some(now?.saturating_sub(before?));
        (
            diff(
                self.server,
                self.server_pid.and_then(|p| process_cpu(Some(p))),
            ),
            diff(self.client, process_cpu(None)),
        )
    }
}
