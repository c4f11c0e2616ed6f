//! The workloads and the two load generators.
//!
//! - Closed loop: C connections, each sends its next request as soon as the
//!   previous answer arrived; measures maximum throughput.
//! - Open loop: requests are due on a fixed schedule (a pacer thread), sent
//!   by a pool of connections whether or not earlier ones completed, and
//!   latency is measured from the *scheduled* time, so a server that falls
//!   behind is charged for the queueing it causes (no coordinated omission).

use crate::client::{Conn, Target};
use crate::cpu::{CpuSample, CpuUse};
use anyhow::{bail, Context};
use bytes::Bytes;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

/// No single request may take longer than this; it then counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Latencies are recorded in microseconds, up to this many.
const MAX_LATENCY_US: u64 = 120_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    DescribeClusters,
    RegisterTaskDefinition,
}

impl Workload {
    pub fn label(self) -> &'static str {
        match self {
            Workload::DescribeClusters => "DescribeClusters",
            Workload::RegisterTaskDefinition => "RegisterTaskDefinition",
        }
    }

    fn body(self, n: u64) -> Bytes {
        match self {
            Workload::DescribeClusters => Bytes::from_static(br#"{"clusters":["bench"]}"#),
            Workload::RegisterTaskDefinition => Bytes::from(format!(
                r#"{{"family":"bench-{}","containerDefinitions":[{{"name":"app","image":"busybox","memory":64,"essential":true}}]}}"#,
                n % 50
            )),
        }
    }

    /// What must exist before the workload runs.
    pub async fn setup(self, target: &Arc<Target>) -> anyhow::Result<()> {
        if self == Workload::DescribeClusters {
            let mut conn = Conn::connect(target.clone()).await?;
            let body = Bytes::from_static(br#"{"clusterName":"bench"}"#);
            let (status, resp) = conn.call("CreateCluster", body).await?;
            if !status.is_success() {
                bail!(
                    "{}: CreateCluster answered {status}: {}",
                    target.name,
                    String::from_utf8_lossy(&resp)
                );
            }
        }
        Ok(())
    }
}

/// What one run measured (only requests started, or due, after the warm-up).
pub struct RunResult {
    /// Latencies of successful requests, in microseconds.
    pub hist: Histogram<u64>,
    pub ok: u64,
    /// Non-200 answers, transport errors and timeouts (warm-up included).
    pub errors: u64,
    pub first_error: Option<String>,
    /// The measured window: from the end of the warm-up to the last answer.
    pub elapsed: Duration,
    pub reconnects: u64,
    /// Open loop only: requests never sent because the run's grace period
    /// ended while they were still queued.
    pub dropped: u64,
    /// Open loop only: how late requests were sent after they were due, in
    /// microseconds (pacer and client delay, not the server's).
    pub send_lag: Histogram<u64>,
    /// Every answer or failure, warm-up included (the CPU figures' divisor).
    pub completed: u64,
    /// CPU used over the whole run, warm-up included.
    pub cpu: CpuUse,
}

impl RunResult {
    fn new() -> RunResult {
        RunResult {
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds"),
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            reconnects: 0,
            dropped: 0,
            send_lag: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds"),
            completed: 0,
            cpu: CpuUse::default(),
        }
    }

    /// CPU microseconds per request (warm-up included) of `cpu`.
    pub fn cpu_us_per_request(&self, cpu: Option<Duration>) -> Option<f64> {
        let cpu = cpu?;
        (self.completed > 0).then(|| cpu.as_secs_f64() * 1e6 / self.completed as f64)
    }

    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency at `q` (0..=1), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }

    fn merge(&mut self, other: RunResult) {
        self.hist.add(&other.hist).expect("same bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.elapsed = self.elapsed.max(other.elapsed);
        self.reconnects += other.reconnects;
        self.dropped += other.dropped;
        self.send_lag.add(&other.send_lag).expect("same bounds");
        self.completed += other.completed;
    }

    /// Sends request `n` and records its outcome: a success's latency
    /// (from `since`) when `measured` (false during warm-up), or the error.
    /// Returns when it completed and whether the connection failed.
    async fn send(
        &mut self,
        conn: &mut Conn,
        workload: Workload,
        n: u64,
        since: Instant,
        measured: bool,
    ) -> (Instant, bool) {
        let result = tokio::time::timeout(
            REQUEST_TIMEOUT,
            conn.call(workload.label(), workload.body(n)),
        )
        .await;
        let done = Instant::now();
        self.completed += 1;
        let (error, transport) = match result {
            Ok(Ok((status, _))) if status.is_success() => (None, false),
            Ok(Ok((status, body))) => (
                Some(format!("HTTP {status}: {}", String::from_utf8_lossy(&body))),
                false,
            ),
            Ok(Err(e)) => (Some(format!("transport: {e:#}")), true),
            Err(_) => {
                conn.reset();
                (Some(format!("timeout after {REQUEST_TIMEOUT:?}")), true)
            }
        };
        match error {
            None if measured => {
                self.ok += 1;
                let us = (done - since).as_micros() as u64;
                self.hist.saturating_record(us.max(1));
            }
            None => {}
            Some(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
        (done, transport)
    }
}

/// Opens `n` connections up front, so connecting is not part of the run.
async fn connect_all(target: &Arc<Target>, n: usize) -> anyhow::Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(Conn::connect(target.clone()).await?);
    }
    Ok(conns)
}

pub async fn closed_loop(
    target: &Arc<Target>,
    workload: Workload,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<RunResult> {
    let conns = connect_all(target, concurrency).await?;
    let cpu = CpuSample::start(target.pid);
    let seq = Arc::new(AtomicU64::new(0));
    let warm_end = Instant::now() + warmup;
    let end = warm_end + duration;
    let mut tasks = Vec::new();
    for mut conn in conns {
        let seq = seq.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = RunResult::new();
            while Instant::now() < end {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let start = Instant::now();
                let measured = start >= warm_end;
                let (done, failed) = r.send(&mut conn, workload, n, start, measured).await;
                if measured {
                    r.elapsed = r.elapsed.max(done - warm_end);
                }
                if failed {
                    // Don't spin on a dead server.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            r.reconnects = conn.reconnects;
            r
        }));
    }
    let mut result = collect(tasks).await?;
    result.cpu = cpu.since();
    Ok(result)
}

pub async fn open_loop(
    target: &Arc<Target>,
    workload: Workload,
    rate: u32,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<RunResult> {
    let conns = connect_all(target, connections).await?;
    let cpu = CpuSample::start(target.pid);
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let total = ((warmup + duration).as_secs_f64() * f64::from(rate)).round() as u64;
    let t0 = Instant::now() + Duration::from_millis(20);
    let warm_end = t0 + warmup;
    // After the schedule ends, queued requests get this long to be sent.
    let give_up =
        warm_end + duration + duration.clamp(Duration::from_secs(2), Duration::from_secs(10));

    let (tx, rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    // A thread paces the schedule: its sleep is finer than tokio's 1 ms timer.
    let pacer = std::thread::Builder::new()
        .name("pacer".into())
        .spawn(move || {
            for i in 0..total {
                let due = t0 + period.mul_f64(i as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if tx.send((i, due)).is_err() {
                    break;
                }
            }
        })
        .context("starting the pacer thread")?;

    let rx = Arc::new(Mutex::new(rx));
    let mut tasks = Vec::new();
    for mut conn in conns {
        let rx = rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = RunResult::new();
            loop {
                let next = rx.lock().await.recv().await;
                let Some((n, due)) = next else { break };
                if Instant::now() >= give_up {
                    r.dropped += 1;
                    continue;
                }
                let measured = due >= warm_end;
                if measured {
                    let lag = (Instant::now() - due).as_micros() as u64;
                    r.send_lag.saturating_record(lag.max(1));
                }
                let (done, _) = r.send(&mut conn, workload, n, due, measured).await;
                if measured {
                    r.elapsed = r.elapsed.max(done - warm_end);
                }
            }
            r.reconnects = conn.reconnects;
            r
        }));
    }
    let result = collect(tasks).await;
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    let mut result = result?;
    result.cpu = cpu.since();
    Ok(result)
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<RunResult>>) -> anyhow::Result<RunResult> {
    let mut total = RunResult::new();
    for t in tasks {
        total.merge(t.await.context("a load task panicked")?);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_bodies_cycle_through_50_families() {
        let body = Workload::RegisterTaskDefinition.body(123);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["family"], "bench-23");
        assert_eq!(v["containerDefinitions"][0]["memory"], 64);
        let body = Workload::DescribeClusters.body(7);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["clusters"][0], "bench");
    }

    #[test]
    fn merged_results_add_up() {
        let mut a = RunResult::new();
        a.ok = 2;
        a.hist.record(1000).unwrap();
        a.elapsed = Duration::from_secs(1);
        let mut b = RunResult::new();
        b.ok = 2;
        b.errors = 1;
        b.first_error = Some("HTTP 400".into());
        b.hist.record(3000).unwrap();
        a.merge(b);
        assert_eq!((a.ok, a.errors), (4, 1));
        assert_eq!(a.first_error.as_deref(), Some("HTTP 400"));
        assert!((a.rate() - 4.0).abs() < 1e-9);
        assert!((a.max_ms() - 3.0).abs() < 0.01);
    }
}
