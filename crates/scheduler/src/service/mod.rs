//! Service reconciliation as a pure function, in the manner of Nomad's
//! reconciler and kube-rs's reconcile loop: given what a service wants (its
//! [`Spec`] and the [`State`] of its deployments) and what is ([`Observed`]:
//! its tasks, the cluster's instances, the time), decide what to do — start
//! these, stop those, move that deployment on — and nothing else.
//!
//! The control plane reads the snapshot from the store, calls [`reconcile`],
//! launches and stops tasks through the same paths RunTask and StopTask use,
//! and commits the returned state with a version check; a pass that loses
//! the race is simply run again on fresh data. Tests drive it with no
//! server (see `tests.rs` and the simulation in `sim.rs`).
//!
//! Times are milliseconds since the Unix epoch, read from the caller's clock.

mod daemon;
mod events;
mod pass;
mod replica;
mod throttle;
mod victims;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use events::Event;
/// The `rolloutStateReason` of a deployment the circuit breaker failed.
pub const FAILED_REASON: &str = events::reason::FAILED;
pub use throttle::{Throttle, DEFAULT_SETTLE_MS};

use berth_core::task::TaskStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a service asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The service's name, for event texts.
    pub name: String,
    pub scheduling: Scheduling,
    pub controller: Controller,
    pub rules: Rules,
    /// DeleteService: stop every task, then the service is INACTIVE.
    pub draining: bool,
    /// Placement strategies, already defaulted: they also order scale-in.
    pub placement: Vec<crate::Strategy>,
    /// Seeds random choices (scale-in under a `random` strategy).
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduling {
    /// Keep `desired` tasks running.
    Replica { desired: u32 },
    /// One task on every eligible instance.
    Daemon,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// ECS's own deployments (rolling, blue/green, linear, canary).
    Ecs,
    /// Task sets whose sizes someone else decides (`target` of each).
    External,
}

/// `deploymentConfiguration`, defaulted and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    /// `Some(rollback)` when the circuit breaker is on.
    pub circuit_breaker: Option<bool>,
    pub strategy: DeploymentStrategy,
    /// `healthCheckGracePeriodSeconds`: unhealthy is ignored this long
    /// after a task starts.
    pub health_grace_ms: i64,
    /// How long a task without health checks must run to count as started
    /// successfully: before that it neither proves a deployment healthy
    /// nor ends the throttle, and dying counts as failing to start.
    pub settle_ms: i64,
    /// A daemon of ECS's Daemon API (not a DAEMON service): how its
    /// deployments roll.
    pub daemon_rollout: Option<DaemonRollout>,
}

/// A Daemon API daemon's `deploymentConfiguration`: `drainPercent` of its
/// instances are replaced at a time (at least one, so that a small fleet
/// still moves), and the deployment completes `bakeTimeInMinutes` after
/// every instance runs the new revision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DaemonRollout {
    pub drain_percent: f64,
    pub bake_ms: i64,
}

impl DaemonRollout {
    /// Instances of `n` that may be without a healthy task at once.
    pub fn batch(&self, n: u32) -> u32 {
        ((f64::from(n) * self.drain_percent / 100.0).floor() as u32).max(1)
    }
}

/// How a new revision replaces the old. Without load balancers the
/// traffic-shifting strategies run on task counts: the new ("green")
/// revision grows to each step's share of the desired count, waits out the
/// step's bake time, and the old ("blue") tasks stop only after the last
/// bake — so a rollback before then is instant.
#[derive(Debug, Clone, PartialEq)]
pub enum DeploymentStrategy {
    Rolling,
    BlueGreen {
        bake_ms: i64,
    },
    Linear {
        step_percent: f64,
        step_bake_ms: i64,
        bake_ms: i64,
    },
    Canary {
        percent: f64,
        canary_bake_ms: i64,
        bake_ms: i64,
    },
}

/// What the reconciler remembers between passes (the control plane keeps
/// it in the service's document).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The newest (PRIMARY) first, then older (ACTIVE) ones that still
    /// have tasks. A deployment leaves the list (INACTIVE) once it has none.
    pub deployments: Vec<Deployment>,
    /// The newest deployment that reached COMPLETED and is not in
    /// progress again: where a failed deployment rolls back to.
    #[serde(default)]
    pub last_completed: Option<String>,
    #[serde(default)]
    pub throttle: Throttle,
    /// Whether the last pass found the service steady (for the event).
    #[serde(default)]
    pub steady: bool,
    /// When "has reached a steady state" was last said: ECS repeats it
    /// every six hours while the service stays steady.
    #[serde(default)]
    pub steady_said_at: Option<i64>,
    /// Tasks that protection kept from a scale-in at the last pass (the
    /// event is said once per change, not every pass).
    #[serde(default)]
    pub scale_in_blocked: u32,
}

