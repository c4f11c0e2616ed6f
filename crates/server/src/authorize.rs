//! Authorization: which IAM action a request is, which resources it names,
//! and whether the calling key's policies allow it (`berth_iam`). A key
//! with no policy may do everything in its account, as before policies
//! existed; a key with policies may do only what they allow.
//!
//! Resources are read from the request itself, by the members ECS, Logs,
//! Secrets Manager and SSM use to name them (`cluster`, `taskDefinition`,
//! `services`, `tasks`, `logGroupName`, `SecretId`, `Name`, …), as ARNs in
//! the caller's account and region. An operation that names none (ListClusters,
//! RegisterTaskDefinition) is checked against `*`.

use crate::protocol::QueryService;
use crate::services::Service;
use berth_iam::{denial_message, evaluate, Policy};
use berth_wire::query::Params;
use berth_wire::{ApiError, RequestContext};
use serde_json::Value;
use std::collections::HashMap;

/// Every key's and task role's policies; a key or role that is absent
/// has none (allow all in its account).
#[derive(Debug, Default, Clone)]
pub struct Policies {
    by_key: HashMap<String, Vec<Policy>>,
    /// By role ARN: what the temporary credentials of a task with that
    /// `taskRoleArn` may do.
    by_role: HashMap<String, Vec<Policy>>,
}

/// The policies `policy` and `policy_file` hold, for the error messages `who`.
fn load(
    policy: &Option<String>,
    file: &Option<std::path::PathBuf>,
    who: &str,
) -> anyhow::Result<Vec<Policy>> {
    let mut texts = Vec::new();
    if let Some(p) = policy {
        texts.push(p.clone());
    }
    if let Some(f) = file {
        texts.push(std::fs::read_to_string(f).map_err(|err| {
            anyhow::anyhow!("reading the policy file {} of {who}: {err}", f.display())
        })?);
    }
    texts
        .iter()
        .map(|t| Policy::parse(t).map_err(|err| anyhow::anyhow!("the policy of {who}: {err}")))
        .collect()
}

impl Policies {
    #[cfg(test)]
    pub fn new(by_key: HashMap<String, Vec<Policy>>) -> Self {
        Policies {
            by_key,
            by_role: HashMap::new(),
        }
    }

    /// The policies of the configured keys and roles (`policy`, `policy_file`).
    pub fn from_entries(
        entries: &[crate::config::CredentialEntry],
        roles: &[crate::config::RoleEntry],
    ) -> anyhow::Result<Self> {
        let mut by_key: HashMap<String, Vec<Policy>> = HashMap::new();
        for e in entries {
            let who = format!("key {}", e.access_key_id);
            let ps = load(&e.policy, &e.policy_file, &who)?;
            if !ps.is_empty() {
                by_key
                    .entry(e.access_key_id.clone())
                    .or_default()
                    .extend(ps);
            }
        }
        let mut by_role: HashMap<String, Vec<Policy>> = HashMap::new();
        for r in roles {
            let arn = berth_core::arn::Arn::parse(&r.arn)
                .filter(|a| a.service == "iam" && a.resource.starts_with("role/"));
            anyhow::ensure!(
                arn.is_some(),
                "[[roles]]: '{}' is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                r.arn
            );
            let ps = load(&r.policy, &r.policy_file, &format!("role {}", r.arn))?;
            by_role.entry(r.arn.clone()).or_default().extend(ps);
        }
        Ok(Policies { by_key, by_role })
    }

    /// The policies that govern the caller: its task role's (temporary
    /// credentials), else its key's. `None`: there are none, and everything
    /// in its account is allowed.
    fn policies_of(&self, ctx: &RequestContext, role: Option<&str>) -> Option<&Vec<Policy>> {
        match role {
            Some(r) => self.by_role.get(r),
            None => self.by_key.get(&ctx.access_key_id),
        }
        .filter(|p| !p.is_empty())
    }

