//! The slice of EC2 that tools around ECS look up (Prefect's ECS worker,
//! Airflow's operators, the aws-cli): the account's default VPC, its
//! subnets and security groups, zones, regions, account attributes, and the
//! container instances that say which EC2 instance they are. The network
//! is `network`'s model; security groups are stored (`security_groups`).

mod filters;
mod instances;
pub(crate) mod network;
mod security_groups;

use berth_store::Store;
use berth_wire::ec2::*;
use berth_wire::{ApiError, RequestContext};
use filters::{bool_value, one, tag_values};
use std::sync::Arc;

/// The EC2 API over one store.
#[derive(Clone)]
pub struct Ec2 {
    store: Arc<dyn Store>,
}

impl Ec2 {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Ec2 { store }
    }
}

/// `DryRun=true`: EC2 answers whether the request would have succeeded.
fn dry_run(flag: Option<bool>) -> Result<(), ApiError> {
    if flag == Some(true) {
        return Err(ApiError::new(
            "DryRunOperation",
            412,
            "Request would have succeeded, but DryRun flag is set.",
        ));
    }
    Ok(())
}

/// Every ID a request names must exist, or EC2's `<Kind>.NotFound`.
fn all_known(
    wanted: Option<&Vec<String>>,
    have: &[Option<&String>],
    not_found: impl Fn(&str) -> ApiError,
) -> Result<(), ApiError> {
    for w in wanted.into_iter().flatten() {
        if !have.contains(&Some(w)) {
            return Err(not_found(w));
        }
    }
    Ok(())
}

fn named(wanted: Option<&Vec<String>>, id: Option<&String>) -> bool {
    match wanted.filter(|w| !w.is_empty()) {
        None => true,
        Some(w) => id.is_some_and(|id| w.contains(id)),
    }
}

#[async_trait::async_trait]
impl Ec2Api for Ec2 {
    async fn describe_vpcs(
        &self,
        ctx: &RequestContext,
        input: DescribeVpcsRequest,
    ) -> Result<DescribeVpcsResult, ApiError> {
        dry_run(input.dry_run)?;
        let filters = input.filters.unwrap_or_default();
        filters::check(
            &filters,
            &[
                "isDefault",
                "is-default",
                "vpc-id",
                "state",
                "cidr",
                "cidr-block",
                "owner-id",
                "dhcp-options-id",
                "tag-key",
            ],
        )?;
        let vpc = network::default_vpc(ctx);
        all_known(input.vpc_ids.as_ref(), &[vpc.vpc_id.as_ref()], |id| {
            ApiError::client(
                "InvalidVpcID.NotFound",
                format!("The vpc ID '{id}' does not exist"),
            )
        })?;
        let lookup = |name: &str| match name {
            "isDefault" | "is-default" => Some(bool_value(vpc.is_default)),
            "vpc-id" => Some(one(vpc.vpc_id.as_ref())),
            "state" => Some(vec!["available".into()]),
            "cidr" | "cidr-block" => Some(one(vpc.cidr_block.as_ref())),
            "owner-id" => Some(one(vpc.owner_id.as_ref())),
            "dhcp-options-id" => Some(one(vpc.dhcp_options_id.as_ref())),
            other => tag_values(vpc.tags.as_ref(), other),
        };
        let keep = named(input.vpc_ids.as_ref(), vpc.vpc_id.as_ref())
            && filters::matches(&filters, &lookup);
        Ok(DescribeVpcsResult {
            vpcs: Some(if keep { vec![vpc] } else { Vec::new() }),
            ..Default::default()
        })
    }

