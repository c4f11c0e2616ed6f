//! [`FakeRuntime`]: an in-memory [`Runtime`] for the agent's tests.
//!
//! Containers behave as their [`Script`] says (chosen by container name,
//! else the default script): start errors, exit codes after a delay,
//! health transitions, output, and whether SIGTERM is ignored. Tests can
//! also drive containers by hand ([`FakeRuntime::exit`],
//! [`FakeRuntime::set_health`], [`FakeRuntime::emit`]), plant containers an
//! earlier agent left ([`FakeRuntime::preload`]) and inspect the calls
//! made ([`FakeRuntime::calls`]). Delays use tokio's clock, so tests can
//! pause time. Log offsets are line indexes. Clones share one runtime.

use crate::{
    ContainerKey, ContainerSpec, ContainerState, ContainerStatus, Health, LogChunk, LogLine,
    LogStream, Runtime, RuntimeError, CAPABILITY_HEALTH_CHECK,
};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a fake container behaves.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub pull_error: Option<String>,
    pub start_error: Option<String>,
    /// How long `start` takes.
    pub start_delay: Duration,
    /// Exit with `exit_code` this long after starting; `None`: run until
    /// stopped.
    pub run_for: Option<Duration>,
    pub exit_code: i32,
    /// `stop` then takes its whole timeout and ends with SIGKILL.
    pub ignore_sigterm: bool,
    /// Health changes, each this long after start.
    pub health: Vec<(Duration, Health)>,
    /// Once it stops, its health says UNHEALTHY, as Docker marks every
    /// stopped container that has a health check, whatever its checks said.
    pub unhealthy_when_stopped: bool,
    /// Output written at start.
    pub output: Vec<(LogStream, String)>,
}

impl Script {
    /// Runs until stopped (the default).
    pub fn runs() -> Self {
        Script::default()
    }

    pub fn exits(exit_code: i32, after: Duration) -> Self {
        Script {
            run_for: Some(after),
            exit_code,
            ..Script::default()
        }
    }

    pub fn fails_to_start(reason: impl Into<String>) -> Self {
        Script {
            start_error: Some(reason.into()),
            ..Script::default()
        }
    }

    pub fn fails_to_pull(reason: impl Into<String>) -> Self {
        Script {
            pull_error: Some(reason.into()),
            ..Script::default()
        }
    }

    pub fn start_delay(mut self, delay: Duration) -> Self {
        self.start_delay = delay;
        self
    }

    pub fn health_after(mut self, after: Duration, health: Health) -> Self {
        self.health.push((after, health));
        self
    }

    pub fn ignoring_sigterm(mut self) -> Self {
        self.ignore_sigterm = true;
        self
    }

    pub fn unhealthy_when_stopped(mut self) -> Self {
        self.unhealthy_when_stopped = true;
        self
    }

    pub fn output(mut self, stream: LogStream, line: impl Into<String>) -> Self {
        self.output.push((stream, line.into()));
        self
    }
}

/// A call the runtime received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Pull(ContainerKey),
    Start(ContainerKey),
    Stop(ContainerKey, Duration),
    Remove(ContainerKey),
}

#[derive(Clone)]
pub struct FakeRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Bumped on every container change; `wait` watches it.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, Script>,
    default_script: Script,
    containers: BTreeMap<ContainerKey, Fake>,
    calls: Vec<Call>,
    next_id: u32,
}

struct Fake {
    status: ContainerStatus,
    logs: Vec<LogLine>,
    ignore_sigterm: bool,
    unhealthy_when_stopped: bool,
    timers: Vec<JoinHandle<()>>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        FakeRuntime::new()
    }
}

