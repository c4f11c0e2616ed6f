//! How tasks move: StopTask, the agent's state and health reports, and
//! stops decided without an agent.

use super::*;

pub async fn stop(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: StopTaskRequest,
) -> Result<StopTaskResponse, EcsError> {
    let cluster = clusters::load_active(ecs, ctx, input.cluster.as_deref())
        .await?
        .value
        .id();
    if input.reason.as_ref().is_some_and(|r| r.len() > 255) {
        return Err(EcsError::invalid("reason can be at most 255 characters."));
    }
    let stop = Stop::by_user(input.reason.clone());
    let doc = request_stop(ecs, ctx, &cluster, &input.task, &stop)
        .await?
        .ok_or_else(|| {
            EcsError::invalid(format!("The referenced task was not found: {}", input.task))
        })?;
    Ok(StopTaskResponse {
        task: Some(view(&doc, false)),
    })
}

/// Asks a task of `cluster` (by ARN or id) to stop with `stop`'s code and
/// reason, as StopTask does (a service scaling down passes its own): its
/// agent stops it, or it stops at once if no agent started it. A second
/// request keeps the first one's reason. `None`: no such task.
pub(crate) async fn request_stop(
    ecs: &Ecs,
    ctx: &RequestContext,
    cluster: &str,
    task: &str,
    stop: &Stop,
) -> Result<Option<TaskDoc>, EcsError> {
    modify(ecs, ctx, cluster, task, |t| {
        transitions::request_stop(&mut t.task, stop.clone(), ecs.now());
        Ok(())
    })
    .await
}

pub async fn submit_task_state_change(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: SubmitTaskStateChangeRequest,
) -> Result<SubmitTaskStateChangeResponse, EcsError> {
    let cluster = clusters::cluster_name(ctx, input.cluster.as_deref())?;
    let task_ref = input
        .task
        .clone()
        .ok_or_else(|| EcsError::invalid("task is required."))?;
    let status = transitions::reported_status(&input)?;
    modify(ecs, ctx, &cluster, &task_ref, |t| {
        transitions::apply_task_report(&mut t.task, &input, status, ecs.now())
    })
    .await?
    .ok_or_else(|| EcsError::invalid(format!("The referenced task was not found: {task_ref}")))?;
    Ok(SubmitTaskStateChangeResponse {
        acknowledgment: Some("ACK".into()),
    })
}

pub async fn submit_container_state_change(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: SubmitContainerStateChangeRequest,
) -> Result<SubmitContainerStateChangeResponse, EcsError> {
    let cluster = clusters::cluster_name(ctx, input.cluster.as_deref())?;
    let task_ref = input
        .task
        .clone()
        .ok_or_else(|| EcsError::invalid("task is required."))?;
    let change = ContainerStateChange {
        container_name: input.container_name.clone(),
        image_digest: None,
        runtime_id: input.runtime_id.clone(),
        exit_code: input.exit_code,
        network_bindings: input.network_bindings.clone(),
        reason: input.reason.clone(),
        status: input.status.clone(),
    };
    modify(ecs, ctx, &cluster, &task_ref, |t| {
        transitions::apply_container_report(&mut t.task, &change)
    })
    .await?
    .ok_or_else(|| EcsError::invalid(format!("The referenced task was not found: {task_ref}")))?;
    Ok(SubmitContainerStateChangeResponse {
        acknowledgment: Some("ACK".into()),
    })
}

/// Stops a task without its agent (the agent was lost): marks it STOPPED
/// with `stop`'s code and reason and frees its place. Returns whether it
/// was still running.
pub async fn force_stop(
    ecs: &Ecs,
    ctx: &RequestContext,
    task_id: &str,
    stop: &Stop,
) -> Result<bool, EcsError> {
    let Some(doc) = load::<TaskDoc>(ecs.store(), &scope(ctx), task_id).await? else {
        return Ok(false);
    };
    if doc.value.last_status() == TaskStatus::Stopped {
        return Ok(false);
    }
    let cluster = doc.value.cluster.clone();
    modify(ecs, ctx, &cluster, task_id, |t| {
        transitions::stop_now(&mut t.task, stop, ecs.now());
        Ok(())
    })
    .await?;
    Ok(true)
}

