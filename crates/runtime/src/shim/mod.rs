//! `berth shim <container-dir>`: the supervisor of one container's process.
//!
//! The process runtime starts one shim per container, in a session of its
//! own, so the shim and the process outlive the agent (and an agent killed
//! with SIGKILL takes neither with it). The shim reads `spec.json`, spawns
//! the process in a process group of its own (the group is what `stop`
//! signals), tells the runtime the pid on its stdout — one line, then
//! nothing more, so a dead agent's pipe cannot hurt it — and then records
//! output, health and finally the exit in the container directory (see
//! [`crate::process::state`]) and exits.
//!
//! When the process exits, the rest of its process group is killed, as
//! everything in a container goes when its main process ends.

pub(crate) mod health;
mod output;
mod user;

use crate::process::state::{
    now_ms, read_json, write_atomic, write_json, ExitRecord, Handshake, ProcRecord, StoredSpec,
    EXIT, PID, SHIM_PID, SPEC, STARTED,
};
use crate::{ContainerSpec, LogStream};
use output::Output;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use user::ExecUser;

/// How long output still open after the process exited (held by a
/// descendant that left the process group) is waited for.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs the shim; `args` are the arguments after `shim`. Returns the exit
/// status for the shim process.
pub fn main(args: Vec<String>) -> i32 {
    let [dir] = args.as_slice() else {
        eprintln!("usage: berth shim CONTAINER_DIR");
        return 2;
    };
    // SAFETY: setsid(2) has no memory effects. It fails only for a group
    // leader, which a freshly spawned shim is not.
    unsafe { libc::setsid() };
    match run(Path::new(dir)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth shim: {e}");
            1
        }
    }
}

fn run(dir: &Path) -> Result<(), String> {
    let me = ProcRecord::of(std::process::id()).ok_or("cannot read the shim's /proc entry")?;
    write_json(&dir.join(SHIM_PID), &me).map_err(|e| format!("cannot write {SHIM_PID}: {e}"))?;
    let stored: StoredSpec = read_json(&dir.join(SPEC)).ok_or("cannot read spec.json")?;
    let spec = stored.spec;
    let output = Output::open(dir).map_err(|e| format!("cannot open the output file: {e}"))?;

    let (launch, mut child) = match spawn(&spec) {
        Ok(started) => started,
        Err(reason) => {
            let exit = ExitRecord {
                exit_code: None,
                signal: None,
                started_at_ms: None,
                finished_at_ms: now_ms(),
                reason: Some(reason.clone()),
            };
            // Recorded too for an agent that restarts before it reads the reply.
            let _ = write_json(&dir.join(EXIT), &exit);
            report(&Handshake::Failed { reason });
            return Ok(());
        }
    };
    let started = Instant::now();
    let started_at_ms = now_ms();
    let pid = child.id();
    // Not reaped yet, so /proc/<pid> exists even if it already exited.
    let proc = ProcRecord::of(pid).unwrap_or(ProcRecord {
        pid,
        start_ticks: 0,
    });
    let recorded = write_atomic(&dir.join(STARTED), started_at_ms.to_string().as_bytes())
        .and_then(|()| write_json(&dir.join(PID), &proc));
    if let Err(e) = recorded {
        // Unrecorded, it could be neither found nor stopped: end it.
        let _ = child.kill();
        let _ = reap(&mut child);
        return Err(format!("cannot record the pid: {e}"));
    }
    report(&Handshake::Started { pid, started_at_ms });

    let output = Arc::new(output);
    let (drained_tx, drained) = mpsc::channel();
    let streams: [(LogStream, Option<Box<dyn Read + Send>>); 2] = [
        (
            LogStream::Stdout,
            child.stdout.take().map(|r| Box::new(r) as _),
        ),
        (
            LogStream::Stderr,
            child.stderr.take().map(|r| Box::new(r) as _),
        ),
    ];
    for (stream, reader) in streams {
        let (output, drained_tx) = (output.clone(), drained_tx.clone());
        thread::spawn(move || {
            if let Some(reader) = reader {
                output.pump(stream, reader);
            }
            let _ = drained_tx.send(());
        });
    }

    let (stop_health, stop_rx) = mpsc::channel::<()>();
    let checks = spec.health_check.clone().and_then(|hc| {
        let argv = health::check_argv(&hc.command).ok().flatten()?;
        let (dir, launch) = (dir.to_owned(), launch.clone());
        Some(thread::spawn(move || {
            health::run(&dir, &hc, &argv, |a| launch.command(a), started, stop_rx)
        }))
    });

    let status = reap(&mut child).map_err(|e| format!("cannot wait for the process: {e}"))?;
    drop(stop_health);
    if let Some(checks) = checks {
        let _ = checks.join();
    }
    let deadline = Instant::now() + OUTPUT_DRAIN;
    for _ in 0..2 {
        if drained
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_err()
        {
            eprintln!("berth shim: output still open after the process exited; not waiting");
            break;
        }
    }
    let exit = ExitRecord {
        exit_code: status.code().or(status.signal().map(|s| 128 + s)),
        signal: status.signal(),
        started_at_ms: Some(started_at_ms),
        finished_at_ms: now_ms(),
        reason: None,
    };
    write_json(&dir.join(EXIT), &exit).map_err(|e| format!("cannot write {EXIT}: {e}"))
}

