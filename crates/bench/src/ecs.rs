//! ECS calls for the task workloads: a signed JSON request whose 200
//! answer is parsed, and the few members of a `Task` the benchmarks read.

use crate::client::Conn;
use anyhow::{bail, Context};
use berth_core::task::{ContainerStatus, TaskStatus};
use bytes::Bytes;
use serde_json::{json, Value};
use std::time::Duration;

/// No single request may take longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `operation` with `body`; any answer but 200 is an error quoting it.
pub async fn call(conn: &mut Conn, operation: &str, body: &Value) -> anyhow::Result<Value> {
    let bytes = Bytes::from(serde_json::to_vec(body)?);
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, conn.call(operation, bytes)).await;
    let (status, resp) = match answer {
        Ok(r) => r.with_context(|| format!("{operation}: transport"))?,
        Err(_) => {
            conn.reset();
            bail!("{operation}: no answer within {REQUEST_TIMEOUT:?}");
        }
    };
    if !status.is_success() {
        bail!(
            "{operation} answered {status}: {}",
            String::from_utf8_lossy(&resp)
        );
    }
    serde_json::from_slice(&resp).with_context(|| format!("{operation}: answer is not JSON"))
}

/// The members of a task the benchmarks look at. Timestamps are epoch
/// seconds with milliseconds, as the server sends them.
#[derive(Debug, Clone, Default)]
pub struct TaskInfo {
    pub arn: String,
    /// `lastStatus` (None: absent, or a value ECS does not define).
    pub last_status: Option<TaskStatus>,
    pub stopped_reason: Option<String>,
    /// Each container's lastStatus, exitCode and reason.
    pub containers: Vec<(Option<ContainerStatus>, Option<i64>, Option<String>)>,
    pub created_at: Option<f64>,
    pub pull_started_at: Option<f64>,
    pub pull_stopped_at: Option<f64>,
    pub started_at: Option<f64>,
    pub execution_stopped_at: Option<f64>,
    pub stopped_at: Option<f64>,
}

impl TaskInfo {
    pub fn parse(v: &Value) -> TaskInfo {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        let t = |k: &str| v[k].as_f64();
        let containers = v["containers"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            c["lastStatus"].as_str().and_then(ContainerStatus::parse),
                            c["exitCode"].as_i64(),
                            c["reason"].as_str().map(str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        TaskInfo {
            arn: s("taskArn").unwrap_or_default(),
            last_status: v["lastStatus"].as_str().and_then(TaskStatus::parse),
            stopped_reason: s("stoppedReason"),
            containers,
            created_at: t("createdAt"),
            pull_started_at: t("pullStartedAt"),
            pull_stopped_at: t("pullStoppedAt"),
            started_at: t("startedAt"),
            execution_stopped_at: t("executionStoppedAt"),
            stopped_at: t("stoppedAt"),
        }
    }

    /// Started, for the throughput count: a container reports RUNNING, or
    /// the task stopped with every container's exit code 0.
    pub fn started(&self) -> bool {
        let any_running = self
            .containers
            .iter()
            .any(|c| c.0 == Some(ContainerStatus::Running));
        let clean_exit = self.last_status == Some(TaskStatus::Stopped)
            && !self.containers.is_empty()
            && self.containers.iter().all(|c| c.1 == Some(0));
        any_running || clean_exit
    }

    /// Why the task stopped, with its containers' reasons and exit codes.
    pub fn why(&self) -> String {
        let mut s = self.stopped_reason.clone().unwrap_or_else(|| "-".into());
        for (status, code, reason) in &self.containers {
            s += &format!(
                "; container {} exitCode {} reason {}",
                status.map_or("-", ContainerStatus::as_str),
                code.map_or("-".into(), |c| c.to_string()),
                reason.as_deref().unwrap_or("-")
            );
        }
        s
    }
}

/// `tasks` and `failures` (reason, detail) of a RunTask answer.
pub fn run_task_outcome(v: &Value) -> (Vec<TaskInfo>, Vec<String>) {
    let tasks = v["tasks"]
        .as_array()
        .map(|ts| ts.iter().map(TaskInfo::parse).collect())
        .unwrap_or_default();
    let failures = v["failures"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    let reason = f["reason"].as_str().unwrap_or("?");
                    match f["detail"].as_str() {
                        Some(d) => format!("{reason} ({d})"),
                        None => reason.to_owned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    (tasks, failures)
}

/// DescribeTasks of up to 100 ARNs in `cluster`.
pub async fn describe(
    conn: &mut Conn,
    cluster: &str,
    arns: &[String],
) -> anyhow::Result<Vec<TaskInfo>> {
    let v = call(
        conn,
        "DescribeTasks",
        &json!({"cluster": cluster, "tasks": arns}),
    )
    .await?;
    let (tasks, failures) = run_task_outcome(&v);
    if let Some(f) = failures.first() {
        bail!("DescribeTasks reported a failure: {f}");
    }
    Ok(tasks)
}

/// Whether a failure reason is the scheduler's "no CPU left".
pub fn is_cpu_shortage(reason: &str) -> bool {
    reason.starts_with("RESOURCE:CPU")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_task_and_its_outcome() {
        let v = json!({
            "tasks": [{"taskArn": "arn:t", "lastStatus": "STOPPED", "createdAt": 1.5,
                "startedAt": 1.75, "containers": [{"lastStatus": "STOPPED", "exitCode": 0}]}],
            "failures": [{"arn": "x", "reason": "RESOURCE:CPU"}]
        });
        let (tasks, failures) = run_task_outcome(&v);
        assert_eq!(tasks[0].arn, "arn:t");
        assert_eq!(tasks[0].created_at, Some(1.5));
        assert!(tasks[0].started());
        assert_eq!(failures, ["RESOURCE:CPU"]);
        assert!(is_cpu_shortage(&failures[0]));
        let mut failed = tasks[0].clone();
        failed.containers[0].1 = Some(1);
        assert!(!failed.started());
        failed.containers[0].0 = Some(ContainerStatus::Running);
        assert!(failed.started());
    }
}
