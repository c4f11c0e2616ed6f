//! How a task moves, as pure transitions over the wire `Task`: an agent's
//! reports (forward only: a late or repeated one changes nothing), a stop
//! request, a stop decided without the agent, and the task's health as its
//! essential containers' health checks say. Callers supply the time.

use super::status::{ContainerStatus, DesiredStatus, TaskStatus};
use super::stop::Stop;
use crate::EcsError;
use berth_wire::ecs::{
    Connectivity, Container, ContainerStateChange, HealthStatus, SubmitTaskStateChangeRequest,
    Task, TaskDefinition,
};
use berth_wire::Timestamp;

/// Typed reads and writes of the statuses a wire `Task` keeps as strings.
pub trait TaskStatuses {
    /// `lastStatus`; a task without one has not been provisioned yet.
    fn status(&self) -> TaskStatus;
    fn set_status(&mut self, s: TaskStatus);
    /// `desiredStatus`; absent means RUNNING.
    fn desired(&self) -> DesiredStatus;
    fn set_desired(&mut self, d: DesiredStatus);
}

impl TaskStatuses for Task {
    fn status(&self) -> TaskStatus {
        self.last_status
            .as_deref()
            .and_then(TaskStatus::parse)
            .unwrap_or(TaskStatus::Provisioning)
    }

    fn set_status(&mut self, s: TaskStatus) {
        self.last_status = Some(s.as_str().into());
    }

    fn desired(&self) -> DesiredStatus {
        self.desired_status
            .as_deref()
            .and_then(DesiredStatus::parse)
            .unwrap_or(DesiredStatus::Running)
    }

    fn set_desired(&mut self, d: DesiredStatus) {
        self.desired_status = Some(d.as_str().into());
    }
}

/// A container's `lastStatus`; one without a known one is PENDING.
pub fn container_status(c: &Container) -> ContainerStatus {
    c.last_status
        .as_deref()
        .and_then(ContainerStatus::parse)
        .unwrap_or(ContainerStatus::Pending)
}

/// Marks the task STOPPED now, with every container; `execution_stopped_at`
/// is when the agent saw it end, if it did.
pub fn mark_stopped(t: &mut Task, now: Timestamp, execution_stopped_at: Option<Timestamp>) {
    t.set_status(TaskStatus::Stopped);
    t.set_desired(DesiredStatus::Stopped);
    t.stopping_at.get_or_insert(now);
    t.execution_stopped_at = Some(execution_stopped_at.unwrap_or(now));
    t.stopped_at = Some(now);
    for c in t.containers.iter_mut().flatten() {
        if c.last_status.as_deref() != Some(ContainerStatus::Stopped.as_str()) {
            c.last_status = Some(ContainerStatus::Stopped.as_str().into());
        }
    }
}

/// Stops a task without its agent (say, the agent was lost). Returns
/// whether it changed anything (a STOPPED task stays as it is).
pub fn stop_now(t: &mut Task, stop: &Stop, now: Timestamp) -> bool {
    if t.status() == TaskStatus::Stopped {
        return false;
    }
    t.stop_code = Some(stop.code.clone());
    t.stopped_reason = Some(stop.reason.clone());
    mark_stopped(t, now, None);
    true
}

/// What [`request_stop`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequested {
    /// A stop was already asked for; the first one's code and reason stand.
    AlreadyAsked,
    /// The agent has been asked to stop it.
    Asked,
    /// No agent had started it, so it stopped at once.
    StoppedNow,
}

/// Asks the task to stop (StopTask, or a service scaling down): its
/// desired status becomes STOPPED with `stop`'s code and reason. A task no
/// agent has started yet has nothing to stop and is STOPPED at once.
pub fn request_stop(t: &mut Task, stop: Stop, now: Timestamp) -> StopRequested {
    if t.desired() == DesiredStatus::Stopped {
        return StopRequested::AlreadyAsked;
    }
    t.set_desired(DesiredStatus::Stopped);
    t.stop_code = Some(stop.code);
    t.stopped_reason = Some(stop.reason);
    t.stopping_at = Some(now);
    let never_started =
        t.status() <= TaskStatus::Pending && t.started_at.is_none() && t.pull_started_at.is_none();
    if never_started {
        mark_stopped(t, now, None);
        return StopRequested::StoppedNow;
    }
    StopRequested::Asked
}

/// The status a `SubmitTaskStateChange` reports, checked.
pub fn reported_status(r: &SubmitTaskStateChangeRequest) -> Result<Option<TaskStatus>, EcsError> {
    r.status
        .as_deref()
        .map(|s| {
            TaskStatus::parse(s)
                .ok_or_else(|| EcsError::invalid(format!("Invalid task status '{s}'.")))
        })
        .transpose()
}

