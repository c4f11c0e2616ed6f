//! `awslogs`: a container's output shipped to CloudWatch Logs, to group
//! `awslogs-group`, stream `{awslogs-stream-prefix}/{container}/{task-id}`.
//! The read offset is saved after every batch the control plane accepted,
//! so an agent that restarts neither loses nor repeats lines.

use crate::ControlPlane;
use berth_runtime::{ContainerKey, Runtime};
use berth_wire::ecs::{ContainerDefinition, LogDriver};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// PutLogEvents limits: 10,000 events and 1 MiB (26 bytes overhead each).
const MAX_EVENTS: usize = 10_000;
/// How long a shipper waits when a read found nothing: doubling from the
/// first to the second while the container stays quiet.
const IDLE_MIN: Duration = Duration::from_millis(100);
const IDLE_MAX: Duration = Duration::from_secs(1);
const MAX_BYTES: usize = 1_048_576;

/// Where a container's awslogs output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub group: String,
    pub stream: String,
    pub create_group: bool,
}

/// The destination of a container whose log driver is `awslogs`.
pub fn destination(c: &ContainerDefinition, task_id: &str) -> Option<Destination> {
    let lc = c.log_configuration.as_ref()?;
    if lc.log_driver != LogDriver::Awslogs {
        return None;
    }
    let opts = lc.options.clone().unwrap_or_default();
    let group = opts.get("awslogs-group")?.clone();
    let name = c.name.clone().unwrap_or_default();
    let stream = match opts.get("awslogs-stream-prefix") {
        Some(p) => format!("{p}/{name}/{task_id}"),
        None => format!("{name}/{task_id}"),
    };
    let create_group = opts
        .get("awslogs-create-group")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Some(Destination {
        group,
        stream,
        create_group,
    })
}

pub struct Shipper {
    finishing: Arc<AtomicBool>,
    /// Cuts an idle wait short when the shipper is to finish.
    wake: Arc<tokio::sync::Notify>,
    handle: tokio::task::JoinHandle<()>,
}

impl Shipper {
    pub fn spawn(
        control: Arc<dyn ControlPlane>,
        runtime: Arc<dyn Runtime>,
        key: ContainerKey,
        task_arn: String,
        dest: Destination,
        offset_file: PathBuf,
    ) -> Shipper {
        let finishing = Arc::new(AtomicBool::new(false));
        let f = finishing.clone();
        let wake = Arc::new(tokio::sync::Notify::new());
        let woken = wake.clone();
        let handle = tokio::spawn(async move {
            let wake = woken;
            let mut offset: u64 = std::fs::read_to_string(&offset_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            // A quiet container is read less and less often (up to once a
            // second); output brings the pace back.
            let mut idle = IDLE_MIN;
            loop {
                let done = f.load(Ordering::SeqCst);
                let chunk = match runtime.logs(&key, offset, MAX_EVENTS).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(container = %key, error = %e, "reading output failed");
                        if done {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                if chunk.lines.is_empty() {
                    if done {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(idle) => {}
                        _ = wake.notified() => {}
                    }
                    idle = (idle * 2).min(IDLE_MAX);
                    continue;
                }
                idle = IDLE_MIN;
                let mut events: Vec<(i64, String)> = chunk
                    .lines
                    .into_iter()
                    .filter(|l| !l.message.is_empty())
                    .map(|l| (l.timestamp_ms, l.message))
                    .collect();
                // stdout and stderr interleave; CloudWatch wants time order.
                events.sort_by_key(|(t, _)| *t);
                for batch in batches(events) {
                    let mut backoff = Duration::from_millis(100);
                    while let Err(e) = control
                        .put_log_events(&task_arn, &dest.group, &dest.stream, batch.clone())
                        .await
                    {
                        tracing::warn!(container = %key, error = %e, "shipping logs failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
                offset = chunk.next_offset;
                if let Err(e) = crate::write_private(&offset_file, offset.to_string().as_bytes()) {
                    tracing::warn!(error = %e, "saving the log offset failed");
                }
            }
        });
        Shipper {
            finishing,
            wake,
            handle,
        }
    }

    /// Ships what is left and waits for it (at most `limit`).
    pub async fn finish(self, limit: Duration) {
        self.finishing.store(true, Ordering::SeqCst);
        self.wake.notify_one();
        let _ = tokio::time::timeout(limit, self.handle).await;
    }
}

fn batches(events: Vec<(i64, String)>) -> Vec<Vec<(i64, String)>> {
    let mut out = vec![Vec::new()];
    let mut bytes = 0;
    for e in events {
        let size = e.1.len() + 26;
        let cur = out.last_mut().expect("one batch");
        if !cur.is_empty() && (cur.len() == MAX_EVENTS || bytes + size > MAX_BYTES) {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("one batch").push(e);
    }
    out.retain(|b| !b.is_empty());
    out
}
