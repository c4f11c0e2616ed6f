//! Security groups: the VPC's `default` group and the groups an account
//! creates, kept per account and region, one document each, keyed by name
//! (unique in the VPC, so a concurrent create of the same name conflicts).
//! The default group is stored only once its rules change.

use super::network::{default_group, derived_id, group_shell, vpc_id};
use crate::records::{self, scope, Attempt, Record, Versioned};
use berth_store::Query;
use berth_wire::ec2::*;
use berth_wire::{ApiError, RequestContext};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GroupDoc {
    pub group: SecurityGroup,
}

impl Record for GroupDoc {
    const KIND: &'static str = "ec2-security-group";
    fn id(&self) -> String {
        self.group.group_name.clone().unwrap_or_default()
    }
    fn sort(&self) -> String {
        self.group.group_id.clone().unwrap_or_default()
    }
}

/// Every group of the account in the region (stored ones, and the default
/// group as derived when it was never changed), in ID order.
pub async fn all(
    store: &dyn berth_store::Store,
    ctx: &RequestContext,
) -> Result<Vec<Versioned<GroupDoc>>, ApiError> {
    let q = Query {
        limit: usize::MAX,
        ..Query::default()
    };
    let mut groups = records::list::<GroupDoc>(store, &scope(ctx), &q).await?;
    if !groups
        .iter()
        .any(|g| g.value.group.group_name.as_deref() == Some("default"))
    {
        groups.push(Versioned::new(GroupDoc {
            group: default_group(ctx),
        }));
        groups.sort_by(|a, b| a.value.group.group_id.cmp(&b.value.group.group_id));
    }
    Ok(groups)
}

pub fn not_found_id(id: &str) -> ApiError {
    ApiError::client(
        "InvalidGroup.NotFound",
        format!("The security group '{id}' does not exist"),
    )
}

fn not_found_name(ctx: &RequestContext, name: &str) -> ApiError {
    ApiError::client(
        "InvalidGroup.NotFound",
        format!(
            "The security group '{name}' does not exist in default VPC '{}'",
            vpc_id(ctx)
        ),
    )
}

/// The group a request names by ID or name (IDs win, as on EC2).
async fn find(
    store: &dyn berth_store::Store,
    ctx: &RequestContext,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<Versioned<GroupDoc>, ApiError> {
    let groups = all(store, ctx).await?;
    match (id, name) {
        (Some(id), _) => groups
            .into_iter()
            .find(|g| g.value.group.group_id.as_deref() == Some(id))
            .ok_or_else(|| not_found_id(id)),
        (None, Some(name)) => groups
            .into_iter()
            .find(|g| g.value.group.group_name.as_deref() == Some(name))
            .ok_or_else(|| not_found_name(ctx, name)),
        (None, None) => Err(ApiError::client(
            "MissingParameter",
            "The request must contain the parameter groupName or groupId",
        )),
    }
}

fn check_text(what: &str, v: &str) -> Result<(), ApiError> {
    if v.is_empty() || v.len() > 255 || v.chars().any(|c| c.is_control()) {
        return Err(ApiError::client(
            "InvalidParameterValue",
            format!("Invalid value '{v}' for {what}. Length must be 1-255 printable characters."),
        ));
    }
    Ok(())
}

pub async fn create(
    store: &dyn berth_store::Store,
    ctx: &RequestContext,
    input: CreateSecurityGroupRequest,
) -> Result<CreateSecurityGroupResult, ApiError> {
    let name = input.group_name;
    check_text("GroupName", &name)?;
    check_text("GroupDescription", &input.description)?;
    if name.starts_with("sg-") {
        return Err(ApiError::client(
            "InvalidParameterValue",
            "Group names may not be in the format sg-*.",
        ));
    }
    let vpc = vpc_id(ctx);
    if let Some(v) = input.vpc_id.as_deref().filter(|v| *v != vpc) {
        return Err(ApiError::client(
            "InvalidVpcID.NotFound",
            format!("The vpc ID '{v}' does not exist"),
        ));
    }
    let duplicate = || {
        ApiError::client(
            "InvalidGroup.Duplicate",
            format!("The security group '{name}' already exists for VPC '{vpc}'"),
        )
    };
    if name == "default" {
        return Err(duplicate());
    }
    let tags: Vec<Tag> = input
        .tag_specifications
        .iter()
        .flatten()
        .filter(|s| {
            s.resource_type
                .as_ref()
                .is_none_or(|t| t.as_str() == "security-group")
        })
        .flat_map(|s| s.tags.clone().unwrap_or_default())
        .collect();
    let id = derived_id("sg", &[&uuid::Uuid::new_v4().to_string()]);
    let group = SecurityGroup {
        group_name: Some(name.clone()),
        description: Some(input.description),
        tags: (!tags.is_empty()).then(|| tags.clone()),
        ..group_shell(ctx, id.clone())
    };
    let arn = group.security_group_arn.clone();
    let doc = Versioned::new(GroupDoc { group });
    match store.commit(&scope(ctx), vec![doc.write()]).await {
        Ok(_) => Ok(CreateSecurityGroupResult {
            group_id: Some(id),
            tags: (!tags.is_empty()).then_some(tags),
            security_group_arn: arn,
        }),
        Err(berth_store::StoreError::Conflict { .. }) => Err(duplicate()),
        Err(e) => Err(records::store_error(e).into()),
    }
}

pub async fn delete(
    store: &dyn berth_store::Store,
    ctx: &RequestContext,
    input: DeleteSecurityGroupRequest,
) -> Result<DeleteSecurityGroupResult, ApiError> {
    records::retry(store, async || {
        let g = find(
            store,
            ctx,
            input.group_id.as_deref(),
            input.group_name.as_deref(),
        )
        .await?;
        let id = g.value.group.group_id.clone().unwrap_or_default();
        if g.value.group.group_name.as_deref() == Some("default") {
            return Err(ApiError::client(
                "CannotDelete",
                format!(
                    "the specified group: \"{id}\" name: \"default\" cannot be deleted by a user"
                ),
            ));
        }
        let write = berth_store::Write::Delete {
            kind: GroupDoc::KIND,
            id: g.value.id(),
            expect: berth_store::Expect::Version(g.version),
        };
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![write],
            value: DeleteSecurityGroupResult {
                r#return: Some(true),
                group_id: Some(id),
            },
        })
    })
    .await
}