impl FakeRuntime {
    pub fn new() -> Self {
        FakeRuntime {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                changed: watch::channel(0).0,
            }),
        }
    }

    /// How containers named `container` behave from now on.
    pub fn script(&self, container: &str, script: Script) {
        self.inner
            .state
            .lock()
            .scripts
            .insert(container.into(), script);
    }

    /// How containers without a script of their own behave.
    pub fn default_script(&self, script: Script) {
        self.inner.state.lock().default_script = script;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.state.lock().calls.clone()
    }

    /// The process exits on its own now; false if it is not running.
    pub fn exit(&self, key: &ContainerKey, exit_code: i32) -> bool {
        self.inner.finish(key, exit_code, None)
    }

    pub fn set_health(&self, key: &ContainerKey, health: Health) {
        self.inner.update(key, |c| c.status.health = health);
    }

    /// The process writes a line.
    pub fn emit(&self, key: &ContainerKey, stream: LogStream, message: impl Into<String>) {
        let line = log_line(stream, message.into());
        self.inner.update(key, |c| c.logs.push(line));
    }

    /// A container an earlier agent left on the host, for adoption tests.
    /// A running one runs until stopped or [`FakeRuntime::exit`]ed.
    pub fn preload(
        &self,
        spec: &ContainerSpec,
        state: ContainerState,
        health: Health,
    ) -> ContainerStatus {
        let mut st = self.inner.state.lock();
        st.next_id += 1;
        let status = ContainerStatus {
            key: spec.key.clone(),
            id: format!("fake-{}", st.next_id),
            labels: spec.labels.clone(),
            state,
            health,
            ports: spec.host_bindings(),
        };
        let fake = Fake {
            status: status.clone(),
            logs: Vec::new(),
            ignore_sigterm: false,
            unhealthy_when_stopped: false,
            timers: Vec::new(),
        };
        st.containers.insert(spec.key.clone(), fake);
        drop(st);
        self.inner.bump();
        status
    }

    fn record(&self, call: Call) {
        self.inner.state.lock().calls.push(call);
    }

    fn script_for(&self, key: &ContainerKey) -> Script {
        let st = self.inner.state.lock();
        st.scripts
            .get(&key.container)
            .unwrap_or(&st.default_script)
            .clone()
    }

    fn status_of(&self, key: &ContainerKey) -> Option<ContainerStatus> {
        let st = self.inner.state.lock();
        st.containers.get(key).map(|c| c.status.clone())
    }

    /// Make the scripted things happen after start.
    fn schedule(&self, key: &ContainerKey, script: &Script) -> Vec<JoinHandle<()>> {
        let mut timers = Vec::new();
        if let Some(after) = script.run_for {
            let (inner, key, code) = (self.inner.clone(), key.clone(), script.exit_code);
            timers.push(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                inner.finish(&key, code, None);
            }));
        }
        for &(after, health) in &script.health {
            let (inner, key) = (self.inner.clone(), key.clone());
            timers.push(tokio::spawn(async move {
                tokio::time::sleep(after).await;
                inner.update(&key, |c| {
                    if c.status.is_running() {
                        c.status.health = health;
                    }
                });
            }));
        }
        timers
    }
}

impl Inner {
    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn update(&self, key: &ContainerKey, f: impl FnOnce(&mut Fake)) {
        if let Some(c) = self.state.lock().containers.get_mut(key) {
            f(c);
        }
        self.bump();
    }

    /// End a created or running container; false if there is none.
    fn finish(&self, key: &ContainerKey, exit_code: i32, signal: Option<i32>) -> bool {
        let mut st = self.state.lock();
        let Some(c) = st.containers.get_mut(key) else {
            return false;
        };
        let started_at = match c.status.state {
            ContainerState::Running { started_at, .. } => Some(started_at),
            ContainerState::Created => None,
            ContainerState::Exited { .. } => return false,
        };
        c.status.state = ContainerState::Exited {
            exit_code: Some(exit_code),
            signal,
            started_at,
            finished_at: SystemTime::now(),
            reason: None,
        };
        if c.unhealthy_when_stopped {
            c.status.health = Health::Unhealthy;
        }
        for timer in c.timers.drain(..) {
            timer.abort();
        }
        drop(st);
        self.bump();
        true
    }
}

