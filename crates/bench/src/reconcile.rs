//! `service-reconcile`: the service reconciler's cost, alone. Builds the
//! snapshots of `--services` services of `--service-tasks` tasks each
//! (half of them in the middle of a rolling deployment, some tasks pending
//! or just stopped) on `--instances` simulated instances, and times full
//! passes — every service reconciled once — as the control plane's
//! scheduler would run them. Pure CPU: no server, no store.

use berth_core::task::TaskStatus;
use berth_scheduler::service::DEFAULT_SETTLE_MS;
use berth_scheduler::service::{
    self, Controller, DeploymentStrategy, Health, InstanceView, Observed, Rules, Scheduling, Spec,
    State, StopCause, TaskView,
};
use std::time::{Duration, Instant};

pub struct Options {
    pub services: usize,
    pub tasks_per_service: usize,
    pub instances: usize,
    pub passes: usize,
}

struct Case {
    spec: Spec,
    state: State,
    observed: Observed,
}

const NOW: i64 = 1_800_000_000_000;

fn cases(o: &Options) -> Vec<Case> {
    let instances: Vec<InstanceView> = (0..o.instances)
        .map(|i| InstanceView {
            id: format!("{i:032x}"),
            active: true,
            connected: true,
            eligible: true,
            attributes: [(
                "ecs.availability-zone".to_string(),
                Some(format!("us-east-1{}", ["a", "b", "c"][i % 3])),
            )]
            .into(),
            cpu: 4096,
            memory: 16384,
        })
        .collect();
    (0..o.services)
        .map(|s| {
            let rolling = s % 2 == 0;
            let mut state = State::default();
            state.deploy(format!("ecs-svc/{:019}", s * 2), NOW - 600_000);
            if rolling {
                state.deploy(format!("ecs-svc/{:019}", s * 2 + 1), NOW - 10_000);
            }
            let primary = state.deployments[0].id.clone();
            let old = state.deployments.last().unwrap().id.clone();
            let tasks = (0..o.tasks_per_service)
                .map(|t| {
                    let k = s * o.tasks_per_service + t;
                    let status = match t % 10 {
                        0 => TaskStatus::Pending,
                        1 if rolling => TaskStatus::Stopped,
                        _ => TaskStatus::Running,
                    };
                    let instance = &instances[k % instances.len()];
                    TaskView {
                        id: format!("{k:032x}"),
                        deployment: if rolling && t % 2 == 1 {
                            old.clone()
                        } else {
                            primary.clone()
                        },
                        status,
                        stopping: false,
                        health: Health::Healthy,
                        health_checked: t % 3 == 0,
                        started_at: (status != TaskStatus::Pending).then_some(NOW - 60_000),
                        stopped_at: (status == TaskStatus::Stopped).then_some(NOW - 1_000),
                        stop_cause: (status == TaskStatus::Stopped).then_some(StopCause::Exited),
                        protected_until: None,
                        instance: Some(instance.id.clone()),
                        zone: instance.attributes["ecs.availability-zone"].clone(),
                    }
                })
                .collect();
            Case {
                spec: Spec {
                    name: format!("svc-{s}"),
                    scheduling: Scheduling::Replica {
                        desired: o.tasks_per_service as u32,
                    },
                    controller: Controller::Ecs,
                    rules: Rules {
                        minimum_healthy_percent: 50,
                        maximum_percent: 200,
                        circuit_breaker: Some(true),
                        strategy: DeploymentStrategy::Rolling,
                        health_grace_ms: 0,
                        settle_ms: DEFAULT_SETTLE_MS,
                        daemon_rollout: None,
                    },
                    draining: false,
                    placement: service::default_placement(),
                    seed: s as u64,
                },
                state,
                observed: Observed {
                    now: NOW,
                    tasks,
                    instances: instances.clone(),
                },
            }
        })
        .collect()
}

pub fn run(o: &Options, command: &str) {
    let cases = cases(o);
    let tasks: usize = cases.iter().map(|c| c.observed.tasks.len()).sum();
    let mut times: Vec<Duration> = Vec::with_capacity(o.passes);
    let (mut starts, mut stops) = (0u64, 0u64);
    for _ in 0..o.passes {
        let begun = Instant::now();
        for c in &cases {
            let d = service::reconcile(&c.spec, &c.state, &c.observed);
            starts += d.start.iter().map(|s| u64::from(s.count)).sum::<u64>();
            stops += d.stop.len() as u64;
        }
        times.push(begun.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!();
    println!(
        "service reconciler, pure: {} services x {} tasks = {tasks} tasks on {} instances, {} full passes",
        o.services, o.tasks_per_service, o.instances, o.passes
    );
    println!(
        "  full pass: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (goal: <= 100 ms for 10,000 tasks)",
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(*times.last().unwrap())
    );
    println!(
        "  per service: {:.1} us; decisions per pass: {} starts, {} stops",
        ms(pct(0.5)) * 1000.0 / o.services as f64,
        starts / o.passes as u64,
        stops / o.passes as u64
    );
    println!(
        "  repeat: {command} --workload service-reconcile --services {} --service-tasks {} --instances {}",
        o.services, o.tasks_per_service, o.instances
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