/// Applies an agent's report on one container: its status if it moves
/// forward, and whatever else it tells.
pub fn apply_container_report(t: &mut Task, change: &ContainerStateChange) -> Result<(), EcsError> {
    let name = change.container_name.as_deref().unwrap_or_default();
    let c = t
        .containers
        .iter_mut()
        .flatten()
        .find(|c| c.name.as_deref() == Some(name))
        .ok_or_else(|| EcsError::invalid(format!("The task has no container named '{name}'.")))?;
    if let Some(s) = &change.status {
        let next = ContainerStatus::parse(s)
            .ok_or_else(|| EcsError::invalid(format!("Invalid container status '{s}'.")))?;
        if container_status(c).may_become(next) {
            c.last_status = Some(next.as_str().into());
        }
    }
    if change.runtime_id.is_some() {
        c.runtime_id = change.runtime_id.clone();
    }
    if change.exit_code.is_some() {
        c.exit_code = change.exit_code;
    }
    if change.reason.is_some() {
        c.reason = change.reason.clone();
    }
    if change.network_bindings.is_some() {
        c.network_bindings = change.network_bindings.clone();
    }
    if change.image_digest.is_some() {
        c.image_digest = change.image_digest.clone();
    }
    Ok(())
}

/// Applies an agent's task report: its containers, pull times, and the
/// status `status` (see [`reported_status`]) if it moves forward. A stop
/// the control plane did not ask for gets its code from the agent's reason.
pub fn apply_task_report(
    t: &mut Task,
    report: &SubmitTaskStateChangeRequest,
    status: Option<TaskStatus>,
    now: Timestamp,
) -> Result<(), EcsError> {
    for change in report.containers.iter().flatten() {
        apply_container_report(t, change)?;
    }
    if report.pull_started_at.is_some() {
        t.pull_started_at = report.pull_started_at;
    }
    if report.pull_stopped_at.is_some() {
        t.pull_stopped_at = report.pull_stopped_at;
    }
    let Some(next) = status else { return Ok(()) };
    if !t.status().may_become(next) || t.status() == next {
        return Ok(());
    }
    if next >= TaskStatus::Running && t.started_at.is_none() && next != TaskStatus::Stopped {
        t.started_at = Some(now);
        t.connectivity = Some(Connectivity::Connected);
        t.connectivity_at = Some(now);
    }
    if next >= TaskStatus::Deactivating && next != TaskStatus::Stopped {
        t.stopping_at.get_or_insert(now);
    }
    if next == TaskStatus::Stopped {
        if t.stop_code.is_none() {
            let stop = Stop::reported_by_agent(report.reason.as_deref());
            t.stop_code = Some(stop.code);
            t.stopped_reason = Some(stop.reason);
        }
        mark_stopped(t, now, report.execution_stopped_at);
    } else {
        t.set_status(next);
    }
    Ok(())
}

/// A container health status as the agent reports it.
pub fn parse_health(s: &str) -> Result<HealthStatus, EcsError> {
    match s {
        "HEALTHY" => Ok(HealthStatus::Healthy),
        "UNHEALTHY" => Ok(HealthStatus::Unhealthy),
        "UNKNOWN" => Ok(HealthStatus::UnknownValue),
        other => Err(EcsError::invalid(format!(
            "Invalid health status '{other}'."
        ))),
    }
}

/// Records containers' health (`(name, health)`) and recomputes the task's.
pub fn apply_health(t: &mut Task, td: &TaskDefinition, updates: &[(String, HealthStatus)]) {
    for c in t.containers.iter_mut().flatten() {
        if let Some((_, h)) = updates.iter().find(|(n, _)| Some(n) == c.name.as_ref()) {
            c.health_status = Some(h.clone());
        }
    }
    t.health_status = Some(task_health(t, td));
}