fn log_line(stream: LogStream, message: String) -> LogLine {
    let timestamp_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    LogLine {
        timestamp_ms,
        stream,
        message,
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn capabilities(&self) -> Vec<String> {
        vec![CAPABILITY_HEALTH_CHECK.into()]
    }

    async fn pull(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        self.record(Call::Pull(spec.key.clone()));
        match self.script_for(&spec.key).pull_error {
            Some(e) => Err(RuntimeError::CannotPull(e)),
            None => Ok(()),
        }
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<ContainerStatus, RuntimeError> {
        let key = &spec.key;
        self.record(Call::Start(key.clone()));
        let script = self.script_for(key);
        if self.status_of(key).is_some() {
            return Err(RuntimeError::AlreadyExists);
        }
        if let Some(e) = script.start_error.clone() {
            return Err(RuntimeError::CannotStart(e));
        }
        self.preload(spec, ContainerState::Created, Health::Unknown);
        tokio::time::sleep(script.start_delay).await;
        let timers = self.schedule(key, &script);
        let mut st = self.inner.state.lock();
        let pid = 1000 + st.next_id;
        let c = st.containers.get_mut(key).ok_or(RuntimeError::NotFound)?;
        // Stopped or removed meanwhile: that is what it is now.
        if c.status.state != ContainerState::Created {
            timers.iter().for_each(JoinHandle::abort);
            return Ok(c.status.clone());
        }
        c.status.state = ContainerState::Running {
            pid: Some(pid),
            started_at: SystemTime::now(),
        };
        c.ignore_sigterm = script.ignore_sigterm;
        c.unhealthy_when_stopped = script.unhealthy_when_stopped;
        c.timers = timers;
        for (stream, line) in script.output {
            c.logs.push(log_line(stream, line));
        }
        let status = c.status.clone();
        drop(st);
        self.inner.bump();
        Ok(status)
    }

    async fn status(&self, key: &ContainerKey) -> Result<Option<ContainerStatus>, RuntimeError> {
        Ok(self.status_of(key))
    }

    async fn list(&self) -> Result<Vec<ContainerStatus>, RuntimeError> {
        let st = self.inner.state.lock();
        Ok(st.containers.values().map(|c| c.status.clone()).collect())
    }

    async fn wait(&self, key: &ContainerKey) -> Result<ContainerStatus, RuntimeError> {
        let mut changed = self.inner.changed.subscribe();
        loop {
            let status = self.status_of(key).ok_or(RuntimeError::NotFound)?;
            if status.is_exited() {
                return Ok(status);
            }
            // The sender lives as long as `self`.
            let _ = changed.changed().await;
        }
    }

    async fn stop(&self, key: &ContainerKey, timeout: Duration) -> Result<(), RuntimeError> {
        self.record(Call::Stop(key.clone(), timeout));
        let ignore_sigterm = {
            let st = self.inner.state.lock();
            let c = st.containers.get(key).ok_or(RuntimeError::NotFound)?;
            c.ignore_sigterm
        };
        if !ignore_sigterm {
            self.inner.finish(key, 128 + 15, Some(15));
            return Ok(());
        }
        // It may still exit on its own meanwhile.
        let _ = tokio::time::timeout(timeout, self.wait(key)).await;
        self.inner.finish(key, 128 + 9, Some(9));
        Ok(())
    }

    async fn logs(
        &self,
        key: &ContainerKey,
        offset: u64,
        max_lines: usize,
    ) -> Result<LogChunk, RuntimeError> {
        let st = self.inner.state.lock();
        let c = st.containers.get(key).ok_or(RuntimeError::NotFound)?;
        let from = (offset as usize).min(c.logs.len());
        let lines: Vec<LogLine> = c.logs[from..].iter().take(max_lines).cloned().collect();
        Ok(LogChunk {
            next_offset: (from + lines.len()) as u64,
            lines,
        })
    }

    async fn remove(&self, key: &ContainerKey) -> Result<(), RuntimeError> {
        self.record(Call::Remove(key.clone()));
        let mut st = self.inner.state.lock();
        let c = st.containers.get(key).ok_or(RuntimeError::NotFound)?;
        if !c.status.is_exited() {
            return Err(RuntimeError::StillRunning);
        }
        st.containers.remove(key);
        drop(st);
        self.inner.bump();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    const S: Duration = Duration::from_secs(1);

    fn spec(container: &str) -> ContainerSpec {
        let mut spec = ContainerSpec::new(ContainerKey::new("task1", container), "busybox");
        spec.command = vec!["true".into()];
        spec
    }

    #[tokio::test(start_paused = true)]
    async fn scripted_exit_code_after_its_delay() {
        let rt = FakeRuntime::new();
        rt.script("app", Script::exits(3, 5 * S));
        let t0 = Instant::now();
        let started = rt.start(&spec("app")).await.unwrap();
        assert!(started.is_running());
        let done = rt.wait(&spec("app").key).await.unwrap();
        assert_eq!(done.exit_code(), Some(3));
        assert_eq!(t0.elapsed(), 5 * S);
        assert_eq!(done.id, started.id);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_is_sigterm_or_sigkill_after_the_timeout() {
        let rt = FakeRuntime::new();
        rt.script("stubborn", Script::runs().ignoring_sigterm());
        rt.start(&spec("polite")).await.unwrap();
        rt.start(&spec("stubborn")).await.unwrap();

        let t0 = Instant::now();
        rt.stop(&spec("polite").key, 10 * S).await.unwrap();
        assert_eq!(t0.elapsed(), Duration::ZERO);
        let polite = rt.status(&spec("polite").key).await.unwrap().unwrap();
        assert!(matches!(
            polite.state,
            ContainerState::Exited {
                exit_code: Some(143),
                signal: Some(15),
                ..
            }
        ));

        rt.stop(&spec("stubborn").key, 10 * S).await.unwrap();
        assert_eq!(t0.elapsed(), 10 * S);
        let stubborn = rt.status(&spec("stubborn").key).await.unwrap().unwrap();
        assert!(matches!(
            stubborn.state,
            ContainerState::Exited {
                exit_code: Some(137),
                signal: Some(9),
                ..
            }
        ));
        assert_eq!(
            rt.calls()
                .iter()
                .filter(|c| matches!(c, Call::Stop(..)))
                .count(),
            2
        );
    }

    #[tokio::test(start_paused = true)]
    async fn start_and_pull_failures() {
        let rt = FakeRuntime::new();
        rt.script("bad", Script::fails_to_start("no such file"));
        rt.script("gone", Script::fails_to_pull("manifest unknown"));
        assert_eq!(
            rt.start(&spec("bad")).await,
            Err(RuntimeError::CannotStart("no such file".into()))
        );
        assert_eq!(rt.status(&spec("bad").key).await, Ok(None));
        assert_eq!(
            rt.pull(&spec("gone")).await,
            Err(RuntimeError::CannotPull("manifest unknown".into()))
        );
        rt.start(&spec("ok")).await.unwrap();
        assert_eq!(
            rt.start(&spec("ok")).await,
            Err(RuntimeError::AlreadyExists)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn health_follows_the_script_and_the_test() {
        let rt = FakeRuntime::new();
        rt.script(
            "web",
            Script::runs()
                .health_after(S, Health::Healthy)
                .health_after(5 * S, Health::Unhealthy),
        );
        let key = spec("web").key;
        rt.start(&spec("web")).await.unwrap();
        let health = || async { rt.status(&key).await.unwrap().unwrap().health };
        assert_eq!(health().await, Health::Unknown);
        tokio::time::sleep(2 * S).await;
        assert_eq!(health().await, Health::Healthy);
        tokio::time::sleep(4 * S).await;
        assert_eq!(health().await, Health::Unhealthy);
        rt.set_health(&key, Health::Healthy);
        assert_eq!(health().await, Health::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn logs_page_by_offset() {
        let rt = FakeRuntime::new();
        rt.script("app", Script::runs().output(LogStream::Stdout, "one"));
        let key = spec("app").key;
        rt.start(&spec("app")).await.unwrap();
        rt.emit(&key, LogStream::Stderr, "two");
        rt.emit(&key, LogStream::Stdout, "three");
        let first = rt.logs(&key, 0, 2).await.unwrap();
        let messages: Vec<_> = first.lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["one", "two"]);
        assert_eq!(first.lines[1].stream, LogStream::Stderr);
        let rest = rt.logs(&key, first.next_offset, 10).await.unwrap();
        assert_eq!(rest.lines.len(), 1);
        assert_eq!(rest.lines[0].message, "three");
        let none = rt.logs(&key, rest.next_offset, 10).await.unwrap();
        assert!(none.lines.is_empty());
        assert_eq!(none.next_offset, rest.next_offset);
    }

    #[tokio::test(start_paused = true)]
    async fn manual_exit_wakes_waiters_and_remove_needs_an_exit() {
        let rt = FakeRuntime::new();
        let key = spec("app").key;
        rt.start(&spec("app")).await.unwrap();
        assert_eq!(rt.remove(&key).await, Err(RuntimeError::StillRunning));
        let waiter = tokio::spawn({
            let (rt, key) = (rt.clone(), key.clone());
            async move { rt.wait(&key).await }
        });
        tokio::task::yield_now().await;
        assert!(rt.exit(&key, 7));
        assert_eq!(waiter.await.unwrap().unwrap().exit_code(), Some(7));
        rt.remove(&key).await.unwrap();
        assert_eq!(rt.status(&key).await, Ok(None));
        assert_eq!(rt.remove(&key).await, Err(RuntimeError::NotFound));
        assert_eq!(
            rt.calls(),
            [
                Call::Start(key.clone()),
                Call::Remove(key.clone()),
                Call::Remove(key.clone()),
                Call::Remove(key)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn preloaded_containers_are_listed_for_adoption() {
        let rt = FakeRuntime::new();
        let running = ContainerState::Running {
            pid: Some(42),
            started_at: SystemTime::now(),
        };
        let left = rt.preload(&spec("old"), running, Health::Healthy);
        let list = rt.list().await.unwrap();
        assert_eq!(list, std::slice::from_ref(&left));
        assert!(rt.exit(&left.key, 0));
        assert_eq!(rt.wait(&left.key).await.unwrap().exit_code(), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_start_is_created_first() {
        let rt = FakeRuntime::new();
        rt.script("slow", Script::runs().start_delay(2 * S));
        let key = spec("slow").key;
        let start = tokio::spawn({
            let rt = rt.clone();
            async move { rt.start(&spec("slow")).await }
        });
        tokio::time::sleep(S).await;
        let during = rt.status(&key).await.unwrap().unwrap();
        assert_eq!(during.state, ContainerState::Created);
        assert!(start.await.unwrap().unwrap().is_running());
    }
}
