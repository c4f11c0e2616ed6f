//! A container's directory: the files the shim writes and the runtime reads.
//!
//! `<state_dir>/<task_id>/<container>/` holds
//! - `spec.json`: [`StoredSpec`], written by the runtime before the shim
//!   starts, **without** the container's environment and registry
//!   credentials: those may hold secret values, so they reach the shim over
//!   its stdin ([`ShimInput`]) and live only in its memory (and the
//!   process's), never on disk;
//! - `shim.pid`: the shim's [`ProcRecord`], its first act;
//! - `started`: when the process was spawned (ms since the epoch), then
//!   `pid`: its [`ProcRecord`] (so `pid` implies `started`);
//! - `output.jsonl`: one [`OutputRecord`] per line of output, append-only;
//! - `health`: `Unknown`, `Healthy` or `Unhealthy`, when there is a check;
//! - `exit`: [`ExitRecord`], the shim's last act;
//! - `cgroup`: the path of the container's cgroup, when it has one;
//! - `shim.log`: the shim's own stderr, for diagnosing the shim (it says
//!   what isolation is in force).
//!
//! Every file is created readable by its owner only (0600, the directories
//! 0700). Every file but the append-only output is replaced atomically
//! (written to a temp file, then renamed), so a reader never sees half of
//! one. Nothing
//! is fsynced: after a host crash the processes are gone anyway, and
//! readers treat a missing or unreadable file as absent.

use crate::{
    ContainerKey, ContainerSpec, ContainerState, ContainerStatus, Health, LogChunk, LogLine,
    LogStream,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SPEC: &str = "spec.json";
pub const SHIM_PID: &str = "shim.pid";
pub const STARTED: &str = "started";
pub const PID: &str = "pid";
pub const OUTPUT: &str = "output.jsonl";
pub const HEALTH: &str = "health";
pub const EXIT: &str = "exit";
pub const SHIM_LOG: &str = "shim.log";
pub const CGROUP: &str = "cgroup";

pub const LOST_TRACK: &str = "the process runtime lost track of the process";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSpec {
    /// The runtime id reported in `ContainerStatus::id`.
    pub id: String,
    /// The spec without `environment` and `registry_auth` (see
    /// [`StoredSpec::new`]).
    pub spec: ContainerSpec,
    /// How the shim confines the process.
    #[serde(default)]
    pub confine: Confinement,
}

impl StoredSpec {
    /// What goes to disk of `spec`: everything but its environment and
    /// registry credentials, which go to the shim over its stdin.
    pub fn new(id: String, spec: &ContainerSpec, confine: Confinement) -> (StoredSpec, ShimInput) {
        let mut on_disk = spec.clone();
        let environment = std::mem::take(&mut on_disk.environment);
        on_disk.registry_auth = None;
        let stored = StoredSpec {
            id,
            spec: on_disk,
            confine,
        };
        (stored, ShimInput { environment })
    }
}

/// How the shim confines a container's processes, beyond the `user` of its
/// spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Confinement {
    /// Put the process in a cgroup of its own (when a writable cgroup v2
    /// hierarchy exists), named after the container's id.
    pub cgroup: bool,
    /// Set `no_new_privs`: setuid programs do not raise privileges.
    pub no_new_privs: bool,
}

/// What the runtime hands the shim on its stdin, once, at start: what must
/// not be written to disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShimInput {
    pub environment: Vec<(String, String)>,
}

/// A process, identified beyond its pid: pids are reused, start times
/// (clock ticks after boot, from `/proc/<pid>/stat`) tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRecord {
    pub pid: u32,
    pub start_ticks: u64,
}

impl ProcRecord {
    /// The record of process `pid` (running or a zombie), `None` if there
    /// is none.
    pub fn of(pid: u32) -> Option<ProcRecord> {
        let (_, start_ticks) = proc_stat(pid)?;
        Some(ProcRecord { pid, start_ticks })
    }

    /// Whether this very process still runs (a zombie does not).
    pub fn is_alive(&self) -> bool {
        matches!(proc_stat(self.pid), Some((state, ticks))
            if ticks == self.start_ticks && state != 'Z' && state != 'X')
    }
}

