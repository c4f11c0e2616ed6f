//! Policy evaluation as AWS defines it.

use super::*;
use proptest::prelude::*;

fn policy(json: &str) -> Policy {
    Policy::parse(json).unwrap()
}

const CLUSTER: &str = "arn:aws:ecs:us-east-1:111111111111:cluster/prod";
const TD: &str = "arn:aws:ecs:us-east-1:111111111111:task-definition/web:3";

fn r(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn describe_only_allows_describes() {
    let p = policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:Describe*","Resource":"*"}}"#,
    );
    assert_eq!(
        evaluate(
            std::slice::from_ref(&p),
            "ecs:DescribeClusters",
            &r(&[CLUSTER])
        ),
        Decision::Allowed
    );
    let d = evaluate(&[p], "ecs:RunTask", &r(&[TD, CLUSTER]));
    assert_eq!(
        d,
        Decision::NotAllowed {
            resource: TD.into()
        }
    );
    assert_eq!(
        denial_message("arn:aws:iam::111111111111:user/bob", "ecs:RunTask", &d).unwrap(),
        "User: arn:aws:iam::111111111111:user/bob is not authorized to perform: ecs:RunTask on resource: arn:aws:ecs:us-east-1:111111111111:task-definition/web:3 because no identity-based policy allows the ecs:RunTask action"
    );
}

#[test]
fn an_explicit_deny_wins() {
    let allow = policy(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#);
    let deny = policy(
        r#"{"Statement":[{"Effect":"Deny","Action":["ecs:Delete*","ecs:Deregister*"],"Resource":"arn:aws:ecs:*:*:cluster/prod"}]}"#,
    );
    let both = [allow, deny];
    assert_eq!(
        evaluate(&both, "ecs:DeleteCluster", &r(&[CLUSTER])),
        Decision::Denied {
            resource: CLUSTER.into()
        }
    );
    let staging = "arn:aws:ecs:us-east-1:111111111111:cluster/staging";
    assert_eq!(
        evaluate(&both, "ecs:DeleteCluster", &r(&[staging])),
        Decision::Allowed
    );
    assert_eq!(
        evaluate(&both, "ecs:CreateCluster", &r(&[CLUSTER])),
        Decision::Allowed
    );
}

#[test]
fn not_action_and_not_resource() {
    let p = policy(
        r#"{"Statement":[{"Effect":"Allow","NotAction":"ecs:Poll","NotResource":"arn:aws:ecs:*:*:cluster/secret"}]}"#,
    );
    assert_eq!(
        evaluate(std::slice::from_ref(&p), "ecs:ListTasks", &r(&[CLUSTER])),
        Decision::Allowed
    );
    assert!(matches!(
        evaluate(std::slice::from_ref(&p), "ecs:Poll", &r(&[CLUSTER])),
        Decision::NotAllowed { .. }
    ));
    let secret = "arn:aws:ecs:us-east-1:111111111111:cluster/secret";
    assert!(matches!(
        evaluate(&[p], "ecs:ListTasks", &r(&[secret])),
        Decision::NotAllowed { .. }
    ));
}

#[test]
fn nothing_allows_by_default() {
    assert!(matches!(
        evaluate(&[], "ecs:ListClusters", &r(&["*"])),
        Decision::NotAllowed { .. }
    ));
}

#[test]
fn what_berth_cannot_evaluate_is_refused() {
    for bad in [
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":"x"}}}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#,
        r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Action":"RunTask","Resource":"*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"cluster/prod"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"x:y","Resource":"*"}]}"#,
        r#"{"Version":"2020-01-01","Statement":[]}"#,
        r#"{"Statement":[],"Extra":1}"#,
        r#"[]"#,
        r#"not json"#,
    ] {
        assert!(Policy::parse(bad).is_err(), "{bad}");
    }
}

proptest! {
    /// Deny always wins: adding a statement that denies everything makes
    /// every request denied, whatever else allows it.
    #[test]
    fn deny_everything_wins(action in "[a-z]{2,5}:[A-Za-z]{1,12}", account in "[0-9]{12}") {
        let allow = policy(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#);
        let deny = policy(r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#);
        let res = vec![format!("arn:aws:ecs:us-east-1:{account}:cluster/x")];
        prop_assert!(matches!(evaluate(&[allow, deny], &action, &res), Decision::Denied { .. }), "{}", action);
    }
}
