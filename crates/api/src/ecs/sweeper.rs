//! Housekeeping the control plane does on its own, across every account
//! and region: stop the tasks of agents that have been silent too long
//! (freeing their resources), and forget STOPPED tasks once their
//! retention has passed.

use super::container_instances::{InstanceDoc, INACTIVE};
use super::tasks::{self, TaskDoc};
use super::Ecs;
use crate::records::{self, kind, store_error, try_commit, Record};
use berth_core::task::{Stop, TaskStatus};
use berth_core::EcsError;
use berth_store::{Expect, Query, Write};
use berth_wire::RequestContext;

/// How often expired STOPPED tasks are looked for.
const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub tasks_of_lost_agents_stopped: usize,
    pub expired_tasks_removed: usize,
}

impl Ecs {
    /// One pass of housekeeping; the server runs it every few seconds.
    pub async fn sweep(&self) -> Result<Swept, berth_wire::ApiError> {
        // Expiry reads every STOPPED task, so it runs at most once a minute
        // (and only when the retention is that long or longer).
        let due = {
            let mut last = self.last_expiry.lock();
            let every = EXPIRY_EVERY.min(self.timings.stopped_task_retention);
            let now = self.clock.monotonic();
            let due = last.is_none_or(|t| now.saturating_sub(t) >= every);
            if due {
                *last = Some(now);
            }
            due
        };
        Ok(Swept {
            tasks_of_lost_agents_stopped: stop_tasks_of_lost_agents(self).await?,
            expired_tasks_removed: if due {
                remove_expired_tasks(self).await?
            } else {
                0
            },
        })
    }
}

async fn stop_tasks_of_lost_agents(ecs: &Ecs) -> Result<usize, EcsError> {
    let limit = ecs.timings.agent_disconnect_grace + ecs.timings.agent_lost_timeout;
    let mut stopped = 0;
    for scope in ecs
        .store()
        .scopes(kind::CONTAINER_INSTANCE)
        .await
        .map_err(store_error)?
    {
        let q = Query {
            limit: 1_000_000,
            ..Default::default()
        };
        let lost: Vec<InstanceDoc> = records::list::<InstanceDoc>(ecs.store(), &scope, &q)
            .await?
            .into_iter()
            .map(|d| d.value)
            .filter(|d| {
                d.instance.status.as_deref() != Some(INACTIVE)
                    && ecs.liveness.silence(d.arn()) > limit
            })
            .collect();
        for inst in lost {
            let aq = Query {
                parent: Some(inst.id.clone()),
                limit: 1_000_000,
                ..Default::default()
            };
            for a in records::list::<tasks::AssignmentDoc>(ecs.store(), &scope, &aq).await? {
                let ctx = RequestContext::for_account(&a.value.account, &a.value.region);
                let stop = Stop::agent_lost(inst.arn(), limit);
                if tasks::force_stop(ecs, &ctx, &a.value.task_id, &stop).await? {
                    stopped += 1;
                }
            }
        }
    }
    Ok(stopped)
}

async fn remove_expired_tasks(ecs: &Ecs) -> Result<usize, EcsError> {
    let now_ms = ecs.now().as_millis();
    let keep_ms = ecs.timings.stopped_task_retention.as_millis() as i64;
    let mut removed = 0;
    for scope in ecs.store().scopes(kind::TASK).await.map_err(store_error)? {
        let mut after = None;
        loop {
            let q = Query {
                status: Some(TaskStatus::Stopped.as_str().into()),
                after: after.clone(),
                limit: 1000,
                ..Default::default()
            };
            let batch = records::list::<TaskDoc>(ecs.store(), &scope, &q).await?;
            let done = batch.len() < 1000;
            let expired: Vec<Write> = batch
                .iter()
                .inspect(|d| after = Some(d.value.sort()))
                .filter(|d| {
                    d.value
                        .task
                        .stopped_at
                        .is_some_and(|t| now_ms - t.as_millis() > keep_ms)
                })
                .map(|d| Write::Delete {
                    kind: kind::TASK,
                    id: d.value.id(),
                    expect: Expect::Version(d.version),
                })
                .collect();
            if !expired.is_empty() {
                let n = expired.len();
                if try_commit(ecs.store(), &scope, expired).await? {
                    removed += n;
                }
            }
            if done {
                break;
            }
        }
    }
    Ok(removed)
}
