//! The process runtime with real processes. The shim is this crate's
//! `berth-test-shim` binary (the test binary cannot serve as `berth shim`).
//! Nothing sleeps for a fixed time to let something happen: tests poll
//! with generous deadlines.

use berth_runtime::process::ProcessRuntime;
use berth_runtime::{
    ContainerKey, ContainerSpec, ContainerState, ContainerStatus, Health, HealthCheckSpec, LogLine,
    LogStream, Runtime, RuntimeError,
};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const DEADLINE: Duration = Duration::from_secs(10);

fn runtime(dir: &Path) -> ProcessRuntime {
    ProcessRuntime::new(dir, vec![env!("CARGO_BIN_EXE_berth-test-shim").into()])
}

fn spec(container: &str, argv: &[&str]) -> ContainerSpec {
    let mut spec = ContainerSpec::new(ContainerKey::new("task1", container), "ignored:latest");
    spec.command = argv.iter().map(|a| a.to_string()).collect();
    spec
}

fn sh(container: &str, script: &str) -> ContainerSpec {
    spec(container, &["sh", "-c", script])
}

/// Poll `f` until it yields a value; panics after [`DEADLINE`].
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait(rt: &ProcessRuntime, key: &ContainerKey) -> ContainerStatus {
    tokio::time::timeout(DEADLINE, rt.wait(key))
        .await
        .expect("the container exits in time")
        .unwrap()
}

async fn status(rt: &ProcessRuntime, key: &ContainerKey) -> ContainerStatus {
    rt.status(key).await.unwrap().expect("the container exists")
}

async fn all_logs(rt: &ProcessRuntime, key: &ContainerKey) -> Vec<LogLine> {
    rt.logs(key, 0, usize::MAX).await.unwrap().lines
}

fn messages(lines: &[LogLine], stream: LogStream) -> Vec<String> {
    let of_stream = lines.iter().filter(|l| l.stream == stream);
    of_stream.map(|l| l.message.clone()).collect()
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s[s.rfind(')').unwrap() + 1..].split_whitespace().next();
        !matches!(state, Some("Z" | "X"))
    })
}

fn running_pid(status: &ContainerStatus) -> u32 {
    match status.state {
        ContainerState::Running { pid: Some(pid), .. } => pid,
        ref other => panic!("not running: {other:?}"),
    }
}

#[tokio::test]
async fn exit_code_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let s = sh("app", "exit 3");
    let started = rt.start(&s).await.unwrap();
    assert!(started.is_running());
    let done = wait(&rt, &s.key).await;
    assert_eq!(done.id, started.id);
    match done.state {
        ContainerState::Exited {
            exit_code,
            signal,
            started_at,
            finished_at,
            reason,
        } => {
            assert_eq!((exit_code, signal, reason), (Some(3), None, None));
            assert!(started_at.unwrap() <= finished_at);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_process_killed_by_a_signal_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let s = sh("app", "kill -KILL $$");
    rt.start(&s).await.unwrap();
    let done = wait(&rt, &s.key).await;
    assert!(matches!(
        done.state,
        ContainerState::Exited {
            exit_code: Some(137),
            signal: Some(9),
            ..
        }
    ));
}

#[tokio::test]
async fn logs_come_back_in_order_by_offset_while_the_process_runs() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let s = sh(
        "app",
        "i=1; while [ $i -le 200 ]; do echo out$i; echo err$i >&2; \
         [ $((i % 25)) -eq 0 ] && sleep 0.02; i=$((i+1)); done; printf 'no newline'",
    );
    let t0 = SystemTime::now();
    rt.start(&s).await.unwrap();
    let mut lines = Vec::new();
    let mut offset = 0;
    let deadline = Instant::now() + DEADLINE;
    loop {
        // Exited before reading, so an empty read after it means the end.
        let exited = status(&rt, &s.key).await.is_exited();
        let chunk = rt.logs(&s.key, offset, 7).await.unwrap();
        assert!(chunk.lines.len() <= 7);
        assert!(chunk.next_offset >= offset);
        offset = chunk.next_offset;
        if chunk.lines.is_empty() && exited {
            break;
        }
        lines.extend(chunk.lines);
        assert!(Instant::now() < deadline);
    }
    let mut want_out: Vec<String> = (1..=200).map(|i| format!("out{i}")).collect();
    want_out.push("no newline".into());
    let want_err: Vec<String> = (1..=200).map(|i| format!("err{i}")).collect();
    assert_eq!(messages(&lines, LogStream::Stdout), want_out);
    assert_eq!(messages(&lines, LogStream::Stderr), want_err);

    let from = t0
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let to = from + DEADLINE.as_millis() as i64;
    assert!(lines
        .windows(2)
        .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms));
    assert!(lines.iter().all(|l| (from..=to).contains(&l.timestamp_ms)));
    assert_eq!(
        rt.logs(&s.key, offset, 0).await.unwrap().next_offset,
        offset
    );
    assert_eq!(all_logs(&rt, &s.key).await, lines);
}

