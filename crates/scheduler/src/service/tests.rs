//! The reconciler's decisions, one situation at a time.

use super::*;
use crate::Strategy;

const NOW: i64 = 1_000_000_000;

fn spec(desired: u32, min: u32, max: u32) -> Spec {
    Spec {
        name: "web".into(),
        scheduling: Scheduling::Replica { desired },
        controller: Controller::Ecs,
        rules: Rules {
            minimum_healthy_percent: min,
            maximum_percent: max,
            circuit_breaker: None,
            strategy: DeploymentStrategy::Rolling,
            health_grace_ms: 0,
            settle_ms: DEFAULT_SETTLE_MS,
            daemon_rollout: None,
        },
        draining: false,
        placement: default_placement(),
        seed: 1,
    }
}

fn state(ids: &[&str]) -> State {
    let mut s = State::default();
    for id in ids.iter().rev() {
        s.deploy(*id, NOW - 60_000);
    }
    s
}

fn task(id: &str, deployment: &str, status: TaskStatus) -> TaskView {
    TaskView {
        id: id.into(),
        deployment: deployment.into(),
        status,
        stopping: false,
        health: Health::Unknown,
        health_checked: false,
        started_at: (status == TaskStatus::Running).then_some(NOW - 60_000),
        stopped_at: None,
        stop_cause: None,
        protected_until: None,
        instance: None,
        zone: None,
    }
}

fn running(n: usize, deployment: &str) -> Vec<TaskView> {
    (0..n)
        .map(|i| {
            task(
                &format!("{deployment}-{i}"),
                deployment,
                TaskStatus::Running,
            )
        })
        .collect()
}

fn observed(tasks: Vec<TaskView>) -> Observed {
    Observed {
        now: NOW,
        tasks,
        instances: vec![],
    }
}

fn started(d: &Decision) -> u32 {
    d.start.iter().map(|s| s.count).sum()
}

fn stopped(d: &Decision) -> Vec<&str> {
    d.stop.iter().map(|s| s.task.as_str()).collect()
}

#[test]
fn a_new_service_starts_its_desired_count() {
    let d = reconcile(&spec(3, 100, 200), &state(&["d1"]), &observed(vec![]));
    assert_eq!(
        d.start,
        [Start {
            deployment: "d1".into(),
            count: 3,
            instance: None
        }]
    );
    assert!(d.stop.is_empty());
    assert!(!d.state.steady);
}

#[test]
fn a_full_healthy_service_completes_and_is_steady_once() {
    let d = reconcile(
        &spec(3, 100, 200),
        &state(&["d1"]),
        &observed(running(3, "d1")),
    );
    assert!(d.start.is_empty() && d.stop.is_empty());
    assert_eq!(d.state.deployments[0].rollout, Rollout::Completed);
    assert_eq!(d.state.last_completed.as_deref(), Some("d1"));
    assert_eq!(
        d.events,
        [
            Event::DeploymentCompleted {
                deployment: "d1".into()
            },
            Event::SteadyState
        ]
    );
    let again = reconcile(&spec(3, 100, 200), &d.state, &observed(running(3, "d1")));
    assert!(again.events.is_empty(), "{:?}", again.events);
    // Six hours on, ECS says it again.
    let mut later = observed(running(3, "d1"));
    later.now = NOW + 6 * 3600 * 1000;
    let d = reconcile(&spec(3, 100, 200), &again.state, &later);
    assert_eq!(d.events, [Event::SteadyState]);
}

#[test]
fn rolling_update_keeps_the_minimum_healthy_and_the_maximum() {
    // 4 tasks, min 50 %, max 200 %: two old tasks may stop at once and
    // four new ones start, never more than 8 running or pending.
    let s = state(&["new", "old"]);
    let d = reconcile(&spec(4, 50, 200), &s, &observed(running(4, "old")));
    assert_eq!(stopped(&d).len(), 2);
    assert_eq!(started(&d), 4);
    // With max 100 % nothing starts until old tasks are gone.
    let d = reconcile(&spec(4, 50, 100), &s, &observed(running(4, "old")));
    assert_eq!((stopped(&d).len(), started(&d)), (2, 0));
    // With min 100 % nothing old stops until new tasks are healthy.
    let d = reconcile(&spec(4, 100, 200), &s, &observed(running(4, "old")));
    assert_eq!((stopped(&d).len(), started(&d)), (0, 4));
    let mut tasks = running(4, "old");
    tasks.extend(running(4, "new"));
    let d = reconcile(&spec(4, 100, 200), &s, &observed(tasks));
    assert_eq!((stopped(&d).len(), started(&d)), (4, 0));
    assert!(d.stop.iter().all(|s| s.task.starts_with("old")));
    assert_eq!(
        d.stop[0].why,
        StopWhy::Scaling {
            deployment: "new".into()
        }
    );
}

