//! Managed scaling's engine over the real operations, on a `ManualClock`,
//! with a recording hook: scale-out from zero by the minimum step, hosts
//! warming up count as there, termination protection keeps busy and young
//! hosts, a chosen idle host is drained, removed and deregistered, and a
//! failing hook leaves nothing half-done.

use berth_api::ecs::scaling::{HookTable, ScaleRequest, ScalingEngine, ScalingHook};
use berth_api::ecs::Timings;
use berth_api::Ecs;
use berth_core::clock::ManualClock;
use berth_store::SqliteStore;
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<ScaleRequest>>,
    fail: Mutex<bool>,
}

#[async_trait::async_trait]
impl ScalingHook for Recorder {
    async fn scale(&self, r: &ScaleRequest) -> Result<(), String> {
        self.calls.lock().push(r.clone());
        if *self.fail.lock() {
            Err("the fleet said no".into())
        } else {
            Ok(())
        }
    }
}

struct Table(Arc<Recorder>);

impl HookTable for Table {
    fn hook(&self, account: &str, _region: &str, provider: &str) -> Option<Arc<dyn ScalingHook>> {
        (account == "123456789012" && provider == "pool")
            .then(|| self.0.clone() as Arc<dyn ScalingHook>)
    }
}

struct H {
    _dir: tempfile::TempDir,
    ecs: Ecs,
    ctx: RequestContext,
    clock: ManualClock,
    hook: Arc<Recorder>,
    engine: ScalingEngine,
    hosts: Mutex<Vec<String>>,
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

async fn harness() -> H {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let store = SqliteStore::open(dir.path().join("berth.db")).unwrap();
    let ecs = Ecs::with_timings(Arc::new(store), b"k".to_vec(), Timings::default())
        .with_clock(Arc::new(clock.clone()));
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    ecs.create_capacity_provider(
        &ctx,
        CreateCapacityProviderRequest {
            name: "pool".into(),
            auto_scaling_group_provider: Some(AutoScalingGroupProvider {
                auto_scaling_group_arn: "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/pool".into(),
                managed_scaling: Some(ManagedScaling {
                    status: Some(ManagedScalingStatus::Enabled),
                    target_capacity: Some(100),
                    minimum_scaling_step_size: Some(1),
                    maximum_scaling_step_size: Some(3),
                    instance_warmup_period: Some(300),
                }),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ecs.create_cluster(
        &ctx,
        CreateClusterRequest {
            cluster_name: Some("c".into()),
            capacity_providers: Some(vec!["pool".into()]),
            default_capacity_provider_strategy: Some(vec![CapacityProviderStrategyItem {
                capacity_provider: "pool".into(),
                weight: Some(1),
                base: None,
            }]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ecs.register_task_definition(
        &ctx,
        RegisterTaskDefinitionRequest {
            family: "app".into(),
            container_definitions: vec![ContainerDefinition {
                name: Some("main".into()),
                image: Some("busybox".into()),
                memory: Some(1024),
                ..Default::default()
            }],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let hook = Arc::new(Recorder::default());
    let engine = ScalingEngine::new(Arc::new(Table(hook.clone())), Duration::ZERO);
    H {
        _dir: dir,
        ecs,
        ctx,
        clock,
        hook,
        engine,
        hosts: Mutex::default(),
    }
}

impl H {
    async fn join(&self) -> String {
        let req = RegisterContainerInstanceRequest {
            cluster: Some("c".into()),
            total_resources: Some(resources(2048)),
            attributes: Some(vec![
                Attribute {
                    name: "berth.capacity-provider".into(),
                    value: Some("pool".into()),
                    ..Default::default()
                },
                Attribute {
                    name: "com.amazonaws.ecs.capability.docker-remote-api.1.18".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let out = self
            .ecs
            .register_container_instance(&self.ctx, req)
            .await
            .unwrap();
        let arn = out
            .container_instance
            .unwrap()
            .container_instance_arn
            .unwrap();
        self.hosts.lock().push(arn.clone());
        arn
    }

    /// The hosts' agents: poll (staying connected), run what they are
    /// given, stop what is to stop.
    async fn agents(&self) {
        let hosts = self.hosts.lock().clone();
        for arn in hosts {
            let req = berth_wire::agent::PollWorkRequest {
                cluster: "c".into(),
                container_instance_arn: arn,
                known_version: 0,
                wait_seconds: 0,
            };
            let Ok(work) = self.ecs.poll_work(&self.ctx, req).await else {
                continue; // deregistered
            };
            for a in work.tasks {
                let t = a.task;
                let last = t.last_status.clone().unwrap_or_default();
                let to = if t.desired_status.as_deref() == Some("STOPPED") {
                    "STOPPED"
                } else {
                    "RUNNING"
                };
                if last == to {
                    continue;
                }
                let req = SubmitTaskStateChangeRequest {
                    cluster: Some("c".into()),
                    task: t.task_arn.clone(),
                    status: Some(to.into()),
                    containers: Some(vec![ContainerStateChange {
                        container_name: Some("main".into()),
                        status: Some(to.into()),
                        exit_code: (to == "STOPPED").then_some(143),
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
        }
    }

    async fn round(&self) -> berth_api::ecs::scaling::Observed {
        let mut all = self.ecs.scale_round(&self.engine).await.unwrap();
        assert_eq!(all.len(), 1, "one managed provider");
        all.remove(0)
    }

    async fn desired(&self, n: i32) {
        self.ecs
            .update_service(
                &self.ctx,
                UpdateServiceRequest {
                    cluster: Some("c".into()),
                    service: "web".into(),
                    desired_count: Some(n),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        self.settle().await;
    }

    /// Lets the service scheduler retry past its throttle.
    async fn settle(&self) {
        for _ in 0..30 {
            self.clock.advance(Duration::from_secs(1));
            self.ecs.reconcile_services().await;
            self.agents().await;
            self.ecs.reconcile_services().await;
        }
    }

    async fn status(&self, arn: &str) -> String {
        let req = DescribeContainerInstancesRequest {
            cluster: Some("c".into()),
            container_instances: vec![arn.into()],
            include: None,
        };
        let out = self
            .ecs
            .describe_container_instances(&self.ctx, req)
            .await
            .unwrap();
        out.container_instances.unwrap()[0].status.clone().unwrap()
    }
}

#[tokio::test]
async fn scales_out_for_waiting_tasks_and_in_only_idle_hosts_past_warm_up() {
    let h = harness().await;
    h.ecs
        .create_service(
            &h.ctx,
            CreateServiceRequest {
                cluster: Some("c".into()),
                service_name: "web".into(),
                task_definition: Some("app".into()),
                desired_count: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.ecs.reconcile_services().await;

    // Three tasks of 1024 MiB wait, no host: CPR 200, the minimum step.
    let o = h.round().await;
    assert_eq!((o.decision.reservation, o.added), (200.0, 1));
    let call = h.hook.calls.lock().last().cloned().unwrap();
    assert_eq!((call.current, call.desired, call.remove.len()), (0, 1, 0));
    // While that host warms up, nothing more is asked for.
    h.clock.advance(Duration::from_secs(10));
    assert_eq!(h.round().await.added, 0);

    // It joins and takes two of the three (2048 MiB); one still waits:
    // one more host (M = N + 1), counted past the first's launch.
    let a = h.join().await;
    h.settle().await;
    let o = h.round().await;
    assert_eq!((o.decision.needed, o.decision.running), (2, 1));
    assert_eq!(o.added, 1);
    let b = h.join().await;
    h.settle().await;
    let o = h.round().await;
    assert_eq!((o.decision.reservation, o.added), (100.0, 0));

    // Down to one task: one host idle, but young (warm-up) — kept.
    h.desired(1).await;
    let o = h.round().await;
    assert!(o.decision.reservation < 100.0 && o.removed.is_empty());
    // Past warm-up the idle one goes (drained, then deregistered); the
    // busy one is protected.
    h.clock.advance(Duration::from_secs(400));
    let o = h.round().await;
    assert_eq!(o.removed.len(), 1);
    let call = h.hook.calls.lock().last().cloned().unwrap();
    assert_eq!((call.current, call.desired), (2, 1));
    let gone = &call.remove[0].container_instance_arn;
    let kept = if gone == &a { &b } else { &a };
    assert_eq!(h.status(gone).await, "INACTIVE");
    assert_eq!(h.status(kept).await, "ACTIVE");
    // The busy host stays however long the low CPR lasts.
    h.clock.advance(Duration::from_secs(600));
    let o = h.round().await;
    assert_eq!((o.decision.reservation, o.removed.len()), (100.0, 0));
}

#[tokio::test]
async fn a_failing_hook_records_nothing_and_is_asked_again() {
    let h = harness().await;
    h.ecs
        .create_service(
            &h.ctx,
            CreateServiceRequest {
                cluster: Some("c".into()),
                service_name: "web".into(),
                task_definition: Some("app".into()),
                desired_count: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    h.ecs.reconcile_services().await;
    *h.hook.fail.lock() = true;
    assert_eq!(h.round().await.added, 0);
    *h.hook.fail.lock() = false;
    assert_eq!(h.round().await.added, 1);
    assert_eq!(h.hook.calls.lock().len(), 2);

    // A failed removal leaves the host drained, and retries it.
    let a = h.join().await;
    h.desired(0).await;
    h.clock.advance(Duration::from_secs(400));
    *h.hook.fail.lock() = true;
    assert!(h.round().await.removed.is_empty());
    assert_eq!(h.status(&a).await, "DRAINING");
    *h.hook.fail.lock() = false;
    assert_eq!(h.round().await.removed.len(), 1);
    assert_eq!(h.status(&a).await, "INACTIVE");
}