    /// The same for a form-protocol action (`ec2:DescribeVpcs`), checked
    /// against `*`, or for `sts:AssumeRole` against the role it names.
    /// `sts:GetCallerIdentity` is never denied, as on AWS. Temporary
    /// credentials may not assume a role: berth does not chain roles, so
    /// no session outlives the key (or task) that started it.
    pub fn check_query(
        &self,
        ctx: &RequestContext,
        role: Option<&str>,
        service: QueryService,
        params: &Params,
    ) -> Result<(), ApiError> {
        let action = format!(
            "{}:{}",
            service.signing_name(),
            params.action().unwrap_or_default()
        );
        match action.as_str() {
            "sts:GetCallerIdentity" => Ok(()),
            "sts:AssumeRole" => {
                let target = params.get("RoleArn").unwrap_or("*").to_string();
                if role.is_some() {
                    return Err(ApiError::new(
                        "AccessDeniedException",
                        400,
                        format!(
                            "User: {} is not authorized to perform: sts:AssumeRole on resource: {target} \
(berth does not chain roles: assume it with a long-term key)",
                            ctx.principal_arn
                        ),
                    ));
                }
                self.decide(ctx, role, vec![(action, vec![target])])
            }
            _ => self.decide(ctx, role, vec![(action, vec!["*".to_string()])]),
        }
    }

    /// Every (action, resources) must be allowed.
    fn decide(
        &self,
        ctx: &RequestContext,
        role: Option<&str>,
        checks: Vec<(String, Vec<String>)>,
    ) -> Result<(), ApiError> {
        let Some(policies) = self.policies_of(ctx, role) else {
            return Ok(());
        };
        for (action, resources) in checks {
            let decision = evaluate(policies, &action, &resources);
            if let Some(message) = denial_message(&ctx.principal_arn, &action, &decision) {
                tracing::info!(key = %ctx.access_key_id, %action, ?decision, "access denied");
                return Err(ApiError::new("AccessDeniedException", 400, message));
            }
        }
        Ok(())
    }

    /// Refuses the request with AWS's AccessDeniedException when the
    /// caller's policies do not allow it: a task role's (`role`, for
    /// temporary credentials), else its key's.
    pub fn check(
        &self,
        ctx: &RequestContext,
        role: Option<&str>,
        service: Service,
        op: &str,
        body: &[u8],
    ) -> Result<(), ApiError> {
        if self.policies_of(ctx, role).is_none() {
            return Ok(());
        }
        let action = action(service, op);
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let resources = resources(service, op, &body, ctx);
        let mut checks = vec![(action, resources)];
        // Giving a task a role is passing it (IAM's iam:PassRole), or a
        // limited caller could act through a role broader than itself.
        let passed = passed_roles(service, op, &body, &ctx.account_id);
        if !passed.is_empty() {
            checks.push(("iam:PassRole".to_string(), passed));
        }
        self.decide(ctx, role, checks)
    }
}

/// The task roles a request hands to tasks: a task definition's
/// `taskRoleArn`, a launch's `overrides.taskRoleArn` (a short name is a
/// role of the caller's account).
fn passed_roles(service: Service, op: &str, body: &Value, account: &str) -> Vec<String> {
    if service != Service::Ecs {
        return Vec::new();
    }
    let named = match op {
        "RegisterTaskDefinition" => string(body, "taskRoleArn"),
        "RunTask" | "StartTask" => body.get("overrides").and_then(|o| string(o, "taskRoleArn")),
        _ => None,
    };
    named
        .map(|r| {
            if r.starts_with("arn:") {
                r.to_string()
            } else {
                format!(
                    "arn:aws:iam::{account}:role/{}",
                    r.trim_start_matches("role/")
                )
            }
        })
        .into_iter()
        .collect()
}

/// The IAM action of an operation: `ecs:RunTask`, `logs:PutLogEvents`;
/// berth's agent channel maps onto the actions ECS's agent is granted
/// (`ecs:Poll`, `ecs:SubmitTaskStateChange`, `ecs:SubmitAttachmentStateChanges`).
pub fn action(service: Service, op: &str) -> String {
    let (prefix, name) = match service {
        Service::Ecs => ("ecs", op),
        Service::Agent => (
            "ecs",
            match op {
                "PollWork" => "Poll",
                "SubmitHealth" => "SubmitTaskStateChange",
                "SubmitTaskNetwork" => "SubmitAttachmentStateChanges",
                // ECS's agent receives task credentials over its poll session.
                "GetTaskCredentials" => "Poll",
                other => other,
            },
        ),
        // Interrupting a task is stopping it: within the caller's account,
        // as AWS FIS acts.
        Service::Admin => ("ecs", "StopTask"),
        Service::Logs => ("logs", op),
        Service::SecretsManager => ("secretsmanager", op),
        Service::Ssm => ("ssm", op),
        Service::Sqs => ("sqs", op),
        Service::Events => ("events", op),
    };
    format!("{prefix}:{name}")
}