impl State {
    /// A new service, or a new deployment of an existing one, becomes the
    /// PRIMARY deployment. Creating one ends any throttling, as on ECS.
    pub fn deploy(&mut self, id: impl Into<String>, now: i64) {
        let mut d = Deployment::new(id, now);
        d.replacing = !self.deployments.is_empty() || self.last_completed.is_some();
        self.deployments.insert(0, d);
        self.throttle = Throttle::default();
        self.steady = false;
    }

    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.first()
    }

    /// Fails the PRIMARY deployment, if it is in progress.
    pub fn fail_primary(&mut self, now: i64, reason: &str) -> Option<String> {
        let p = self
            .deployments
            .first_mut()
            .filter(|d| d.rollout == Rollout::InProgress)?;
        p.rollout = Rollout::Failed;
        p.reason = reason.to_string();
        p.updated_at = now;
        Some(p.id.clone())
    }

    /// Makes the last completed deployment PRIMARY again, in progress, as
    /// ECS rolls back (same deployment id, no new revision). Returns its id,
    /// or `None` when there is none to go back to.
    pub fn restore_last_completed(&mut self, now: i64) -> Option<String> {
        let to = self
            .last_completed
            .clone()
            .filter(|id| self.primary().is_some_and(|p| p.id != *id))?;
        let mut back = match self.deployments.iter().position(|d| d.id == to) {
            Some(i) => self.deployments.remove(i),
            None => Deployment::new(&to, now),
        };
        back.rollout = Rollout::InProgress;
        // Its tasks ran before; what it starts now restores a known-good
        // revision, and nothing is left to roll back to anyway.
        back.replacing = false;
        back.reason = events::reason::rolling_back(&to);
        back.failed_tasks = 0;
        back.step = 0;
        back.step_reached_at = None;
        back.updated_at = now;
        self.deployments.insert(0, back);
        // Not eligible for another rollback until it completes again.
        self.last_completed = None;
        self.throttle.reset();
        self.steady = false;
        Some(to)
    }

    /// StopServiceDeployment (ROLLBACK): fails the in-progress PRIMARY and
    /// goes back to the last completed deployment. `None` (and no change)
    /// when there is nothing to roll back, or nothing to roll back to.
    pub fn roll_back(&mut self, now: i64, reason: &str) -> Option<String> {
        let in_progress = self
            .primary()
            .is_some_and(|p| p.rollout == Rollout::InProgress);
        let target = self
            .last_completed
            .as_ref()
            .is_some_and(|id| self.primary().is_some_and(|p| p.id != *id));
        if !(in_progress && target) {
            return None;
        }
        self.fail_primary(now, reason);
        self.restore_last_completed(now)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rollout {
    InProgress,
    Completed,
    Failed,
}

/// One deployment (or, under the EXTERNAL controller, one task set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// `ecs-svc/…` (or the task set's id).
    pub id: String,
    pub rollout: Rollout,
    /// ECS's `rolloutStateReason`.
    pub reason: String,
    /// Failures the circuit breaker counts (ECS's `failedTasks`).
    pub failed_tasks: u32,
    pub created_at: i64,
    pub updated_at: i64,
    /// Traffic-shifting strategies: the index of the current step, and
    /// when it began (its bake time runs from the moment it was reached).
    #[serde(default)]
    pub step: u32,
    #[serde(default)]
    pub step_reached_at: Option<i64>,
    /// EXTERNAL task sets: the number of tasks to keep.
    #[serde(default)]
    pub target: Option<u32>,
    /// EXTERNAL task sets: deleted, so it runs nothing and goes once empty.
    #[serde(default)]
    pub deleted: bool,
    /// The tasks it asks for as of the last pass (`desiredCount` of the
    /// deployment); none before the first pass, as ECS shows 0 then.
    #[serde(default)]
    pub requested: Option<u32>,
    /// It replaces an earlier deployment (it is not the service's first):
    /// its tasks must prove themselves (see `Pass::healthy`) before it
    /// completes, so that one crashing just after it starts trips the
    /// circuit breaker instead of completing the rollout.
    #[serde(default)]
    pub replacing: bool,
}

impl Deployment {
    pub fn new(id: impl Into<String>, now: i64) -> Self {
        let id = id.into();
        Deployment {
            reason: events::reason::in_progress(&id),
            id,
            rollout: Rollout::InProgress,
            failed_tasks: 0,
            created_at: now,
            updated_at: now,
            step: 0,
            step_reached_at: None,
            target: None,
            deleted: false,
            requested: None,
            replacing: false,
        }
    }
}

/// What is: the service's tasks (live ones and those that stopped since
/// the last pass) and the instances of its cluster.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub now: i64,
    pub tasks: Vec<TaskView>,
    /// Needed for DAEMON services and to balance scale-in across zones;
    /// tasks on berth's managed capacity name no instance.
    pub instances: Vec<InstanceView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Healthy,
    Unhealthy,
}