/// State and start time of `pid` from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    parse_proc_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_proc_stat(stat: &str) -> Option<(char, u64)> {
    // The command name (field 2) is in parentheses and may itself contain
    // spaces and parentheses: fields 3.. start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // starttime is field 22, the 19th after state.
    let start_ticks = fields.nth(18)?.parse().ok()?;
    Some((state, start_ticks))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: i64,
    pub reason: Option<String>,
}

/// One line of `output.jsonl`; short names because there is one per line
/// of output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputRecord {
    pub t: i64,
    pub s: LogStream,
    pub m: String,
}

/// What the shim tells the runtime on its stdout, in one line, once the
/// process is spawned or could not be.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Handshake {
    Started { pid: u32, started_at_ms: i64 },
    Failed { reason: String },
}

pub fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// Create (or truncate) `path`, readable and writable by its owner only.
pub fn create_private(path: &Path, append: bool) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = fs::OpenOptions::new();
    opts.create(true).mode(0o600);
    if append {
        opts.append(true);
    } else {
        opts.write(true).truncate(true);
    }
    let file = opts.open(path)?;
    // An existing file keeps its mode through `open`: make sure.
    use std::os::unix::fs::PermissionsExt;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Replace `path` with `data` atomically (the file is 0600).
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    create_private(&tmp, false)?.write_all(data)?;
    fs::rename(&tmp, path)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_atomic(path, &serde_json::to_vec(value).map_err(io::Error::other)?)
}

/// A JSON file's value; `None` if it is missing or unreadable.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

fn read_number(path: &Path) -> Option<i64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn health_name(h: Health) -> &'static str {
    match h {
        Health::Unknown => "Unknown",
        Health::Healthy => "Healthy",
        Health::Unhealthy => "Unhealthy",
    }
}

fn read_health(dir: &Path) -> Health {
    match fs::read_to_string(dir.join(HEALTH))
        .as_deref()
        .map(str::trim)
    {
        Ok("Healthy") => Health::Healthy,
        Ok("Unhealthy") => Health::Unhealthy,
        _ => Health::Unknown,
    }
}

/// The directory of `key` under `state_dir`, if the key is usable as two
/// path components (so no key can reach outside the state directory).
pub fn container_dir(state_dir: &Path, key: &ContainerKey) -> Option<PathBuf> {
    let ok = |s: &str| {
        !s.is_empty() && s != "." && s != ".." && !s.starts_with('.') && !s.contains(['/', '\0'])
    };
    (ok(&key.task_id) && ok(&key.container))
        .then(|| state_dir.join(&key.task_id).join(&key.container))
}

pub fn exit_state(exit: ExitRecord) -> ContainerState {
    ContainerState::Exited {
        exit_code: exit.exit_code,
        signal: exit.signal,
        started_at: exit.started_at_ms.map(from_ms),
        finished_at: from_ms(exit.finished_at_ms),
        reason: exit.reason,
    }
}

/// The status of the container in `dir`, or `None` if there is none.
/// `starting` says this runtime is inside `start` for it (so a missing shim
/// is not yet a lost one).
/// `starting` is asked only after the spec has been read: `start` marks a
/// key as starting before it writes the spec, so a container whose spec
/// exists is either marked or done starting (its pid files written). Asking
/// earlier (or from a snapshot) let a start that began in between look like
/// a lost shim, and the container was recorded as exited while it ran.
pub fn read_status(dir: &Path, starting: impl Fn() -> bool) -> io::Result<Option<ContainerStatus>> {
    let Some(stored) = read_json::<StoredSpec>(&dir.join(SPEC)) else {
        return Ok(None);
    };
    let state = read_state(dir, starting())?;
    let running = matches!(state, ContainerState::Running { .. });
    Ok(Some(ContainerStatus {
        ports: if running {
            stored.spec.host_bindings()
        } else {
            Vec::new()
        },
        key: stored.spec.key,
        id: stored.id,
        labels: stored.spec.labels,
        state,
        health: read_health(dir),
    }))
}