#[tokio::test]
async fn environment_and_working_directory_reach_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // The agent's (here: the shim's) environment has AGENT_SECRET.
    let shim = env!("CARGO_BIN_EXE_berth-test-shim");
    let rt = ProcessRuntime::new(
        dir.path(),
        vec!["env".into(), "AGENT_SECRET=x".into(), shim.into()],
    );
    let mut s = sh(
        "app",
        "echo \"$GREETING\"; pwd; echo \"${AGENT_SECRET:-not inherited}\"; echo \"$HOME\"",
    );
    s.environment = vec![("GREETING".into(), "hello world".into())];
    s.working_directory = Some(work.path().to_string_lossy().into());
    rt.start(&s).await.unwrap();
    assert_eq!(wait(&rt, &s.key).await.exit_code(), Some(0));
    let out = messages(&all_logs(&rt, &s.key).await, LogStream::Stdout);
    let cwd = work.path().canonicalize().unwrap();
    assert_eq!(out[0], "hello world");
    assert_eq!(Path::new(&out[1]).canonicalize().unwrap(), cwd);
    assert_eq!(out[2], "not inherited");
    assert!(!out[3].is_empty());
}

#[tokio::test]
async fn what_cannot_run_cannot_start_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let not_executable = dir.path().join("script.sh");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let cases = [
        (
            spec("missing", &["/nonexistent/program"]),
            "No such file or directory",
        ),
        (
            spec("plain", &[not_executable.to_str().unwrap()]),
            "Permission denied",
        ),
        (spec("empty", &[]), "needs an entryPoint or command"),
        (
            {
                let mut s = spec("cwd", &["true"]);
                s.working_directory = Some("/nonexistent/dir".into());
                s
            },
            "working directory",
        ),
        (
            {
                let mut s = spec("user", &["true"]);
                s.user = Some("no-such-user-here".into());
                s
            },
            "unable to find user",
        ),
    ];
    for (s, want) in cases {
        match rt.start(&s).await {
            Err(RuntimeError::CannotStart(reason)) => {
                assert!(reason.contains(want), "{}: {reason}", s.key)
            }
            other => panic!("{}: {other:?}", s.key),
        }
        assert_eq!(rt.status(&s.key).await, Ok(None));
    }
    assert_eq!(rt.list().await.unwrap(), []);
}

#[tokio::test]
async fn stop_kills_a_process_that_ignores_sigterm_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let s = sh(
        "app",
        "trap '' TERM; echo trapped; while true; do sleep 0.1; done",
    );
    let pid = running_pid(&rt.start(&s).await.unwrap());
    // `start` returns once the process runs, before the shell set its trap.
    eventually("the trap", || async {
        (!all_logs(&rt, &s.key).await.is_empty()).then_some(())
    })
    .await;
    let t0 = Instant::now();
    let timeout = Duration::from_millis(500);
    tokio::time::timeout(DEADLINE, rt.stop(&s.key, timeout))
        .await
        .unwrap()
        .unwrap();
    let took = t0.elapsed();
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(3),
        "{took:?}"
    );
    assert!(!alive(pid));
    let done = status(&rt, &s.key).await;
    assert!(matches!(
        done.state,
        ContainerState::Exited {
            exit_code: Some(137),
            signal: Some(9),
            ..
        }
    ));
    // Stopping what has exited is fine.
    rt.stop(&s.key, timeout).await.unwrap();
}

