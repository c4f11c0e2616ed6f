//! The last steps of a launch: turn a placement into a [`Plan`] (the task
//! documents, their assignments and the guards on the instances used),
//! then into the commit that records it.

use super::super::lifecycle;
use super::super::*;
use super::place::{awsvpc_shares_host, Snapshot};
use super::Launch;
use crate::records::{Attempt, Batch};
use berth_core::task::{ContainerStatus, DesiredStatus};

/// What a placement amounts to, before anything is written.
pub(crate) struct Plan {
    /// The tasks placed, as they will be stored.
    pub tasks: Vec<TaskDoc>,
    /// Why the others could not be placed, as RunTask reports it.
    pub failures: Vec<Failure>,
    /// Where the instances live, and whether that is the managed scope.
    instance_scope: Scope,
    managed: bool,
    /// Each used instance re-written at the version read (so a concurrent
    /// placement on it conflicts), then the new assignments.
    instance_writes: Vec<Write>,
    /// The instances used, whose agents are woken once the plan lands.
    used: Vec<String>,
}

/// Builds the plan for `placements` (from [`super::place`] on `snapshot`):
/// a task document per placed task, stamped `now`, and ECS's failures for
/// the rest.
pub(crate) fn plan(
    ctx: &RequestContext,
    launch: &Launch,
    snapshot: &Snapshot,
    placements: Vec<Placement>,
    now: Timestamp,
) -> Plan {
    let managed = launch.is_managed();
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    let mut seen_failures = BTreeSet::new();
    let mut used: BTreeMap<String, &Versioned<InstanceDoc>> = BTreeMap::new();
    for p in placements {
        match p {
            Placement::Placed(id) => {
                let inst = snapshot.instance(&id).expect("placed on a known instance");
                tasks.push(new_task(ctx, launch, &inst.value, &snapshot.scope, now));
                used.insert(id, inst);
            }
            Placement::Unplaced(reasons) => {
                for (id, r) in reasons {
                    // Managed capacity is not the customer's: name the cluster.
                    let target = if managed {
                        launch.cluster.cluster_arn.clone().unwrap_or_default()
                    } else {
                        snapshot
                            .instance(&id)
                            .map(|d| d.value.arn().to_string())
                            .unwrap_or_default()
                    };
                    if seen_failures.insert((target.clone(), r.as_str())) {
                        failures.push(Failure {
                            arn: Some(target),
                            reason: Some(r.as_str().into()),
                            detail: None,
                        });
                    }
                }
            }
        }
    }
    let mut instance_writes: Vec<Write> = used.values().map(|d| d.write()).collect();
    instance_writes.extend(tasks.iter().map(|t| assignment(ctx, t).write()));
    Plan {
        tasks,
        failures,
        instance_scope: snapshot.scope.clone(),
        managed,
        instance_writes,
        used: used.into_keys().collect(),
    }
}

fn assignment(ctx: &RequestContext, t: &TaskDoc) -> Versioned<AssignmentDoc> {
    Versioned::new(AssignmentDoc {
        account: ctx.account_id.clone(),
        region: ctx.region.clone(),
        task_id: t.id.clone(),
        instance_id: t.instance_id.clone().unwrap_or_default(),
        cluster: instance_cluster(t),
        reserved: t.reserved.clone(),
        group: t.task.group.clone(),
    })
}

/// A launch that landed.
pub(crate) struct Launched {
    pub tasks: Vec<TaskDoc>,
    pub failures: Vec<Failure>,
    used: Vec<String>,
    /// The tasks' scope.
    scope: Scope,
}

impl Launched {
    /// The ids of the instances that got tasks.
    pub fn used(&self) -> &[String] {
        &self.used
    }

    /// Wakes the long polls of the agents that got tasks.
    pub fn wake(&self, ecs: &Ecs) {
        for id in &self.used {
            ecs.work.bump(id);
        }
        if let Some(sim) = ecs.simulated.get() {
            sim.placed(&self.scope, &self.tasks);
        }
    }
}

impl Plan {
    /// The commit that records the plan, as the answer of a
    /// `records::retry` attempt. `extra` are the caller's own writes in the
    /// task's scope (a service's record of its tasks): they land with the
    /// task documents or not at all.
    ///
    /// On the cluster's own instances everything is one commit. On managed
    /// capacity the instances live in another scope, so the assignments go
    /// first (an assignment whose task never appears is ignored by the
    /// agent; a task without one would hang), and are deleted again should
    /// the task documents' commit conflict.
    pub fn commit(self, ctx: &RequestContext, extra: Vec<Write>) -> Attempt<Launched> {
        let mut task_writes: Vec<Write> = self
            .tasks
            .iter()
            .map(|t| Versioned::new(t.clone()).write())
            .collect();
        task_writes.extend(extra);
        let undo_assignments: Vec<Write> = self
            .tasks
            .iter()
            .map(|t| Write::Delete {
                kind: kind::ASSIGNMENT,
                id: assignment(ctx, t).value.id(),
                expect: Expect::Any,
            })
            .collect();
        let value = Launched {
            tasks: self.tasks,
            failures: self.failures,
            used: self.used,
            scope: scope(ctx),
        };
        let mut writes = self.instance_writes;
        if self.managed {
            let batches = vec![
                Batch::new(self.instance_scope, writes).undone_by(undo_assignments),
                Batch::new(scope(ctx), task_writes),
            ];
            return Attempt::CommitInOrder { batches, value };
        }
        writes.extend(task_writes);
        Attempt::Commit {
            scope: scope(ctx),
            writes,
            value,
        }
    }
}