fn read_state(dir: &Path, starting: bool) -> io::Result<ContainerState> {
    if let Some(exit) = read_json::<ExitRecord>(&dir.join(EXIT)) {
        return Ok(exit_state(exit));
    }
    let shim_alive =
        read_json::<ProcRecord>(&dir.join(SHIM_PID)).is_some_and(|shim| shim.is_alive());
    let started_at_ms = read_number(&dir.join(STARTED));
    match read_json::<ProcRecord>(&dir.join(PID)) {
        // A live shim whose process is gone is about to write `exit`.
        Some(proc) if proc.is_alive() || shim_alive => Ok(ContainerState::Running {
            pid: Some(proc.pid),
            started_at: from_ms(started_at_ms.unwrap_or(0)),
        }),
        None if shim_alive || starting => Ok(ContainerState::Created),
        _ => record_lost(dir, started_at_ms),
    }
}

/// Neither the shim nor the process runs and there is no `exit`: the shim
/// was killed or the host restarted. Record that once, so every later read
/// reports the same.
fn record_lost(dir: &Path, started_at_ms: Option<i64>) -> io::Result<ContainerState> {
    // The shim may have written `exit` and gone between our reads.
    if let Some(exit) = read_json::<ExitRecord>(&dir.join(EXIT)) {
        return Ok(exit_state(exit));
    }
    let exit = ExitRecord {
        exit_code: None,
        signal: None,
        started_at_ms,
        finished_at_ms: now_ms(),
        reason: Some(LOST_TRACK.into()),
    };
    if dir.exists() {
        write_json(&dir.join(EXIT), &exit)?;
    }
    Ok(exit_state(exit))
}

/// Up to `max_lines` complete lines of `output.jsonl` from byte `offset`.
pub fn read_logs(dir: &Path, offset: u64, max_lines: usize) -> io::Result<LogChunk> {
    let mut chunk = LogChunk {
        lines: Vec::new(),
        next_offset: offset,
    };
    let mut file = match fs::File::open(dir.join(OUTPUT)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(chunk),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    while chunk.lines.len() < max_lines {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        // A record without its newline is still being written.
        if n == 0 || buf.last() != Some(&b'\n') {
            break;
        }
        chunk.next_offset += n as u64;
        if let Ok(rec) = serde_json::from_slice::<OutputRecord>(&buf) {
            chunk.lines.push(LogLine {
                timestamp_ms: rec.t,
                stream: rec.s,
                message: rec.m,
            });
        }
    }
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_parses_names_with_spaces_and_parens() {
        let stat =
            "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(parse_proc_stat(stat), Some(('S', 987654)));
        assert_eq!(parse_proc_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcRecord::of(std::process::id()).unwrap();
        assert!(me.is_alive());
        let other = ProcRecord {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!other.is_alive());
    }

    #[test]
    fn keys_cannot_escape_the_state_dir() {
        let root = Path::new("/s");
        let dir = |t: &str, c: &str| container_dir(root, &ContainerKey::new(t, c));
        assert_eq!(dir("t1", "web"), Some(PathBuf::from("/s/t1/web")));
        for (t, c) in [
            ("..", "x"),
            ("t", "."),
            ("", "x"),
            ("a/b", "x"),
            ("t", ".tmp"),
        ] {
            assert_eq!(dir(t, c), None, "{t:?}/{c:?}");
        }
    }

    #[test]
    fn logs_skip_an_incomplete_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |m: &str| format!(r#"{{"t":1,"s":"stdout","m":"{m}"}}"#);
        let text = format!("{}\n{}\n{}", rec("a"), rec("b"), &rec("c")[..10]);
        fs::write(dir.path().join(OUTPUT), &text).unwrap();
        let first = read_logs(dir.path(), 0, 1).unwrap();
        assert_eq!(first.lines[0].message, "a");
        let rest = read_logs(dir.path(), first.next_offset, 10).unwrap();
        assert_eq!(rest.lines.len(), 1);
        assert_eq!(rest.lines[0].message, "b");
        let none = read_logs(dir.path(), rest.next_offset, 10).unwrap();
        assert!(none.lines.is_empty());
        assert_eq!(none.next_offset, rest.next_offset);
    }
}