/// The permissions a request adds: `IpPermissions`, or the older flat
/// members (`IpProtocol`, ports, `CidrIp` or `SourceSecurityGroupName`).
fn requested(
    ctx: &RequestContext,
    input: &AuthorizeSecurityGroupIngressRequest,
) -> Vec<IpPermission> {
    if let Some(p) = input.ip_permissions.clone().filter(|p| !p.is_empty()) {
        return p;
    }
    let source = input
        .source_security_group_name
        .as_ref()
        .map(|name| UserIdGroupPair {
            group_name: Some(name.clone()),
            user_id: Some(
                input
                    .source_security_group_owner_id
                    .clone()
                    .unwrap_or_else(|| ctx.account_id.clone()),
            ),
            ..Default::default()
        });
    vec![IpPermission {
        ip_protocol: input.ip_protocol.clone().or(Some("-1".into())),
        from_port: input.from_port,
        to_port: input.to_port,
        ip_ranges: input.cidr_ip.as_ref().map(|c| {
            vec![IpRange {
                cidr_ip: Some(c.clone()),
                ..Default::default()
            }]
        }),
        user_id_group_pairs: source.map(|s| vec![s]),
        ..Default::default()
    }]
}

/// `tcp`/`6` → `tcp`, `all`/`-1` → `-1`, as EC2 stores protocols.
fn protocol(p: Option<&str>) -> Result<String, ApiError> {
    let p = p.unwrap_or("-1").to_ascii_lowercase();
    Ok(match p.as_str() {
        "-1" | "all" => "-1".into(),
        "tcp" | "6" => "tcp".into(),
        "udp" | "17" => "udp".into(),
        "icmp" | "1" => "icmp".into(),
        "icmpv6" | "58" => "icmpv6".into(),
        other if other.parse::<u8>().is_ok() => other.into(),
        other => {
            return Err(ApiError::client(
                "InvalidParameterValue",
                format!("Invalid value '{other}' for IP protocol. Unknown protocol."),
            ))
        }
    })
}

