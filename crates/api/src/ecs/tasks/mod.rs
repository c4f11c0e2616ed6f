//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks, and the
//! agent's reports (SubmitTaskStateChange, SubmitContainerStateChange).
//!
//! A task document holds the task as DescribeTasks shows it, the revision
//! it runs (so later deregistration cannot change a running task), where it
//! was placed and what it reserved there. An assignment document, in the
//! scope of the instance, lists each live task under its instance: it is
//! what an agent's poll reads, and it goes away when the task stops.

pub(crate) mod launch;
mod lifecycle;
pub(crate) mod protection;
mod queries;

pub use launch::{run, start};
pub(crate) use lifecycle::request_stop;
pub use lifecycle::{
    force_stop, stop, submit_container_state_change, submit_health, submit_task_network,
    submit_task_state_change,
};
pub use queries::{describe, list};

use super::container_instances::{self, InstanceDoc, INACTIVE};
use super::{clusters, task_definitions, Ecs};
use crate::records::{
    self, kind, load, retry, scope, try_commit, Attempt, Batch, Record, Versioned,
};
use berth_core::pagination::{page_size, PageKey};
use berth_core::task::{
    self as rules, lifecycle as transitions, Demand, Protocol, Stop, TaskStatus, TaskStatuses,
};
use berth_core::{arn, tags, EcsError};
use berth_scheduler::{self as scheduler, Placement};
use berth_store::{Expect, Query, Scope, Write};
use berth_wire::ecs::*;
use berth_wire::{RequestContext, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDoc {
    pub id: String,
    pub cluster: String,
    pub task: Task,
    #[serde(rename = "taskDefinition")]
    pub task_definition: TaskDefinition,
    /// The container instance it runs on (in `instance_scope`).
    pub instance_id: Option<String>,
    /// Where the instance document lives: the task's own scope for EC2 and
    /// EXTERNAL tasks, berth's managed-capacity scope for FARGATE.
    pub instance_scope: Option<(String, String)>,
    /// What it holds on its instance until it stops (stored as `needs`,
    /// the name earlier versions gave it).
    #[serde(rename = "needs")]
    pub reserved: Demand,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The service that started it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<TaskOwner>,
    /// Task scale-in protection (UpdateTaskProtection), until this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_until: Option<Timestamp>,
}

/// The service (and deployment) a task was started for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOwner {
    pub service_name: String,
    pub deployment_id: String,
}

impl TaskDoc {
    pub fn last_status(&self) -> TaskStatus {
        self.task.status()
    }

    pub fn arn(&self) -> &str {
        self.task.task_arn.as_deref().unwrap_or_default()
    }

    /// Whether its instance is one of the cluster's own (not berth's
    /// managed capacity, whose instance no customer sees).
    pub fn instance_scope_is_own(&self) -> bool {
        self.instance_scope
            .as_ref()
            .is_some_and(|(account, _)| *account != managed_scope().account)
    }
}

/// CPU units and MiB reserved on each of the cluster's instances by the
/// tasks assigned to them.
pub async fn reservations_by_instance(
    ecs: &Ecs,
    scope: &Scope,
    cluster: &str,
) -> Result<std::collections::HashMap<String, (i64, i64)>, EcsError> {
    let q = Query {
        parent: Some(cluster.to_string()),
        limit: 1_000_000,
        ..Default::default()
    };
    let mut out = std::collections::HashMap::new();
    for inst in records::list::<InstanceDoc>(ecs.store(), scope, &q).await? {
        let aq = Query {
            parent: Some(inst.value.id.clone()),
            limit: 1_000_000,
            ..Default::default()
        };
        let used = records::list::<AssignmentDoc>(ecs.store(), scope, &aq)
            .await?
            .iter()
            .fold((0, 0), |(c, m), a| {
                (c + a.value.reserved.cpu, m + a.value.reserved.memory)
            });
        out.insert(inst.value.id, used);
    }
    Ok(out)
}

impl Record for TaskDoc {
    const KIND: &'static str = kind::TASK;
    fn id(&self) -> String {
        self.id.clone()
    }
    fn parent(&self) -> String {
        self.cluster.clone()
    }
    fn status(&self) -> String {
        self.last_status().as_str().to_string()
    }
}

/// A live task listed under its instance, for the instance's agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssignmentDoc {
    pub account: String,
    pub region: String,
    pub task_id: String,
    pub instance_id: String,
    /// The instance's cluster (berth's managed one for FARGATE): the sort
    /// key starts with it, so placement reads one cluster's reservations
    /// by an index range rather than every assignment of the scope.
    /// Empty in documents stored before; `Ecs::upgrade_stored` fills it.
    #[serde(default)]
    pub cluster: String,
    /// The task's reservation, which placement counts against the instance.
    #[serde(rename = "needs")]
    pub reserved: Demand,
    /// The task's group, for `task:group` in placement expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Record for AssignmentDoc {
    const KIND: &'static str = kind::ASSIGNMENT;
    fn id(&self) -> String {
        format!("{}\t{}\t{}", self.account, self.region, self.task_id)
    }
    fn parent(&self) -> String {
        self.instance_id.clone()
    }
    fn sort(&self) -> String {
        format!("{}\t{}", self.cluster, self.id())
    }
}

