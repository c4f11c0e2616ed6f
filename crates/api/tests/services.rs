//! Services driven through the real operations and the real driver, on a
//! `ManualClock`, with scripted agents standing in for hosts: rolling
//! updates within their bounds, the circuit breaker, the throttle,
//! daemons following instances, protection, and a control plane restarted
//! in the middle of a deployment. No sleeping, no servers.

use berth_api::ecs::Timings;
use berth_api::Ecs;
use berth_core::clock::{Clock, ManualClock};
use berth_store::SqliteStore;
use berth_wire::agent::PollWorkRequest;
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How a scripted agent treats the tasks of a task definition revision.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Behaviour {
    /// Starts it and keeps it running.
    Run,
    /// Cannot start it (a pull or start failure).
    FailStart,
    /// Starts it; its essential container exits at once.
    ExitAtOnce,
}

struct H {
    dir: tempfile::TempDir,
    ecs: Ecs,
    ctx: RequestContext,
    clock: ManualClock,
    instances: Vec<String>,
    /// Revision number → behaviour (default: Run).
    behaviour: BTreeMap<i32, Behaviour>,
}

fn resources(n: i32) -> Vec<Resource> {
    ["CPU", "MEMORY"]
        .iter()
        .map(|name| Resource {
            name: Some((*name).into()),
            r#type: Some("INTEGER".into()),
            integer_value: Some(n),
            ..Default::default()
        })
        .collect()
}

fn ecs_over(dir: &tempfile::TempDir, clock: &ManualClock) -> Ecs {
    let store = SqliteStore::open(dir.path().join("berth.db")).unwrap();
    Ecs::with_timings(Arc::new(store), b"k".to_vec(), Timings::default())
        .with_clock(Arc::new(clock.clone()))
}

async fn harness(instances: usize) -> H {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let ecs = ecs_over(&dir, &clock);
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    let cluster = CreateClusterRequest {
        cluster_name: Some("c".into()),
        ..Default::default()
    };
    ecs.create_cluster(&ctx, cluster).await.unwrap();
    let mut h = H {
        dir,
        ecs,
        ctx,
        clock,
        instances: Vec::new(),
        behaviour: BTreeMap::new(),
    };
    for i in 0..instances {
        h.add_instance(i).await;
    }
    h.register(None).await;
    h
}

impl H {
    async fn add_instance(&mut self, i: usize) -> String {
        let attributes = vec![
            Attribute {
                name: "com.amazonaws.ecs.capability.docker-remote-api.1.18".into(),
                ..Default::default()
            },
            Attribute {
                name: "ecs.capability.container-health-check".into(),
                ..Default::default()
            },
            Attribute {
                name: "ecs.availability-zone".into(),
                value: Some(format!("us-east-1{}", ["a", "b", "c"][i % 3])),
                ..Default::default()
            },
        ];
        let req = RegisterContainerInstanceRequest {
            cluster: Some("c".into()),
            total_resources: Some(resources(4096)),
            attributes: Some(attributes),
            ..Default::default()
        };
        let arn = self
            .ecs
            .register_container_instance(&self.ctx, req)
            .await
            .unwrap()
            .container_instance
            .unwrap()
            .container_instance_arn
            .unwrap();
        self.instances.push(arn.clone());
        arn
    }

