//! The Daemon API driven through the real operations and the real service
//! driver, on a `ManualClock`, with scripted agents standing in for hosts:
//! a daemon follows the instances of its capacity provider (one that joins
//! later included), leaves the others alone, rolls to a new revision
//! `drainPercent` at a time and bakes before it completes, and stops its
//! tasks when deleted. Another account sees none of it.

use berth_api::ecs::Timings;
use berth_api::Ecs;
use berth_core::clock::ManualClock;
use berth_store::SqliteStore;
use berth_wire::agent::PollWorkRequest;
use berth_wire::ecs::*;
use berth_wire::{ApiError, RequestContext};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const PROVIDER_ATTRIBUTE: &str = "berth.capacity-provider";

struct H {
    _dir: tempfile::TempDir,
    ecs: Ecs,
    ctx: RequestContext,
    clock: ManualClock,
    instances: Vec<String>,
}

async fn harness() -> H {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let store = SqliteStore::open(dir.path().join("berth.db")).unwrap();
    let ecs = Ecs::with_timings(Arc::new(store), b"k".to_vec(), Timings::default())
        .with_clock(Arc::new(clock.clone()));
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    let cluster = CreateClusterRequest {
        cluster_name: Some("c".into()),
        ..Default::default()
    };
    ecs.create_cluster(&ctx, cluster).await.unwrap();
    for name in ["pool", "elsewhere"] {
        let provider = CreateCapacityProviderRequest {
            name: name.into(),
            auto_scaling_group_provider: Some(AutoScalingGroupProvider {
                auto_scaling_group_arn: format!("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:{name}:autoScalingGroupName/{name}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        ecs.create_capacity_provider(&ctx, provider).await.unwrap();
    }
    H {
        _dir: dir,
        ecs,
        ctx,
        clock,
        instances: Vec::new(),
    }
}

impl H {
    /// A host joins, as an instance of `provider`.
    async fn join(&mut self, provider: &str) -> String {
        let resources = ["CPU", "MEMORY"]
            .iter()
            .map(|name| Resource {
                name: Some((*name).into()),
                r#type: Some("INTEGER".into()),
                integer_value: Some(4096),
                ..Default::default()
            })
            .collect();
        let req = RegisterContainerInstanceRequest {
            cluster: Some("c".into()),
            total_resources: Some(resources),
            attributes: Some(vec![
                Attribute {
                    name: "com.amazonaws.ecs.capability.docker-remote-api.1.18".into(),
                    ..Default::default()
                },
                Attribute {
                    name: PROVIDER_ATTRIBUTE.into(),
                    value: Some(provider.into()),
                    ..Default::default()
                },
            ]),
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

    async fn register(&self, image: &str) -> String {
        let req = RegisterDaemonTaskDefinitionRequest {
            family: "agent".into(),
            container_definitions: vec![DaemonContainerDefinition {
                name: Some("main".into()),
                image: image.into(),
                memory: Some(64),
                ..Default::default()
            }],
            ..Default::default()
        };
        let out = self.ecs.register_daemon_task_definition(&self.ctx, req);
        out.await.unwrap().daemon_task_definition_arn.unwrap()
    }

    /// Live tasks per instance, with their daemon task definition ARN.
    async fn tasks(&self) -> BTreeMap<String, Vec<String>> {
        let req = ListTasksRequest {
            cluster: Some("c".into()),
            ..Default::default()
        };
        let arns = self
            .ecs
            .list_tasks(&self.ctx, req)
            .await
            .unwrap()
            .task_arns
            .unwrap();
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if arns.is_empty() {
            return out;
        }
        let req = DescribeTasksRequest {
            cluster: Some("c".into()),
            tasks: arns,
            include: None,
        };
        for t in self
            .ecs
            .describe_tasks(&self.ctx, req)
            .await
            .unwrap()
            .tasks
            .unwrap()
        {
            assert_eq!(t.group.as_deref(), Some("daemon:agent"));
            out.entry(t.container_instance_arn.unwrap())
                .or_default()
                .push(t.task_definition_arn.unwrap());
        }
        out
    }

    /// The agents: start what is new, stop what is asked to stop.
    async fn agents(&self) {
        for instance in &self.instances {
            let req = PollWorkRequest {
                cluster: "c".into(),
                container_instance_arn: instance.clone(),
                known_version: 0,
                wait_seconds: 0,
            };
            let Ok(work) = self.ecs.poll_work(&self.ctx, req).await else {
                continue;
            };
            for a in work.tasks {
                let t = a.task;
                let last = t.last_status.clone().unwrap_or_default();
                let stop = t.desired_status.as_deref() == Some("STOPPED");
                let status = match (stop, last.as_str()) {
                    (true, "STOPPED") | (false, "RUNNING") => continue,
                    (true, _) => "STOPPED",
                    (false, _) => "RUNNING",
                };
                let req = SubmitTaskStateChangeRequest {
                    cluster: Some("c".into()),
                    task: t.task_arn.clone(),
                    status: Some(status.into()),
                    containers: Some(vec![ContainerStateChange {
                        container_name: Some("main".into()),
                        status: Some(status.into()),
                        exit_code: stop.then_some(143),
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

    async fn step(&self) {
        for _ in 0..10 {
            if self.ecs.reconcile_services().await == 0 {
                break;
            }
        }
        self.agents().await;
        self.clock.advance(Duration::from_secs(1));
    }

    async fn until(&self, limit: u32, what: &str, done: impl AsyncFn(&H) -> bool) {
        for _ in 0..limit {
            if done(self).await {
                return;
            }
            self.step().await;
        }
        panic!("not {what} within {limit} s: {:#?}", self.tasks().await);
    }

    async fn deployment(&self, arn: &str) -> DaemonDeployment {
        let req = DescribeDaemonDeploymentsRequest {
            daemon_deployment_arns: vec![arn.into()],
        };
        let out = self.ecs.describe_daemon_deployments(&self.ctx, req).await;
        out.unwrap().daemon_deployments.unwrap().remove(0)
    }
}

fn provider(name: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:capacity-provider/{name}")
}

#[tokio::test]
async fn a_daemon_follows_its_providers_instances_rolls_and_goes() {
    let mut h = harness().await;
    let a = h.join("pool").await;
    let b = h.join("pool").await;
    let other = h.join("elsewhere").await;
    let v1 = h.register("busybox:1").await;
    let created = h
        .ecs
        .create_daemon(
            &h.ctx,
            CreateDaemonRequest {
                daemon_name: "agent".into(),
                cluster_arn: Some("c".into()),
                daemon_task_definition_arn: v1.clone(),
                capacity_provider_arns: vec![provider("pool")],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let daemon = created.daemon_arn.clone().unwrap();
    assert_eq!(daemon, "arn:aws:ecs:us-east-1:123456789012:daemon/c/agent");
    h.until(10, "a task on each pool instance", async |h| {
        let t = h.tasks().await;
        t.get(&a).map(Vec::len) == Some(1) && t.get(&b).map(Vec::len) == Some(1)
    })
    .await;
    assert!(!h.tasks().await.contains_key(&other));
    let first = created.deployment_arn.unwrap();
    h.until(10, "the first deployment successful", async |h| {
        h.deployment(&first).await.status == Some(DaemonDeploymentStatus::Successful)
    })
    .await;

    // A host that joins the provider later gets its task.
    let c = h.join("pool").await;
    h.until(10, "a task on the host that joined", async |h| {
        h.tasks().await.get(&c).map(Vec::len) == Some(1)
    })
    .await;
    let described = h
        .ecs
        .describe_daemon(
            &h.ctx,
            DescribeDaemonRequest {
                daemon_arn: daemon.clone(),
            },
        )
        .await
        .unwrap()
        .daemon
        .unwrap();
    let revisions = described.current_revisions.unwrap();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0].total_running_count, Some(3));

    // A new revision rolls through, one instance at a time (drain 25 % of
    // three is less than one: one), and bakes before it completes.
    let v2 = h.register("busybox:2").await;
    let updated = h
        .ecs
        .update_daemon(
            &h.ctx,
            UpdateDaemonRequest {
                daemon_arn: daemon.clone(),
                daemon_task_definition_arn: v2.clone(),
                capacity_provider_arns: vec![provider("pool")],
                deployment_configuration: Some(DaemonDeploymentConfiguration {
                    bake_time_in_minutes: Some(1),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let second = updated.deployment_arn.unwrap();
    assert_ne!(second, first);
    for _ in 0..30 {
        let t = h.tasks().await;
        let without_v1 = [&a, &b, &c]
            .iter()
            .filter(|i| !t.get(**i).is_some_and(|l| l.contains(&v1)))
            .count();
        let all_v2 = [&a, &b, &c]
            .iter()
            .all(|i| t.get(*i).is_some_and(|l| l == &vec![v2.clone()]));
        if all_v2 {
            break;
        }
        // Never more than one instance without its old task and no new
        // one running yet.
        let served = [&a, &b, &c]
            .iter()
            .filter(|i| t.get(**i).is_some_and(|l| !l.is_empty()))
            .count();
        assert!(3 - served <= 1, "{t:?} ({without_v1} without v1)");
        h.step().await;
    }
    assert_eq!(
        h.deployment(&second).await.status,
        Some(DaemonDeploymentStatus::InProgress),
        "still baking"
    );
    h.clock.advance(Duration::from_secs(60));
    h.until(120, "the update successful", async |h| {
        h.deployment(&second).await.status == Some(DaemonDeploymentStatus::Successful)
    })
    .await;
    let listed = h
        .ecs
        .list_daemon_deployments(
            &h.ctx,
            ListDaemonDeploymentsRequest {
                daemon_arn: daemon.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .daemon_deployments
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0].daemon_deployment_arn.as_deref(),
        Some(second.as_str())
    );

    // Another account sees nothing of it.
    let other_account = RequestContext::for_account("999999999999", "us-east-1");
    let err = h
        .ecs
        .describe_daemon(
            &other_account,
            DescribeDaemonRequest {
                daemon_arn: daemon.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "DaemonNotFoundException");
    let err: ApiError = h
        .ecs
        .delete_daemon(
            &other_account,
            DeleteDaemonRequest {
                daemon_arn: daemon.clone(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "DaemonNotFoundException");

    // Deleting stops every task, then the daemon is gone.
    let deleted = h
        .ecs
        .delete_daemon(
            &h.ctx,
            DeleteDaemonRequest {
                daemon_arn: daemon.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted.status, Some(DaemonStatus::DeleteInProgress));
    h.until(10, "no task left", async |h| h.tasks().await.is_empty())
        .await;
    h.step().await;
    let err = h
        .ecs
        .describe_daemon(&h.ctx, DescribeDaemonRequest { daemon_arn: daemon })
        .await
        .unwrap_err();
    assert_eq!(err.code, "DaemonNotFoundException");
    // And no service ever showed.
    let services = h
        .ecs
        .list_services(
            &h.ctx,
            ListServicesRequest {
                cluster: Some("c".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(services.service_arns, Some(vec![]));
}
