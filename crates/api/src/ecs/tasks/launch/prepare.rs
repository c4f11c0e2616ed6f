//! The first step of a launch: what to start, in plain values
//! ([`LaunchSpec`]), resolved and checked against the cluster and the task
//! definition revision into a [`Launch`].

use super::super::*;

/// What to launch. RunTask and StartTask fill it from their requests; a
/// service fills it from its stored configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct LaunchSpec {
    /// Name or ARN; `None` is the `default` cluster.
    pub cluster: Option<String>,
    /// `family`, `family:revision` or an ARN.
    pub task_definition: String,
    pub launch_type: LaunchType,
    /// The capacity provider of a strategy the tasks run on: FARGATE or
    /// FARGATE_SPOT (launch type FARGATE), or an Auto Scaling group's
    /// (EC2: only its instances take them).
    pub capacity_provider: Option<String>,
    pub network: Option<NetworkConfiguration>,
    pub overrides: Option<TaskOverride>,
    /// Defaults to the owner's `ecs-svc/<deployment id>`, if it has one.
    pub started_by: Option<String>,
    /// Defaults to the owner's `service:<name>`, else `family:<family>`.
    pub group: Option<String>,
    pub tags: Vec<Tag>,
    /// `SERVICE` is only valid with an `owner`; the caller has then put the
    /// service's tags into `tags` itself.
    pub propagate_tags: Option<PropagateTags>,
    pub enable_execute_command: bool,
    /// The service (deployment) the tasks belong to; `None` for RunTask.
    pub owner: Option<TaskOwner>,
    /// Launch an INACTIVE (deregistered) revision: a service keeps running
    /// the revision it was given, as on ECS; RunTask may not.
    pub allow_inactive: bool,
}

/// A [`LaunchSpec`] resolved: the cluster and revision it names, checked,
/// with what each task will demand of an instance. Made by [`prepare`].
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub cluster: Cluster,
    pub td: TaskDefinition,
    pub launch_type: LaunchType,
    pub capacity_provider: Option<String>,
    pub overrides: Option<TaskOverride>,
    pub started_by: Option<String>,
    pub group: String,
    pub tags: Vec<Tag>,
    pub enable_execute_command: bool,
    pub demand: Demand,
    /// For awsvpc: the subnet its network interface goes in (the first of
    /// the request's, as ECS takes it).
    pub subnet: Option<String>,
    pub owner: Option<TaskOwner>,
}

impl Launch {
    pub fn cluster_name(&self) -> String {
        self.cluster.cluster_name.clone().unwrap_or_default()
    }

    /// FARGATE tasks run on berth's managed capacity, in a scope of its own.
    pub fn is_managed(&self) -> bool {
        self.launch_type == LaunchType::Fargate
    }

    /// The Auto Scaling group provider whose instances alone may take the
    /// tasks (none for a launch type, or FARGATE's providers).
    pub fn instance_provider(&self) -> Option<&str> {
        self.capacity_provider
            .as_deref()
            .filter(|_| !self.is_managed())
    }
}

