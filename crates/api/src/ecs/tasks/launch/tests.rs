//! The launch steps driven as a service reconciler will drive them: plain
//! values in, its own writes committed with the tasks, no request object.

use super::*;
use crate::records::Record;
use berth_core::task::Protocol;

struct H {
    _dir: tempfile::TempDir,
    ecs: Ecs,
    ctx: RequestContext,
}

/// Cluster `c` with one instance (1024 CPU, 1024 MiB) and managed
/// capacity; revisions `web` (EC2, 512 MiB, port 8080) and `fg` (FARGATE).
async fn harness() -> H {
    let dir = tempfile::tempdir().unwrap();
    let store = berth_store::SqliteStore::open(dir.path().join("berth.db")).unwrap();
    let ecs = Ecs::new(std::sync::Arc::new(store), b"k".to_vec());
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    let cluster = CreateClusterRequest {
        cluster_name: Some("c".into()),
        ..Default::default()
    };
    ecs.create_cluster(&ctx, cluster).await.unwrap();
    ecs.ensure_managed_cluster().await.unwrap();
    let resources: Vec<Resource> = ["CPU", "MEMORY"]
        .iter()
        .map(|n| Resource {
            name: Some((*n).into()),
            r#type: Some("INTEGER".into()),
            integer_value: Some(1024),
            ..Default::default()
        })
        .collect();
    for (c, cluster) in [(Ecs::managed_context(), MANAGED), (ctx.clone(), "c")] {
        let req = RegisterContainerInstanceRequest {
            cluster: Some(cluster.into()),
            total_resources: Some(resources.clone()),
            attributes: Some(
                [
                    "com.amazonaws.ecs.capability.docker-remote-api.1.18",
                    "ecs.capability.task-eni",
                ]
                .iter()
                .map(|n| Attribute {
                    name: (*n).into(),
                    ..Default::default()
                })
                .collect(),
            ),
            ..Default::default()
        };
        ecs.register_container_instance(&c, req).await.unwrap();
    }
    let container = ContainerDefinition {
        name: Some("main".into()),
        image: Some("x".into()),
        memory: Some(512),
        port_mappings: Some(vec![PortMapping {
            container_port: Some(80),
            host_port: Some(8080),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let web = RegisterTaskDefinitionRequest {
        family: "web".into(),
        container_definitions: vec![container.clone()],
        ..Default::default()
    };
    ecs.register_task_definition(&ctx, web).await.unwrap();
    let fg = RegisterTaskDefinitionRequest {
        family: "fg".into(),
        network_mode: Some(NetworkMode::Awsvpc),
        requires_compatibilities: Some(vec![Compatibility::Fargate]),
        cpu: Some("256".into()),
        memory: Some("512".into()),
        container_definitions: vec![ContainerDefinition {
            port_mappings: None,
            ..container
        }],
        ..Default::default()
    };
    ecs.register_task_definition(&ctx, fg).await.unwrap();
    H {
        _dir: dir,
        ecs,
        ctx,
    }
}

const MANAGED: &str = crate::ecs::MANAGED_CLUSTER;

fn owner() -> TaskOwner {
    TaskOwner {
        service_name: "web".into(),
        deployment_id: "1234".into(),
    }
}

/// A stand-in for the service document a reconciler updates.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ServiceStandIn {
    tasks: Vec<String>,
}

impl Record for ServiceStandIn {
    const KIND: &'static str = kind::SERVICE;
    fn id(&self) -> String {
        "web".into()
    }
}

#[tokio::test]
async fn a_service_launches_tasks_with_its_own_writes_in_the_same_commit() {
    let h = harness().await;
    let (ecs, ctx) = (&h.ecs, &h.ctx);
    let spec = LaunchSpec {
        cluster: Some("c".into()),
        task_definition: "web:1".into(),
        launch_type: LaunchType::Ec2,
        owner: Some(owner()),
        ..Default::default()
    };
    let l = prepare(ecs, ctx, spec).await.unwrap();
    // Two tasks on one instance with one fixed port: one is placed.
    let request = PlacementRequest::new(2, None, None).unwrap();
    let _placing = lock_placement(ecs, ctx, &l).await;
    let launched = retry(ecs.store(), async || {
        let snap = snapshot(ecs, ctx, &l, None).await?;
        let plan = plan(ctx, &l, &snap, place(&snap, &l, &request), ecs.now());
        let record = ServiceStandIn {
            tasks: plan.tasks.iter().map(|t| t.id.clone()).collect(),
        };
        let extra = vec![Versioned::new(record).write()];
        Ok::<_, EcsError>(plan.commit(ctx, extra))
    })
    .await
    .unwrap();
    launched.wake(ecs);
    assert_eq!(launched.tasks.len(), 1);
    let failures: Vec<_> = launched.failures.iter().map(|f| f.reason.clone()).collect();
    assert_eq!(failures, [Some("RESOURCE:PORTS".to_string())]);

    let t = &launched.tasks[0];
    assert_eq!(t.task.group.as_deref(), Some("service:web"));
    assert_eq!(t.task.started_by.as_deref(), Some("ecs-svc/1234"));
    assert_eq!(t.reserved.host_ports, [(Protocol::Tcp, 8080)]);
    let stored = load::<TaskDoc>(ecs.store(), &scope(ctx), &t.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value.service, Some(owner()));
    let record = load::<ServiceStandIn>(ecs.store(), &scope(ctx), "web")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.value.tasks, std::slice::from_ref(&t.id));
}

#[tokio::test]
async fn managed_assignments_are_undone_when_the_task_commit_conflicts() {
    let h = harness().await;
    let (ecs, ctx) = (&h.ecs, &h.ctx);
    let spec = LaunchSpec {
        cluster: Some("c".into()),
        task_definition: "fg".into(),
        launch_type: LaunchType::Fargate,
        network: Some(NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: vec!["subnet-1".into()],
                ..Default::default()
            }),
        }),
        owner: Some(owner()),
        ..Default::default()
    };
    let l = prepare(ecs, ctx, spec).await.unwrap();
    let request = PlacementRequest::new(1, None, None).unwrap();
    let result = retry(ecs.store(), async || {
        let snap = snapshot(ecs, ctx, &l, None).await?;
        let plan = plan(ctx, &l, &snap, place(&snap, &l, &request), ecs.now());
        assert_eq!(plan.tasks.len(), 1);
        // A write whose precondition never holds: the task commit conflicts.
        let mut stale = Versioned::new(ServiceStandIn { tasks: vec![] });
        stale.version = 7;
        Ok::<_, EcsError>(plan.commit(ctx, vec![stale.write()]))
    })
    .await;
    assert!(result.is_err());
    let all = Query {
        limit: 1000,
        ..Default::default()
    };
    let left = records::list::<AssignmentDoc>(ecs.store(), &managed_scope(), &all).await;
    assert!(left.unwrap().is_empty(), "no reservation leaks");
    let tasks = records::list::<TaskDoc>(ecs.store(), &scope(ctx), &all).await;
    assert!(tasks.unwrap().is_empty());

    // Without the conflicting write the same launch lands, as FARGATE.
    let launched = launch(ecs, ctx, &l, &request).await.unwrap();
    assert_eq!(launched.tasks.len(), 1);
    assert_eq!(
        launched.tasks[0].task.launch_type,
        Some(LaunchType::Fargate)
    );
}

#[tokio::test]
async fn run_task_leaves_tasks_without_an_owner() {
    let h = harness().await;
    let req = RunTaskRequest {
        cluster: Some("c".into()),
        task_definition: "web".into(),
        launch_type: Some(LaunchType::Ec2),
        ..Default::default()
    };
    let out = h.ecs.run_task(&h.ctx, req).await.unwrap();
    let t = &out.tasks.unwrap()[0];
    assert_eq!(t.group.as_deref(), Some("family:web"));
    let id = t.task_arn.as_deref().unwrap().rsplit('/').next().unwrap();
    let stored = load::<TaskDoc>(h.ecs.store(), &scope(&h.ctx), id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.value.service, None);
    let body = serde_json::to_value(&stored.value).unwrap();
    assert!(body.get("service").is_none(), "stored as before");
}