#[tokio::test]
async fn stop_of_a_process_that_honours_sigterm_is_quick() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let s = spec("app", &["sleep", "100"]);
    rt.start(&s).await.unwrap();
    let t0 = Instant::now();
    rt.stop(&s.key, Duration::from_secs(30)).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    let done = status(&rt, &s.key).await;
    assert!(matches!(
        done.state,
        ContainerState::Exited {
            exit_code: Some(143),
            signal: Some(15),
            ..
        }
    ));
}

#[tokio::test]
async fn what_the_process_leaves_in_its_group_dies_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let s = sh("app", "sleep 100 & echo $!; exit 0");
    rt.start(&s).await.unwrap();
    assert_eq!(wait(&rt, &s.key).await.exit_code(), Some(0));
    let out = messages(&all_logs(&rt, &s.key).await, LogStream::Stdout);
    let straggler: u32 = out[0].parse().unwrap();
    eventually("the background sleep to die", || async {
        (!alive(straggler)).then_some(())
    })
    .await;
}

fn health_check(command: &[&str], interval_ms: u64, retries: u32) -> HealthCheckSpec {
    HealthCheckSpec {
        command: command.iter().map(|c| c.to_string()).collect(),
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_secs(5),
        retries,
        start_period: Duration::ZERO,
    }
}

async fn health(rt: &ProcessRuntime, key: &ContainerKey) -> Health {
    status(rt, key).await.health
}

#[tokio::test]
async fn health_check_goes_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut s = spec("app", &["sleep", "100"]);
    s.health_check = Some(health_check(&["CMD", "true"], 30, 3));
    rt.start(&s).await.unwrap();
    eventually("Healthy", || async {
        (health(&rt, &s.key).await == Health::Healthy).then_some(())
    })
    .await;
    rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn health_check_goes_unhealthy_after_retries_consecutive_failures() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut s = spec("app", &["sleep", "100"]);
    s.working_directory = Some(work.path().to_string_lossy().into());
    // Passes twice (Healthy), then fails for good.
    let script = "n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ $n -lt 2 ]";
    s.health_check = Some(health_check(&["CMD-SHELL", script], 30, 3));
    rt.start(&s).await.unwrap();
    let count = || {
        std::fs::read_to_string(work.path().join("count"))
            .map_or(0, |c| c.trim().parse::<u32>().unwrap())
    };
    let mut seen_healthy = false;
    let deadline = Instant::now() + DEADLINE;
    loop {
        match health(&rt, &s.key).await {
            Health::Healthy => seen_healthy = true,
            Health::Unhealthy => break,
            Health::Unknown => assert!(!seen_healthy, "Unknown after Healthy"),
        }
        assert!(Instant::now() < deadline, "timed out waiting for Unhealthy");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(seen_healthy);
    // Two passes and at least three failures, each recorded before its result.
    assert!(count() >= 5, "{}", count());
    rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn health_check_failures_in_the_start_period_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut s = spec("app", &["sleep", "100"]);
    s.working_directory = Some(work.path().to_string_lossy().into());
    let mut check = health_check(&["CMD-SHELL", "echo x >> checks; exit 1"], 20, 1);
    check.start_period = Duration::from_secs(60);
    s.health_check = Some(check);
    rt.start(&s).await.unwrap();
    let checks =
        || std::fs::read_to_string(work.path().join("checks")).map_or(0, |c| c.lines().count());
    eventually("five failed checks", || async {
        (checks() >= 5).then_some(())
    })
    .await;
    assert_eq!(health(&rt, &s.key).await, Health::Unknown);
    rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_health_check_that_times_out_fails() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut s = spec("app", &["sleep", "100"]);
    let mut check = health_check(&["CMD", "sleep", "100"], 20, 1);
    check.timeout = Duration::from_millis(100);
    s.health_check = Some(check);
    rt.start(&s).await.unwrap();
    eventually("Unhealthy", || async {
        (health(&rt, &s.key).await == Health::Unhealthy).then_some(())
    })
    .await;
    rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_user_is_switched_to_when_the_agent_is_root() {
    // SAFETY: geteuid(2) has no memory effects.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut s = sh("app", "id -u; id -g; id -G");
    s.user = Some("65534:65533".into());
    rt.start(&s).await.unwrap();
    assert_eq!(wait(&rt, &s.key).await.exit_code(), Some(0));
    let out = messages(&all_logs(&rt, &s.key).await, LogStream::Stdout);
    // Without the agent's supplementary groups.
    assert_eq!(out, ["65534", "65533", "65533"]);
}

#[tokio::test]
async fn remove_needs_an_exit_and_deletes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let s = spec("app", &["sleep", "100"]);
    rt.start(&s).await.unwrap();
    assert_eq!(rt.start(&s).await, Err(RuntimeError::AlreadyExists));
    assert_eq!(rt.remove(&s.key).await, Err(RuntimeError::StillRunning));
    rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
    rt.remove(&s.key).await.unwrap();
    assert!(!dir.path().join("task1").exists());
    assert_eq!(rt.status(&s.key).await, Ok(None));
    assert_eq!(rt.remove(&s.key).await, Err(RuntimeError::NotFound));
    assert_eq!(rt.logs(&s.key, 0, 10).await, Err(RuntimeError::NotFound));
    assert_eq!(rt.wait(&s.key).await, Err(RuntimeError::NotFound));
    // The key is free again.
    rt.start(&s).await.unwrap();
    rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
}

