//! One reconcile pass: the working copy of the service's state and tasks,
//! and the steps every kind of service shares (accounting for stopped
//! tasks, the circuit breaker, unhealthy tasks, draining, finishing up).

use super::events::reason;
use super::*;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::HashMap;

/// How long a failed deployment with no task left stays in `deployments`.
const FAILED_LINGER_MS: i64 = 5_000;

/// How often a steady service says so again.
const STEADY_REPEAT_MS: i64 = 6 * 3600 * 1000;

pub(super) struct Pass<'a> {
    pub spec: &'a Spec,
    pub now: i64,
    pub state: State,
    /// The observed tasks; a stop decided in this pass marks them stopping.
    pub tasks: Vec<TaskView>,
    pub instances: &'a [InstanceView],
    /// Instance ids to their place in `instances`, built when first needed
    /// (most passes never look an instance up).
    index: std::cell::OnceCell<HashMap<&'a str, usize>>,
    pub rng: SmallRng,
    out: Decision,
}

impl<'a> Pass<'a> {
    pub fn new(spec: &'a Spec, prev: &State, observed: &'a Observed) -> Self {
        Pass {
            spec,
            now: observed.now,
            state: prev.clone(),
            tasks: observed.tasks.clone(),
            instances: &observed.instances,
            index: std::cell::OnceCell::new(),
            rng: SmallRng::seed_from_u64(spec.seed ^ observed.now as u64),
            out: Decision::default(),
        }
    }