/// Resolves and checks `spec` as RunTask does: an ACTIVE cluster and
/// revision, launch-type compatibility (for FARGATE, what Fargate refuses),
/// network configuration, overrides, `startedBy`, tags.
pub(crate) async fn prepare(
    ecs: &Ecs,
    ctx: &RequestContext,
    spec: LaunchSpec,
) -> Result<Launch, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, spec.cluster.as_deref())
        .await?
        .value;
    let doc = task_definitions::resolve(ecs, ctx, &spec.task_definition)
        .await?
        .ok_or_else(|| EcsError::client("TaskDefinition not found."))?
        .value;
    let td = doc.task_definition;
    if td.status != Some(TaskDefinitionStatus::Active) && !spec.allow_inactive {
        return Err(EcsError::client("TaskDefinition is inactive"));
    }
    let LaunchSpec {
        launch_type,
        capacity_provider,
        network,
        overrides,
        started_by,
        group,
        tags: own_tags,
        propagate_tags,
        enable_execute_command,
        owner,
        ..
    } = spec;
    let compatible = match launch_type {
        LaunchType::Fargate => Compatibility::Fargate,
        LaunchType::External => Compatibility::External,
        _ => Compatibility::Ec2,
    };
    if !td
        .compatibilities
        .iter()
        .flatten()
        .any(|c| *c == compatible)
    {
        return Err(EcsError::client(format!(
            "Task definition does not support launch_type {}.",
            launch_type.as_str()
        )));
    }
    if launch_type == LaunchType::Fargate {
        // FARGATE tasks of every account share the server's host, so a
        // FARGATE launch is checked as ECS checks a FARGATE definition:
        // the stored revision (it may predate these rules), and what the
        // overrides add. See `berth_core::fargate::sandbox`.
        berth_core::fargate::check_launch(&td, overrides.as_ref())?;
    }
    let awsvpc = network
        .as_ref()
        .and_then(|n| n.awsvpc_configuration.as_ref());
    let subnet = if td.network_mode == Some(NetworkMode::Awsvpc) {
        let Some(vpc) = awsvpc else {
            return Err(EcsError::invalid(
                "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
            ));
        };
        let Some(first) = vpc.subnets.first() else {
            return Err(EcsError::invalid("subnets can not be empty."));
        };
        let groups = vpc.security_groups.as_deref().unwrap_or_default();
        if vpc.subnets.len() > 16 {
            return Err(EcsError::invalid("subnets can have at most 16 items."));
        }
        if groups.len() > 5 {
            return Err(EcsError::invalid(
                "securityGroups can have at most 5 items.",
            ));
        }
        // The subnets and groups must be the account's (`crate::ec2`'s network).
        crate::ec2::check_awsvpc(ecs.store.as_ref(), ctx, &vpc.subnets, groups).await?;
        Some(first.clone())
    } else if awsvpc.is_some() {
        return Err(EcsError::invalid(
            "Network Configuration is not valid for the given networkMode of this task definition.",
        ));
    } else {
        None
    };
    rules::validate_overrides(&td, overrides.as_ref())?;
    let started_by = started_by.or_else(|| {
        owner
            .as_ref()
            .map(|o| rules::stop::started_by_deployment(&o.deployment_id))
    });
    if started_by.as_ref().is_some_and(|s| s.len() > 128) {
        return Err(EcsError::invalid(
            "startedBy can be at most 128 characters.",
        ));
    }
    // propagateTags TASK_DEFINITION starts from the revision's tags; the
    // request's own tags win on the same key. SERVICE only means something
    // for a service's tasks, and ECS refuses it for RunTask.
    let mut tags = match propagate_tags {
        Some(PropagateTags::TaskDefinition) => doc.tags.clone(),
        Some(PropagateTags::Service) if owner.is_some() => Vec::new(),
        Some(PropagateTags::Service) => {
            return Err(EcsError::invalid(
                "propagateTags SERVICE is only valid for tasks started by a service.",
            ))
        }
        Some(PropagateTags::Unknown(v)) => {
            return Err(EcsError::invalid(format!("Invalid propagateTags '{v}'.")))
        }
        _ => Vec::new(),
    };
    tags::merge(&mut tags, &own_tags)?;
    let demand = rules::demand(&td, overrides.as_ref());
    let group = group
        .or_else(|| {
            owner
                .as_ref()
                .map(|o| format!("service:{}", o.service_name))
        })
        .unwrap_or_else(|| format!("family:{}", td.family.as_deref().unwrap_or_default()));
    Ok(Launch {
        cluster,
        td,
        launch_type,
        capacity_provider,
        overrides,
        started_by,
        group,
        tags,
        enable_execute_command,
        demand,
        subnet,
        owner,
    })
}