/// A file that makes the "wait for go" containers exit with 7.
const WAIT_FOR_GO: &str = "echo waiting; while [ ! -f go ]; do sleep 0.02; done; echo bye; exit 7";

fn wait_for_go(work: &Path) -> ContainerSpec {
    let mut s = sh("app", WAIT_FOR_GO);
    s.working_directory = Some(work.to_string_lossy().into());
    s.labels.insert("berth.cluster".into(), "default".into());
    s
}

#[tokio::test]
async fn a_new_runtime_adopts_running_containers() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let s = wait_for_go(work.path());
    let first = runtime(dir.path());
    let started = first.start(&s).await.unwrap();
    drop(first);

    let rt = runtime(dir.path());
    let list = rt.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, started.id);
    assert_eq!(list[0].labels, s.labels);
    assert_eq!(running_pid(&list[0]), running_pid(&started));
    std::fs::write(work.path().join("go"), "").unwrap();
    assert_eq!(wait(&rt, &s.key).await.exit_code(), Some(7));
}

/// The "agent" of `containers_survive_their_agent_being_killed`: started
/// as a separate process, it starts a container, says so and waits to be
/// killed. Does nothing in a normal test run.
#[tokio::test]
#[ignore = "run by containers_survive_their_agent_being_killed"]
async fn agent_helper() {
    let (Ok(dir), Ok(work)) = (
        std::env::var("BERTH_TEST_STATE"),
        std::env::var("BERTH_TEST_WORK"),
    ) else {
        return;
    };
    let rt = runtime(Path::new(&dir));
    let started = rt.start(&wait_for_go(Path::new(&work))).await.unwrap();
    println!("STARTED {}", running_pid(&started));
    tokio::time::sleep(DEADLINE).await;
}

