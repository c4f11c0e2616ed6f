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
                subnets: vec!["subnet-berth".into()],
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

fn fargate_spec(task_definition: &str, overrides: Option<TaskOverride>) -> LaunchSpec {
    LaunchSpec {
        cluster: Some("c".into()),
        task_definition: task_definition.into(),
        launch_type: LaunchType::Fargate,
        network: Some(NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: vec!["subnet-berth".into()],
                ..Default::default()
            }),
        }),
        overrides,
        ..Default::default()
    }
}

/// A revision stored before the Fargate rules existed: `fg:1` changed in
/// the store to mount the server's data dir, FARGATE still among its
/// compatibilities. A FARGATE launch (RunTask's, a service's) refuses it.
#[tokio::test]
async fn a_fargate_launch_refuses_a_stored_revision_that_reaches_into_the_host() {
    let h = harness().await;
    let (ecs, ctx) = (&h.ecs, &h.ctx);
    let mut doc = load::<task_definitions::TaskDefinitionDoc>(ecs.store(), &scope(ctx), "fg:1")
        .await
        .unwrap()
        .unwrap();
    let td = &mut doc.value.task_definition;
    assert!(td
        .compatibilities
        .iter()
        .flatten()
        .any(|c| *c == Compatibility::Fargate));
    td.volumes = Some(vec![Volume {
        name: Some("data".into()),
        host: Some(HostVolumeProperties {
            source_path: Some("/var/lib/berth".into()),
        }),
        ..Default::default()
    }]);
    td.container_definitions.as_mut().unwrap()[0].mount_points = Some(vec![MountPoint {
        source_volume: Some("data".into()),
        container_path: Some("/data".into()),
        ..Default::default()
    }]);
    assert!(try_commit(ecs.store(), &scope(ctx), vec![doc.write()])
        .await
        .unwrap());

    let e = prepare(ecs, ctx, fargate_spec("fg:1", None))
        .await
        .unwrap_err();
    assert_eq!(e.aws_code(), "ClientException");
    assert_eq!(
        e.to_string(),
        "Fargate compatible task definitions do not support sourcePath"
    );
    let mut service = fargate_spec("fg:1", None);
    service.owner = Some(owner());
    assert_eq!(prepare(ecs, ctx, service).await.unwrap_err(), e);
    let req = RunTaskRequest {
        cluster: Some("c".into()),
        task_definition: "fg:1".into(),
        launch_type: Some(LaunchType::Fargate),
        network_configuration: fargate_spec("fg", None).network,
        ..Default::default()
    };
    assert_eq!(
        ecs.run_task(ctx, req).await.unwrap_err().code,
        "ClientException"
    );
}

#[tokio::test]
async fn fargate_overrides_cannot_add_host_environment_files() {
    let h = harness().await;
    let (ecs, ctx) = (&h.ecs, &h.ctx);
    let with_file = |value: &str| TaskOverride {
        container_overrides: Some(vec![ContainerOverride {
            name: Some("main".into()),
            environment_files: Some(vec![EnvironmentFile {
                value: value.into(),
                r#type: EnvironmentFileType::S3,
            }]),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let e = prepare(
        ecs,
        ctx,
        fargate_spec("fg", Some(with_file("/etc/berth.toml"))),
    )
    .await
    .unwrap_err();
    assert_eq!(e.aws_code(), "ClientException");
    assert!(e.to_string().contains("is not an S3 object ARN"), "{e}");
    let e = prepare(
        ecs,
        ctx,
        fargate_spec("fg", Some(with_file("arn:aws:s3:::b/k.env"))),
    )
    .await
    .unwrap_err();
    assert!(e
        .to_string()
        .starts_with("berth cannot fetch environment files from Amazon S3"));
    // On EC2 the same override names a file on the instance, its owner's.
    let ec2 = LaunchSpec {
        cluster: Some("c".into()),
        task_definition: "web".into(),
        launch_type: LaunchType::Ec2,
        overrides: Some(with_file("/etc/app.env")),
        ..Default::default()
    };
    prepare(ecs, ctx, ec2).await.unwrap();
    prepare(ecs, ctx, fargate_spec("fg", None)).await.unwrap();
}

/// Placement reads one cluster's reservations by its sort-key prefix; an
/// assignment stored before the prefix existed is upgraded at start, and
/// until then would not be counted.
#[tokio::test]
async fn reservations_are_read_by_cluster_and_old_ones_upgraded() {
    let h = harness().await;
    let (ecs, ctx) = (&h.ecs, &h.ctx);
    let spec = || LaunchSpec {
        cluster: Some("c".into()),
        task_definition: "web:1".into(),
        launch_type: LaunchType::Ec2,
        ..Default::default()
    };
    let l = prepare(ecs, ctx, spec()).await.unwrap();
    let one = PlacementRequest::new(1, None, None).unwrap();
    launch(ecs, ctx, &l, &one).await.unwrap();
    let all = Query {
        limit: 1000,
        ..Default::default()
    };
    let mut stored = records::list::<AssignmentDoc>(ecs.store(), &scope(ctx), &all)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].value.cluster, "c");
    assert_eq!(
        stored[0].value.sort(),
        format!("c\t{}", stored[0].value.id())
    );
    let reserved = |snap: &Snapshot| snap.pool()[0].memory;
    assert_eq!(reserved(&snapshot(ecs, ctx, &l, None).await.unwrap()), 512);

    // The form earlier versions stored: no cluster, sorted by its id.
    let mut old = stored.remove(0);
    old.value.cluster.clear();
    ecs.store()
        .commit(&scope(ctx), vec![old.write()])
        .await
        .unwrap();
    // Written behind `records`' back: the placement index must be told.
    crate::ecs::placement_written(&scope(ctx));
    assert_eq!(reserved(&snapshot(ecs, ctx, &l, None).await.unwrap()), 1024);

    assert_eq!(ecs.upgrade_stored().await.unwrap(), 1);
    assert_eq!(ecs.upgrade_stored().await.unwrap(), 0, "idempotent");
    assert_eq!(reserved(&snapshot(ecs, ctx, &l, None).await.unwrap()), 512);
    // With the reservation counted, the fixed port is taken again.
    let again = launch(ecs, ctx, &l, &one).await.unwrap();
    assert!(again.tasks.is_empty());
}