    /// Registers a revision of `app` (with a health check when given).
    async fn register(&self, health: Option<HealthCheck>) -> i32 {
        let td = RegisterTaskDefinitionRequest {
            family: "app".into(),
            container_definitions: vec![ContainerDefinition {
                name: Some("main".into()),
                image: Some("busybox".into()),
                memory: Some(128),
                health_check: health,
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = self
            .ecs
            .register_task_definition(&self.ctx, td)
            .await
            .unwrap();
        out.task_definition.unwrap().revision.unwrap()
    }

    async fn create(&self, req: CreateServiceRequest) -> Service {
        self.ecs
            .create_service(&self.ctx, req)
            .await
            .unwrap()
            .service
            .unwrap()
    }

    async fn update(&self, req: UpdateServiceRequest) -> Service {
        self.ecs
            .update_service(&self.ctx, req)
            .await
            .unwrap()
            .service
            .unwrap()
    }

    async fn service(&self, name: &str) -> Service {
        let req = DescribeServicesRequest {
            cluster: Some("c".into()),
            services: vec![name.into()],
            include: None,
        };
        let out = self.ecs.describe_services(&self.ctx, req).await.unwrap();
        out.services.unwrap().remove(0)
    }

    /// Every task of the cluster, as DescribeTasks shows it.
    async fn tasks(&self) -> Vec<Task> {
        let mut arns = Vec::new();
        for desired in [DesiredStatus::Running, DesiredStatus::Stopped] {
            let mut token = None;
            loop {
                let req = ListTasksRequest {
                    cluster: Some("c".into()),
                    desired_status: Some(desired.clone()),
                    next_token: token.clone(),
                    ..Default::default()
                };
                let out = self.ecs.list_tasks(&self.ctx, req).await.unwrap();
                arns.extend(out.task_arns.unwrap());
                token = out.next_token;
                if token.is_none() {
                    break;
                }
            }
        }
        let mut out = Vec::new();
        for chunk in arns.chunks(100) {
            let req = DescribeTasksRequest {
                cluster: Some("c".into()),
                tasks: chunk.to_vec(),
                include: None,
            };
            out.extend(
                self.ecs
                    .describe_tasks(&self.ctx, req)
                    .await
                    .unwrap()
                    .tasks
                    .unwrap(),
            );
        }
        out
    }

    fn revision_of(t: &Task) -> i32 {
        let arn = t.task_definition_arn.as_deref().unwrap();
        arn.rsplit(':').next().unwrap().parse().unwrap()
    }

    async fn report(&self, t: &Task, status: &str, exit: Option<i32>, reason: Option<&str>) {
        let req = SubmitTaskStateChangeRequest {
            cluster: Some("c".into()),
            task: t.task_arn.clone(),
            status: Some(status.into()),
            reason: reason.map(str::to_string),
            containers: Some(vec![ContainerStateChange {
                container_name: Some("main".into()),
                status: Some(status.into()),
                exit_code: exit,
                runtime_id: Some(format!("rt-{}", t.task_arn.as_deref().unwrap())),
                ..Default::default()
            }]),
            ..Default::default()
        };
        self.ecs
            .submit_task_state_change(&self.ctx, req)
            .await
            .unwrap();
    }

    /// What each host's agent does with what it was given: starts new
    /// tasks (or fails them, as their revision's behaviour says), stops
    /// those asked to stop, reports health.
    async fn agents(&self) {
        for instance in &self.instances {
            let req = PollWorkRequest {
                cluster: "c".into(),
                container_instance_arn: instance.clone(),
                known_version: 0,
                wait_seconds: 0,
            };
            let Ok(work) = self.ecs.poll_work(&self.ctx, req).await else {
                continue; // deregistered
            };
            for a in work.tasks {
                let t = a.task;
                let last = t.last_status.as_deref().unwrap_or_default();
                if t.desired_status.as_deref() == Some("STOPPED") {
                    if last != "STOPPED" {
                        self.report(&t, "STOPPED", Some(143), None).await;
                    }
                    continue;
                }
                if last == "RUNNING" {
                    self.health(&t, &a.task_definition).await;
                    continue;
                }
                match self
                    .behaviour
                    .get(&Self::revision_of(&t))
                    .copied()
                    .unwrap_or(Behaviour::Run)
                {
                    Behaviour::Run => self.report(&t, "RUNNING", None, None).await,
                    Behaviour::FailStart => {
                        self.report(
                            &t,
                            "STOPPED",
                            None,
                            Some("CannotStartContainerError: no such image"),
                        )
                        .await
                    }
                    Behaviour::ExitAtOnce => {
                        self.report(&t, "RUNNING", None, None).await;
                        self.report(&t, "STOPPED", Some(1), None).await;
                    }
                }
            }
        }
    }

    async fn health(&self, t: &Task, td: &TaskDefinition) {
        let checked = td
            .container_definitions
            .iter()
            .flatten()
            .any(|c| c.health_check.is_some());
        if checked && t.health_status != Some(HealthStatus::Healthy) {
            let req = berth_wire::agent::SubmitHealthRequest {
                cluster: "c".into(),
                task: t.task_arn.clone().unwrap(),
                containers: vec![berth_wire::agent::ContainerHealth {
                    container_name: "main".into(),
                    health_status: "HEALTHY".into(),
                }],
            };
            self.ecs.submit_health(&self.ctx, req).await.unwrap();
        }
    }

    /// One second of the world: the scheduler's passes, the agents' turn.
    async fn step(&self) {
        for _ in 0..10 {
            if self.ecs.reconcile_services().await == 0 {
                break;
            }
        }
        self.agents().await;
        for _ in 0..10 {
            if self.ecs.reconcile_services().await == 0 {
                break;
            }
        }
        self.clock.advance(Duration::from_secs(1));
    }

    /// Steps until `done` holds, at most `limit` seconds of simulated time.
    async fn until(&self, limit: u32, what: &str, done: impl AsyncFn(&H) -> bool) {
        for _ in 0..limit {
            if done(self).await {
                return;
            }
            self.step().await;
        }
        panic!(
            "not {what} within {limit} s: {:#?}",
            self.service("web").await
        );
    }

    /// Steady as ECS's event means it: one deployment, COMPLETED (its
    /// tasks proven), every task running.
    async fn stable(&self, name: &str) -> bool {
        let s = self.service(name).await;
        let deployments = s.deployments.clone().unwrap_or_default();
        deployments.len() == 1
            && deployments[0].rollout_state == Some(DeploymentRolloutState::Completed)
            && s.running_count == s.desired_count
            && s.pending_count == Some(0)
    }
}

fn service(desired: i32, td: &str) -> CreateServiceRequest {
    CreateServiceRequest {
        cluster: Some("c".into()),
        service_name: "web".into(),
        task_definition: Some(td.into()),
        desired_count: Some(desired),
        launch_type: Some(LaunchType::Ec2),
        ..Default::default()
    }
}

fn rolling(min: i32, max: i32, breaker: bool) -> DeploymentConfiguration {
    DeploymentConfiguration {
        minimum_healthy_percent: Some(min),
        maximum_percent: Some(max),
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: breaker,
            rollback: breaker,
        }),
        ..Default::default()
    }
}

fn events(s: &Service) -> Vec<String> {
    s.events
        .iter()
        .flatten()
        .filter_map(|e| e.message.clone())
        .collect()
}

#[tokio::test]
async fn a_rolling_update_stays_within_its_bounds_at_every_step() {
    let mut h = harness(3).await;
    let check = HealthCheck {
        command: vec!["CMD-SHELL".into(), "true".into()],
        ..Default::default()
    };
    let v2 = h.register(Some(check)).await;
    h.behaviour.insert(v2, Behaviour::Run);
    let mut req = service(4, "app:1");
    req.deployment_configuration = Some(rolling(50, 200, false));
    h.create(req).await;
    h.until(30, "stable on revision 1", async |h| h.stable("web").await)
        .await;

    h.update(UpdateServiceRequest {
        cluster: Some("c".into()),
        service: "web".into(),
        task_definition: Some(format!("app:{v2}")),
        ..Default::default()
    })
    .await;
    let mut steps = 0;
    loop {
        // What a watcher polling DescribeTasks would see between steps.
        let tasks = h.tasks().await;
        let live = tasks
            .iter()
            .filter(|t| t.last_status.as_deref() != Some("STOPPED"))
            .count();
        let healthy = tasks
            .iter()
            .filter(|t| {
                t.last_status.as_deref() == Some("RUNNING")
                    && t.desired_status.as_deref() == Some("RUNNING")
                    && (H::revision_of(t) == 1 || t.health_status == Some(HealthStatus::Healthy))
            })
            .count();
        assert!(live <= 8, "{live} tasks running or pending at step {steps}");
        assert!(healthy >= 2, "{healthy} healthy tasks at step {steps}");
        let s = h.service("web").await;
        let done = s.deployments.as_ref().unwrap().len() == 1
            && s.running_count == Some(4)
            && s.deployments.as_ref().unwrap()[0].rollout_state
                == Some(DeploymentRolloutState::Completed);
        if done {
            assert!(s.task_definition.unwrap().ends_with(&format!(":{v2}")));
            break;
        }
        steps += 1;
        assert!(steps < 60, "the rollout did not finish: {s:#?}");
        h.step().await;
    }
    let s = h.service("web").await;
    let ev = events(&s);
    assert!(ev[0].ends_with("has reached a steady state."), "{ev:?}");
    assert!(ev.iter().any(|e| e.contains("deployment completed.")));
    // The old revision's tasks were stopped by the scheduler, naming their
    // own deployment, as ECS does.
    let old = h
        .tasks()
        .await
        .into_iter()
        .filter(|t| H::revision_of(t) == 1)
        .collect::<Vec<_>>();
    assert_eq!(old.len(), 4);
    for t in old {
        assert_eq!(t.stop_code, Some(TaskStopCode::ServiceSchedulerInitiated));
        let deployment = t.started_by.clone().unwrap();
        assert_eq!(
            t.stopped_reason.as_deref(),
            Some(format!("Scaling activity initiated by (deployment {deployment})").as_str())
        );
        assert_eq!(t.group.as_deref(), Some("service:web"));
    }
}

#[tokio::test]
async fn a_failing_revision_trips_the_circuit_breaker_and_rolls_back() {
    let mut h = harness(2).await;
    let v2 = h.register(None).await;
    h.behaviour.insert(v2, Behaviour::ExitAtOnce);
    let mut req = service(4, "app:1");
    req.deployment_configuration = Some(rolling(100, 200, true));
    h.create(req).await;
    h.until(30, "stable", async |h| h.stable("web").await).await;
    let first = h.service("web").await.deployments.unwrap()[0]
        .id
        .clone()
        .unwrap();
    h.update(UpdateServiceRequest {
        cluster: Some("c".into()),
        service: "web".into(),
        task_definition: Some(format!("app:{v2}")),
        ..Default::default()
    })
    .await;
    h.until(120, "rolled back and stable", async |h| {
        let s = h.service("web").await;
        h.stable("web").await && s.deployments.unwrap()[0].id.as_deref() == Some(first.as_str())
    })
    .await;
    let s = h.service("web").await;
    assert!(s.task_definition.as_deref().unwrap().ends_with(":1"));
    let ev = events(&s);
    assert!(
        ev.iter()
            .any(|e| e.ends_with("deployment failed: tasks failed to start.")),
        "{ev:?}"
    );
    assert!(ev
        .iter()
        .any(|e| e == &format!("(service web) rolling back to deployment {first}.")));
    // Its record shows the rollback; min 100 % kept all four old tasks.
    let list = h
        .ecs
        .list_service_deployments(
            &h.ctx,
            ListServiceDeploymentsRequest {
                cluster: Some("c".into()),
                service: "web".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .service_deployments
        .unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0].status,
        Some(ServiceDeploymentStatus::RollbackSuccessful)
    );
    assert_eq!(list[1].status, Some(ServiceDeploymentStatus::Successful));
    let v1_stopped = h
        .tasks()
        .await
        .iter()
        .filter(|t| H::revision_of(t) == 1 && t.last_status.as_deref() == Some("STOPPED"))
        .count();
    assert_eq!(v1_stopped, 0, "minimum healthy 100 %: no old task went");
}

#[tokio::test]
async fn tasks_that_cannot_start_are_retried_ever_more_slowly() {
    let mut h = harness(1).await;
    h.behaviour.insert(1, Behaviour::FailStart);
    h.create(service(1, "app:1")).await;
    for _ in 0..40 {
        h.step().await;
    }
    let launched = h.tasks().await.len();
    // Two free retries, then 5 s, 10 s, 20 s apart: far from one a second.
    assert!((4..=7).contains(&launched), "{launched} launches in 40 s");
    let ev = events(&h.service("web").await);
    assert!(ev
        .iter()
        .any(|e| e == "(service web) is unable to consistently start tasks successfully."));
    // A new revision ends the throttling at once.
    h.behaviour.insert(1, Behaviour::Run);
    let v2 = h.register(None).await;
    h.update(UpdateServiceRequest {
        cluster: Some("c".into()),
        service: "web".into(),
        task_definition: Some(format!("app:{v2}")),
        ..Default::default()
    })
    .await;
    h.until(15, "stable on the new revision", async |h| {
        h.stable("web").await
    })
    .await;
}

#[tokio::test]
async fn a_daemon_runs_one_task_per_instance_and_follows_them() {
    let mut h = harness(3).await;
    let mut req = service(0, "app:1");
    req.desired_count = None;
    req.scheduling_strategy = Some(SchedulingStrategy::Daemon);
    h.create(req).await;
    h.until(20, "one task per instance", async |h| {
        h.stable("web").await && h.service("web").await.running_count == Some(3)
    })
    .await;
    assert_eq!(h.service("web").await.desired_count, Some(3));
    let per_instance = |tasks: &[Task]| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for t in tasks
            .iter()
            .filter(|t| t.last_status.as_deref() != Some("STOPPED"))
        {
            *m.entry(t.container_instance_arn.clone().unwrap())
                .or_default() += 1;
        }
        m
    };
    let four = h.add_instance(3).await;
    h.until(20, "a task on the new instance", async |h| {
        per_instance(&h.tasks().await).get(&four) == Some(&1) && h.stable("web").await
    })
    .await;
    assert_eq!(h.service("web").await.desired_count, Some(4));
    // Draining an instance takes its task away.
    let drain = UpdateContainerInstancesStateRequest {
        cluster: Some("c".into()),
        container_instances: vec![h.instances[0].clone()],
        status: ContainerInstanceStatus::Draining,
    };
    h.ecs
        .update_container_instances_state(&h.ctx, drain)
        .await
        .unwrap();
    let first = h.instances[0].clone();
    h.until(20, "the drained instance empty", async |h| {
        !per_instance(&h.tasks().await).contains_key(&first) && h.stable("web").await
    })
    .await;
    let counts = per_instance(&h.tasks().await);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert_eq!(counts.len(), 3);
}