    async fn describe_subnets(
        &self,
        ctx: &RequestContext,
        input: DescribeSubnetsRequest,
    ) -> Result<DescribeSubnetsResult, ApiError> {
        dry_run(input.dry_run)?;
        let filters = input.filters.unwrap_or_default();
        filters::check(
            &filters,
            &[
                "vpc-id",
                "subnet-id",
                "availability-zone",
                "availabilityZone",
                "availability-zone-id",
                "default-for-az",
                "defaultForAz",
                "state",
                "cidr-block",
                "cidr",
                "cidrBlock",
                "owner-id",
                "map-public-ip-on-launch",
                "subnet-arn",
                "tag-key",
            ],
        )?;
        let zones = network::zones(self.store.as_ref(), ctx).await?;
        let subnets = network::subnets(ctx, &zones);
        let ids: Vec<Option<&String>> = subnets.iter().map(|s| s.subnet_id.as_ref()).collect();
        all_known(input.subnet_ids.as_ref(), &ids, |id| {
            ApiError::client(
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{id}' does not exist"),
            )
        })?;
        let keep = |s: &Subnet| {
            let lookup = |name: &str| match name {
                "vpc-id" => Some(one(s.vpc_id.as_ref())),
                "subnet-id" => Some(one(s.subnet_id.as_ref())),
                "availability-zone" | "availabilityZone" => Some(one(s.availability_zone.as_ref())),
                "availability-zone-id" => Some(one(s.availability_zone_id.as_ref())),
                "default-for-az" | "defaultForAz" => Some(bool_value(s.default_for_az)),
                "state" => Some(vec!["available".into()]),
                "cidr-block" | "cidr" | "cidrBlock" => Some(one(s.cidr_block.as_ref())),
                "owner-id" => Some(one(s.owner_id.as_ref())),
                "map-public-ip-on-launch" => Some(bool_value(s.map_public_ip_on_launch)),
                "subnet-arn" => Some(one(s.subnet_arn.as_ref())),
                other => tag_values(s.tags.as_ref(), other),
            };
            named(input.subnet_ids.as_ref(), s.subnet_id.as_ref())
                && filters::matches(&filters, &lookup)
        };
        Ok(DescribeSubnetsResult {
            subnets: Some(subnets.iter().filter(|s| keep(s)).cloned().collect()),
            ..Default::default()
        })
    }

    async fn describe_security_groups(
        &self,
        ctx: &RequestContext,
        input: DescribeSecurityGroupsRequest,
    ) -> Result<DescribeSecurityGroupsResult, ApiError> {
        dry_run(input.dry_run)?;
        let filters = input.filters.unwrap_or_default();
        filters::check(
            &filters,
            &[
                "vpc-id",
                "group-name",
                "group-id",
                "description",
                "owner-id",
                "tag-key",
            ],
        )?;
        let groups: Vec<SecurityGroup> = security_groups::all(self.store.as_ref(), ctx)
            .await?
            .into_iter()
            .map(|g| g.value.group)
            .collect();
        let ids: Vec<Option<&String>> = groups.iter().map(|g| g.group_id.as_ref()).collect();
        all_known(
            input.group_ids.as_ref(),
            &ids,
            security_groups::not_found_id,
        )?;
        let names: Vec<Option<&String>> = groups.iter().map(|g| g.group_name.as_ref()).collect();
        all_known(input.group_names.as_ref(), &names, |name| {
            ApiError::client(
                "InvalidGroup.NotFound",
                format!(
                    "The security group '{name}' does not exist in default VPC '{}'",
                    network::vpc_id(ctx)
                ),
            )
        })?;
        let keep = |g: &SecurityGroup| {
            let lookup = |name: &str| match name {
                "vpc-id" => Some(one(g.vpc_id.as_ref())),
                "group-name" => Some(one(g.group_name.as_ref())),
                "group-id" => Some(one(g.group_id.as_ref())),
                "description" => Some(one(g.description.as_ref())),
                "owner-id" => Some(one(g.owner_id.as_ref())),
                other => tag_values(g.tags.as_ref(), other),
            };
            named(input.group_ids.as_ref(), g.group_id.as_ref())
                && named(input.group_names.as_ref(), g.group_name.as_ref())
                && filters::matches(&filters, &lookup)
        };
        Ok(DescribeSecurityGroupsResult {
            security_groups: Some(groups.iter().filter(|g| keep(g)).cloned().collect()),
            ..Default::default()
        })
    }

    async fn create_security_group(
        &self,
        ctx: &RequestContext,
        input: CreateSecurityGroupRequest,
    ) -> Result<CreateSecurityGroupResult, ApiError> {
        dry_run(input.dry_run)?;
        security_groups::create(self.store.as_ref(), ctx, input).await
    }