/// `BerthAgentV1.SubmitHealth`: containers' health-check results, and the
/// task's health as they make it (`core::task::lifecycle::task_health`).
pub async fn submit_health(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: berth_wire::agent::SubmitHealthRequest,
) -> Result<(), EcsError> {
    let cluster = clusters::cluster_name(ctx, Some(&input.cluster))?;
    let updates: Vec<(String, HealthStatus)> = input
        .containers
        .iter()
        .map(|c| {
            Ok((
                c.container_name.clone(),
                transitions::parse_health(&c.health_status)?,
            ))
        })
        .collect::<Result<_, EcsError>>()?;
    modify(ecs, ctx, &cluster, &input.task, |t| {
        transitions::apply_health(&mut t.task, &t.task_definition, &updates);
        Ok(())
    })
    .await?
    .ok_or_else(|| {
        EcsError::invalid(format!("The referenced task was not found: {}", input.task))
    })?;
    Ok(())
}

/// The task's network interface follows its status: detaching while the
/// task deprovisions (as ECS shows it), deleted once it stopped.
pub(super) fn interface_follows(t: &mut TaskDoc, before: TaskStatus) {
    let now = t.last_status();
    if now == before {
        return;
    }
    match now {
        TaskStatus::Deprovisioning => set_eni_status(t, eni::ATTACHED, eni::DETACHING),
        TaskStatus::Stopped => {
            for a in enis(t) {
                a.status = Some(eni::DELETED.into());
            }
        }
        _ => {}
    }
}

/// An awsvpc task's ElasticNetworkInterface attachment: its type, statuses
/// and detail names, as ECS shows them.
mod eni {
    pub const TYPE: &str = "ElasticNetworkInterface";
    pub const PRECREATED: &str = "PRECREATED";
    pub const ATTACHED: &str = "ATTACHED";
    pub const DETACHING: &str = "DETACHING";
    pub const DELETED: &str = "DELETED";
    pub const SUBNET_ID: &str = "subnetId";
    pub const NETWORK_INTERFACE_ID: &str = "networkInterfaceId";
    pub const MAC_ADDRESS: &str = "macAddress";
    pub const PRIVATE_DNS_NAME: &str = "privateDnsName";
    pub const PRIVATE_IPV4_ADDRESS: &str = "privateIPv4Address";
}

/// The attachment an awsvpc task starts with. Until its interface exists,
/// ECS shows only the subnet it will be created in.
pub(super) fn precreated_eni(subnet: &str) -> Attachment {
    Attachment {
        id: Some(uuid::Uuid::new_v4().to_string()),
        r#type: Some(eni::TYPE.into()),
        status: Some(eni::PRECREATED.into()),
        details: Some(vec![detail(eni::SUBNET_ID, subnet)]),
    }
}

fn detail(name: &str, value: &str) -> KeyValuePair {
    KeyValuePair {
        name: Some(name.into()),
        value: Some(value.into()),
    }
}

fn detail_value<'a>(a: &'a Attachment, name: &str) -> Option<&'a str> {
    a.details
        .iter()
        .flatten()
        .find(|d| d.name.as_deref() == Some(name))
        .and_then(|d| d.value.as_deref())
}

fn enis(t: &mut TaskDoc) -> impl Iterator<Item = &mut Attachment> {
    t.task
        .attachments
        .iter_mut()
        .flatten()
        .filter(|a| a.r#type.as_deref() == Some(eni::TYPE))
}

/// Moves the task's interface from `from` to `to` (and leaves it alone in
/// any other status: one that never attached has nothing to detach).
fn set_eni_status(t: &mut TaskDoc, from: &str, to: &str) {
    for a in enis(t).filter(|a| a.status.as_deref() == Some(from)) {
        a.status = Some(to.into());
    }
}

/// The name EC2 gives a private address: `ip-10-0-0-5.ec2.internal` in
/// us-east-1, `ip-10-0-0-5.<region>.compute.internal` elsewhere.
fn private_dns_name(region: &str, ip: std::net::Ipv4Addr) -> String {
    let host = format!("ip-{}", ip.to_string().replace('.', "-"));
    if region == "us-east-1" {
        format!("{host}.ec2.internal")
    } else {
        format!("{host}.{region}.compute.internal")
    }
}

/// An ENI ID as EC2 makes them: `eni-` and 17 hex digits.
fn new_eni_id() -> String {
    format!("eni-{:017x}", rand::random::<u128>() & ((1u128 << 68) - 1))
}

/// `aa:bb:cc:dd:ee:ff`, lowercased; anything else is refused.
fn parse_mac(mac: &str) -> Result<String, EcsError> {
    let parts: Vec<&str> = mac.split(':').collect();
    if parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        Ok(mac.to_ascii_lowercase())
    } else {
        Err(EcsError::invalid(format!(
            "macAddress '{mac}' is not a MAC address."
        )))
    }
}

