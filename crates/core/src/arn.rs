//! ECS ARNs, in the formats ECS uses (long format for resources that live
//! inside a cluster).

/// A parsed `arn:partition:service:region:account:resource` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    /// Everything after the account, e.g. `cluster/prod`.
    pub resource: String,
}

impl Arn {
    pub fn parse(s: &str) -> Option<Arn> {
        let mut parts = s.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let partition = parts.next()?.to_string();
        let service = parts.next()?.to_string();
        let region = parts.next()?.to_string();
        let account = parts.next()?.to_string();
        let resource = parts.next()?.to_string();
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return None;
        }
        Some(Arn {
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    /// `cluster/prod` → `("cluster", "prod")`.
    pub fn resource_type_and_id(&self) -> (&str, &str) {
        match self.resource.split_once('/') {
            Some((t, id)) => (t, id),
            None => (self.resource.as_str(), ""),
        }
    }
}

pub fn looks_like_arn(s: &str) -> bool {
    s.starts_with("arn:")
}

pub fn cluster(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:cluster/{name}")
}

pub fn task_definition(region: &str, account: &str, family: &str, revision: i32) -> String {
    format!("arn:aws:ecs:{region}:{account}:task-definition/{family}:{revision}")
}

pub fn task(region: &str, account: &str, cluster: &str, id: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:task/{cluster}/{id}")
}

pub fn container_instance(region: &str, account: &str, cluster: &str, id: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:container-instance/{cluster}/{id}")
}

pub fn service(region: &str, account: &str, cluster: &str, name: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:service/{cluster}/{name}")
}

/// One deployment of a service, as ListServiceDeployments names it.
pub fn service_deployment(
    region: &str,
    account: &str,
    cluster: &str,
    service: &str,
    id: &str,
) -> String {
    format!("arn:aws:ecs:{region}:{account}:service-deployment/{cluster}/{service}/{id}")
}

/// One revision of a service's configuration (a number, as on ECS).
pub fn service_revision(
    region: &str,
    account: &str,
    cluster: &str,
    service: &str,
    number: u64,
) -> String {
    format!("arn:aws:ecs:{region}:{account}:service-revision/{cluster}/{service}/{number}")
}

pub fn task_set(region: &str, account: &str, cluster: &str, service: &str, id: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:task-set/{cluster}/{service}/{id}")
}

/// ECS's Daemon API: a daemon, its revisions and deployments, and its task
/// definitions (a family of their own, apart from task definitions).
pub fn daemon(region: &str, account: &str, cluster: &str, name: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:daemon/{cluster}/{name}")
}

pub fn daemon_deployment(
    region: &str,
    account: &str,
    cluster: &str,
    daemon: &str,
    id: &str,
) -> String {
    format!("arn:aws:ecs:{region}:{account}:daemon-deployment/{cluster}/{daemon}/{id}")
}

pub fn daemon_revision(
    region: &str,
    account: &str,
    cluster: &str,
    daemon: &str,
    id: &str,
) -> String {
    format!("arn:aws:ecs:{region}:{account}:daemon-revision/{cluster}/{daemon}/{id}")
}

pub fn daemon_task_definition(region: &str, account: &str, family: &str, revision: i32) -> String {
    format!("arn:aws:ecs:{region}:{account}:daemon-task-definition/{family}:{revision}")
}

pub fn capacity_provider(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:ecs:{region}:{account}:capacity-provider/{name}")
}

pub fn root_principal(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_formats() {
        let a = Arn::parse(&task_definition("us-east-1", "123456789012", "web", 7)).unwrap();
        assert_eq!(a.service, "ecs");
        assert_eq!(a.resource_type_and_id(), ("task-definition", "web:7"));
        let t = Arn::parse(&task("eu-west-1", "1", "prod", "abc")).unwrap();
        assert_eq!(t.resource_type_and_id(), ("task", "prod/abc"));
        assert!(Arn::parse("arn:aws:ecs").is_none());
        assert!(Arn::parse("cluster/prod").is_none());
    }
}