    async fn delete_security_group(
        &self,
        ctx: &RequestContext,
        input: DeleteSecurityGroupRequest,
    ) -> Result<DeleteSecurityGroupResult, ApiError> {
        dry_run(input.dry_run)?;
        security_groups::delete(self.store.as_ref(), ctx, input).await
    }

    async fn authorize_security_group_ingress(
        &self,
        ctx: &RequestContext,
        input: AuthorizeSecurityGroupIngressRequest,
    ) -> Result<AuthorizeSecurityGroupIngressResult, ApiError> {
        dry_run(input.dry_run)?;
        security_groups::authorize_ingress(self.store.as_ref(), ctx, input).await
    }

    async fn describe_availability_zones(
        &self,
        ctx: &RequestContext,
        input: DescribeAvailabilityZonesRequest,
    ) -> Result<DescribeAvailabilityZonesResult, ApiError> {
        dry_run(input.dry_run)?;
        let filters = input.filters.unwrap_or_default();
        filters::check(
            &filters,
            &[
                "zone-name",
                "zone-id",
                "state",
                "region-name",
                "zone-type",
                "group-name",
                "opt-in-status",
            ],
        )?;
        let zones = network::zones(self.store.as_ref(), ctx).await?;
        for z in input.zone_names.iter().flatten() {
            if !zones.contains(z) {
                return Err(ApiError::client(
                    "InvalidParameterValue",
                    format!("Invalid availability zone: [{z}]"),
                ));
            }
        }
        let all: Vec<AvailabilityZone> = zones
            .iter()
            .map(|z| AvailabilityZone {
                opt_in_status: Some(AvailabilityZoneOptInStatus::from("opt-in-not-required")),
                messages: Some(Vec::new()),
                region_name: Some(ctx.region.clone()),
                zone_name: Some(z.clone()),
                zone_id: Some(network::zone_id(ctx, &zones, z)),
                group_name: Some(ctx.region.clone()),
                network_border_group: Some(ctx.region.clone()),
                zone_type: Some("availability-zone".into()),
                state: Some(AvailabilityZoneState::from("available")),
                ..Default::default()
            })
            .collect();
        let keep = |z: &AvailabilityZone| {
            let lookup = |name: &str| match name {
                "zone-name" => Some(one(z.zone_name.as_ref())),
                "zone-id" => Some(one(z.zone_id.as_ref())),
                "state" => Some(vec!["available".into()]),
                "region-name" | "group-name" => Some(vec![ctx.region.clone()]),
                "zone-type" => Some(vec!["availability-zone".into()]),
                "opt-in-status" => Some(vec!["opt-in-not-required".into()]),
                _ => None,
            };
            named(input.zone_names.as_ref(), z.zone_name.as_ref())
                && named(input.zone_ids.as_ref(), z.zone_id.as_ref())
                && filters::matches(&filters, &lookup)
        };
        Ok(DescribeAvailabilityZonesResult {
            availability_zones: Some(all.into_iter().filter(|z| keep(z)).collect()),
        })
    }

    async fn describe_regions(
        &self,
        ctx: &RequestContext,
        input: DescribeRegionsRequest,
    ) -> Result<DescribeRegionsResult, ApiError> {
        dry_run(input.dry_run)?;
        let filters = input.filters.unwrap_or_default();
        filters::check(&filters, &["region-name", "endpoint", "opt-in-status"])?;
        // berth serves any region a client signs for; without names it
        // lists the region asked in.
        let names = match input.region_names.filter(|n| !n.is_empty()) {
            Some(names) => names,
            None => vec![ctx.region.clone()],
        };
        let mut regions = Vec::new();
        for name in names {
            if !berth_core::names::is_valid_region(&name) {
                return Err(ApiError::client(
                    "InvalidParameterValue",
                    format!("Invalid region: {name}"),
                ));
            }
            let r = Region {
                opt_in_status: Some("opt-in-not-required".into()),
                endpoint: Some(format!("ec2.{name}.amazonaws.com")),
                region_name: Some(name),
                ..Default::default()
            };
            let lookup = |f: &str| match f {
                "region-name" => Some(one(r.region_name.as_ref())),
                "endpoint" => Some(one(r.endpoint.as_ref())),
                "opt-in-status" => Some(one(r.opt_in_status.as_ref())),
                _ => None,
            };
            if filters::matches(&filters, &lookup) {
                regions.push(r);
            }
        }
        Ok(DescribeRegionsResult {
            regions: Some(regions),
        })
    }