#[test]
fn the_old_deployment_retires_once_empty_and_the_new_one_completes() {
    let s = state(&["new", "old"]);
    let mut tasks = running(4, "new");
    let mut gone = task("old-0", "old", TaskStatus::Stopped);
    gone.stop_cause = Some(StopCause::Scheduler);
    tasks.push(gone);
    let d = reconcile(&spec(4, 100, 200), &s, &observed(tasks));
    assert_eq!(d.forget, ["old-0"]);
    assert_eq!(d.retired.len(), 1);
    assert_eq!(d.state.deployments.len(), 1);
    assert_eq!(d.state.deployments[0].rollout, Rollout::Completed);
    assert!(d.state.steady);
}

#[test]
fn unhealthy_and_pending_old_tasks_go_first() {
    let s = state(&["new", "old"]);
    let mut tasks = running(3, "old");
    tasks.push(task("old-p", "old", TaskStatus::Pending));
    tasks[0].health_checked = true;
    tasks[0].health = Health::Unknown;
    // min 100 %: no healthy task may go, but the two that are not
    // healthy (pending, health unknown) may.
    let d = reconcile(&spec(4, 100, 200), &s, &observed(tasks));
    let mut got = stopped(&d);
    got.sort();
    assert_eq!(got, ["old-0", "old-p"]);
}

#[test]
fn the_circuit_breaker_fails_the_deployment_and_rolls_back() {
    let mut sp = spec(4, 100, 200);
    sp.rules.circuit_breaker = Some(true);
    let mut s = state(&["bad", "good"]);
    s.deployments[1].rollout = Rollout::Completed;
    s.last_completed = Some("good".into());
    let mut tasks = running(4, "good");
    for i in 0..3 {
        let mut t = task(&format!("bad-{i}"), "bad", TaskStatus::Stopped);
        t.stop_cause = Some(StopCause::Exited);
        t.started_at = Some(NOW - 100);
        t.stopped_at = Some(NOW - 50);
        tasks.push(t);
    }
    let d = reconcile(&sp, &s, &observed(tasks.clone()));
    assert_eq!(d.forget.len(), 3);
    let ids: Vec<&str> = d.state.deployments.iter().map(|d| d.id.as_str()).collect();
    // The failed one stays listed a moment, FAILED, for clients to see.
    assert_eq!(ids, ["good", "bad"]);
    let bad = &d.state.deployments[1];
    assert_eq!(bad.rollout, Rollout::Failed);
    assert_eq!(
        bad.reason,
        "ECS deployment circuit breaker: tasks failed to start."
    );
    assert!(d.events.contains(&Event::DeploymentFailed {
        deployment: "bad".into()
    }));
    assert!(d.events.contains(&Event::RollingBack { to: "good".into() }));
    // The rollback completes at once: its tasks are all there.
    assert_eq!(d.state.deployments[0].rollout, Rollout::Completed);
    assert!(!d.state.steady, "not steady while the failed one is listed");
    assert_eq!(d.wake_at, Some(NOW + 5_000));
    // Then it goes, and the service is steady.
    let mut later = observed(running(4, "good"));
    later.now = NOW + 5_000;
    let d = reconcile(&sp, &d.state, &later);
    assert_eq!(d.retired.len(), 1);
    assert_eq!(d.retired[0].id, "bad");
    assert_eq!(d.state.deployments.len(), 1);
    assert!(d.events.contains(&Event::SteadyState));

    // Without rollback the failed deployment stays primary and launches nothing.
    sp.rules.circuit_breaker = Some(false);
    let d = reconcile(&sp, &s, &observed(tasks));
    assert_eq!(d.state.deployments[0].id, "bad");
    assert_eq!(d.state.deployments[0].rollout, Rollout::Failed);
    assert!(d.start.is_empty() && d.stop.is_empty());
}