#[tokio::test]
async fn scale_in_leaves_protected_tasks_running() {
    let h = harness(2).await;
    h.create(service(3, "app:1")).await;
    h.until(20, "stable", async |h| h.stable("web").await).await;
    let tasks = h.tasks().await;
    let keep: Vec<String> = tasks[..2]
        .iter()
        .map(|t| t.task_arn.clone().unwrap())
        .collect();
    let out = h
        .ecs
        .update_task_protection(
            &h.ctx,
            UpdateTaskProtectionRequest {
                cluster: "c".into(),
                tasks: keep.clone(),
                protection_enabled: true,
                expires_in_minutes: Some(10),
            },
        )
        .await
        .unwrap();
    assert_eq!(out.protected_tasks.unwrap().len(), 2);
    h.update(UpdateServiceRequest {
        cluster: Some("c".into()),
        service: "web".into(),
        desired_count: Some(1),
        ..Default::default()
    })
    .await;
    for _ in 0..10 {
        h.step().await;
    }
    let running: BTreeSet<String> = h
        .tasks()
        .await
        .into_iter()
        .filter(|t| t.last_status.as_deref() == Some("RUNNING"))
        .map(|t| t.task_arn.unwrap())
        .collect();
    assert_eq!(running, keep.iter().cloned().collect());
    let ev = events(&h.service("web").await);
    assert!(
        ev.iter().any(|e| e.contains("was unable to scale in")),
        "{ev:?}"
    );
    // Once the protection expires, the scale-in completes.
    h.clock.advance(Duration::from_secs(600));
    h.until(10, "scaled in", async |h| h.stable("web").await)
        .await;
}