fn string<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn strings<'a>(body: &'a Value, key: &str) -> Vec<&'a str> {
    body.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The resources a request names, as ARNs.
pub fn resources(service: Service, op: &str, body: &Value, ctx: &RequestContext) -> Vec<String> {
    let (region, account) = (ctx.region.as_str(), ctx.account_id.as_str());
    let mut out: Vec<String> = match service {
        Service::Ecs | Service::Agent | Service::Admin => ecs_resources(op, body, region, account),
        Service::Logs => {
            let group = string(body, "logGroupName").or_else(|| string(body, "logGroupIdentifier"));
            let mut v = Vec::new();
            if let Some(arn) = string(body, "resourceArn") {
                v.push(arn.to_string());
            }
            match (group, string(body, "logStreamName")) {
                (Some(g), Some(s)) if !g.starts_with("arn:") => v.push(format!(
                    "arn:aws:logs:{region}:{account}:log-group:{g}:log-stream:{s}"
                )),
                (Some(g), _) if g.starts_with("arn:") => v.push(g.to_string()),
                (Some(g), _) => v.push(format!("arn:aws:logs:{region}:{account}:log-group:{g}")),
                _ => {}
            }
            v
        }
        Service::SecretsManager => string(body, "SecretId")
            .or_else(|| string(body, "Name"))
            .map(|s| {
                if s.starts_with("arn:") {
                    s.to_string()
                } else {
                    format!("arn:aws:secretsmanager:{region}:{account}:secret:{s}")
                }
            })
            .into_iter()
            .collect(),
        Service::Ssm => string(body, "Name")
            .into_iter()
            .chain(strings(body, "Names"))
            .map(|n| parameter_arn(n, region, account))
            .collect(),
        // The queue a URL or name names (URLs end in /ACCOUNT/NAME).
        Service::Sqs => string(body, "QueueUrl")
            .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
            .or_else(|| string(body, "QueueName"))
            .map(|n| format!("arn:aws:sqs:{region}:{account}:{n}"))
            .into_iter()
            .collect(),
        Service::Events => string(body, "Name")
            .or_else(|| string(body, "Rule"))
            .map(|n| format!("arn:aws:events:{region}:{account}:rule/{n}"))
            .into_iter()
            .collect(),
    };
    if out.is_empty() {
        out.push("*".into());
    }
    out.sort();
    out.dedup();
    out
}

fn parameter_arn(name: &str, region: &str, account: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_string();
    }
    let name = name.strip_prefix('/').unwrap_or(name);
    format!("arn:aws:ssm:{region}:{account}:parameter/{name}")
}

