//! The ECS operations called directly (no HTTP), against a real SQLite store.

use berth_api::Ecs;
use berth_store::SqliteStore;
use berth_wire::ecs::*;
use berth_wire::RequestContext;
use std::collections::HashSet;
use std::sync::Arc;

struct Harness {
    _dir: tempfile::TempDir,
    ecs: Ecs,
    ctx: RequestContext,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("berth.db")).unwrap();
    let ecs = Ecs::new(Arc::new(store), b"test-key".to_vec());
    Harness {
        _dir: dir,
        ecs,
        ctx: RequestContext::for_account("123456789012", "us-east-1"),
    }
}

fn td_request(family: &str) -> RegisterTaskDefinitionRequest {
    RegisterTaskDefinitionRequest {
        family: family.into(),
        container_definitions: vec![ContainerDefinition {
            name: Some("app".into()),
            image: Some("busybox".into()),
            memory: Some(64),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn cluster_lifecycle() {
    let h = harness();
    let created = h
        .ecs
        .create_cluster(&h.ctx, CreateClusterRequest::default())
        .await
        .unwrap();
    let c = created.cluster.unwrap();
    assert_eq!(c.cluster_name.as_deref(), Some("default"));
    assert_eq!(
        c.cluster_arn.as_deref(),
        Some("arn:aws:ecs:us-east-1:123456789012:cluster/default")
    );
    // Creating it again answers the same cluster.
    let again = h
        .ecs
        .create_cluster(&h.ctx, CreateClusterRequest::default())
        .await
        .unwrap();
    assert_eq!(again.cluster.unwrap().cluster_arn, c.cluster_arn);
    // No `clusters` means `default`.
    let d = h
        .ecs
        .describe_clusters(&h.ctx, DescribeClustersRequest::default())
        .await
        .unwrap();
    assert_eq!(d.clusters.unwrap().len(), 1);
    let deleted = h
        .ecs
        .delete_cluster(
            &h.ctx,
            DeleteClusterRequest {
                cluster: "default".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted.cluster.unwrap().status.as_deref(), Some("INACTIVE"));
    let d = h
        .ecs
        .describe_clusters(&h.ctx, DescribeClustersRequest::default())
        .await
        .unwrap();
    assert_eq!(d.clusters.unwrap()[0].status.as_deref(), Some("INACTIVE"));
    let err = h
        .ecs
        .delete_cluster(
            &h.ctx,
            DeleteClusterRequest {
                cluster: "default".into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "ClusterNotFoundException");
    let listed = h
        .ecs
        .list_clusters(&h.ctx, ListClustersRequest::default())
        .await
        .unwrap();
    assert!(listed.cluster_arns.unwrap().is_empty());
}

#[tokio::test]
async fn accounts_and_regions_are_isolated() {
    let h = harness();
    let req = CreateClusterRequest {
        cluster_name: Some("mine".into()),
        ..Default::default()
    };
    h.ecs.create_cluster(&h.ctx, req).await.unwrap();
    for other in [
        RequestContext::for_account("210987654321", "us-east-1"),
        RequestContext::for_account("123456789012", "eu-west-1"),
    ] {
        let d = h
            .ecs
            .describe_clusters(
                &other,
                DescribeClustersRequest {
                    clusters: Some(vec!["mine".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(d.clusters.unwrap().is_empty());
        assert_eq!(d.failures.unwrap()[0].reason.as_deref(), Some("MISSING"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_get_distinct_revisions() {
    let h = Arc::new(harness());
    let mut handles = Vec::new();
    for _ in 0..40 {
        let h = h.clone();
        handles.push(tokio::spawn(async move {
            h.ecs
                .register_task_definition(&h.ctx, td_request("web"))
                .await
                .unwrap()
                .task_definition
                .unwrap()
                .revision
                .unwrap()
        }));
    }
    let mut revisions = HashSet::new();
    for handle in handles {
        assert!(revisions.insert(handle.await.unwrap()));
    }
    assert_eq!(revisions, (1..=40).collect::<HashSet<i32>>());
}

#[tokio::test]
async fn describe_family_means_latest_active() {
    let h = harness();
    for _ in 0..3 {
        h.ecs
            .register_task_definition(&h.ctx, td_request("web"))
            .await
            .unwrap();
    }
    h.ecs
        .deregister_task_definition(
            &h.ctx,
            DeregisterTaskDefinitionRequest {
                task_definition: "web:3".into(),
            },
        )
        .await
        .unwrap();
    let describe = |r: &str| DescribeTaskDefinitionRequest {
        task_definition: r.into(),
        include: None,
    };
    let d = h
        .ecs
        .describe_task_definition(&h.ctx, describe("web"))
        .await
        .unwrap();
    assert_eq!(d.task_definition.unwrap().revision, Some(2));
    let d = h
        .ecs
        .describe_task_definition(&h.ctx, describe("web:3"))
        .await
        .unwrap();
    assert_eq!(
        d.task_definition.unwrap().status,
        Some(TaskDefinitionStatus::Inactive)
    );
    let arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1";
    assert!(h
        .ecs
        .describe_task_definition(&h.ctx, describe(arn))
        .await
        .is_ok());
    let foreign = "arn:aws:ecs:us-east-1:999999999999:task-definition/web:1";
    assert_eq!(
        h.ecs
            .describe_task_definition(&h.ctx, describe(foreign))
            .await
            .unwrap_err()
            .code,
        "ClientException"
    );
    // Only INACTIVE revisions can be deleted.
    let del = h
        .ecs
        .delete_task_definitions(
            &h.ctx,
            DeleteTaskDefinitionsRequest {
                task_definitions: vec!["web:2".into(), "web:3".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(del.failures.unwrap().len(), 1);
    assert_eq!(
        del.task_definitions.unwrap()[0].status,
        Some(TaskDefinitionStatus::DeleteInProgress)
    );
}

#[tokio::test]
async fn pages_are_complete_stable_and_tokens_are_bound() {
    let h = harness();
    for f in ["a", "b"] {
        for _ in 0..4 {
            h.ecs
                .register_task_definition(&h.ctx, td_request(f))
                .await
                .unwrap();
        }
    }
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = h
            .ecs
            .list_task_definitions(
                &h.ctx,
                ListTaskDefinitionsRequest {
                    max_results: Some(3),
                    next_token: token.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(page.task_definition_arns.unwrap());
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let suffixes: Vec<&str> = seen.iter().map(|a| a.rsplit('/').next().unwrap()).collect();
    assert_eq!(
        suffixes,
        ["a:1", "a:2", "a:3", "a:4", "b:1", "b:2", "b:3", "b:4"]
    );

    let first = h
        .ecs
        .list_task_definitions(
            &h.ctx,
            ListTaskDefinitionsRequest {
                max_results: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let t = first.next_token.unwrap();
    let other_op = h
        .ecs
        .list_clusters(
            &h.ctx,
            ListClustersRequest {
                next_token: Some(t.clone()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(other_op.unwrap_err().code, "InvalidParameterException");
    let other_account = RequestContext::for_account("210987654321", "us-east-1");
    let foreign = h
        .ecs
        .list_task_definitions(
            &other_account,
            ListTaskDefinitionsRequest {
                next_token: Some(t),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(foreign.unwrap_err().code, "InvalidParameterException");

    let desc = h
        .ecs
        .list_task_definitions(
            &h.ctx,
            ListTaskDefinitionsRequest {
                family_prefix: Some("b".into()),
                sort: Some(SortOrder::Desc),
                max_results: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let arns = desc.task_definition_arns.unwrap();
    assert!(arns[0].ends_with("b:4") && arns[1].ends_with("b:3"));
}

#[tokio::test]
async fn tags_on_clusters_and_revisions() {
    let h = harness();
    let tag = |k: &str, v: &str| Tag {
        key: Some(k.into()),
        value: Some(v.into()),
    };
    let c = h
        .ecs
        .create_cluster(
            &h.ctx,
            CreateClusterRequest {
                cluster_name: Some("t".into()),
                tags: Some(vec![tag("a", "1")]),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .cluster
        .unwrap();
    let arn = c.cluster_arn.unwrap();
    h.ecs
        .tag_resource(
            &h.ctx,
            TagResourceRequest {
                resource_arn: arn.clone(),
                tags: vec![tag("b", "2"), tag("a", "3")],
            },
        )
        .await
        .unwrap();
    h.ecs
        .untag_resource(
            &h.ctx,
            UntagResourceRequest {
                resource_arn: arn.clone(),
                tag_keys: vec!["b".into()],
            },
        )
        .await
        .unwrap();
    let listed = h
        .ecs
        .list_tags_for_resource(&h.ctx, ListTagsForResourceRequest { resource_arn: arn })
        .await
        .unwrap();
    assert_eq!(listed.tags.unwrap(), vec![tag("a", "3")]);
    let bad = h
        .ecs
        .tag_resource(
            &h.ctx,
            TagResourceRequest {
                resource_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/t".into(),
                tags: vec![tag("aws:x", "1")],
            },
        )
        .await;
    assert_eq!(bad.unwrap_err().code, "InvalidParameterException");
    let missing = h
        .ecs
        .list_tags_for_resource(
            &h.ctx,
            ListTagsForResourceRequest {
                resource_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/nope".into(),
            },
        )
        .await;
    assert_eq!(missing.unwrap_err().code, "ClusterNotFoundException");
}

#[tokio::test]
async fn account_settings_precedence() {
    let h = harness();
    let name = SettingName::ContainerInsights;
    let list = |effective: bool| ListAccountSettingsRequest {
        name: Some(SettingName::ContainerInsights),
        effective_settings: Some(effective),
        ..Default::default()
    };
    let eff = h
        .ecs
        .list_account_settings(&h.ctx, list(true))
        .await
        .unwrap()
        .settings
        .unwrap();
    assert_eq!(eff[0].value.as_deref(), Some("disabled"));
    assert!(h
        .ecs
        .list_account_settings(&h.ctx, list(false))
        .await
        .unwrap()
        .settings
        .unwrap()
        .is_empty());
    h.ecs
        .put_account_setting_default(
            &h.ctx,
            PutAccountSettingDefaultRequest {
                name: name.clone(),
                value: "enabled".into(),
            },
        )
        .await
        .unwrap();
    let eff = h
        .ecs
        .list_account_settings(&h.ctx, list(true))
        .await
        .unwrap()
        .settings
        .unwrap();
    assert_eq!(eff[0].value.as_deref(), Some("enabled"));
    // A new cluster picks up the account's containerInsights value.
    let c = h
        .ecs
        .create_cluster(
            &h.ctx,
            CreateClusterRequest {
                cluster_name: Some("ci".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        c.cluster.unwrap().settings.unwrap()[0].value.as_deref(),
        Some("enabled")
    );
    let bad = h
        .ecs
        .put_account_setting(
            &h.ctx,
            PutAccountSettingRequest {
                name,
                value: "sometimes".into(),
                principal_arn: None,
            },
        )
        .await;
    assert_eq!(bad.unwrap_err().code, "InvalidParameterException");
    // All settings page at most 10 at a time.
    let all = h
        .ecs
        .list_account_settings(
            &h.ctx,
            ListAccountSettingsRequest {
                effective_settings: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.settings.unwrap().len(), 10);
    let rest = h
        .ecs
        .list_account_settings(
            &h.ctx,
            ListAccountSettingsRequest {
                effective_settings: Some(true),
                next_token: all.next_token,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.settings.unwrap().len(), SettingName::VALUES.len() - 10);
}