/// A control plane that restarts at any point of a deployment resumes it:
/// every task it started is the service's, none is started twice, and the
/// service ends with exactly its desired count.
#[tokio::test]
async fn a_restart_in_the_middle_of_a_deployment_duplicates_and_orphans_nothing() {
    for cut in [0, 1, 2, 3, 5, 8] {
        let mut h = harness(2).await;
        let v2 = h.register(None).await;
        let mut req = service(3, "app:1");
        req.deployment_configuration = Some(rolling(50, 200, false));
        h.create(req).await;
        h.until(20, "stable", async |h| h.stable("web").await).await;
        h.update(UpdateServiceRequest {
            cluster: Some("c".into()),
            service: "web".into(),
            task_definition: Some(format!("app:{v2}")),
            ..Default::default()
        })
        .await;
        for _ in 0..cut {
            h.step().await;
        }
        // The process dies: a new control plane over the same store, with
        // nothing in memory but what it reads back.
        h.ecs = ecs_over(&h.dir, &h.clock);
        h.ecs.wake_all_services().await.unwrap();
        h.until(60, "stable after the restart", async |h| {
            h.stable("web").await
        })
        .await;
        let tasks = h.tasks().await;
        let live: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.last_status.as_deref() != Some("STOPPED"))
            .collect();
        assert_eq!(live.len(), 3, "cut at {cut}: {live:#?}");
        assert!(live.iter().all(|t| H::revision_of(t) == v2), "cut at {cut}");
        // Every task the service started is still known to it (counted),
        // or stopped.
        let s = h.service("web").await;
        assert_eq!(s.running_count, Some(3), "cut at {cut}");
        assert!(tasks
            .iter()
            .all(|t| t.group.as_deref() == Some("service:web")));
    }
}

