//! `berth shim <container-dir>`: the supervisor of one container's process.
//!
//! The process runtime starts one shim per container, in a session of its
//! own, so the shim and the process outlive the agent (and an agent killed
//! with SIGKILL takes neither with it). The shim reads `spec.json` and, on
//! its stdin, the container's environment (which may hold secrets, so it is
//! never written to disk: it lives in the shim's memory and the process's),
//! spawns the process in a process group of its own (the group is what
//! `stop` signals), tells the runtime the pid on its stdout — one line, then
//! nothing more, so a dead agent's pipe cannot hurt it — and then records
//! output, health and finally the exit in the container directory (see
//! [`crate::process::state`]) and exits.
//!
//! When the process exits, every other process it started is killed, as
//! everything in a container goes when its main process ends: the process
//! runs in a cgroup of its own where the host allows it
//! ([`crate::process::cgroup`]), and the shim is a child subreaper
//! ([`reaper`]), so even processes that left the process group and the
//! session (`setsid`, double forks) are found and killed. `shim.log` says
//! which of the two is in force.

pub(crate) mod health;
mod output;
mod reaper;
mod tree;
mod user;

use crate::process::cgroup::{self, Cgroup};
use crate::process::state::{
    now_ms, read_json, write_atomic, write_json, ExitRecord, Handshake, ProcRecord, ShimInput,
    StoredSpec, CGROUP, EXIT, PID, SHIM_PID, SPEC, STARTED,
};
use crate::{ContainerSpec, LogStream};
use output::Output;
use reaper::Reaper;
use std::ffi::CString;
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

/// How long output still open after the process exited is waited for.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);
/// How long the rest of a container's processes may take to die.
const KILL_PATIENCE: Duration = Duration::from_secs(5);
/// The most the runtime may hand over on stdin.
const MAX_INPUT: u64 = 64 << 20;

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

/// The shim's stdin, to its end: what the runtime keeps off the disk.
fn read_input() -> Result<ShimInput, String> {
    let mut bytes = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_INPUT)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the runtime's input: {e}"))?;
    let input = serde_json::from_slice(&bytes);
    bytes.fill(0);
    input.map_err(|e| format!("the runtime's input is incomplete: {e}"))
}

/// The container could not start: recorded (for an agent that restarts
/// before it reads the reply) and told.
fn fail(dir: &Path, reason: String) {
    let exit = ExitRecord {
        exit_code: None,
        signal: None,
        started_at_ms: None,
        finished_at_ms: now_ms(),
        reason: Some(reason.clone()),
    };
    let _ = write_json(&dir.join(EXIT), &exit);
    report(&Handshake::Failed { reason });
}

/// The container's cgroup, if it is asked for and the host has one to
/// give; says in `shim.log` what isolation is in force.
fn confine(dir: &Path, stored: &StoredSpec) -> Option<Cgroup> {
    let cgroup = if stored.confine.cgroup {
        Cgroup::create(&stored.id).and_then(|cg| {
            write_atomic(&dir.join(CGROUP), cg.path().to_string_lossy().as_bytes())
                .map_err(|e| format!("cannot record the cgroup: {e}"))?;
            Ok(cg)
        })
    } else {
        Err("not asked for".into())
    };
    match &cgroup {
        Ok(cg) => eprintln!(
            "berth shim: isolation: cgroup {} (the container's processes end together)",
            cg.path().display()
        ),
        Err(why) => eprintln!(
            "berth shim: isolation: no cgroup ({why}); the container's processes end with \
             the shim's process tree (child subreaper)"
        ),
    }
    match &stored.spec.user {
        Some(user) => eprintln!("berth shim: runs as user {user}"),
        // SAFETY: geteuid(2) cannot fail and has no memory effects.
        None => eprintln!("berth shim: runs as uid {}", unsafe { libc::geteuid() }),
    }
    cgroup.ok()
}

fn run(dir: &Path) -> Result<(), String> {
    let me = ProcRecord::of(std::process::id()).ok_or("cannot read the shim's /proc entry")?;
    write_json(&dir.join(SHIM_PID), &me).map_err(|e| format!("cannot write {SHIM_PID}: {e}"))?;
    let stored: StoredSpec = read_json(&dir.join(SPEC)).ok_or("cannot read spec.json")?;
    let input = match read_input() {
        Ok(input) => input,
        Err(reason) => {
            fail(dir, reason);
            return Ok(());
        }
    };
    let output = Output::open(dir).map_err(|e| format!("cannot open the output file: {e}"))?;
    let reaper = Reaper::start();
    let cgroup = confine(dir, &stored);
    let spec = stored.spec;

    let launch = Launch::new(
        &spec,
        input.environment,
        cgroup.as_ref(),
        stored.confine.no_new_privs,
    );
    let (launch, mut child) = match launch.and_then(|l| spawn(&spec, l, &reaper)) {
        Ok(started) => started,
        Err(reason) => {
            if let Some(cg) = &cgroup {
                let _ = cgroup::remove(cg.path());
            }
            fail(dir, reason);
            return Ok(());
        }
    };
    let started = Instant::now();
    let started_at_ms = now_ms();
    let pid = child.id();
    // Not reaped until the reaper sees it exit, so /proc/<pid> exists.
    let proc = ProcRecord::of(pid).unwrap_or(ProcRecord {
        pid,
        start_ticks: 0,
    });
    let recorded = write_atomic(&dir.join(STARTED), started_at_ms.to_string().as_bytes())
        .and_then(|()| write_json(&dir.join(PID), &proc));
    if let Err(e) = recorded {
        // Unrecorded, it could be neither found nor stopped: end it.
        let _ = child.kill();
        let _ = reaper.wait(pid);
        end_the_rest(me.pid, cgroup.as_ref());
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
        let (dir, launch, reaper) = (dir.to_owned(), launch.clone(), reaper.clone());
        Some(thread::spawn(move || {
            health::run(
                &dir,
                &hc,
                &argv,
                |a| launch.command(a),
                &reaper,
                started,
                stop_rx,
            )
        }))
    });

    let status = reaper
        .wait(pid)
        .map_err(|e| format!("cannot wait for the process: {e}"))?;
    drop(stop_health);
    if let Some(checks) = checks {
        let _ = checks.join();
    }
    // Everything else the container started goes with its process.
    end_the_rest(me.pid, cgroup.as_ref());
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

