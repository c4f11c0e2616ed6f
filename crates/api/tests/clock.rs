//! Decisions by time, made on a `ManualClock`: agent liveness, stopping a
//! lost agent's tasks, and the expiry of STOPPED tasks, with no sleeping.

use berth_api::ecs::Timings;
use berth_api::Ecs;
use berth_core::clock::{Clock, ManualClock};
use berth_store::SqliteStore;
use berth_wire::agent::PollWorkRequest;
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use std::sync::Arc;
use std::time::Duration;

const GRACE: Duration = Duration::from_secs(60);
const LOST: Duration = Duration::from_secs(300);
const RETENTION: Duration = Duration::from_secs(3600);

struct H {
    _dir: tempfile::TempDir,
    ecs: Ecs,
    ctx: RequestContext,
    clock: ManualClock,
    instance: String,
}

async fn harness() -> H {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("berth.db")).unwrap();
    let timings = Timings {
        agent_disconnect_grace: GRACE,
        agent_lost_timeout: LOST,
        stopped_task_retention: RETENTION,
        ..Default::default()
    };
    let clock = ManualClock::default();
    let ecs = Ecs::with_timings(Arc::new(store), b"k".to_vec(), timings)
        .with_clock(Arc::new(clock.clone()));
    let ctx = RequestContext::for_account("123456789012", "us-east-1");
    let cluster = CreateClusterRequest {
        cluster_name: Some("c".into()),
        ..Default::default()
    };
    ecs.create_cluster(&ctx, cluster).await.unwrap();
    let resources = ["CPU", "MEMORY"]
        .iter()
        .map(|n| Resource {
            name: Some((*n).into()),
            r#type: Some("INTEGER".into()),
            integer_value: Some(1024),
            ..Default::default()
        })
        .collect();
    // What a plain revision requires of its instance.
    let docker = Attribute {
        name: "com.amazonaws.ecs.capability.docker-remote-api.1.18".into(),
        ..Default::default()
    };
    let registration = RegisterContainerInstanceRequest {
        cluster: Some("c".into()),
        total_resources: Some(resources),
        attributes: Some(vec![docker]),
        ..Default::default()
    };
    let instance = ecs
        .register_container_instance(&ctx, registration)
        .await
        .unwrap()
        .container_instance
        .unwrap()
        .container_instance_arn
        .unwrap();
    let td = RegisterTaskDefinitionRequest {
        family: "app".into(),
        container_definitions: vec![ContainerDefinition {
            name: Some("main".into()),
            image: Some("busybox".into()),
            memory: Some(256),
            ..Default::default()
        }],
        ..Default::default()
    };
    ecs.register_task_definition(&ctx, td).await.unwrap();
    H {
        _dir: dir,
        ecs,
        ctx,
        clock,
        instance,
    }
}

impl H {
    async fn connected(&self) -> bool {
        let req = DescribeContainerInstancesRequest {
            cluster: Some("c".into()),
            container_instances: vec![self.instance.clone()],
            ..Default::default()
        };
        let out = self.ecs.describe_container_instances(&self.ctx, req).await;
        out.unwrap().container_instances.unwrap()[0]
            .agent_connected
            .unwrap()
    }

    /// The agent's heartbeat: a poll that returns at once.
    async fn poll(&self) {
        let req = PollWorkRequest {
            cluster: "c".into(),
            container_instance_arn: self.instance.clone(),
            known_version: 0,
            wait_seconds: 0,
        };
        self.ecs.poll_work(&self.ctx, req).await.unwrap();
    }

    async fn task(&self, arn: &str) -> Option<Task> {
        let req = DescribeTasksRequest {
            cluster: Some("c".into()),
            tasks: vec![arn.into()],
            include: None,
        };
        let out = self.ecs.describe_tasks(&self.ctx, req).await.unwrap();
        out.tasks.unwrap().pop()
    }
}

#[tokio::test]
async fn liveness_lost_agents_and_expiry_follow_the_injected_clock() {
    let h = harness().await;
    let run = RunTaskRequest {
        cluster: Some("c".into()),
        task_definition: "app".into(),
        launch_type: Some(LaunchType::Ec2),
        ..Default::default()
    };
    let out = h.ecs.run_task(&h.ctx, run).await.unwrap();
    assert_eq!(out.failures, Some(vec![]));
    let task = out.tasks.unwrap().remove(0);
    let arn = task.task_arn.unwrap();
    assert_eq!(task.created_at, Some(h.clock.now()));

    // Connected until the grace has passed; a poll is a heartbeat.
    h.clock.advance(GRACE - Duration::from_secs(1));
    assert_eq!(h.ecs.sweep().await.unwrap(), Default::default());
    assert!(h.connected().await);
    h.clock.advance(Duration::from_secs(1));
    assert!(!h.connected().await);
    h.poll().await;
    assert!(h.connected().await);

    // Silent for the grace plus the lost timeout: its tasks are stopped.
    h.clock.advance(GRACE + LOST);
    assert_eq!(h.ecs.sweep().await.unwrap().tasks_of_lost_agents_stopped, 0);
    h.clock.advance(Duration::from_secs(1));
    let stopped_at = h.clock.now();
    assert_eq!(h.ecs.sweep().await.unwrap().tasks_of_lost_agents_stopped, 1);
    let t = h.task(&arn).await.unwrap();
    assert_eq!(t.last_status.as_deref(), Some("STOPPED"));
    assert_eq!(t.stop_code, Some(TaskStopCode::TerminationNotice));
    assert_eq!(t.stopped_at, Some(stopped_at));
    assert_eq!(t.execution_stopped_at, Some(stopped_at));
    assert_eq!(h.ecs.sweep().await.unwrap(), Default::default());

    // Kept for the retention; then forgotten by the next expiry pass,
    // which runs at most once a minute.
    h.clock.advance(RETENTION);
    assert_eq!(h.ecs.sweep().await.unwrap().expired_tasks_removed, 0);
    h.clock.advance(Duration::from_secs(59));
    assert_eq!(h.ecs.sweep().await.unwrap().expired_tasks_removed, 0);
    assert!(h.task(&arn).await.is_some());
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.ecs.sweep().await.unwrap().expired_tasks_removed, 1);
    assert!(h.task(&arn).await.is_none());
}