pub async fn authorize_ingress(
    store: &dyn berth_store::Store,
    ctx: &RequestContext,
    input: AuthorizeSecurityGroupIngressRequest,
) -> Result<AuthorizeSecurityGroupIngressResult, ApiError> {
    let wanted = requested(ctx, &input);
    records::retry(store, async || {
        let mut g = find(
            store,
            ctx,
            input.group_id.as_deref(),
            input.group_name.as_deref(),
        )
        .await?;
        let group_id = g.value.group.group_id.clone().unwrap_or_default();
        let existing = g.value.group.ip_permissions.get_or_insert_with(Vec::new);
        let mut rules = Vec::new();
        for p in &wanted {
            let proto = protocol(p.ip_protocol.as_deref())?;
            let (from, to) = if proto == "-1" {
                (None, None)
            } else {
                (p.from_port, p.to_port)
            };
            let slot = match existing.iter().position(|e| {
                e.ip_protocol.as_deref() == Some(&proto) && e.from_port == from && e.to_port == to
            }) {
                Some(i) => &mut existing[i],
                None => {
                    existing.push(IpPermission {
                        ip_protocol: Some(proto.clone()),
                        from_port: from,
                        to_port: to,
                        ..Default::default()
                    });
                    existing.last_mut().expect("just pushed")
                }
            };
            let rule = |cidr: Option<String>,
                        referenced: Option<&UserIdGroupPair>,
                        description: Option<String>| SecurityGroupRule {
                security_group_rule_id: Some(derived_id(
                    "sgr",
                    &[&uuid::Uuid::new_v4().to_string()],
                )),
                group_id: Some(group_id.clone()),
                group_owner_id: Some(ctx.account_id.clone()),
                is_egress: Some(false),
                ip_protocol: Some(proto.clone()),
                from_port: Some(from.unwrap_or(-1)),
                to_port: Some(to.unwrap_or(-1)),
                cidr_ipv4: cidr,
                referenced_group_info: referenced.map(|r| ReferencedSecurityGroup {
                    group_id: r.group_id.clone(),
                    user_id: r.user_id.clone(),
                    ..Default::default()
                }),
                description,
                ..Default::default()
            };
            for r in p.ip_ranges.iter().flatten() {
                let ranges = slot.ip_ranges.get_or_insert_with(Vec::new);
                if ranges.iter().any(|e| e.cidr_ip == r.cidr_ip) {
                    return Err(duplicate_rule(
                        r.cidr_ip.as_deref().unwrap_or_default(),
                        &proto,
                        from,
                        to,
                    ));
                }
                ranges.push(r.clone());
                rules.push(rule(r.cidr_ip.clone(), None, r.description.clone()));
            }
            for pair in p.user_id_group_pairs.iter().flatten() {
                let mut pair = pair.clone();
                if pair.group_id.is_none() {
                    let named = pair.group_name.as_deref().unwrap_or_default();
                    let source = find(store, ctx, None, Some(named)).await?;
                    pair.group_id = source.value.group.group_id.clone();
                    pair.group_name = None;
                } else if !all(store, ctx)
                    .await?
                    .iter()
                    .any(|s| s.value.group.group_id == pair.group_id)
                {
                    return Err(not_found_id(pair.group_id.as_deref().unwrap_or_default()));
                }
                pair.user_id.get_or_insert_with(|| ctx.account_id.clone());
                let pairs = slot.user_id_group_pairs.get_or_insert_with(Vec::new);
                if pairs.iter().any(|e| e.group_id == pair.group_id) {
                    return Err(duplicate_rule(
                        pair.group_id.as_deref().unwrap_or_default(),
                        &proto,
                        from,
                        to,
                    ));
                }
                rules.push(rule(None, Some(&pair), pair.description.clone()));
                pairs.push(pair);
            }
        }
        Ok(Attempt::Commit {
            scope: scope(ctx),
            writes: vec![g.write()],
            value: AuthorizeSecurityGroupIngressResult {
                r#return: Some(true),
                security_group_rules: Some(rules),
            },
        })
    })
    .await
}

fn duplicate_rule(peer: &str, proto: &str, from: Option<i32>, to: Option<i32>) -> ApiError {
    let ports = match (from, to) {
        (Some(f), Some(t)) => format!(", from port: {f}, to port: {t}"),
        _ => String::new(),
    };
    ApiError::client(
        "InvalidPermission.Duplicate",
        format!(
            "the specified rule \"peer: {peer}, {}{ports}, ALLOW\" already exists",
            proto.to_ascii_uppercase()
        ),
    )
}