/// ECS names resources by name or ARN; a bare name is read in the
/// request's cluster (or `default`).
fn ecs_resources(op: &str, body: &Value, region: &str, account: &str) -> Vec<String> {
    let arn_or = |s: &str, make: &dyn Fn(&str) -> String| {
        if s.starts_with("arn:") {
            s.to_string()
        } else {
            make(s)
        }
    };
    let cluster_ref = string(body, "cluster");
    let cluster_name = cluster_ref
        .map(|c| c.rsplit('/').next().unwrap_or(c).to_string())
        .unwrap_or_else(|| "default".into());
    let cluster_arn = format!("arn:aws:ecs:{region}:{account}:cluster/{cluster_name}");
    let mut v = Vec::new();
    // Operations that act on a cluster name it (or mean `default`).
    let cluster_scoped = body.get("cluster").is_some() || CLUSTER_OPS.contains(&op);
    if cluster_scoped {
        v.push(
            cluster_ref
                .filter(|c| c.starts_with("arn:"))
                .map_or(cluster_arn.clone(), str::to_string),
        );
    }
    if let Some(c) = string(body, "clusterName") {
        v.push(format!("arn:aws:ecs:{region}:{account}:cluster/{c}"));
    }
    for c in strings(body, "clusters") {
        v.push(arn_or(c, &|c| {
            format!("arn:aws:ecs:{region}:{account}:cluster/{c}")
        }));
    }
    if let Some(td) = string(body, "taskDefinition") {
        v.push(arn_or(td, &|td| {
            let with_rev = if td.contains(':') {
                td.to_string()
            } else {
                format!("{td}:*")
            };
            format!("arn:aws:ecs:{region}:{account}:task-definition/{with_rev}")
        }));
    }
    for td in strings(body, "taskDefinitions") {
        v.push(arn_or(td, &|td| {
            format!("arn:aws:ecs:{region}:{account}:task-definition/{td}")
        }));
    }
    let service = |s: &str| format!("arn:aws:ecs:{region}:{account}:service/{cluster_name}/{s}");
    for s in string(body, "service")
        .into_iter()
        .chain(string(body, "serviceName"))
        .chain(strings(body, "services"))
    {
        v.push(arn_or(s, &service));
    }
    let task = |t: &str| format!("arn:aws:ecs:{region}:{account}:task/{cluster_name}/{t}");
    for t in string(body, "task")
        .into_iter()
        .chain(strings(body, "tasks"))
    {
        v.push(arn_or(t, &task));
    }
    let instance =
        |i: &str| format!("arn:aws:ecs:{region}:{account}:container-instance/{cluster_name}/{i}");
    for i in string(body, "containerInstance")
        .into_iter()
        .chain(string(body, "containerInstanceArn"))
        .chain(strings(body, "containerInstances"))
    {
        v.push(arn_or(i, &instance));
    }
    for key in ["resourceArn", "serviceDeploymentArn"] {
        if let Some(a) = string(body, key) {
            v.push(a.to_string());
        }
    }
    for key in ["serviceDeploymentArns", "serviceRevisionArns"] {
        v.extend(strings(body, key).into_iter().map(str::to_string));
    }
    v
}