/// Why a task stopped, as far as the scheduler cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// It never got going (pull, secrets, start failures): TaskFailedToStart.
    FailedToStart,
    /// An essential container exited.
    Exited,
    /// The scheduler stopped it for failing its health checks.
    Unhealthy,
    /// The scheduler stopped it (scale-in, replacement, draining).
    Scheduler,
    /// StopTask by a user.
    User,
    /// Its agent or host went away.
    Lost,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskView {
    pub id: String,
    /// The deployment (or task set) that started it.
    pub deployment: String,
    pub status: TaskStatus,
    /// Its desired status is STOPPED: it is on its way out.
    pub stopping: bool,
    pub health: Health,
    /// Whether any essential container has a health check.
    pub health_checked: bool,
    /// When it reached RUNNING.
    pub started_at: Option<i64>,
    pub stopped_at: Option<i64>,
    /// Set once STOPPED.
    pub stop_cause: Option<StopCause>,
    /// Task scale-in protection, until this time.
    pub protected_until: Option<i64>,
    pub instance: Option<String>,
    /// Its availability zone.
    pub zone: Option<String>,
}

impl TaskView {
    pub fn live(&self) -> bool {
        self.status != TaskStatus::Stopped
    }

    pub fn protected(&self, now: i64) -> bool {
        self.protected_until.is_some_and(|t| t > now)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceView {
    pub id: String,
    /// ACTIVE (not DRAINING, not deregistered).
    pub active: bool,
    pub connected: bool,
    /// Satisfies the service's placement constraints.
    pub eligible: bool,
    pub attributes: BTreeMap<String, Option<String>>,
    /// Remaining CPU units and MiB (binpack scale-in).
    pub cpu: i64,
    pub memory: i64,
}

/// What one pass decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub state: State,
    pub start: Vec<Start>,
    pub stop: Vec<Stop>,
    /// Stopped tasks now accounted for: the service may forget them.
    pub forget: Vec<String>,
    /// Deployments that left the list (INACTIVE), as they ended.
    pub retired: Vec<Deployment>,
    pub events: Vec<Event>,
    /// A DRAINING service with no task left: it is now INACTIVE.
    pub drained: bool,
    /// The tasks the service wants now (a DAEMON's: its eligible instances).
    pub desired: u32,
    /// When a timer (bake, back-off, grace, protection) next changes the
    /// outcome, if no task does first.
    pub wake_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub deployment: String,
    pub count: u32,
    /// DAEMON tasks go to a given instance.
    pub instance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    pub task: String,
    pub why: StopWhy,
}

/// Why the scheduler stops a task (it becomes the task's stoppedReason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopWhy {
    /// Scale-in, or an older deployment's task being replaced: ECS's
    /// "Scaling activity initiated by (deployment …)".
    Scaling { deployment: String },
    /// Failed its health checks after the grace period.
    Unhealthy,
    /// The service is being deleted.
    ServiceDeleted,
    /// A DAEMON task whose instance drains or no longer qualifies.
    InstanceIneligible,
}

/// The circuit breaker's failure threshold for a desired count: half of
/// it, rounded up, but at least 3 and at most 200.
pub fn failure_threshold(desired: u32) -> u32 {
    desired.div_ceil(2).clamp(3, 200)
}

/// The default placement for service tasks: spread across zones, then
/// across instances.
pub fn default_placement() -> Vec<crate::Strategy> {
    vec![
        crate::Strategy::Spread("attribute:ecs.availability-zone".into()),
        crate::Strategy::Spread("instanceId".into()),
    ]
}

/// Decides one pass for one service. Pure: the same inputs give the same
/// decision.
pub fn reconcile(spec: &Spec, prev: &State, observed: &Observed) -> Decision {
    let mut pass = pass::Pass::new(spec, prev, observed);
    pass.account_stopped_tasks();
    if spec.draining {
        pass.drain();
    } else {
        pass.circuit_breaker();
        pass.stop_unhealthy();
        match (spec.controller, spec.scheduling) {
            (Controller::External, _) => replica::task_sets(&mut pass),
            (Controller::Ecs, Scheduling::Daemon) => daemon::reconcile(&mut pass),
            (Controller::Ecs, Scheduling::Replica { desired }) => match spec.rules.strategy {
                DeploymentStrategy::Rolling => replica::rolling(&mut pass, desired),
                _ => replica::staged(&mut pass, desired),
            },
        }
    }
    pass.finish()
}

/// Accounts a launch that could not place `unplaced` tasks of
/// `deployment`: for the back-off and the circuit breaker they are tasks
/// that failed to start, as on ECS.
pub fn after_launch(state: &mut State, deployment: &str, unplaced: u32, now: i64) -> Vec<Event> {
    let mut events = Vec::new();
    if unplaced == 0 {
        return events;
    }
    if let Some(d) = state.deployments.iter_mut().find(|d| d.id == deployment) {
        if d.rollout == Rollout::InProgress {
            d.failed_tasks += unplaced;
            d.updated_at = now;
        }
    }
    for _ in 0..unplaced {
        if state.throttle.failed(now) {
            events.push(Event::UnableToStartConsistently);
        }
    }
    events.dedup();
    events
}
