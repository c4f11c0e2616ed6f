//! The EC2 network model called directly: stable IDs, accounts apart,
//! security groups durable and their names unique under concurrent creates.

use berth_api::Ec2;
use berth_store::SqliteStore;
use berth_wire::ec2::*;
use berth_wire::RequestContext;
use std::sync::Arc;

fn ec2() -> (Ec2, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("berth.db")).unwrap();
    (Ec2::new(Arc::new(store)), dir)
}

fn create(name: &str) -> CreateSecurityGroupRequest {
    CreateSecurityGroupRequest {
        group_name: name.into(),
        description: "d".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn ids_are_stable_per_account_and_region() {
    let (ec2, _dir) = ec2();
    let a = RequestContext::for_account("111111111111", "us-east-1");
    let b = RequestContext::for_account("222222222222", "us-east-1");
    let a_west = RequestContext::for_account("111111111111", "us-west-2");
    let vpc = |ctx: RequestContext| {
        let ec2 = ec2.clone();
        async move {
            ec2.describe_vpcs(&ctx, DescribeVpcsRequest::default())
                .await
                .unwrap()
                .vpcs
                .unwrap()[0]
                .vpc_id
                .clone()
                .unwrap()
        }
    };
    let first = vpc(a.clone()).await;
    assert_eq!(first, vpc(a.clone()).await);
    assert!(first.starts_with("vpc-") && first.len() == 21, "{first}");
    assert_ne!(first, vpc(b).await);
    assert_ne!(first, vpc(a_west).await);
}

#[tokio::test]
async fn concurrent_creates_of_one_name_make_one_group() {
    let (ec2, _dir) = ec2();
    let ctx = RequestContext::for_account("111111111111", "us-east-1");
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let (ec2, ctx) = (ec2.clone(), ctx.clone());
            tokio::spawn(async move { ec2.create_security_group(&ctx, create("web")).await })
        })
        .collect();
    let mut made = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(_) => made += 1,
            Err(e) => assert_eq!(e.code, "InvalidGroup.Duplicate"),
        }
    }
    assert_eq!(made, 1);
    let groups = ec2
        .describe_security_groups(&ctx, DescribeSecurityGroupsRequest::default())
        .await
        .unwrap()
        .security_groups
        .unwrap();
    let names: Vec<_> = groups
        .iter()
        .filter_map(|g| g.group_name.as_deref())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"default") && names.contains(&"web"));
}

#[tokio::test]
async fn the_default_groups_rules_change_and_stay_undeletable() {
    let (ec2, _dir) = ec2();
    let ctx = RequestContext::for_account("111111111111", "us-east-1");
    ec2.authorize_security_group_ingress(
        &ctx,
        AuthorizeSecurityGroupIngressRequest {
            group_name: Some("default".into()),
            ip_protocol: Some("tcp".into()),
            from_port: Some(22),
            to_port: Some(22),
            cidr_ip: Some("10.0.0.0/8".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let req = DescribeSecurityGroupsRequest {
        group_names: Some(vec!["default".into()]),
        ..Default::default()
    };
    let g = ec2
        .describe_security_groups(&ctx, req)
        .await
        .unwrap()
        .security_groups
        .unwrap();
    let perms = g[0].ip_permissions.as_ref().unwrap();
    assert!(perms.iter().any(|p| p.from_port == Some(22)), "{perms:?}");
    // The self-referencing rule AWS creates is still there.
    assert!(perms.iter().any(|p| p.ip_protocol.as_deref() == Some("-1")));
    let e = ec2
        .delete_security_group(
            &ctx,
            DeleteSecurityGroupRequest {
                group_name: Some("default".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "CannotDelete");
}