#[tokio::test]
async fn containers_survive_their_agent_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut agent = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "agent_helper", "--ignored", "--nocapture"])
        .env("BERTH_TEST_STATE", dir.path())
        .env("BERTH_TEST_WORK", work.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(agent.stdout.take().unwrap());
    let pid: u32 = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("STARTED ").map(|p| p.parse().unwrap()))
        .expect("the agent started a container");
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();

    let rt = runtime(dir.path());
    let list = rt.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(running_pid(&list[0]), pid);
    assert!(alive(pid));
    std::fs::write(work.path().join("go"), "").unwrap();
    let key = &list[0].key;
    assert_eq!(wait(&rt, key).await.exit_code(), Some(7));
    let out = messages(&all_logs(&rt, key).await, LogStream::Stdout);
    assert_eq!(out, ["waiting", "bye"]);
}

#[tokio::test]
async fn a_container_whose_shim_died_is_reported_lost() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let s = spec("app", &["sleep", "100"]);
    let pid = running_pid(&rt.start(&s).await.unwrap());
    let shim: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("task1/app/shim.pid")).unwrap())
            .unwrap();
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(shim["pid"].as_i64().unwrap() as i32, libc::SIGKILL);
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
    let done = wait(&rt, &s.key).await;
    match &done.state {
        ContainerState::Exited {
            exit_code: None,
            reason: Some(reason),
            started_at: Some(_),
            ..
        } => assert_eq!(reason, "the process runtime lost track of the process"),
        other => panic!("{other:?}"),
    }
    // Recorded: the same answer from then on.
    assert_eq!(status(&rt, &s.key).await, done);
    // The cgroup the dead shim left goes with the container.
    let cgroup = std::fs::read_to_string(dir.path().join("task1/app/cgroup"));
    rt.remove(&s.key).await.unwrap();
    if let Ok(cgroup) = cgroup {
        assert!(!Path::new(cgroup.trim()).exists());
    }
}

#[tokio::test]
async fn start_returns_as_soon_as_the_process_runs() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let mut took = Vec::new();
    for i in 0..10 {
        let s = spec(&format!("c{i}"), &["sleep", "100"]);
        let t0 = Instant::now();
        rt.start(&s).await.unwrap();
        took.push(t0.elapsed());
    }
    took.sort();
    eprintln!("start latency: p50 {:?}, max {:?}", took[5], took[9]);
    // Generous for a loaded CI machine; the p50 is a few ms.
    assert!(took[5] < Duration::from_millis(500), "{took:?}");
    for s in rt.list().await.unwrap() {
        rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
    }
}

/// Starts two processes that leave the container's process group and
/// session — `setsid`, and an orphan of a double fork — prints their pids,
/// then runs `then`.
fn detaching(then: &str) -> String {
    format!("setsid sleep 300 & echo $!; sh -c 'sleep 301 & echo $!'; {then}")
}

/// The pids `detaching` printed, once it has.
async fn detached_pids(rt: &ProcessRuntime, key: &ContainerKey) -> Vec<u32> {
    let pids: Vec<u32> = eventually("the detached pids", || async {
        let out = messages(&all_logs(rt, key).await, LogStream::Stdout);
        (out.len() >= 2).then(|| out[..2].iter().map(|p| p.parse().unwrap()).collect())
    })
    .await;
    for &pid in &pids {
        assert!(alive(pid), "{pid} runs before the stop");
    }
    pids
}

async fn stop_kills_processes_that_left_the_group(rt: ProcessRuntime) {
    let s = sh("app", &detaching("sleep 302"));
    rt.start(&s).await.unwrap();
    let pids = detached_pids(&rt, &s.key).await;
    rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status(&rt, &s.key).await.exit_code(), Some(143));
    // Gone by the time the stop returns, not eventually.
    for pid in pids {
        assert!(!alive(pid), "{pid} survived the stop");
    }
}

#[tokio::test]
async fn stop_kills_processes_that_left_the_group_with_a_cgroup() {
    let dir = tempfile::tempdir().unwrap();
    stop_kills_processes_that_left_the_group(runtime(dir.path())).await;
}

#[tokio::test]
async fn stop_kills_processes_that_left_the_group_without_a_cgroup() {
    let dir = tempfile::tempdir().unwrap();
    stop_kills_processes_that_left_the_group(runtime(dir.path()).without_cgroups()).await;
}