fn new_task(
    ctx: &RequestContext,
    l: &Launch,
    instance: &InstanceDoc,
    instance_scope: &Scope,
    now: Timestamp,
) -> TaskDoc {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let cluster_name = l.cluster_name();
    let task_arn = arn::task(&ctx.region, &ctx.account_id, &cluster_name, &id);
    let containers =
        l.td.container_definitions
            .iter()
            .flatten()
            .map(|def| {
                let c = rules::effective_container(def, l.overrides.as_ref());
                Container {
                    container_arn: Some(format!(
                        "arn:aws:ecs:{}:{}:container/{cluster_name}/{id}/{}",
                        ctx.region,
                        ctx.account_id,
                        uuid::Uuid::new_v4()
                    )),
                    task_arn: Some(task_arn.clone()),
                    name: c.name.clone(),
                    image: c.image.clone(),
                    last_status: Some(ContainerStatus::Pending.as_str().into()),
                    network_interfaces: Some(vec![]),
                    health_status: c.health_check.as_ref().map(|_| HealthStatus::UnknownValue),
                    cpu: Some(c.cpu.unwrap_or(0).to_string()),
                    memory: c.memory.map(|m| m.to_string()),
                    memory_reservation: c.memory_reservation.map(|m| m.to_string()),
                    ..Default::default()
                }
            })
            .collect();
    let fargate = l.launch_type == LaunchType::Fargate;
    let first_status = if fargate || l.td.network_mode == Some(NetworkMode::Awsvpc) {
        TaskStatus::Provisioning
    } else {
        TaskStatus::Pending
    };
    let overrides = l.overrides.clone().unwrap_or_default();
    let task = Task {
        task_arn: Some(task_arn),
        cluster_arn: l.cluster.cluster_arn.clone(),
        task_definition_arn: l.td.task_definition_arn.clone(),
        container_instance_arn: if fargate {
            None
        } else {
            instance.instance.container_instance_arn.clone()
        },
        containers: Some(containers),
        last_status: Some(first_status.as_str().into()),
        desired_status: Some(DesiredStatus::Running.as_str().into()),
        created_at: Some(now),
        version: Some(1),
        launch_type: Some(l.launch_type.clone()),
        capacity_provider_name: l.capacity_provider.clone(),
        group: Some(l.group.clone()),
        started_by: l.started_by.clone(),
        overrides: Some(TaskOverride {
            container_overrides: Some(overrides.container_overrides.clone().unwrap_or_default()),
            inference_accelerator_overrides: Some(vec![]),
            ..overrides
        }),
        cpu: Some(l.demand.cpu.to_string()),
        memory: Some(l.demand.memory.to_string()),
        // The instance's zone (its `ecs.availability-zone` attribute), else
        // the region's first: managed capacity has no zone of its own.
        availability_zone: Some(
            instance
                .instance
                .attributes
                .iter()
                .flatten()
                .find(|a| a.name == "ecs.availability-zone")
                .and_then(|a| a.value.clone())
                .filter(|_| !fargate)
                .unwrap_or_else(|| format!("{}a", ctx.region)),
        ),
        attributes: Some(vec![Attribute {
            name: "ecs.cpu-architecture".into(),
            value: Some(cpu_architecture().into()),
            ..Default::default()
        }]),
        connectivity: None,
        enable_execute_command: Some(l.enable_execute_command),
        health_status: Some(HealthStatus::UnknownValue),
        platform_version: fargate.then(|| "1.4.0".to_string()),
        platform_family: fargate.then(|| "Linux".to_string()),
        attachments: Some(
            l.subnet
                .as_deref()
                .map(lifecycle::precreated_eni)
                .into_iter()
                .collect(),
        ),
        ephemeral_storage: fargate.then_some(EphemeralStorage { size_in_gi_b: 20 }),
        ..Default::default()
    };
    TaskDoc {
        id,
        cluster: cluster_name,
        task,
        task_definition: l.td.clone(),
        instance_id: Some(instance.id.clone()),
        instance_scope: Some((
            instance_scope.account.clone(),
            instance_scope.region.clone(),
        )),
        reserved: l.demand.reservation_on(awsvpc_shares_host(instance)),
        tags: l.tags.clone(),
        service: l.owner.clone(),
        protected_until: None,
    }
}

fn cpu_architecture() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "x86_64"
    }
}
