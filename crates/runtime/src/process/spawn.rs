//! Checking a spec and starting its shim.

use super::state::{create_private, Handshake, ShimInput, SHIM_LOG};
use crate::shim::health::check_argv;
use crate::ContainerSpec;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A shim answers in milliseconds; this bounds a hung one.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub const NO_COMMAND: &str = "the process runtime needs an entryPoint or command to run";

/// Why the process runtime cannot start `spec` (`euid`: the agent's), if
/// it cannot. What needs the host (programs, users, directories) is
/// checked by the shim.
pub fn validate(spec: &ContainerSpec, euid: u32) -> Result<(), String> {
    let argv = spec.argv();
    match argv.first() {
        None => return Err(NO_COMMAND.into()),
        Some(p) if p.is_empty() => return Err("the program to run is an empty string".into()),
        Some(_) => {}
    }
    if let Some(user) = &spec.user {
        if euid != 0 {
            return Err(format!(
                "the process runtime can run a container as user {user:?} only when the agent runs as root (it runs as uid {euid})"
            ));
        }
    }
    if let Some(hc) = &spec.health_check {
        check_argv(&hc.command)?;
    }
    Ok(())
}

/// Start the shim for the container in `dir`, hand it `input` on its
/// stdin (never on disk: it holds the environment, secrets included) and
/// wait for its report: the process's pid and start time (ms), or why it
/// could not start.
pub async fn run_shim(
    shim_command: &[String],
    dir: &Path,
    input: &ShimInput,
) -> Result<(u32, i64), String> {
    let (program, args) = shim_command
        .split_first()
        .ok_or("the process runtime has no shim command")?;
    let log = create_private(&dir.join(SHIM_LOG), false)
        .map_err(|e| format!("cannot create {SHIM_LOG}: {e}"))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run the shim {program:?}: {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut payload = serde_json::to_vec(input).expect("the shim's input serializes");
    payload.push(b'\n');
    let mut line = String::new();
    let handshake = async {
        // The shim reads all of its input before it answers; closing
        // stdin tells it that it has it all.
        stdin
            .write_all(&payload)
            .await
            .map_err(|e| format!("cannot hand the shim its input: {e}"))?;
        drop(stdin);
        BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .map_err(|e| format!("cannot read the shim's report: {e}"))
    };
    let read = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await;
    // The payload held the environment: do not keep it around.
    payload.fill(0);
    if read.is_err() {
        let _ = child.start_kill();
    }
    // Reap the shim when it exits, as long as this agent lives; the shim
    // must not wait for us, so nothing else is awaited here.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    match read {
        Err(_) => Err(format!(
            "the shim did not report within {}s",
            HANDSHAKE_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(format!("{e}: {}", shim_log_tail(dir))),
        Ok(Ok(_)) => match serde_json::from_str(&line) {
            Ok(Handshake::Started { pid, started_at_ms }) => Ok((pid, started_at_ms)),
            Ok(Handshake::Failed { reason }) => Err(reason),
            Err(_) => Err(format!(
                "the shim exited before starting the process: {}",
                shim_log_tail(dir)
            )),
        },
    }
}

/// After a failed start: kill a process the shim may have spawned before
/// it failed, so nothing runs unsupervised.
pub fn kill_orphan(dir: &Path) {
    super::signal(dir, libc::SIGKILL);
}

fn shim_log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join(SHIM_LOG)).unwrap_or_default();
    let last = log.lines().rev().find(|l| !l.trim().is_empty());
    last.unwrap_or("no diagnostics").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ContainerKey, HealthCheckSpec};

    fn spec(argv: &[&str]) -> ContainerSpec {
        let mut s = ContainerSpec::new(ContainerKey::new("t", "c"), "img");
        s.command = argv.iter().map(|a| a.to_string()).collect();
        s
    }

    #[test]
    fn needs_something_to_run() {
        assert_eq!(validate(&spec(&[]), 0), Err(NO_COMMAND.into()));
        assert!(validate(&spec(&[""]), 0).is_err());
        assert_eq!(validate(&spec(&["true"]), 1000), Ok(()));
    }

    #[test]
    fn a_user_needs_a_root_agent() {
        let mut s = spec(&["true"]);
        s.user = Some("web".into());
        assert_eq!(validate(&s, 0), Ok(()));
        let err = validate(&s, 1000).unwrap_err();
        assert!(err.contains("only when the agent runs as root"), "{err}");
    }

    #[test]
    fn health_check_commands_are_checked() {
        let mut s = spec(&["true"]);
        s.health_check = Some(HealthCheckSpec {
            command: vec!["curl".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            retries: 3,
            start_period: Duration::ZERO,
        });
        assert!(validate(&s, 0).unwrap_err().contains("CMD-SHELL"));
    }
}