/// What one `SubmitTaskNetwork` asks for, checked.
struct ReportedNetwork {
    ip: std::net::Ipv4Addr,
    mac: Option<String>,
    dns_name: String,
}

/// Whether `t`'s interface already shows `n` (or is past being attached,
/// which a late report must not undo).
fn network_recorded(t: &TaskDoc, n: &ReportedNetwork) -> bool {
    let ip = n.ip.to_string();
    // A task already deprovisioning gets no interface any more.
    let past = t.last_status() >= TaskStatus::Deprovisioning;
    let Some(a) = t
        .task
        .attachments
        .iter()
        .flatten()
        .find(|a| a.r#type.as_deref() == Some(eni::TYPE))
    else {
        return past;
    };
    match a.status.as_deref() {
        Some(eni::ATTACHED) => {
            detail_value(a, eni::PRIVATE_IPV4_ADDRESS) == Some(ip.as_str())
                && detail_value(a, eni::MAC_ADDRESS) == n.mac.as_deref()
                && t.task.containers.iter().flatten().all(|c| {
                    c.network_interfaces.as_ref().is_some_and(|nis| {
                        nis.len() == 1
                            && nis[0].attachment_id == a.id
                            && nis[0].private_ipv4_address.as_deref() == Some(ip.as_str())
                    })
                })
        }
        Some(eni::PRECREATED) => past,
        _ => true,
    }
}

/// Fills the interface's details, points every container at it and marks
/// it ATTACHED. The interface ID, once given, stays.
fn attach_network(t: &mut TaskDoc, n: &ReportedNetwork) {
    if network_recorded(t, n) {
        return;
    }
    if !t
        .task
        .attachments
        .iter()
        .flatten()
        .any(|a| a.r#type.as_deref() == Some(eni::TYPE))
    {
        // A task recorded before berth kept attachments has none yet.
        t.task
            .attachments
            .get_or_insert_with(Vec::new)
            .push(Attachment {
                id: Some(uuid::Uuid::new_v4().to_string()),
                r#type: Some(eni::TYPE.into()),
                status: Some(eni::PRECREATED.into()),
                details: Some(vec![]),
            });
    }
    let ip = n.ip.to_string();
    let Some(a) = enis(t).next() else { return };
    let mut details = Vec::new();
    if let Some(subnet) = detail_value(a, eni::SUBNET_ID) {
        details.push(detail(eni::SUBNET_ID, subnet));
    }
    let eni_id = detail_value(a, eni::NETWORK_INTERFACE_ID)
        .map(str::to_string)
        .unwrap_or_else(new_eni_id);
    details.push(detail(eni::NETWORK_INTERFACE_ID, &eni_id));
    if let Some(mac) = &n.mac {
        details.push(detail(eni::MAC_ADDRESS, mac));
    }
    details.push(detail(eni::PRIVATE_DNS_NAME, &n.dns_name));
    details.push(detail(eni::PRIVATE_IPV4_ADDRESS, &ip));
    a.details = Some(details);
    a.status = Some(eni::ATTACHED.into());
    let attachment_id = a.id.clone();
    for c in t.task.containers.iter_mut().flatten() {
        c.network_interfaces = Some(vec![NetworkInterface {
            attachment_id: attachment_id.clone(),
            private_ipv4_address: Some(ip.clone()),
            ipv6_address: None,
        }]);
    }
}

/// `BerthAgentV1.SubmitTaskNetwork`: records the address an awsvpc task's
/// namespace got in its ElasticNetworkInterface attachment. Repeating a
/// report changes nothing; one for a task whose interface is already
/// detaching or deleted is ignored, as late state reports are.
pub async fn submit_task_network(
    ecs: &Ecs,
    ctx: &RequestContext,
    input: berth_wire::agent::SubmitTaskNetworkRequest,
) -> Result<(), EcsError> {
    let cluster = clusters::cluster_name(ctx, Some(&input.cluster))?;
    let ip_text = input
        .private_ipv4_address
        .as_deref()
        .ok_or_else(|| EcsError::invalid("privateIPv4Address is required."))?;
    let ip: std::net::Ipv4Addr = ip_text.parse().map_err(|_| {
        EcsError::invalid(format!(
            "privateIPv4Address '{ip_text}' is not an IPv4 address."
        ))
    })?;
    let n = ReportedNetwork {
        ip,
        mac: input.mac_address.as_deref().map(parse_mac).transpose()?,
        dns_name: private_dns_name(&ctx.region, ip),
    };
    let not_found =
        || EcsError::invalid(format!("The referenced task was not found: {}", input.task));
    let check = |t: &TaskDoc| {
        if t.task_definition.network_mode != Some(NetworkMode::Awsvpc) {
            return Err(EcsError::invalid(format!(
                "The task {} does not use the awsvpc network mode.",
                t.arn()
            )));
        }
        Ok(())
    };
    let state = input.task_state.as_ref();
    if state.is_some_and(|s| s.task.as_deref() != Some(input.task.as_str())) {
        return Err(EcsError::invalid(
            "taskState must name the same task as the report.",
        ));
    }
    let status = state
        .map(transitions::reported_status)
        .transpose()?
        .flatten();
    // Read first, so that a repeated report writes nothing.
    let current = find(ecs, ctx, &cluster, &input.task)
        .await?
        .ok_or_else(not_found)?;
    check(&current.value)?;
    if network_recorded(&current.value, &n) && state.is_none() {
        return Ok(());
    }
    modify(ecs, ctx, &cluster, &input.task, |t| {
        check(t)?;
        attach_network(t, &n);
        match state {
            Some(s) => transitions::apply_task_report(&mut t.task, s, status, ecs.now()),
            None => Ok(()),
        }
    })
    .await?
    .ok_or_else(not_found)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_wire::agent::SubmitTaskNetworkRequest;

    struct H {
        _dir: tempfile::TempDir,
        ecs: Ecs,
        ctx: RequestContext,
    }

    fn resources() -> Vec<Resource> {
        ["CPU", "MEMORY"]
            .iter()
            .map(|n| Resource {
                name: Some((*n).into()),
                r#type: Some("INTEGER".into()),
                integer_value: Some(4096),
                ..Default::default()
            })
            .collect()
    }

    /// A store, cluster `c`, managed capacity and an instance in `c`, and
    /// two revisions: `web` (FARGATE, awsvpc) and `plain` (EC2, bridge).
    async fn harness(region: &str) -> H {
        let dir = tempfile::tempdir().unwrap();
        let store = berth_store::SqliteStore::open(dir.path().join("berth.db")).unwrap();
        let ecs = Ecs::new(std::sync::Arc::new(store), b"k".to_vec());
        let ctx = RequestContext::for_account("123456789012", region);
        let cluster = CreateClusterRequest {
            cluster_name: Some("c".into()),
            ..Default::default()
        };
        ecs.create_cluster(&ctx, cluster).await.unwrap();
        ecs.ensure_managed_cluster().await.unwrap();
        for (c, cluster) in [
            (Ecs::managed_context(), crate::ecs::MANAGED_CLUSTER),
            (ctx.clone(), "c"),
        ] {
            let req = RegisterContainerInstanceRequest {
                cluster: Some(cluster.into()),
                total_resources: Some(resources()),
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
            memory: Some(64),
            ..Default::default()
        };
        let web = RegisterTaskDefinitionRequest {
            family: "web".into(),
            network_mode: Some(NetworkMode::Awsvpc),
            requires_compatibilities: Some(vec![Compatibility::Fargate]),
            cpu: Some("256".into()),
            memory: Some("512".into()),
            container_definitions: vec![container.clone()],
            ..Default::default()
        };
        ecs.register_task_definition(&ctx, web).await.unwrap();
        let plain = RegisterTaskDefinitionRequest {
            family: "plain".into(),
            container_definitions: vec![container],
            ..Default::default()
        };
        ecs.register_task_definition(&ctx, plain).await.unwrap();
        H {
            _dir: dir,
            ecs,
            ctx,
        }
    }

    fn network(subnets: &[&str]) -> NetworkConfiguration {
        NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: subnets.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
        }
    }

    async fn run_web(h: &H) -> Task {
        let req = RunTaskRequest {
            cluster: Some("c".into()),
            task_definition: "web".into(),
            launch_type: Some(LaunchType::Fargate),
            network_configuration: Some(network(&["subnet-berth", "subnet-local"])),
            ..Default::default()
        };
        let out = h.ecs.run_task(&h.ctx, req).await.unwrap();
        assert_eq!(out.failures, Some(vec![]));
        out.tasks.unwrap().remove(0)
    }

    async fn describe(h: &H, arn: &str) -> Task {
        let req = DescribeTasksRequest {
            cluster: Some("c".into()),
            tasks: vec![arn.into()],
            include: None,
        };
        h.ecs
            .describe_tasks(&h.ctx, req)
            .await
            .unwrap()
            .tasks
            .unwrap()
            .remove(0)
    }

    fn report(t: &Task, ip: &str, mac: Option<&str>) -> SubmitTaskNetworkRequest {
        SubmitTaskNetworkRequest {
            cluster: t.cluster_arn.clone().unwrap(),
            task: t.task_arn.clone().unwrap(),
            private_ipv4_address: Some(ip.into()),
            mac_address: mac.map(str::to_string),
            task_state: None,
        }
    }

    #[tokio::test]
    async fn the_network_report_can_carry_the_move_to_activating() {
        let h = harness("us-east-1").await;
        let t = run_web(&h).await;
        state(&h, &t, "PENDING").await;
        let mut req = report(&t, "10.0.0.9", None);
        req.task_state = Some(SubmitTaskStateChangeRequest {
            cluster: Some("c".into()),
            task: t.task_arn.clone(),
            status: Some("ACTIVATING".into()),
            ..Default::default()
        });
        h.ecs
            .submit_task_network(&h.ctx, req.clone())
            .await
            .unwrap();
        let after = describe(&h, t.task_arn.as_deref().unwrap()).await;
        assert_eq!(after.last_status.as_deref(), Some("ACTIVATING"));
        assert_eq!(eni_of(&after).status.as_deref(), Some("ATTACHED"));
        // A state for another task is refused.
        req.task_state.as_mut().unwrap().task = Some("other".into());
        assert!(h.ecs.submit_task_network(&h.ctx, req).await.is_err());
    }

    async fn state(h: &H, t: &Task, status: &str) {
        let req = SubmitTaskStateChangeRequest {
            cluster: Some("c".into()),
            task: t.task_arn.clone(),
            status: Some(status.into()),
            ..Default::default()
        };
        h.ecs.submit_task_state_change(&h.ctx, req).await.unwrap();
    }

    fn eni_of(t: &Task) -> &Attachment {
        let list = t.attachments.as_ref().unwrap();
        assert_eq!(list.len(), 1, "{list:?}");
        assert_eq!(list[0].r#type.as_deref(), Some("ElasticNetworkInterface"));
        &list[0]
    }

    fn details(a: &Attachment) -> Vec<(&str, &str)> {
        a.details
            .iter()
            .flatten()
            .map(|d| {
                (
                    d.name.as_deref().unwrap(),
                    d.value.as_deref().unwrap_or_default(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn the_interface_follows_the_task_from_precreated_to_deleted() {
        let h = harness("us-east-1").await;
        let t = run_web(&h).await;
        let a = eni_of(&t);
        let id = a.id.clone().unwrap();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert_eq!(a.status.as_deref(), Some("PRECREATED"));
        assert_eq!(details(a), [("subnetId", "subnet-berth")]);
        assert_eq!(
            t.containers.as_ref().unwrap()[0].network_interfaces,
            Some(vec![])
        );

        h.ecs
            .submit_task_network(&h.ctx, report(&t, "10.0.0.5", Some("02:AB:cd:00:00:01")))
            .await
            .unwrap();
        let d = describe(&h, t.task_arn.as_deref().unwrap()).await;
        let a = eni_of(&d);
        assert_eq!(a.id.as_deref(), Some(id.as_str()));
        assert_eq!(a.status.as_deref(), Some("ATTACHED"));
        let got = details(a);
        let names: Vec<&str> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "subnetId",
                "networkInterfaceId",
                "macAddress",
                "privateDnsName",
                "privateIPv4Address"
            ]
        );
        let eni_id = got[1].1.to_string();
        assert!(
            eni_id.len() == 21
                && eni_id.starts_with("eni-")
                && eni_id[4..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{eni_id}"
        );
        assert_eq!(got[0].1, "subnet-berth");
        assert_eq!(got[2].1, "02:ab:cd:00:00:01");
        assert_eq!(got[3].1, "ip-10-0-0-5.ec2.internal");
        assert_eq!(got[4].1, "10.0.0.5");
        let expected_ni = vec![NetworkInterface {
            attachment_id: Some(id.clone()),
            private_ipv4_address: Some("10.0.0.5".into()),
            ipv6_address: None,
        }];
        assert_eq!(
            d.containers.as_ref().unwrap()[0]
                .network_interfaces
                .as_ref(),
            Some(&expected_ni)
        );

        // The same report again writes nothing.
        h.ecs
            .submit_task_network(&h.ctx, report(&t, "10.0.0.5", Some("02:ab:cd:00:00:01")))
            .await
            .unwrap();
        let again = describe(&h, t.task_arn.as_deref().unwrap()).await;
        assert_eq!(again.version, d.version);
        assert_eq!(again.attachments, d.attachments);

        // The interface keeps its ID when the address it reports changes.
        h.ecs
            .submit_task_network(&h.ctx, report(&t, "10.0.0.6", None))
            .await
            .unwrap();
        let moved = describe(&h, t.task_arn.as_deref().unwrap()).await;
        let got = details(eni_of(&moved));
        assert_eq!(
            got,
            [
                ("subnetId", "subnet-berth"),
                ("networkInterfaceId", eni_id.as_str()),
                ("privateDnsName", "ip-10-0-0-6.ec2.internal"),
                ("privateIPv4Address", "10.0.0.6")
            ]
        );

        for s in [
            "PENDING",
            "ACTIVATING",
            "RUNNING",
            "DEACTIVATING",
            "STOPPING",
        ] {
            state(&h, &t, s).await;
            let d = describe(&h, t.task_arn.as_deref().unwrap()).await;
            assert_eq!(eni_of(&d).status.as_deref(), Some("ATTACHED"), "at {s}");
        }
        state(&h, &t, "DEPROVISIONING").await;
        let d = describe(&h, t.task_arn.as_deref().unwrap()).await;
        assert_eq!(eni_of(&d).status.as_deref(), Some("DETACHING"));
        state(&h, &t, "STOPPED").await;
        let d = describe(&h, t.task_arn.as_deref().unwrap()).await;
        let a = eni_of(&d);
        assert_eq!(a.status.as_deref(), Some("DELETED"));
        assert_eq!(details(a), got, "a stopped task still shows its address");
        assert_eq!(
            d.containers.as_ref().unwrap()[0]
                .network_interfaces
                .as_ref()
                .unwrap()[0]
                .private_ipv4_address
                .as_deref(),
            Some("10.0.0.6")
        );

        // A late report does not bring the interface back.
        h.ecs
            .submit_task_network(&h.ctx, report(&t, "10.0.0.7", None))
            .await
            .unwrap();
        let late = describe(&h, t.task_arn.as_deref().unwrap()).await;
        assert_eq!(late.attachments, d.attachments);
        assert_eq!(late.version, d.version);
    }

    #[tokio::test]
    async fn the_dns_name_outside_us_east_1_names_the_region() {
        let h = harness("eu-west-1").await;
        let t = run_web(&h).await;
        h.ecs
            .submit_task_network(&h.ctx, report(&t, "172.31.4.9", None))
            .await
            .unwrap();
        let d = describe(&h, t.task_arn.as_deref().unwrap()).await;
        assert!(details(eni_of(&d))
            .contains(&("privateDnsName", "ip-172-31-4-9.eu-west-1.compute.internal")));
    }

    fn code<T: std::fmt::Debug>(r: Result<T, berth_wire::ApiError>) -> String {
        r.unwrap_err().code.to_string()
    }

    #[tokio::test]
    async fn reports_are_checked() {
        let h = harness("us-east-1").await;
        let t = run_web(&h).await;

        let mut unknown = report(&t, "10.0.0.5", None);
        unknown.task = "0123456789abcdef0123456789abcdef".into();
        let e = h.ecs.submit_task_network(&h.ctx, unknown).await;
        assert_eq!(code(e), "InvalidParameterException");

        for (ip, mac) in [
            ("10.0.0", None),
            ("::1", None),
            ("10.0.0.5", Some("02:ab:cd")),
        ] {
            let e = h.ecs.submit_task_network(&h.ctx, report(&t, ip, mac)).await;
            assert_eq!(code(e), "InvalidParameterException", "{ip} {mac:?}");
        }
        let mut no_ip = report(&t, "10.0.0.5", None);
        no_ip.private_ipv4_address = None;
        let e = h.ecs.submit_task_network(&h.ctx, no_ip).await;
        assert_eq!(code(e), "InvalidParameterException");
        // None of them touched the task.
        let d = describe(&h, t.task_arn.as_deref().unwrap()).await;
        assert_eq!(eni_of(&d).status.as_deref(), Some("PRECREATED"));

        let req = RunTaskRequest {
            cluster: Some("c".into()),
            task_definition: "plain".into(),
            launch_type: Some(LaunchType::Ec2),
            ..Default::default()
        };
        let plain = h
            .ecs
            .run_task(&h.ctx, req)
            .await
            .unwrap()
            .tasks
            .unwrap()
            .remove(0);
        assert_eq!(plain.attachments, Some(vec![]));
        let e = h
            .ecs
            .submit_task_network(&h.ctx, report(&plain, "10.0.0.5", None))
            .await;
        assert_eq!(code(e), "InvalidParameterException");

        let req = RunTaskRequest {
            cluster: Some("c".into()),
            task_definition: "web".into(),
            launch_type: Some(LaunchType::Fargate),
            network_configuration: Some(network(&[])),
            ..Default::default()
        };
        let e = h.ecs.run_task(&h.ctx, req).await;
        assert_eq!(code(e), "InvalidParameterException");
    }

    #[tokio::test]
    async fn stops_decided_without_an_agent_delete_the_interface() {
        let h = harness("us-east-1").await;
        let never_started = run_web(&h).await;
        let req = StopTaskRequest {
            cluster: Some("c".into()),
            task: never_started.task_arn.clone().unwrap(),
            reason: None,
        };
        let stopped = h.ecs.stop_task(&h.ctx, req).await.unwrap().task.unwrap();
        assert_eq!(stopped.last_status.as_deref(), Some("STOPPED"));
        let a = eni_of(&stopped);
        assert_eq!(a.status.as_deref(), Some("DELETED"));
        assert_eq!(details(a), [("subnetId", "subnet-berth")]);

        let lost = run_web(&h).await;
        h.ecs
            .submit_task_network(&h.ctx, report(&lost, "10.0.0.8", None))
            .await
            .unwrap();
        state(&h, &lost, "RUNNING").await;
        let id = lost
            .task_arn
            .as_deref()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        assert!(force_stop(
            &h.ecs,
            &h.ctx,
            id,
            &Stop::agent_lost("arn:i", std::time::Duration::ZERO)
        )
        .await
        .unwrap());
        let d = describe(&h, lost.task_arn.as_deref().unwrap()).await;
        assert_eq!(d.last_status.as_deref(), Some("STOPPED"));
        let a = eni_of(&d);
        assert_eq!(a.status.as_deref(), Some("DELETED"));
        assert!(details(a).contains(&("privateIPv4Address", "10.0.0.8")));
    }
}