#[test]
fn the_threshold_is_half_the_desired_count_within_3_and_200() {
    assert_eq!(failure_threshold(1), 3);
    assert_eq!(failure_threshold(7), 4);
    assert_eq!(failure_threshold(10), 5);
    assert_eq!(failure_threshold(1000), 200);
}

#[test]
fn tasks_that_keep_failing_to_start_are_throttled() {
    let sp = spec(1, 100, 200);
    let mut s = state(&["d1"]);
    for round in 0..4 {
        let mut t = task(&format!("t{round}"), "d1", TaskStatus::Stopped);
        t.stop_cause = Some(StopCause::FailedToStart);
        let d = reconcile(&sp, &s, &observed(vec![t]));
        let throttled = round >= 2;
        assert_eq!(started(&d) == 0, throttled, "round {round}");
        assert_eq!(
            d.events.contains(&Event::UnableToStartConsistently),
            throttled
        );
        if throttled {
            assert!(d.wake_at.unwrap() > NOW);
        }
        s = d.state;
    }
    // A new deployment ends the throttling at once, as on ECS.
    s.deploy("d2", NOW);
    let d = reconcile(&sp, &s, &observed(vec![]));
    assert_eq!(started(&d), 1);
}

#[test]
fn scale_in_never_stops_a_protected_task() {
    let s = state(&["d1"]);
    let mut tasks = running(3, "d1");
    tasks[0].protected_until = Some(NOW + 60_000);
    tasks[1].protected_until = Some(NOW + 30_000);
    let d = reconcile(&spec(0, 100, 200), &s, &observed(tasks.clone()));
    assert_eq!(stopped(&d), ["d1-2"]);
    assert_eq!(
        d.events,
        [Event::ScaleInBlocked {
            deployment: "d1".into()
        }]
    );
    assert_eq!(d.wake_at, Some(NOW + 30_000));
    // Said once, not on every pass.
    let again = reconcile(&spec(0, 100, 200), &d.state, &observed(tasks[..2].to_vec()));
    assert!(again.events.is_empty());
    // Expired protection no longer counts.
    tasks[0].protected_until = Some(NOW - 1);
    let d = reconcile(&spec(1, 100, 200), &s, &observed(tasks));
    let mut got = stopped(&d);
    got.sort();
    assert_eq!(got, ["d1-0", "d1-2"]);
}

#[test]
fn scale_in_keeps_zones_balanced() {
    let s = state(&["d1"]);
    let zoned = |id: &str, zone: &str| {
        let mut t = task(id, "d1", TaskStatus::Running);
        t.zone = Some(zone.into());
        t.instance = Some(format!("i-{zone}"));
        t
    };
    let tasks = vec![
        zoned("a1", "a"),
        zoned("a2", "a"),
        zoned("a3", "a"),
        zoned("b1", "b"),
        zoned("c1", "c"),
    ];
    let d = reconcile(&spec(3, 100, 200), &s, &observed(tasks));
    assert_eq!(stopped(&d).iter().filter(|t| t.starts_with('a')).count(), 2);
}

#[test]
fn binpack_scale_in_empties_the_roomiest_instance() {
    let mut sp = spec(1, 100, 200);
    sp.placement = vec![Strategy::Binpack(crate::BinpackField::Memory)];
    let inst = |id: &str, memory: i64| InstanceView {
        id: id.into(),
        active: true,
        connected: true,
        eligible: true,
        attributes: Default::default(),
        cpu: 1024,
        memory,
    };
    let mut tasks = running(2, "d1");
    tasks[0].instance = Some("full".into());
    tasks[1].instance = Some("roomy".into());
    let mut o = observed(tasks);
    o.instances = vec![inst("full", 10), inst("roomy", 4000)];
    let d = reconcile(&sp, &state(&["d1"]), &o);
    assert_eq!(stopped(&d), ["d1-1"]);
}

