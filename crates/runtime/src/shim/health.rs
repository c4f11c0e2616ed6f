//! The health check loop, with ECS (= Docker) semantics: the first check
//! runs one `interval` after start and each next one an `interval` after
//! the previous ended; a check that exits 0 within `timeout` passes; a pass
//! makes the container Healthy; `retries` consecutive failures make it
//! Unhealthy; failures during `start_period` do not count, unless a check
//! has already passed.

use super::reaper::Reaper;
use crate::process::state::{health_name, write_atomic, HEALTH};
use crate::{Health, HealthCheckSpec};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// The argv a health check runs: `None` for `["NONE"]`.
pub fn check_argv(command: &[String]) -> Result<Option<Vec<String>>, String> {
    match command.split_first() {
        Some((kind, [])) if kind == "NONE" => Ok(None),
        Some((kind, args)) if kind == "CMD" && !args.is_empty() => Ok(Some(args.to_vec())),
        Some((kind, script)) if kind == "CMD-SHELL" && !script.is_empty() => Ok(Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            script.join(" "),
        ])),
        _ => Err(format!(
            "a health check command is [\"CMD\", program, args…] or [\"CMD-SHELL\", script], not {command:?}"
        )),
    }
}

/// Turns check results into a health status.
#[derive(Debug)]
pub struct HealthMachine {
    retries: u32,
    start_period: Duration,
    failures: u32,
    passed_once: bool,
    status: Health,
}

impl HealthMachine {
    pub fn new(retries: u32, start_period: Duration) -> Self {
        HealthMachine {
            // ECS requires 1..=10; zero would make no failure count.
            retries: retries.max(1),
            start_period,
            failures: 0,
            passed_once: false,
            status: Health::Unknown,
        }
    }

    /// Record one check result, `since_start` after the container started.
    pub fn record(&mut self, passed: bool, since_start: Duration) -> Health {
        if passed {
            self.passed_once = true;
            self.failures = 0;
            self.status = Health::Healthy;
        } else if self.passed_once || since_start >= self.start_period {
            self.failures += 1;
            if self.failures >= self.retries {
                self.status = Health::Unhealthy;
            }
        }
        self.status
    }
}

/// Run checks until `stop` is signalled or dropped, writing `health` in
/// `dir` whenever it changes. `command` builds a check command with the
/// container's environment, directory and user.
pub fn run(
    dir: &Path,
    spec: &HealthCheckSpec,
    argv: &[String],
    command: impl Fn(&[String]) -> Command,
    reaper: &Reaper,
    started: Instant,
    stop: Receiver<()>,
) {
    let mut machine = HealthMachine::new(spec.retries, spec.start_period);
    let mut reported = None;
    loop {
        match stop.recv_timeout(spec.interval) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(passed) = run_check(command(argv), reaper, spec.timeout, &stop) else {
            return;
        };
        let health = machine.record(passed, started.elapsed());
        if reported != Some(health) {
            if let Err(e) = write_atomic(&dir.join(HEALTH), health_name(health).as_bytes()) {
                eprintln!("berth shim: cannot write health: {e}");
            }
            reported = Some(health);
        }
    }
}

/// Whether one check passed; `None` if stopped meanwhile.
fn run_check(
    mut cmd: Command,
    reaper: &Reaper,
    timeout: Duration,
    stop: &Receiver<()>,
) -> Option<bool> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own group, so a timed-out check is killed with its children.
        .process_group(0);
    let Ok(child) = reaper.spawn(&mut cmd) else {
        return Some(false);
    };
    let pid = child.id();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = reaper.try_wait(pid) {
            return Some(status.success());
        }
        let stopped = !matches!(stop.try_recv(), Err(TryRecvError::Empty));
        if stopped || Instant::now() >= deadline {
            // SAFETY: kill(2) has no memory effects. The check has not been
            // waited for, so its group id is still its own (unless it
            // exited in the last instant and every member with it, and the
            // id came round again: not worth a pidfd here).
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
            let _ = reaper.wait(pid);
            return (!stopped).then_some(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_pass_is_healthy_and_retries_failures_unhealthy() {
        let mut m = HealthMachine::new(3, Duration::ZERO);
        assert_eq!(m.record(false, S), Health::Unknown);
        assert_eq!(m.record(true, S), Health::Healthy);
        assert_eq!(m.record(false, S), Health::Healthy);
        assert_eq!(m.record(false, S), Health::Healthy);
        assert_eq!(m.record(false, S), Health::Unhealthy);
        assert_eq!(m.record(true, S), Health::Healthy);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_a_pass() {
        let mut m = HealthMachine::new(1, 10 * S);
        for _ in 0..5 {
            assert_eq!(m.record(false, S), Health::Unknown);
        }
        assert_eq!(m.record(false, 10 * S), Health::Unhealthy);

        let mut m = HealthMachine::new(1, 10 * S);
        assert_eq!(m.record(true, S), Health::Healthy);
        assert_eq!(m.record(false, 2 * S), Health::Unhealthy);
    }

    #[test]
    fn check_commands() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_argv(&v(&["CMD", "true", "x"])),
            Ok(Some(v(&["true", "x"])))
        );
        assert_eq!(
            check_argv(&v(&["CMD-SHELL", "curl -f localhost || exit 1"])),
            Ok(Some(v(&["/bin/sh", "-c", "curl -f localhost || exit 1"])))
        );
        assert_eq!(check_argv(&v(&["NONE"])), Ok(None));
        for bad in [v(&[]), v(&["CMD"]), v(&["CMD-SHELL"]), v(&["curl", "x"])] {
            assert!(check_argv(&bad).is_err(), "{bad:?}");
        }
    }
}
