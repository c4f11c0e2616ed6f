//! A process container's resource usage in the shape of Docker's stats,
//! which ECS's task metadata endpoint serves: from its cgroup (v2) when it
//! has one, else from `/proc` for its main process alone.

use super::state::{self, ProcRecord, CGROUP, PID};
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

/// Clock ticks per second, for `/proc` times.
fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf reads a constant of the system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Nanoseconds the whole host has spent, from `/proc/stat`'s `cpu` line.
fn system_cpu_ns() -> u64 {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    ticks.saturating_mul(1_000_000_000 / ticks_per_sec())
}

/// `key value` lines of a cgroup file.
fn keyed(path: &Path) -> Vec<(String, u64)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// (total, user, kernel) CPU ns, memory bytes in use, its limit, processes.
struct Usage {
    cpu: (u64, u64, u64),
    memory: u64,
    memory_stats: Value,
    limit: Option<u64>,
    pids: u64,
}

fn from_cgroup(cg: &Path) -> Option<Usage> {
    let cpu = keyed(&cg.join("cpu.stat"));
    let get = |k: &str| cpu.iter().find(|(n, _)| n == k).map(|(_, v)| v * 1000);
    let procs = fs::read_to_string(cg.join("cgroup.procs")).ok()?;
    // Without the memory controller, the resident memory of its processes.
    let memory = number(&cg.join("memory.current")).or_else(|| {
        Some(
            procs
                .lines()
                .filter_map(|p| rss(p.trim().parse().ok()?))
                .sum(),
        )
    });
    let stat: serde_json::Map<String, Value> = keyed(&cg.join("memory.stat"))
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    Some(Usage {
        cpu: (get("usage_usec")?, get("user_usec")?, get("system_usec")?),
        memory: memory.unwrap_or(0),
        memory_stats: Value::Object(stat),
        limit: number(&cg.join("memory.max")),
        pids: procs.lines().count() as u64,
    })
}

fn from_proc(pid: u32) -> Option<Usage> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15: the 12th and 13th after state.
    let ns = |i: usize| -> Option<u64> {
        Some(fields.get(i)?.parse::<u64>().ok()? * (1_000_000_000 / ticks_per_sec()))
    };
    let (user, kernel) = (ns(11)?, ns(12)?);
    Some(Usage {
        cpu: (user + kernel, user, kernel),
        memory: rss(pid).unwrap_or(0),
        memory_stats: json!({}),
        limit: None,
        pids: 1,
    })
}

/// Resident bytes of process `pid`.
fn rss(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())?;
    Some(kib * 1024)
}

fn host_memory() -> u64 {
    let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// The stats of the container in `dir`, `None` if its process is not
/// running. `previous`: the CPU part of the last answer (Docker's
/// `precpu_stats`).
pub fn read(dir: &Path, name: &str, id: &str, previous: Option<Value>) -> Option<Value> {
    let proc = state::read_json::<ProcRecord>(&dir.join(PID)).filter(ProcRecord::is_alive)?;
    let cgroup = fs::read_to_string(dir.join(CGROUP)).ok();
    let usage = cgroup
        .and_then(|p| from_cgroup(Path::new(p.trim())))
        .or_else(|| from_proc(proc.pid))?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu_stats = json!({
        "cpu_usage": {
            "total_usage": usage.cpu.0,
            "usage_in_usermode": usage.cpu.1,
            "usage_in_kernelmode": usage.cpu.2,
        },
        "system_cpu_usage": system_cpu_ns(),
        "online_cpus": cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    });
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Some(json!({
        "read": now,
        "preread": "0001-01-01T00:00:00Z",
        "name": name,
        "id": id,
        "num_procs": 0,
        "pids_stats": {"current": usage.pids},
        "cpu_stats": cpu_stats,
        "precpu_stats": previous.unwrap_or_else(|| cpu_stats.clone()),
        "memory_stats": {
            "usage": usage.memory,
            "stats": usage.memory_stats,
            "limit": usage.limit.unwrap_or_else(host_memory),
        },
        "blkio_stats": {
            "io_service_bytes_recursive": [],
            "io_serviced_recursive": [],
        },
        "storage_stats": {},
    }))
}
