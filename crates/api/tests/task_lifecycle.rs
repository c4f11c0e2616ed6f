//! Container instances and tasks through the operations, with the agent's
//! side (PollWork, SubmitTaskStateChange) played by the test.

use berth_api::Ecs;
use berth_store::SqliteStore;
use berth_wire::agent::PollWorkRequest;
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use std::sync::Arc;

struct H {
    _dir: tempfile::TempDir,
    ecs: Ecs,
    ctx: RequestContext,
}

async fn harness() -> H {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("berth.db")).unwrap();
    let ecs = Ecs::new(Arc::new(store), b"k".to_vec());
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    ecs.create_cluster(
        &ctx,
        CreateClusterRequest {
            cluster_name: Some("c".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    H {
        _dir: dir,
        ecs,
        ctx,
    }
}

fn resources(cpu: i32, memory: i32) -> Vec<Resource> {
    let int = |n: &str, v: i32| Resource {
        name: Some(n.into()),
        r#type: Some("INTEGER".into()),
        integer_value: Some(v),
        ..Default::default()
    };
    vec![
        int("CPU", cpu),
        int("MEMORY", memory),
        Resource {
            name: Some("PORTS".into()),
            r#type: Some("STRINGSET".into()),
            string_set_value: Some(vec!["22".into()]),
            ..Default::default()
        },
    ]
}

const CAPABILITIES: &[&str] = &[
    "com.amazonaws.ecs.capability.docker-remote-api.1.18",
    "ecs.capability.task-eni",
];

async fn register(h: &H, ctx: &RequestContext, cluster: &str, cpu: i32, memory: i32) -> String {
    let attributes = CAPABILITIES
        .iter()
        .map(|n| Attribute {
            name: (*n).into(),
            ..Default::default()
        })
        .collect();
    let r = h
        .ecs
        .register_container_instance(
            ctx,
            RegisterContainerInstanceRequest {
                cluster: Some(cluster.into()),
                total_resources: Some(resources(cpu, memory)),
                attributes: Some(attributes),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    r.container_instance
        .unwrap()
        .container_instance_arn
        .unwrap()
}

async fn td(h: &H, memory: i32, host_port: Option<i32>) -> String {
    let pm = host_port.map(|p| {
        vec![PortMapping {
            container_port: Some(80),
            host_port: Some(p),
            ..Default::default()
        }]
    });
    let req = RegisterTaskDefinitionRequest {
        family: "app".into(),
        container_definitions: vec![ContainerDefinition {
            name: Some("main".into()),
            image: Some("busybox".into()),
            memory: Some(memory),
            cpu: Some(128),
            port_mappings: pm,
            command: Some(vec!["true".into()]),
            ..Default::default()
        }],
        ..Default::default()
    };
    h.ecs
        .register_task_definition(&h.ctx, req)
        .await
        .unwrap()
        .task_definition
        .unwrap()
        .task_definition_arn
        .unwrap()
}

fn run(td: &str, count: i32) -> RunTaskRequest {
    RunTaskRequest {
        cluster: Some("c".into()),
        task_definition: td.into(),
        count: Some(count),
        launch_type: Some(LaunchType::Ec2),
        ..Default::default()
    }
}

fn remaining(ci: &ContainerInstance, name: &str) -> i32 {
    ci.remaining_resources
        .iter()
        .flatten()
        .find(|r| r.name.as_deref() == Some(name))
        .unwrap()
        .integer_value
        .unwrap()
}

async fn describe_instance(h: &H, arn: &str) -> ContainerInstance {
    let d = h
        .ecs
        .describe_container_instances(
            &h.ctx,
            DescribeContainerInstancesRequest {
                cluster: Some("c".into()),
                container_instances: vec![arn.into()],
                include: None,
            },
        )
        .await
        .unwrap();
    d.container_instances.unwrap().remove(0)
}

#[tokio::test]
async fn ec2_task_runs_through_its_lifecycle_and_frees_its_resources() {
    let h = harness().await;
    let inst = register(&h, &h.ctx, "c", 1024, 1000).await;
    let td = td(&h, 300, Some(8080)).await;
    let out = h.ecs.run_task(&h.ctx, run(&td, 1)).await.unwrap();
    let task = &out.tasks.unwrap()[0];
    let task_arn = task.task_arn.clone().unwrap();
    assert_eq!(task.last_status.as_deref(), Some("PENDING"));
    assert_eq!(task.desired_status.as_deref(), Some("RUNNING"));
    assert_eq!(task.container_instance_arn.as_deref(), Some(inst.as_str()));
    assert!(task_arn.starts_with("arn:aws:ecs:us-east-1:123456789012:task/c/"));

    let ci = describe_instance(&h, &inst).await;
    assert_eq!(remaining(&ci, "MEMORY"), 700);
    assert_eq!(remaining(&ci, "CPU"), 1024 - 128);
    assert_eq!(ci.pending_tasks_count, Some(1));
    let ports = ci
        .remaining_resources
        .unwrap()
        .into_iter()
        .find(|r| r.name.as_deref() == Some("PORTS"))
        .unwrap();
    assert_eq!(ports.string_set_value.unwrap(), vec!["22", "8080"]);

    // The agent sees it.
    let poll = h
        .ecs
        .poll_work(
            &h.ctx,
            PollWorkRequest {
                cluster: "c".into(),
                container_instance_arn: inst.clone(),
                known_version: 0,
                wait_seconds: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(poll.tasks.len(), 1);
    assert_eq!(poll.tasks[0].task_definition.family.as_deref(), Some("app"));

    // A second task needing the same host port cannot be placed.
    let out = h.ecs.run_task(&h.ctx, run(&td, 1)).await.unwrap();
    assert!(out.tasks.unwrap().is_empty());
    let f = &out.failures.unwrap()[0];
    assert_eq!(
        (f.arn.as_deref(), f.reason.as_deref()),
        (Some(inst.as_str()), Some("RESOURCE:PORTS"))
    );

    // The agent reports it running, then its essential container exiting 3.
    let report = |status: &str, exit: Option<i32>| SubmitTaskStateChangeRequest {
        cluster: Some("c".into()),
        task: Some(task_arn.clone()),
        status: Some(status.into()),
        containers: Some(vec![ContainerStateChange {
            container_name: Some("main".into()),
            status: Some(if exit.is_some() { "STOPPED" } else { "RUNNING" }.into()),
            exit_code: exit,
            ..Default::default()
        }]),
        ..Default::default()
    };
    h.ecs
        .submit_task_state_change(&h.ctx, report("RUNNING", None))
        .await
        .unwrap();
    let describe = || DescribeTasksRequest {
        cluster: Some("c".into()),
        tasks: vec![task_arn.clone()],
        include: None,
    };
    let t = h
        .ecs
        .describe_tasks(&h.ctx, describe())
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0);
    assert_eq!(t.last_status.as_deref(), Some("RUNNING"));
    assert!(t.started_at.is_some() && t.connectivity_at.is_some());
    // A status going backwards is ignored.
    h.ecs
        .submit_task_state_change(&h.ctx, report("PENDING", None))
        .await
        .unwrap();
    h.ecs
        .submit_task_state_change(&h.ctx, report("STOPPED", Some(3)))
        .await
        .unwrap();
    let t = h
        .ecs
        .describe_tasks(&h.ctx, describe())
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0);
    assert_eq!(t.last_status.as_deref(), Some("STOPPED"));
    assert_eq!(t.stop_code, Some(TaskStopCode::EssentialContainerExited));
    assert_eq!(
        t.stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(t.containers.unwrap()[0].exit_code, Some(3));
    assert!(t.stopped_at.is_some() && t.execution_stopped_at.is_some());

    let ci = describe_instance(&h, &inst).await;
    assert_eq!(remaining(&ci, "MEMORY"), 1000);
    assert_eq!(ci.running_tasks_count, Some(0));
    let poll = h
        .ecs
        .poll_work(
            &h.ctx,
            PollWorkRequest {
                cluster: "c".into(),
                container_instance_arn: inst,
                known_version: 0,
                wait_seconds: 0,
            },
        )
        .await
        .unwrap();
    assert!(poll.tasks.is_empty());
    let stopped = h
        .ecs
        .list_tasks(
            &h.ctx,
            ListTasksRequest {
                cluster: Some("c".into()),
                desired_status: Some(DesiredStatus::Stopped),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(stopped.task_arns.unwrap(), vec![task_arn]);
}

#[tokio::test]
async fn placement_spreads_and_reports_memory_shortage() {
    let h = harness().await;
    let a = register(&h, &h.ctx, "c", 4096, 1000).await;
    let b = register(&h, &h.ctx, "c", 4096, 1000).await;
    let td = td(&h, 400, None).await;
    let out = h.ecs.run_task(&h.ctx, run(&td, 4)).await.unwrap();
    assert_eq!(out.tasks.as_ref().unwrap().len(), 4);
    let on_a = out
        .tasks
        .as_ref()
        .unwrap()
        .iter()
        .filter(|t| t.container_instance_arn.as_deref() == Some(a.as_str()))
        .count();
    assert_eq!(on_a, 2, "spread puts two on each");
    let out = h.ecs.run_task(&h.ctx, run(&td, 1)).await.unwrap();
    let reasons: Vec<_> = out
        .failures
        .unwrap()
        .into_iter()
        .map(|f| (f.arn.unwrap(), f.reason.unwrap()))
        .collect();
    assert!(reasons.contains(&(a.clone(), "RESOURCE:MEMORY".into())));
    assert!(reasons.contains(&(b.clone(), "RESOURCE:MEMORY".into())));
    // DRAINING instances take no new tasks; the cluster shows its tasks.
    h.ecs
        .update_container_instances_state(
            &h.ctx,
            UpdateContainerInstancesStateRequest {
                cluster: Some("c".into()),
                container_instances: vec![a.clone(), b.clone()],
                status: ContainerInstanceStatus::Draining,
            },
        )
        .await
        .unwrap();
    let small = td_small(&h).await;
    let out = h.ecs.run_task(&h.ctx, run(&small, 1)).await.unwrap();
    assert!(out
        .failures
        .unwrap()
        .iter()
        .all(|f| f.reason.as_deref() == Some("INACTIVE")));
    let c = h
        .ecs
        .describe_clusters(
            &h.ctx,
            DescribeClustersRequest {
                clusters: Some(vec!["c".into()]),
                include: None,
            },
        )
        .await
        .unwrap();
    let c = &c.clusters.unwrap()[0];
    assert_eq!(
        (
            c.pending_tasks_count,
            c.registered_container_instances_count
        ),
        (Some(4), Some(2))
    );
    // Deleting the cluster is refused while instances remain.
    let err = h
        .ecs
        .delete_cluster(
            &h.ctx,
            DeleteClusterRequest {
                cluster: "c".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "ClusterContainsContainerInstancesException");
}

async fn td_small(h: &H) -> String {
    td(h, 10, None).await
}

#[tokio::test]
async fn stop_task_before_any_agent_started_it_stops_at_once() {
    let h = harness().await;
    register(&h, &h.ctx, "c", 1024, 1024).await;
    let td = td(&h, 10, None).await;
    let t = h
        .ecs
        .run_task(&h.ctx, run(&td, 1))
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0);
    let stopped = h
        .ecs
        .stop_task(
            &h.ctx,
            StopTaskRequest {
                cluster: Some("c".into()),
                task: t.task_arn.clone().unwrap(),
                reason: Some("no longer needed".into()),
            },
        )
        .await
        .unwrap()
        .task
        .unwrap();
    assert_eq!(stopped.last_status.as_deref(), Some("STOPPED"));
    assert_eq!(stopped.stop_code, Some(TaskStopCode::UserInitiated));
    assert_eq!(stopped.stopped_reason.as_deref(), Some("no longer needed"));
}

#[tokio::test]
async fn client_token_makes_run_task_idempotent() {
    let h = harness().await;
    register(&h, &h.ctx, "c", 1024, 1024).await;
    let td = td(&h, 10, None).await;
    let mut req = run(&td, 2);
    req.client_token = Some("once".into());
    let first = h.ecs.run_task(&h.ctx, req.clone()).await.unwrap();
    let again = h.ecs.run_task(&h.ctx, req).await.unwrap();
    let arns = |r: &RunTaskResponse| {
        r.tasks
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.task_arn.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(arns(&first), arns(&again));
    let listed = h
        .ecs
        .list_tasks(
            &h.ctx,
            ListTasksRequest {
                cluster: Some("c".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.task_arns.unwrap().len(), 2);
}

#[tokio::test]
async fn fargate_tasks_run_on_managed_capacity_not_on_cluster_instances() {
    let h = harness().await;
    h.ecs.ensure_managed_cluster().await.unwrap();
    let managed = Ecs::managed_context();
    let inst = register(&h, &managed, berth_api::ecs::MANAGED_CLUSTER, 2048, 4096).await;
    let req = RegisterTaskDefinitionRequest {
        family: "f".into(),
        network_mode: Some(NetworkMode::Awsvpc),
        requires_compatibilities: Some(vec![Compatibility::Fargate]),
        cpu: Some("256".into()),
        memory: Some("512".into()),
        container_definitions: vec![ContainerDefinition {
            name: Some("m".into()),
            image: Some("x".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    h.ecs.register_task_definition(&h.ctx, req).await.unwrap();
    let mut run = run("f", 1);
    run.launch_type = Some(LaunchType::Fargate);
    let missing_net = h.ecs.run_task(&h.ctx, run.clone()).await.unwrap_err();
    assert_eq!(missing_net.code, "InvalidParameterException");
    run.network_configuration = Some(NetworkConfiguration {
        awsvpc_configuration: Some(AwsVpcConfiguration {
            subnets: vec!["subnet-berth".into()],
            ..Default::default()
        }),
    });
    let t = h
        .ecs
        .run_task(&h.ctx, run)
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0);
    assert_eq!(t.launch_type, Some(LaunchType::Fargate));
    assert_eq!(t.last_status.as_deref(), Some("PROVISIONING"));
    let stats = h
        .ecs
        .describe_clusters(
            &h.ctx,
            DescribeClustersRequest {
                clusters: Some(vec!["c".into()]),
                include: Some(vec![ClusterField::Statistics]),
            },
        )
        .await
        .unwrap()
        .clusters
        .unwrap()
        .remove(0)
        .statistics
        .unwrap();
    let stat = |k: &str| {
        stats
            .iter()
            .find(|kv| kv.name.as_deref() == Some(k))
            .unwrap()
            .value
            .clone()
            .unwrap()
    };
    assert_eq!(
        (
            stat("pendingFargateTasksCount").as_str(),
            stat("pendingEC2TasksCount").as_str()
        ),
        ("1", "0")
    );
    assert!(t.container_instance_arn.is_none());
    let poll = h
        .ecs
        .poll_work(
            &managed,
            PollWorkRequest {
                cluster: "managed".into(),
                container_instance_arn: inst,
                known_version: 0,
                wait_seconds: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(poll.tasks.len(), 1);
    assert_eq!(poll.tasks[0].task.task_arn, t.task_arn);
    let listed = h
        .ecs
        .list_container_instances(
            &h.ctx,
            ListContainerInstancesRequest {
                cluster: Some("c".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.container_instance_arns.unwrap().is_empty());
}

#[tokio::test]
async fn poll_work_returns_early_when_work_changes() {
    let h = Arc::new(harness().await);
    let inst = register(&h, &h.ctx, "c", 1024, 1024).await;
    let first = h
        .ecs
        .poll_work(
            &h.ctx,
            PollWorkRequest {
                cluster: "c".into(),
                container_instance_arn: inst.clone(),
                known_version: 0,
                wait_seconds: 0,
            },
        )
        .await
        .unwrap();
    let h2 = h.clone();
    let inst2 = inst.clone();
    let waiter = tokio::spawn(async move {
        h2.ecs
            .poll_work(
                &h2.ctx,
                PollWorkRequest {
                    cluster: "c".into(),
                    container_instance_arn: inst2,
                    known_version: first.version,
                    wait_seconds: 20,
                },
            )
            .await
            .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let td = td(&h, 10, None).await;
    h.ecs.run_task(&h.ctx, run(&td, 1)).await.unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .expect("poll returned early")
        .unwrap();
    assert_eq!(got.tasks.len(), 1);
    assert_ne!(got.version, first.version);
}

#[tokio::test]
async fn lost_agents_tasks_are_stopped_and_stopped_tasks_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("berth.db")).unwrap();
    let timings = berth_api::ecs::Timings {
        agent_disconnect_grace: std::time::Duration::from_millis(100),
        agent_lost_timeout: std::time::Duration::from_millis(100),
        stopped_task_retention: std::time::Duration::from_millis(300),
        ..Default::default()
    };
    let ecs = Ecs::with_timings(Arc::new(store), b"k".to_vec(), timings);
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    ecs.create_cluster(
        &ctx,
        CreateClusterRequest {
            cluster_name: Some("c".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let h = H {
        _dir: dir,
        ecs,
        ctx,
    };
    let inst = register(&h, &h.ctx, "c", 1024, 1024).await;
    let td = td(&h, 100, None).await;
    let t = h
        .ecs
        .run_task(&h.ctx, run(&td, 1))
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0);
    let arn = t.task_arn.unwrap();
    assert_eq!(h.ecs.sweep().await.unwrap(), Default::default());
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(
        describe_instance(&h, &inst).await.agent_connected,
        Some(false)
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(h.ecs.sweep().await.unwrap().tasks_of_lost_agents_stopped, 1);
    let describe = || DescribeTasksRequest {
        cluster: Some("c".into()),
        tasks: vec![arn.clone()],
        include: None,
    };
    let t = h
        .ecs
        .describe_tasks(&h.ctx, describe())
        .await
        .unwrap()
        .tasks
        .unwrap()
        .remove(0);
    assert_eq!(t.last_status.as_deref(), Some("STOPPED"));
    assert_eq!(t.stop_code, Some(TaskStopCode::TerminationNotice));
    assert!(t
        .stopped_reason
        .unwrap()
        .contains("has not been heard from"));
    assert_eq!(
        remaining(&describe_instance(&h, &inst).await, "MEMORY"),
        1024
    );
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert_eq!(h.ecs.sweep().await.unwrap().expired_tasks_removed, 1);
    let gone = h.ecs.describe_tasks(&h.ctx, describe()).await.unwrap();
    assert_eq!(gone.failures.unwrap()[0].reason.as_deref(), Some("MISSING"));
}