/// The task's health follows its essential containers that have a health
/// check: any UNHEALTHY makes it UNHEALTHY, all HEALTHY make it HEALTHY,
/// else UNKNOWN.
pub fn task_health(t: &Task, td: &TaskDefinition) -> HealthStatus {
    let checked: Vec<HealthStatus> = td
        .container_definitions
        .iter()
        .flatten()
        .filter(|d| d.essential.unwrap_or(true) && d.health_check.is_some())
        .filter_map(|d| t.containers.iter().flatten().find(|c| c.name == d.name))
        .map(|c| {
            c.health_status
                .clone()
                .unwrap_or(HealthStatus::UnknownValue)
        })
        .collect();
    if checked.contains(&HealthStatus::Unhealthy) {
        HealthStatus::Unhealthy
    } else if !checked.is_empty() && checked.iter().all(|h| *h == HealthStatus::Healthy) {
        HealthStatus::Healthy
    } else {
        HealthStatus::UnknownValue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::ecs::{ContainerDefinition, HealthCheck, TaskStopCode};

    fn task(status: TaskStatus) -> Task {
        let mut t = Task {
            containers: Some(vec![
                Container {
                    name: Some("web".into()),
                    last_status: Some("PENDING".into()),
                    ..Default::default()
                },
                Container {
                    name: Some("side".into()),
                    last_status: Some("PENDING".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        t.set_status(status);
        t.set_desired(DesiredStatus::Running);
        t
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    fn report(status: &str) -> SubmitTaskStateChangeRequest {
        SubmitTaskStateChangeRequest {
            status: Some(status.into()),
            ..Default::default()
        }
    }

    fn apply(t: &mut Task, status: &str, now: Timestamp) {
        let r = report(status);
        let s = reported_status(&r).unwrap();
        apply_task_report(t, &r, s, now).unwrap();
    }

    #[test]
    fn reports_move_a_task_forward_only_and_stamp_the_times() {
        let mut t = task(TaskStatus::Pending);
        apply(&mut t, "RUNNING", at(10));
        assert_eq!(t.status(), TaskStatus::Running);
        assert_eq!(t.started_at, Some(at(10)));
        assert_eq!(t.connectivity_at, Some(at(10)));
        apply(&mut t, "PENDING", at(11));
        assert_eq!(t.status(), TaskStatus::Running);
        apply(&mut t, "STOPPING", at(12));
        assert_eq!(t.stopping_at, Some(at(12)));
        apply(&mut t, "STOPPED", at(13));
        assert_eq!(t.status(), TaskStatus::Stopped);
        assert_eq!(t.desired(), DesiredStatus::Stopped);
        assert_eq!(
            (t.stopped_at, t.execution_stopped_at),
            (Some(at(13)), Some(at(13)))
        );
        assert_eq!(t.stopping_at, Some(at(12)));
        assert_eq!(t.stop_code, Some(TaskStopCode::EssentialContainerExited));
        assert!(t
            .containers
            .iter()
            .flatten()
            .all(|c| container_status(c) == ContainerStatus::Stopped));
        assert!(reported_status(&report("DONE")).is_err());
    }

    #[test]
    fn container_reports_are_forward_only_and_checked() {
        let mut t = task(TaskStatus::Running);
        let change = |status: &str| ContainerStateChange {
            container_name: Some("web".into()),
            status: Some(status.into()),
            exit_code: Some(3),
            ..Default::default()
        };
        apply_container_report(&mut t, &change("STOPPED")).unwrap();
        apply_container_report(&mut t, &change("RUNNING")).unwrap();
        let web = &t.containers.as_ref().unwrap()[0];
        assert_eq!(container_status(web), ContainerStatus::Stopped);
        assert_eq!(web.exit_code, Some(3));
        assert!(apply_container_report(&mut t, &change("EXITED")).is_err());
        let mut nobody = change("RUNNING");
        nobody.container_name = Some("nobody".into());
        assert!(apply_container_report(&mut t, &nobody).is_err());
    }

    #[test]
    fn a_stop_request_stops_a_task_no_agent_started_at_once() {
        let mut t = task(TaskStatus::Provisioning);
        assert_eq!(
            request_stop(&mut t, Stop::by_user(None), at(5)),
            StopRequested::StoppedNow
        );
        assert_eq!(t.status(), TaskStatus::Stopped);
        assert_eq!(t.stop_code, Some(TaskStopCode::UserInitiated));

        let mut t = task(TaskStatus::Running);
        assert_eq!(
            request_stop(&mut t, Stop::scaling("1"), at(5)),
            StopRequested::Asked
        );
        assert_eq!(
            (t.status(), t.desired()),
            (TaskStatus::Running, DesiredStatus::Stopped)
        );
        assert_eq!(
            request_stop(&mut t, Stop::by_user(None), at(6)),
            StopRequested::AlreadyAsked
        );
        assert_eq!(t.stop_code, Some(TaskStopCode::ServiceSchedulerInitiated));
        assert_eq!(t.stopping_at, Some(at(5)));
        // The agent's STOPPED keeps the code the request gave.
        apply(&mut t, "STOPPED", at(7));
        assert_eq!(t.stop_code, Some(TaskStopCode::ServiceSchedulerInitiated));
    }

    #[test]
    fn stop_now_leaves_a_stopped_task_alone() {
        let mut t = task(TaskStatus::Running);
        let lost = Stop::agent_lost("arn:i", std::time::Duration::from_secs(360));
        assert!(stop_now(&mut t, &lost, at(1)));
        assert_eq!(t.stop_code, Some(TaskStopCode::TerminationNotice));
        assert!(!stop_now(&mut t, &Stop::by_user(None), at(2)));
        assert_eq!(t.stopped_at, Some(at(1)));
    }

    #[test]
    fn task_health_follows_essential_containers_with_checks() {
        let def = |name: &str, essential: bool, checked: bool| ContainerDefinition {
            name: Some(name.into()),
            essential: Some(essential),
            health_check: checked.then(HealthCheck::default),
            ..Default::default()
        };
        let td = TaskDefinition {
            container_definitions: Some(vec![def("web", true, true), def("side", false, true)]),
            ..Default::default()
        };
        let mut t = task(TaskStatus::Running);
        apply_health(&mut t, &td, &[("side".into(), HealthStatus::Unhealthy)]);
        assert_eq!(t.health_status, Some(HealthStatus::UnknownValue));
        apply_health(&mut t, &td, &[("web".into(), HealthStatus::Healthy)]);
        assert_eq!(t.health_status, Some(HealthStatus::Healthy));
        apply_health(
            &mut t,
            &td,
            &[("web".into(), parse_health("UNHEALTHY").unwrap())],
        );
        assert_eq!(t.health_status, Some(HealthStatus::Unhealthy));
        assert!(parse_health("SICK").is_err());
    }
}