/// The container's process setup, shared by the process and its checks.
#[derive(Clone)]
struct Launch {
    env: Vec<(String, String)>,
    cwd: Option<String>,
    user: Option<ExecUser>,
}

impl Launch {
    fn new(spec: &ContainerSpec) -> Result<Launch, String> {
        let user = spec.user.as_deref().map(user::resolve).transpose()?;
        if let Some(wd) = &spec.working_directory {
            match std::fs::metadata(wd) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(format!("working directory {wd:?} is not a directory")),
                Err(e) => return Err(format!("working directory {wd:?}: {e}")),
            }
        }
        let home = match &user {
            Some(u) => u.home.clone(),
            // SAFETY: geteuid(2) cannot fail and has no memory effects.
            None => user::home_of(unsafe { libc::geteuid() }),
        };
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        // Not the agent's environment: it may hold credentials.
        let mut env = vec![
            (
                "PATH".into(),
                std::env::var("PATH").unwrap_or(DEFAULT_PATH.into()),
            ),
            ("HOSTNAME".into(), hostname.trim().into()),
            ("HOME".into(), home.unwrap_or_else(|| "/".into())),
        ];
        env.extend(spec.environment.iter().cloned());
        Ok(Launch {
            env,
            cwd: spec.working_directory.clone(),
            user,
        })
    }

    fn command(&self, argv: &[String]) -> Command {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(self.env.iter().cloned());
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        // std drops supplementary groups when it switches uid as root.
        if let Some(u) = &self.user {
            cmd.uid(u.uid).gid(u.gid);
        }
        cmd
    }
}

fn spawn(spec: &ContainerSpec) -> Result<(Launch, Child), String> {
    let argv = spec.argv();
    if argv.is_empty() {
        return Err(crate::process::NO_COMMAND.into());
    }
    let launch = Launch::new(spec)?;
    let mut cmd = launch.command(&argv);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = cmd.spawn().map_err(|e| format!("{}: {e}", argv[0]))?;
    Ok((launch, child))
}

/// Tell the runtime how the start went, then let go of its pipe.
fn report(handshake: &Handshake) {
    let mut line = serde_json::to_string(handshake).expect("a handshake serializes");
    line.push('\n');
    let mut out = io::stdout().lock();
    let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        // SAFETY: dup2(2) on two open descriptors; stdout's lock is held,
        // so nothing else writes to fd 1 meanwhile.
        unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
    }
}

/// Wait for the process to exit, kill what is left of its process group
/// while the exited leader still holds the group id (so it cannot have
/// been reused), then reap it.
fn reap(child: &mut Child) -> io::Result<std::process::ExitStatus> {
    let pid = child.id();
    loop {
        // SAFETY: siginfo_t is plain data, and waitid(2) writes only to it.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    // SAFETY: kill(2) has no memory effects.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    child.wait()
}