    /// The instance a task runs on, if the snapshot has it.
    pub fn instance_of(&self, t: &TaskView) -> Option<&'a InstanceView> {
        let instances = self.instances;
        let index = self.index.get_or_init(|| {
            instances
                .iter()
                .enumerate()
                .map(|(i, x)| (x.id.as_str(), i))
                .collect()
        });
        t.instance
            .as_deref()
            .and_then(|id| index.get(id))
            .map(|&i| &instances[i])
    }

    pub fn event(&mut self, e: Event) {
        if !self.out.events.contains(&e) {
            self.out.events.push(e);
        }
    }

    /// Asks for another pass no later than `at`.
    pub fn wake(&mut self, at: i64) {
        if at > self.now {
            self.out.wake_at = Some(self.out.wake_at.map_or(at, |w| w.min(at)));
        }
    }

    pub fn start(&mut self, deployment: &str, count: u32, instance: Option<String>) {
        if count > 0 {
            self.out.start.push(Start {
                deployment: deployment.to_string(),
                count,
                instance,
            });
        }
    }

    pub fn stop(&mut self, i: usize, why: StopWhy) {
        let t = &mut self.tasks[i];
        if t.stopping || !t.live() {
            return;
        }
        t.stopping = true;
        self.out.stop.push(Stop {
            task: t.id.clone(),
            why,
        });
    }

    /// RUNNING, not on its way out, and proven: HEALTHY where it has
    /// health checks, else up for the settle time. A task that crashes a
    /// moment after it starts must not count as the healthy replacement of
    /// an old one, nor complete a deployment that replaces another before
    /// the circuit breaker has seen it fail.
    pub fn healthy(&self, t: &TaskView) -> bool {
        let proven = if t.health_checked {
            t.health == Health::Healthy
        } else {
            t.started_at
                .is_some_and(|s| self.now - s >= self.spec.rules.settle_ms)
        };
        t.status == TaskStatus::Running && !t.stopping && proven
    }

    /// RUNNING, not on its way out, and HEALTHY where it has health checks,
    /// proven or not: what a watcher counts as healthy. Stopping such a task
    /// uses up the room above the minimum, which only proven tasks make.
    pub fn looks_healthy(&self, t: &TaskView) -> bool {
        t.status == TaskStatus::Running
            && !t.stopping
            && (!t.health_checked || t.health == Health::Healthy)
    }

    /// Healthy enough to complete its deployment: proven when the
    /// deployment replaces another, else as a watcher counts it (a new
    /// service is steady as soon as its tasks run).
    pub fn healthy_for(&self, t: &TaskView, d: &Deployment) -> bool {
        if d.replacing {
            self.healthy(t)
        } else {
            self.looks_healthy(t)
        }
    }

    /// Live tasks not on their way out.
    pub fn active(&self, t: &TaskView) -> bool {
        t.live() && !t.stopping
    }

    pub fn count(&self, f: impl Fn(&TaskView) -> bool) -> u32 {
        self.tasks.iter().filter(|t| f(t)).count() as u32
    }

    /// Tasks that have not stopped, including those asked to: what the
    /// maximum percent bounds.
    pub fn live_total(&self) -> u32 {
        self.count(TaskView::live)
    }

    pub fn deployment_mut(&mut self, id: &str) -> Option<&mut Deployment> {
        self.state.deployments.iter_mut().find(|d| d.id == id)
    }

    /// Tasks that stopped since the last pass: count their failures for
    /// the circuit breaker and the throttle, then forget them. A task
    /// started after the last failure that has stayed up long enough ends
    /// any throttling.
    pub fn account_stopped_tasks(&mut self) {
        let now = self.now;
        let settle = self.spec.rules.settle_ms;
        let mut throttled = false;
        for i in 0..self.tasks.len() {
            let t = self.tasks[i].clone();
            if t.live() {
                if let (TaskStatus::Running, false, false, Some(s)) =
                    (t.status, t.stopping, t.health_checked, t.started_at)
                {
                    if now - s < settle {
                        self.wake(s + settle);
                    }
                }
                let throttle = &self.state.throttle;
                let recovering = throttle.failures > 0
                    && t.status == TaskStatus::Running
                    && !t.stopping
                    && t.started_at.is_some_and(|s| s >= throttle.last_failure_at);
                if let (true, Some(s)) = (recovering, t.started_at) {
                    if now - s >= settle {
                        self.state.throttle.reset();
                    } else {
                        self.wake(s + settle);
                    }
                }
                continue;
            }
            self.out.forget.push(t.id.clone());
            let cause = t.stop_cause.unwrap_or(StopCause::Scheduler);
            let failed = matches!(
                cause,
                StopCause::FailedToStart | StopCause::Exited | StopCause::Unhealthy
            );
            if !failed {
                continue;
            }
            if let Some(d) = self.deployment_mut(&t.deployment) {
                if d.rollout == Rollout::InProgress {
                    d.failed_tasks += 1;
                    d.updated_at = now;
                }
            }
            let ran = match (t.started_at, t.stopped_at) {
                (Some(s), Some(e)) => e - s,
                (Some(s), None) => now - s,
                _ => 0,
            };
            if (cause == StopCause::FailedToStart || ran < settle)
                && self.state.throttle.failed(now)
            {
                throttled = true;
            }
        }
        if throttled {
            self.event(Event::UnableToStartConsistently);
        }
    }

    /// DeleteService: stop everything; INACTIVE once nothing is left.
    pub fn drain(&mut self) {
        if self.live_total() == 0 {
            self.out.drained = true;
            return;
        }
        for i in 0..self.tasks.len() {
            if self.active(&self.tasks[i]) {
                self.stop(i, StopWhy::ServiceDeleted);
            }
        }
    }

    /// Fails the primary deployment once its failures reach the threshold,
    /// and rolls back to the last completed one when asked to.
    pub fn circuit_breaker(&mut self) {
        let Some(rollback) = self.spec.rules.circuit_breaker else {
            return;
        };
        if self.spec.controller != Controller::Ecs {
            return;
        }
        let desired = self.desired_count();
        let now = self.now;
        let Some(primary) = self.state.deployments.first_mut() else {
            return;
        };
        if primary.rollout != Rollout::InProgress
            || primary.failed_tasks < failure_threshold(desired)
        {
            return;
        }
        let failed_id = primary.id.clone();
        self.state.fail_primary(now, reason::FAILED);
        self.event(Event::DeploymentFailed {
            deployment: failed_id,
        });
        if rollback {
            if let Some(to) = self.state.restore_last_completed(now) {
                self.event(Event::RollingBack { to });
            }
        }
    }

    /// Replaces tasks that fail their health checks once past the grace
    /// period (scale-in protection does not shield them).
    pub fn stop_unhealthy(&mut self) {
        let grace = self.spec.rules.health_grace_ms;
        for i in 0..self.tasks.len() {
            let t = &self.tasks[i];
            if !(self.active(t) && t.health_checked && t.health == Health::Unhealthy) {
                continue;
            }
            let since = t.started_at.unwrap_or(self.now);
            if since + grace <= self.now {
                let task = t.id.clone();
                self.stop(i, StopWhy::Unhealthy);
                self.event(Event::TaskUnhealthy { task });
            } else {
                self.wake(since + grace);
            }
        }
    }

    /// The number of tasks the service wants now: its desired count, or
    /// for a DAEMON the instances that qualify.
    pub fn desired_count(&self) -> u32 {
        match self.spec.scheduling {
            Scheduling::Replica { desired } => desired,
            Scheduling::Daemon => self.instances.iter().filter(|i| daemon_target(i)).count() as u32,
        }
    }

    /// Marks the primary COMPLETED, with ECS's event.
    pub fn complete_primary(&mut self) {
        let now = self.now;
        let Some(p) = self.state.deployments.first_mut() else {
            return;
        };
        if p.rollout != Rollout::InProgress {
            return;
        }
        p.rollout = Rollout::Completed;
        p.reason = reason::completed(&p.id);
        p.updated_at = now;
        let id = p.id.clone();
        self.state.last_completed = Some(id.clone());
        self.event(Event::DeploymentCompleted { deployment: id });
    }

    /// Drops deployments that have no task left and are done with (older
    /// ones; deleted task sets), and notes whether the service is steady:
    /// every deployment at its size, all tasks running.
    pub fn finish(mut self) -> Decision {
        let external = self.spec.controller == Controller::External;
        let mut keep = Vec::new();
        for (i, d) in std::mem::take(&mut self.state.deployments)
            .into_iter()
            .enumerate()
        {
            let has_tasks = self.tasks.iter().any(|t| t.live() && t.deployment == d.id);
            let done = if external { d.deleted } else { i > 0 };
            // A failed deployment stays listed (FAILED, with its reason) a
            // moment after its last task, so that clients see it failed.
            let lingering =
                d.rollout == Rollout::Failed && self.now < d.updated_at + FAILED_LINGER_MS;
            if has_tasks || !done || lingering {
                if done && lingering && !has_tasks {
                    self.wake(d.updated_at + FAILED_LINGER_MS);
                }
                keep.push(d);
            } else {
                self.out.retired.push(d);
            }
        }
        self.state.deployments = keep;
        let desired = self.desired_count();
        // What each deployment asks for now: the primary the desired count
        // (a task set its size), the older ones what they still run.
        for (i, d) in self.state.deployments.iter_mut().enumerate() {
            let active = self
                .tasks
                .iter()
                .filter(|t| t.live() && !t.stopping && t.deployment == d.id)
                .count() as u32;
            d.requested = Some(match (external, i) {
                (true, _) => d.target.unwrap_or(0),
                (false, 0) => desired,
                (false, _) => active,
            });
        }
        let running = self.count(|t| t.live() && t.status == TaskStatus::Running && !t.stopping);
        let others = self.count(|t| t.live() && (t.status != TaskStatus::Running || t.stopping));
        let sized = if external {
            let targets: u32 = self.state.deployments.iter().filter_map(|d| d.target).sum();
            running == targets
        } else {
            self.state.deployments.len() == 1 && running == desired
        };
        // Steady as ECS says it: every task running and the deployment
        // done (a deployment completes once its tasks are proven, so the
        // event follows "deployment completed", as on ECS).
        let settled = external
            || self
                .state
                .deployments
                .first()
                .is_none_or(|p| p.rollout != Rollout::InProgress);
        let steady = !self.spec.draining
            && sized
            && settled
            && others == 0
            && self.out.start.is_empty()
            && self.out.stop.is_empty();
        let said_long_ago = self
            .state
            .steady_said_at
            .is_none_or(|at| self.now - at >= STEADY_REPEAT_MS);
        if steady && (!self.state.steady || said_long_ago) {
            self.event(Event::SteadyState);
            self.state.steady_said_at = Some(self.now);
        }
        if steady {
            let next = self.state.steady_said_at.unwrap_or(self.now) + STEADY_REPEAT_MS;
            self.wake(next);
        }
        self.state.steady = steady;
        self.out.desired = desired;
        self.out.state = self.state;
        self.out
    }
}

/// Whether a DAEMON task belongs on this instance.
pub(super) fn daemon_target(i: &InstanceView) -> bool {
    i.active && i.connected && i.eligible
}