#[tokio::test]
async fn processes_that_left_the_group_die_with_the_main_process() {
    for cgroups in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime(dir.path());
        let rt = if cgroups { rt } else { rt.without_cgroups() };
        let s = sh(
            "app",
            &detaching("while [ ! -f go ]; do sleep 0.02; done; exit 0"),
        );
        let work = tempfile::tempdir().unwrap();
        let mut s = s;
        s.working_directory = Some(work.path().to_string_lossy().into());
        rt.start(&s).await.unwrap();
        let pids = detached_pids(&rt, &s.key).await;
        std::fs::write(work.path().join("go"), "").unwrap();
        assert_eq!(wait(&rt, &s.key).await.exit_code(), Some(0));
        for pid in pids {
            assert!(
                !alive(pid),
                "{pid} outlived the container (cgroups: {cgroups})"
            );
        }
        let log = std::fs::read_to_string(dir.path().join("task1/app/shim.log")).unwrap();
        assert!(log.contains("isolation:"), "{log}");
        // The cgroup goes with the container.
        if let Ok(cgroup) = std::fs::read_to_string(dir.path().join("task1/app/cgroup")) {
            assert!(cgroups);
            assert!(log.contains(cgroup.trim()), "{log}");
            assert!(!Path::new(cgroup.trim()).exists(), "{cgroup} is left");
        }
    }
}

#[tokio::test]
async fn a_shim_that_died_leaves_nothing_running_after_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let s = sh("app", &detaching("sleep 302"));
    rt.start(&s).await.unwrap();
    let pids = detached_pids(&rt, &s.key).await;
    let cgroup = dir.path().join("task1/app/cgroup");
    if !cgroup.exists() {
        eprintln!(
            "skipped: no cgroup v2 here, and without one nothing finds orphans of a dead shim"
        );
        rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
        return;
    }
    let shim: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("task1/app/shim.pid")).unwrap())
            .unwrap();
    // SAFETY: kill(2) has no memory effects.
    unsafe { libc::kill(shim["pid"].as_i64().unwrap() as i32, libc::SIGKILL) };
    rt.stop(&s.key, Duration::from_secs(5)).await.unwrap();
    for pid in pids {
        assert!(!alive(pid), "{pid} survived the stop");
    }
}

/// Every file and directory under `root`, with its mode and content.
fn walk(root: &Path, out: &mut Vec<(std::path::PathBuf, u32, Vec<u8>)>) {
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(root).unwrap() {
        let path = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            out.push((path.clone(), mode, Vec::new()));
            walk(&path, out);
        } else {
            out.push((path.clone(), mode, std::fs::read(&path).unwrap_or_default()));
        }
    }
}

#[tokio::test]
async fn the_environment_is_never_on_disk_and_state_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let secret = format!("s3cret-{}", std::process::id());
    let mut s = sh(
        "app",
        "[ \"$TOKEN\" = \"$EXPECTED_PREFIX-$PPID_HINT\" ] && echo match; sleep 0.2",
    );
    let (prefix, hint) = secret.split_once('-').unwrap();
    s.environment = vec![
        ("TOKEN".into(), secret.clone()),
        ("EXPECTED_PREFIX".into(), prefix.into()),
        ("PPID_HINT".into(), hint.into()),
    ];
    s.health_check = Some(health_check(&["CMD-SHELL", "[ -n \"$TOKEN\" ]"], 50, 1));
    s.registry_auth = Some(berth_runtime::RegistryAuth {
        username: "u".into(),
        password: format!("pw-{secret}"),
    });
    rt.start(&s).await.unwrap();
    let mut files = Vec::new();
    walk(dir.path(), &mut files);
    assert_eq!(wait(&rt, &s.key).await.exit_code(), Some(0));
    walk(dir.path(), &mut files);
    let out = messages(&all_logs(&rt, &s.key).await, LogStream::Stdout);
    assert_eq!(out, ["match"]);
    assert!(files.iter().any(|(p, _, _)| p.ends_with("spec.json")));
    for (path, mode, content) in &files {
        let text = String::from_utf8_lossy(content);
        assert!(
            !text.contains(&secret),
            "{} holds the secret",
            path.display()
        );
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
}