    async fn describe_account_attributes(
        &self,
        ctx: &RequestContext,
        input: DescribeAccountAttributesRequest,
    ) -> Result<DescribeAccountAttributesResult, ApiError> {
        dry_run(input.dry_run)?;
        let vpc = network::vpc_id(ctx);
        let all: [(&str, Vec<&str>); 6] = [
            ("supported-platforms", vec!["VPC"]),
            ("default-vpc", vec![vpc.as_str()]),
            ("max-instances", vec!["20"]),
            ("vpc-max-security-groups-per-interface", vec!["5"]),
            ("max-elastic-ips", vec!["5"]),
            ("vpc-max-elastic-ips", vec!["5"]),
        ];
        let wanted: Vec<String> = input
            .attribute_names
            .iter()
            .flatten()
            .map(|n| n.as_str().to_string())
            .collect();
        for w in &wanted {
            if !all.iter().any(|(n, _)| n == w) {
                return Err(ApiError::client(
                    "InvalidParameterValue",
                    format!(
                        "Value ({w}) for parameter attributeName is invalid. Unknown attribute."
                    ),
                ));
            }
        }
        let attributes = all
            .iter()
            .filter(|(n, _)| wanted.is_empty() || wanted.iter().any(|w| w == n))
            .map(|(n, values)| AccountAttribute {
                attribute_name: Some(n.to_string()),
                attribute_values: Some(
                    values
                        .iter()
                        .map(|v| AccountAttributeValue {
                            attribute_value: Some(v.to_string()),
                        })
                        .collect(),
                ),
            })
            .collect();
        Ok(DescribeAccountAttributesResult {
            account_attributes: Some(attributes),
        })
    }

    async fn describe_instances(
        &self,
        ctx: &RequestContext,
        input: DescribeInstancesRequest,
    ) -> Result<DescribeInstancesResult, ApiError> {
        dry_run(input.dry_run)?;
        instances::describe(self.store.as_ref(), ctx, input).await
    }
}

/// ECS's checks of an `awsvpcConfiguration` against the account's network:
/// every subnet and security group must exist (ECS's message quotes EC2's
/// error, as ECS does).
pub(crate) async fn check_awsvpc(
    store: &dyn Store,
    ctx: &RequestContext,
    subnets: &[String],
    security_groups: &[String],
) -> Result<(), berth_core::EcsError> {
    use berth_core::EcsError;
    let failed = |e: ApiError| EcsError::Server(e.message);
    // The region's first zone is always there: its subnets need no read of
    // the container instances (the zones they report), on a hot path.
    let mut known = network::subnets(ctx, &[format!("{}a", ctx.region)]);
    if subnets
        .iter()
        .any(|s| !known.iter().any(|k| k.subnet_id.as_ref() == Some(s)))
    {
        let zones = network::zones(store, ctx).await.map_err(failed)?;
        known = network::subnets(ctx, &zones);
    }
    for s in subnets {
        if !known.iter().any(|k| k.subnet_id.as_ref() == Some(s)) {
            return Err(EcsError::invalid(format!(
                "Error retrieving subnet information for [{s}]: The subnet ID '{s}' does not exist \
(Service: AmazonEC2; Status Code: 400; Error Code: InvalidSubnetID.NotFound)"
            )));
        }
    }
    if !security_groups.is_empty() {
        let groups = security_groups::all(store, ctx).await.map_err(failed)?;
        for g in security_groups {
            if !groups
                .iter()
                .any(|k| k.value.group.group_id.as_ref() == Some(g))
            {
                return Err(EcsError::invalid(format!(
                    "Error retrieving security group information for [{g}]: The security group '{g}' does not exist \
(Service: AmazonEC2; Status Code: 400; Error Code: InvalidGroup.NotFound)"
                )));
            }
        }
    }
    Ok(())
}