#[tokio::test]
async fn deleting_a_service_drains_it_to_inactive() {
    let h = harness(1).await;
    h.create(service(2, "app:1")).await;
    h.until(20, "stable", async |h| h.stable("web").await).await;
    let refused = h
        .ecs
        .delete_service(
            &h.ctx,
            DeleteServiceRequest {
                cluster: Some("c".into()),
                service: "web".into(),
                force: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code, "InvalidParameterException");
    let s = h
        .ecs
        .delete_service(
            &h.ctx,
            DeleteServiceRequest {
                cluster: Some("c".into()),
                service: "web".into(),
                force: Some(true),
            },
        )
        .await
        .unwrap()
        .service
        .unwrap();
    assert_eq!(s.status.as_deref(), Some("DRAINING"));
    h.until(20, "INACTIVE", async |h| {
        h.service("web").await.status.as_deref() == Some("INACTIVE")
    })
    .await;
    assert!(h
        .tasks()
        .await
        .iter()
        .all(|t| t.last_status.as_deref() == Some("STOPPED")));
    let _ = h.clock.now();
}

#[tokio::test]
async fn blue_green_keeps_blue_until_the_bake_time_has_passed() {
    let h = harness(2).await;
    let v2 = h.register(None).await;
    let mut req = service(2, "app:1");
    req.deployment_configuration = Some(DeploymentConfiguration {
        strategy: Some(DeploymentStrategy::BlueGreen),
        bake_time_in_minutes: Some(1),
        ..Default::default()
    });
    h.create(req).await;
    h.until(20, "stable", async |h| h.stable("web").await).await;
    h.update(UpdateServiceRequest {
        cluster: Some("c".into()),
        service: "web".into(),
        task_definition: Some(format!("app:{v2}")),
        ..Default::default()
    })
    .await;
    let running = |tasks: &[Task], rev: i32| {
        tasks
            .iter()
            .filter(|t| H::revision_of(t) == rev && t.last_status.as_deref() == Some("RUNNING"))
            .count()
    };
    // Green comes up in full beside blue, which keeps running while green bakes.
    h.until(10, "green up", async |h| running(&h.tasks().await, v2) == 2)
        .await;
    // Green proves itself (10 s up), then bakes for a minute.
    for _ in 0..65 {
        h.step().await;
        assert_eq!(
            running(&h.tasks().await, 1),
            2,
            "blue stopped before the bake ended"
        );
    }
    h.until(30, "blue gone after the bake", async |h| {
        running(&h.tasks().await, 1) == 0 && h.stable("web").await
    })
    .await;
    let s = h.service("web").await;
    assert_eq!(
        s.deployments.unwrap()[0].rollout_state,
        Some(DeploymentRolloutState::Completed)
    );
}