impl AssignmentDoc {
    /// The sort-key prefix of a cluster's assignments.
    pub fn cluster_prefix(cluster: &str) -> String {
        format!("{cluster}\t")
    }
}

/// The cluster of the instance `t` is assigned to.
pub fn instance_cluster(t: &TaskDoc) -> String {
    if t.instance_scope_is_own() {
        t.cluster.clone()
    } else {
        crate::ecs::MANAGED_CLUSTER.to_string()
    }
}

/// The scope berth's managed (FARGATE) capacity registers in.
pub fn managed_scope() -> Scope {
    Scope::new("berth", "managed")
}

/// Tasks of a cluster that have not stopped, read through the status index.
pub async fn active_in_cluster(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
) -> Result<Vec<TaskDoc>, EcsError> {
    let mut out = Vec::new();
    for s in TaskStatus::ALL.iter().filter(|s| s.holds_resources()) {
        let q = Query {
            parent: Some(cluster.to_string()),
            status: Some(s.as_str().into()),
            limit: 1_000_000,
            ..Default::default()
        };
        out.extend(
            records::list::<TaskDoc>(ecs.store(), &scope(ctx), &q)
                .await?
                .into_iter()
                .map(|d| d.value),
        );
    }
    Ok(out)
}

fn parse_task_id(ctx: &RequestContext, reference: &str) -> Option<String> {
    if !arn::looks_like_arn(reference) {
        return Some(reference.to_string());
    }
    let a = arn::Arn::parse(reference)?;
    if a.account != ctx.account_id || a.region != ctx.region {
        return None;
    }
    match a.resource_type_and_id() {
        ("task", rest) => rest.rsplit('/').next().map(str::to_string),
        _ => None,
    }
}

pub async fn find(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    reference: &str,
) -> Result<Option<Versioned<TaskDoc>>, EcsError> {
    let Some(id) = parse_task_id(ctx, reference) else {
        return Ok(None);
    };
    Ok(load::<TaskDoc>(ecs.store(), &scope(ctx), &id)
        .await?
        .filter(|d| d.value.cluster == cluster))
}

/// Applies `change` to a task with optimistic retries; wakes its agent's
/// poll when the agent has something to learn: a desired status that
/// changed, or a task that stopped (its assignment went with it). Not for
/// the agent's own reports, its task's health or protection: waking the
/// poll for those made every report cost a full work list.
async fn modify(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    reference: &str,
    change: impl Fn(&mut TaskDoc) -> Result<(), EcsError>,
) -> Result<Option<TaskDoc>, EcsError> {
    let wake_agent = std::sync::atomic::AtomicBool::new(false);
    let changed = retry(ecs.store(), async || {
        let Some(mut doc) = find(ecs, ctx, cluster, reference).await? else {
            return Ok(Attempt::Done(None));
        };
        let before = doc.value.last_status();
        let desired_before = doc.value.task.desired();
        change(&mut doc.value)?;
        lifecycle::interface_follows(&mut doc.value, before);
        doc.value.task.version = Some(doc.value.task.version.unwrap_or(0) + 1);
        let stopping_now =
            before != TaskStatus::Stopped && doc.value.last_status() == TaskStatus::Stopped;
        wake_agent.store(
            stopping_now || doc.value.task.desired() != desired_before,
            std::sync::atomic::Ordering::Relaxed,
        );
        let ports_grew = absorb_bound_ports(&mut doc.value);
        let mut writes = vec![doc.write()];
        if ports_grew && doc.value.last_status() != TaskStatus::Stopped {
            // Placement reads reservations from the assignment: it must
            // know the dynamic ports too. Bridge tasks never run on the
            // managed capacity, so the assignment shares the task's scope
            // and this commit's version check on the task guards it.
            if let Some(w) = assignment_update(ctx, &doc.value) {
                writes.push(w);
            }
        }
        let mut batches = Vec::new();
        if stopping_now {
            // The reservation must be gone by the time STOPPED is visible:
            // in the same commit when the instance shares the task's scope;
            // otherwise (managed capacity) first — should the task's commit
            // then fail, its agent sees it unassigned and stops it anyway.
            match release_write(ctx, &doc.value) {
                (true, Some((w, _))) => writes.push(w),
                (false, Some((w, instance_scope))) => {
                    batches.push(Batch::new(instance_scope, vec![w]))
                }
                _ => {}
            }
        }
        batches.push(Batch::new(scope(ctx), writes));
        Ok(Attempt::CommitInOrder {
            batches,
            value: Some(doc.value),
        })
    })
    .await?;
    if let Some(t) = &changed {
        if let Some(i) = t
            .instance_id
            .as_ref()
            .filter(|_| wake_agent.load(std::sync::atomic::Ordering::Relaxed))
        {
            ecs.work.bump(i);
        }
        // Its service watches it.
        if let Some(o) = &t.service {
            ecs.services
                .wake(ctx, &super::services::key(&t.cluster, &o.service_name));
        }
    }
    Ok(changed)
}