#[test]
fn unhealthy_tasks_are_replaced_after_the_grace_period() {
    let mut sp = spec(2, 100, 200);
    sp.rules.health_grace_ms = 30_000;
    let mut tasks = running(2, "d1");
    tasks[0].health_checked = true;
    tasks[0].health = Health::Unhealthy;
    tasks[0].started_at = Some(NOW - 10_000);
    let d = reconcile(&sp, &state(&["d1"]), &observed(tasks.clone()));
    assert!(d.stop.is_empty());
    assert_eq!(d.wake_at, Some(NOW + 20_000));
    tasks[0].started_at = Some(NOW - 40_000);
    let d = reconcile(&sp, &state(&["d1"]), &observed(tasks));
    assert_eq!(
        d.stop,
        [Stop {
            task: "d1-0".into(),
            why: StopWhy::Unhealthy
        }]
    );
    assert_eq!(started(&d), 1);
    assert_eq!(
        d.events,
        [Event::TaskUnhealthy {
            task: "d1-0".into()
        }]
    );
}

#[test]
fn a_deleted_service_drains_to_inactive() {
    let mut sp = spec(3, 100, 200);
    sp.draining = true;
    let d = reconcile(&sp, &state(&["d1"]), &observed(running(3, "d1")));
    assert_eq!(d.stop.len(), 3);
    assert!(d.stop.iter().all(|s| s.why == StopWhy::ServiceDeleted));
    assert!(!d.drained);
    let mut gone = task("d1-0", "d1", TaskStatus::Stopped);
    gone.stop_cause = Some(StopCause::Scheduler);
    let d = reconcile(&sp, &state(&["d1"]), &observed(vec![gone]));
    assert!(d.drained);
}

fn instance(id: &str) -> InstanceView {
    InstanceView {
        id: id.into(),
        active: true,
        connected: true,
        eligible: true,
        attributes: Default::default(),
        cpu: 4096,
        memory: 4096,
    }
}

fn daemon_spec() -> Spec {
    let mut s = spec(0, 0, 100);
    s.scheduling = Scheduling::Daemon;
    s
}

#[test]
fn a_daemon_runs_one_task_per_qualifying_instance() {
    let mut o = observed(vec![]);
    let mut draining = instance("i3");
    draining.active = false;
    let mut unfit = instance("i4");
    unfit.eligible = false;
    o.instances = vec![instance("i1"), instance("i2"), draining, unfit];
    let mut t = task("t1", "d1", TaskStatus::Running);
    t.instance = Some("i1".into());
    let mut on_draining = task("t3", "d1", TaskStatus::Running);
    on_draining.instance = Some("i3".into());
    o.tasks = vec![t, on_draining];
    let d = reconcile(&daemon_spec(), &state(&["d1"]), &o);
    assert_eq!(
        d.start,
        [Start {
            deployment: "d1".into(),
            count: 1,
            instance: Some("i2".into())
        }]
    );
    assert_eq!(
        d.stop,
        [Stop {
            task: "t3".into(),
            why: StopWhy::InstanceIneligible
        }]
    );
    assert_eq!(d.desired, 2);
}

#[test]
fn a_daemon_deployment_stops_before_it_starts_on_each_instance() {
    let mut o = observed(vec![]);
    o.instances = vec![instance("i1"), instance("i2")];
    for (id, inst) in [("o1", "i1"), ("o2", "i2")] {
        let mut t = task(id, "old", TaskStatus::Running);
        t.instance = Some(inst.into());
        o.tasks.push(t);
    }
    let d = reconcile(&daemon_spec(), &state(&["new", "old"]), &o);
    assert_eq!(d.stop.len(), 2, "min 0 %: all old tasks may stop at once");
    assert!(d.start.is_empty(), "their instances are not free yet");
}

fn daemon_api_spec(drain_percent: f64, bake_ms: i64) -> Spec {
    let mut s = daemon_spec();
    s.rules.daemon_rollout = Some(DaemonRollout {
        drain_percent,
        bake_ms,
    });
    s
}