/// ECS operations on a cluster that may leave `cluster` out (meaning `default`).
const CLUSTER_OPS: &[&str] = &[
    "RunTask",
    "StartTask",
    "StopTask",
    "DescribeTasks",
    "ListTasks",
    "CreateService",
    "UpdateService",
    "DeleteService",
    "DescribeServices",
    "ListServices",
    "RegisterContainerInstance",
    "DeregisterContainerInstance",
    "DescribeContainerInstances",
    "ListContainerInstances",
    "UpdateContainerInstancesState",
    "SubmitTaskStateChange",
    "SubmitContainerStateChange",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        let mut c = RequestContext::for_account("111111111111", "us-east-1");
        c.access_key_id = "AKIAREADER".into();
        c
    }

    #[test]
    fn ecs_requests_name_their_resources() {
        let c = ctx();
        let body = serde_json::json!({"cluster": "prod", "taskDefinition": "web", "count": 1});
        assert_eq!(
            resources(Service::Ecs, "RunTask", &body, &c),
            [
                "arn:aws:ecs:us-east-1:111111111111:cluster/prod",
                "arn:aws:ecs:us-east-1:111111111111:task-definition/web:*"
            ]
        );
        let body = serde_json::json!({"services": ["a", "arn:aws:ecs:us-east-1:111111111111:service/x/b"]});
        assert_eq!(
            resources(Service::Ecs, "DescribeServices", &body, &c),
            [
                "arn:aws:ecs:us-east-1:111111111111:cluster/default",
                "arn:aws:ecs:us-east-1:111111111111:service/default/a",
                "arn:aws:ecs:us-east-1:111111111111:service/x/b"
            ]
        );
        assert_eq!(
            resources(Service::Ecs, "ListClusters", &serde_json::json!({}), &c),
            ["*"]
        );
    }

    #[test]
    fn other_services_name_theirs() {
        let c = ctx();
        let logs = serde_json::json!({"logGroupName": "/app", "logStreamName": "s"});
        assert_eq!(
            resources(Service::Logs, "PutLogEvents", &logs, &c),
            ["arn:aws:logs:us-east-1:111111111111:log-group:/app:log-stream:s"]
        );
        let p = serde_json::json!({"Names": ["/db/password", "plain"]});
        assert_eq!(
            resources(Service::Ssm, "GetParameters", &p, &c),
            [
                "arn:aws:ssm:us-east-1:111111111111:parameter/db/password",
                "arn:aws:ssm:us-east-1:111111111111:parameter/plain"
            ]
        );
        assert_eq!(action(Service::Agent, "PollWork"), "ecs:Poll");
    }

    #[test]
    fn policies_refuse_with_aws_message() {
        let reader = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":["ecs:Describe*","ecs:List*"],"Resource":"*"}]}"#,
        )
        .unwrap();
        let p = Policies::new([("AKIAREADER".to_string(), vec![reader])].into());
        let c = ctx();
        assert!(p
            .check(&c, None, Service::Ecs, "ListClusters", b"{}")
            .is_ok());
        let e = p
            .check(
                &c,
                None,
                Service::Ecs,
                "RunTask",
                br#"{"taskDefinition":"web:1"}"#,
            )
            .unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        assert!(
            e.message
                .contains("is not authorized to perform: ecs:RunTask on resource:"),
            "{}",
            e.message
        );
        // Handing a task a role needs iam:PassRole on it.
        let e = p.check(
            &c,
            None,
            Service::Ecs,
            "ListClusters",
            br#"{"taskRoleArn":"ignored-here"}"#,
        );
        assert!(e.is_ok());
        let runner = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"},
                {"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::111111111111:role/ok"}]}"#,
        )
        .unwrap();
        let p2 = Policies::new([("AKIAREADER".to_string(), vec![runner])].into());
        let td = |role: &str| format!(r#"{{"family":"f","taskRoleArn":"{role}"}}"#);
        assert!(p2
            .check(
                &c,
                None,
                Service::Ecs,
                "RegisterTaskDefinition",
                td("ok").as_bytes()
            )
            .is_ok());
        let e = p2
            .check(
                &c,
                None,
                Service::Ecs,
                "RegisterTaskDefinition",
                td("admin").as_bytes(),
            )
            .unwrap_err();
        assert!(
            e.message
                .contains("iam:PassRole on resource: arn:aws:iam::111111111111:role/admin"),
            "{}",
            e.message
        );
        let run = br#"{"taskDefinition":"f","overrides":{"taskRoleArn":"arn:aws:iam::111111111111:role/admin"}}"#;
        assert!(p2.check(&c, None, Service::Ecs, "RunTask", run).is_err());
        // A key without policies may do everything in its account.
        let mut other = c.clone();
        other.access_key_id = "AKIAOTHER".into();
        assert!(p
            .check(&other, None, Service::Ecs, "RunTask", b"{}")
            .is_ok());
    }

    #[test]
    fn assume_role_is_checked_on_the_role_and_never_chained() {
        let c = ctx();
        let one = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::111111111111:role/ok"}]}"#,
        )
        .unwrap();
        let p = Policies::new([("AKIAREADER".to_string(), vec![one])].into());
        let form = |role: &str| {
            Params::parse(format!("Action=AssumeRole&RoleArn={role}").as_bytes()).unwrap()
        };
        let sts = QueryService::Sts;
        assert!(p
            .check_query(&c, None, sts, &form("arn:aws:iam::111111111111:role/ok"))
            .is_ok());
        let e = p
            .check_query(&c, None, sts, &form("arn:aws:iam::111111111111:role/no"))
            .unwrap_err();
        assert!(e
            .message
            .contains("sts:AssumeRole on resource: arn:aws:iam::111111111111:role/no"));
        // Temporary credentials may not assume any role, whatever their policies.
        let e = p
            .check_query(
                &c,
                Some("arn:aws:iam::111111111111:role/x"),
                sts,
                &form("arn:aws:iam::111111111111:role/ok"),
            )
            .unwrap_err();
        assert!(e.message.contains("does not chain roles"), "{}", e.message);
    }
}