fn of_account(mut s: ContainerSpec, task: &str, account: &str) -> ContainerSpec {
    s.key.task_id = task.into();
    s.labels.insert(
        "berth.task-arn".into(),
        format!("arn:aws:ecs:us-east-1:{account}:task/default/{task}"),
    );
    s
}

/// A directory others may traverse (the scratch root must be reachable).
fn traversable_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    d
}

#[tokio::test]
async fn isolated_accounts_run_as_their_own_unprivileged_users() {
    use berth_runtime::process::{AccountIsolation, Tenancy};
    // SAFETY: geteuid(2) has no memory effects.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scratch = traversable_tempdir();
    // Readable by everyone, in a directory of root only, as a data dir is.
    let private = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode;
        std::fs::set_permissions(private.path(), mode(0o700)).unwrap();
        std::fs::write(private.path().join("key"), "private").unwrap();
        std::fs::set_permissions(private.path().join("key"), mode(0o644)).unwrap();
    }
    let isolation = || {
        AccountIsolation::new(
            3_000_000_000,
            dir.path().join("account-uids.json"),
            scratch.path().join("tasks"),
        )
        .unwrap()
    };
    let rt = runtime(dir.path()).with_tenancy(Tenancy::Isolated(isolation()));
    let script = format!(
        "id -u; id -g; id -G; pwd; echo \"$HOME\"; grep NoNewPrivs /proc/self/status; \
         cat {key} 2>/dev/null || echo denied; ls {state} 2>/dev/null || echo denied; \
         touch \"$HOME/written\" && echo wrote",
        key = private.path().join("key").display(),
        state = dir.path().display()
    );
    let run = |rt: ProcessRuntime, task: &'static str, account: &'static str| {
        let s = of_account(sh("app", &script), task, account);
        async move {
            rt.start(&s).await.unwrap();
            assert_eq!(wait(&rt, &s.key).await.exit_code(), Some(0));
            let out = messages(&all_logs(&rt, &s.key).await, LogStream::Stdout);
            (rt, s, out)
        }
    };
    let (rt, a1, out) = run(rt, "ta1", "111111111111").await;
    let home = scratch.path().join("tasks/ta1");
    let home = home.to_string_lossy();
    assert_eq!(
        out,
        [
            "3000000000",
            "3000000000",
            "3000000000",
            &home,
            &home,
            "NoNewPrivs:\t1",
            "denied",
            "denied",
            "wrote"
        ]
    );
    // Another account gets another uid, the same account the same one,
    // also after a restart.
    let (rt, _, out) = run(rt, "tb1", "222222222222").await;
    assert_eq!(out[0], "3000000001");
    drop(rt);
    let rt = runtime(dir.path()).with_tenancy(Tenancy::Isolated(isolation()));
    let (rt, _, out) = run(rt, "ta2", "111111111111").await;
    assert_eq!(out[0], "3000000000");

    // The task's directory goes with its last container.
    rt.remove(&a1.key).await.unwrap();
    assert!(!scratch.path().join("tasks/ta1").exists());

    // No `user` of its own.
    let mut s = of_account(sh("app", "id -u"), "ta3", "111111111111");
    s.user = Some("0".into());
    match rt.start(&s).await {
        Err(RuntimeError::CannotStart(reason)) => assert!(reason.contains("`user`"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refusing_runtime_starts_nothing_and_says_why() {
    use berth_runtime::process::Tenancy;
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path()).with_tenancy(Tenancy::Refused("not here".into()));
    let s = sh("app", "true");
    assert_eq!(
        rt.start(&s).await,
        Err(RuntimeError::CannotStart("not here".into()))
    );
    assert!(rt.list().await.unwrap().is_empty());
}