#[test]
fn a_daemon_api_deployment_drains_its_percent_of_instances_at_least_one() {
    let mut o = observed(vec![]);
    for i in 0..8 {
        let inst = format!("i{i}");
        o.instances.push(instance(&inst));
        let mut t = task(&format!("o{i}"), "old", TaskStatus::Running);
        t.instance = Some(inst);
        o.tasks.push(t);
    }
    let s = state(&["new", "old"]);
    // 25 % of 8: two at a time.
    let d = reconcile(&daemon_api_spec(25.0, 0), &s, &o);
    assert_eq!(d.stop.len(), 2);
    // 10 % of 8 is less than one: still one, so the rollout moves.
    let d = reconcile(&daemon_api_spec(10.0, 0), &s, &o);
    assert_eq!(d.stop.len(), 1);
    assert_eq!(
        DaemonRollout {
            drain_percent: 100.0,
            bake_ms: 0
        }
        .batch(8),
        8
    );
}

#[test]
fn a_daemon_api_deployment_bakes_before_it_completes() {
    let mut o = observed(vec![]);
    o.instances = vec![instance("i1")];
    let mut t = task("n1", "d1", TaskStatus::Running);
    t.instance = Some("i1".into());
    o.tasks = vec![t];
    let sp = daemon_api_spec(25.0, 60_000);
    let d = reconcile(&sp, &state(&["d1"]), &o);
    assert_eq!(d.state.deployments[0].rollout, Rollout::InProgress);
    assert_eq!(d.wake_at, Some(NOW + 60_000));
    o.now = NOW + 59_000;
    let d = reconcile(&sp, &d.state, &o);
    assert_eq!(d.state.deployments[0].rollout, Rollout::InProgress);
    o.now = NOW + 60_000;
    let d = reconcile(&sp, &d.state, &o);
    assert_eq!(d.state.deployments[0].rollout, Rollout::Completed);
}

#[test]
fn blue_green_bakes_the_green_revision_before_blue_stops() {
    let mut sp = spec(2, 100, 200);
    sp.rules.strategy = DeploymentStrategy::BlueGreen { bake_ms: 60_000 };
    let s = state(&["green", "blue"]);
    let d = reconcile(&sp, &s, &observed(running(2, "blue")));
    assert_eq!((started(&d), d.stop.len()), (2, 0));
    let mut tasks = running(2, "blue");
    tasks.extend(running(2, "green"));
    let d = reconcile(&sp, &s, &observed(tasks.clone()));
    assert!(d.stop.is_empty(), "baking");
    assert_eq!(d.wake_at, Some(NOW + 60_000));
    let mut later = observed(tasks);
    later.now = NOW + 60_000;
    let d = reconcile(&sp, &d.state, &later);
    assert_eq!(stopped(&d), ["blue-1", "blue-0"]);
}

#[test]
fn canary_grows_green_by_steps() {
    let mut sp = spec(10, 100, 200);
    sp.rules.strategy = DeploymentStrategy::Canary {
        percent: 20.0,
        canary_bake_ms: 1_000,
        bake_ms: 1_000,
    };
    let s = state(&["green", "blue"]);
    let d = reconcile(&sp, &s, &observed(running(10, "blue")));
    assert_eq!(started(&d), 2);
    let mut tasks = running(10, "blue");
    tasks.extend(running(2, "green"));
    let d = reconcile(&sp, &s, &observed(tasks.clone()));
    assert_eq!(started(&d), 0);
    let mut later = observed(tasks);
    later.now = NOW + 1_000;
    let d = reconcile(&sp, &d.state, &later);
    assert_eq!(d.state.deployments[0].step, 1);
    let d = reconcile(&sp, &d.state, &later);
    assert_eq!(started(&d), 8);
}

#[test]
fn task_sets_run_their_targets() {
    let mut sp = spec(4, 100, 200);
    sp.controller = Controller::External;
    let mut s = state(&["ts2", "ts1"]);
    s.deployments[0].target = Some(3);
    s.deployments[1].target = Some(1);
    let d = reconcile(&sp, &s, &observed(running(2, "ts1")));
    assert_eq!(stopped(&d), ["ts1-1"]);
    assert_eq!(started(&d), 3);
    s.deployments[1].deleted = true;
    let d = reconcile(&sp, &s, &observed(vec![]));
    assert_eq!(d.retired.len(), 1);
}