/// Kills every process the container left: its cgroup at once, then any
/// descendant of the shim (all of them, without a cgroup); the cgroup is
/// removed once empty.
fn end_the_rest(shim: u32, cgroup: Option<&Cgroup>) {
    // Where the cgroup emptied, the tree walk only looks for processes that
    // left it; otherwise it is all there is, and is double-checked.
    let mut emptied = false;
    if let Some(cg) = cgroup {
        match cgroup::kill_all(cg.path()) {
            Ok(true) => emptied = true,
            Ok(false) => eprintln!("berth shim: processes of the cgroup survive SIGKILL"),
            Err(e) => eprintln!("berth shim: cannot kill the cgroup's processes: {e}"),
        }
    }
    let left = tree::kill_descendants(shim, &[], KILL_PATIENCE, !emptied);
    if left > 0 {
        eprintln!("berth shim: {left} processes survive SIGKILL");
    }
    if let Some(cg) = cgroup {
        // Emptied cgroups can take a moment to become removable.
        for _ in 0..100 {
            if cgroup::remove(cg.path()).is_ok() {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The container's process setup, shared by the process and its checks.
#[derive(Clone)]
struct Launch {
    env: Vec<(String, String)>,
    cwd: Option<CString>,
    user: Option<ExecUser>,
    join_cgroup: Option<Arc<dyn Fn() -> io::Result<()> + Send + Sync>>,
    no_new_privs: bool,
}

impl Launch {
    fn new(
        spec: &ContainerSpec,
        environment: Vec<(String, String)>,
        cgroup: Option<&Cgroup>,
        no_new_privs: bool,
    ) -> Result<Launch, String> {
        let user = spec.user.as_deref().map(user::resolve).transpose()?;
        let cwd = match &spec.working_directory {
            None => None,
            Some(wd) => {
                match std::fs::metadata(wd) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(format!("working directory {wd:?} is not a directory")),
                    Err(e) => return Err(format!("working directory {wd:?}: {e}")),
                }
                Some(
                    CString::new(wd.as_str())
                        .map_err(|_| format!("working directory {wd:?} holds a NUL"))?,
                )
            }
        };
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
        env.extend(environment);
        Ok(Launch {
            env,
            cwd,
            user,
            join_cgroup: cgroup.map(|cg| Arc::new(cg.join_fn()) as _),
            no_new_privs,
        })
    }

    /// A command that runs `argv` as the container: its environment, and,
    /// set up in the child before `exec`, in this order: the cgroup (as
    /// root), the user (groups dropped), the working directory (as the
    /// user, so that it reaches only what the user may), `no_new_privs`.
    fn command(&self, argv: &[String]) -> Command {
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(self.env.iter().cloned());
        let join = self.join_cgroup.clone();
        let ids = self.user.as_ref().map(|u| (u.uid, u.gid));
        let cwd = self.cwd.clone();
        let no_new_privs = self.no_new_privs;
        let setup = move || -> io::Result<()> {
            let check = |rc: libc::c_int| {
                if rc == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            };
            if let Some(join) = &join {
                join()?;
            }
            // SAFETY: plain system calls, async-signal-safe, on values
            // prepared before the fork.
            unsafe {
                if let Some((uid, gid)) = ids {
                    if libc::geteuid() == 0 {
                        check(libc::setgroups(0, std::ptr::null()))?;
                    }
                    check(libc::setgid(gid))?;
                    check(libc::setuid(uid))?;
                }
                if let Some(cwd) = &cwd {
                    check(libc::chdir(cwd.as_ptr()))?;
                }
                if no_new_privs {
                    check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
                }
            }
            Ok(())
        };
        // SAFETY: `setup` only makes async-signal-safe system calls.
        unsafe { cmd.pre_exec(setup) };
        cmd
    }
}

fn spawn(spec: &ContainerSpec, launch: Launch, reaper: &Reaper) -> Result<(Launch, Child), String> {
    let argv = spec.argv();
    if argv.is_empty() {
        return Err(crate::process::NO_COMMAND.into());
    }
    let mut cmd = launch.command(&argv);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = reaper
        .spawn(&mut cmd)
        .map_err(|e| format!("{}: {e}", argv[0]))?;
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