/// Adds the host ports the task's containers really bound (dynamic ones
/// included: ECS counts them in the instance's PORTS) to its reservation.
/// Returns whether any was new.
fn absorb_bound_ports(t: &mut TaskDoc) -> bool {
    let bound: Vec<(Protocol, u16)> = t
        .task
        .containers
        .iter()
        .flatten()
        .flat_map(|c| c.network_bindings.iter().flatten())
        .filter_map(|b| {
            let port = u16::try_from(b.host_port?).ok()?;
            let proto = b
                .protocol
                .as_ref()
                .map_or(Protocol::Tcp, Protocol::from_wire);
            Some((proto, port))
        })
        .collect();
    let mut grew = false;
    for p in bound {
        if !t.reserved.host_ports.contains(&p) {
            t.reserved.host_ports.push(p);
            grew = true;
        }
    }
    grew
}

/// The task's assignment rewritten with its current reservation, when the
/// instance is in the task's own scope.
fn assignment_update(ctx: &RequestContext, t: &TaskDoc) -> Option<Write> {
    let (account, region) = t.instance_scope.as_ref()?;
    if *account != ctx.account_id || *region != ctx.region {
        return None;
    }
    let a = AssignmentDoc {
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        task_id: t.id.clone(),
        instance_id: t.instance_id.clone()?,
        cluster: t.cluster.clone(),
        reserved: t.reserved.clone(),
        group: t.task.group.clone(),
    };
    Some(Write::Put {
        doc: crate::records::to_doc(&a, 0),
        expect: Expect::Any,
    })
}

/// The write that frees a stopped task's place on its instance, the scope
/// it belongs in, and whether that is the task's own scope.
fn release_write(ctx: &RequestContext, t: &TaskDoc) -> (bool, Option<(Write, Scope)>) {
    let Some((account, region)) = &t.instance_scope else {
        return (false, None);
    };
    let id = format!("{}\t{}\t{}", ctx.account_id, ctx.region, t.id);
    let w = Write::Delete {
        kind: kind::ASSIGNMENT,
        id,
        expect: Expect::Any,
    };
    let same = *account == ctx.account_id && *region == ctx.region;
    (same, Some((w, Scope::new(account, region))))
}

/// The view DescribeTasks and RunTask answer with (RunTask and StartTask
/// show the tags the task was given; DescribeTasks only when asked).
pub fn view(doc: &TaskDoc, include_tags: bool) -> Task {
    let mut t = doc.task.clone();
    t.tags = Some(if include_tags {
        doc.tags.clone()
    } else {
        vec![]
    });
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents as earlier versions stored them must still decode.
    #[test]
    fn task_and_assignment_documents_stored_earlier_still_decode() {
        let task = r#"{
            "id": "0123456789abcdef0123456789abcdef",
            "cluster": "c",
            "task": {"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef0123456789abcdef",
                     "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "version": 3},
            "taskDefinition": {"family": "web", "revision": 1},
            "instance_id": "i1",
            "instance_scope": ["123456789012", "us-east-1"],
            "needs": {"cpu": 256, "memory": 512, "host_ports": [["tcp", 8080]]}
        }"#;
        let t: TaskDoc = serde_json::from_str(task).unwrap();
        assert_eq!(t.last_status(), TaskStatus::Running);
        assert_eq!((t.reserved.cpu, t.reserved.memory), (256, 512));
        assert_eq!(t.reserved.host_ports, [(Protocol::Tcp, 8080)]);
        assert!(t.tags.is_empty());
        assert_eq!(t.service, None);
        // Written back, the reservation keeps its stored shape.
        let again: serde_json::Value = serde_json::to_value(&t).unwrap();
        assert_eq!(
            again["needs"],
            serde_json::json!({"cpu": 256, "memory": 512, "host_ports": [["tcp", 8080]]})
        );

        let assignment = r#"{"account": "123456789012", "region": "us-east-1",
            "task_id": "0123456789abcdef0123456789abcdef", "instance_id": "i1",
            "needs": {"cpu": 256, "memory": 512, "host_ports": [["tcp", 8080]]}}"#;
        let a: AssignmentDoc = serde_json::from_str(assignment).unwrap();
        assert_eq!(a.reserved, t.reserved);
    }
}
