//! The network an account sees in a region: one default VPC, a default
//! subnet in every availability zone berth has there, the subnets berth's
//! documentation has always used, and the VPC's `default` security group.
//! None of it is stored: it stands for what berth really has, so it is
//! derived, with IDs that are the same on every call and every restart.

use crate::ecs::InstanceDoc;
use crate::records::{self, scope};
use berth_store::Query;
use berth_wire::ec2::*;
use berth_wire::{ApiError, RequestContext};
use sha2::{Digest, Sha256};

/// The default VPC's address range, as on AWS.
pub const VPC_CIDR: &str = "172.31.0.0/16";

/// Subnet IDs berth's README and tests have always used in
/// `awsvpcConfiguration`: real subnets of the default VPC, in the region's
/// first zone, so those commands keep working.
pub const NAMED_SUBNETS: &[&str] = &["subnet-berth", "subnet-local"];

/// The attribute a container instance reports its zone in.
const ZONE_ATTRIBUTE: &str = "ecs.availability-zone";

/// `prefix-` and 17 hex digits derived from `parts` (AWS's ID format).
pub fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let hex = hex::encode(h.finalize());
    format!("{prefix}-{}", &hex[..17])
}

pub fn vpc_id(ctx: &RequestContext) -> String {
    derived_id("vpc", &[&ctx.account_id, &ctx.region, "default-vpc"])
}

/// The zones of the request's region: the one agents report by default
/// (the region + `a`) and every zone the account's container instances
/// report, sorted.
pub async fn zones(
    store: &dyn berth_store::Store,
    ctx: &RequestContext,
) -> Result<Vec<String>, ApiError> {
    let q = Query {
        limit: usize::MAX,
        ..Query::default()
    };
    let instances: Vec<_> = records::list::<InstanceDoc>(store, &scope(ctx), &q).await?;
    let mut zones = vec![format!("{}a", ctx.region)];
    zones.extend(
        instances
            .iter()
            .filter_map(|i| instance_zone(&i.value))
            .map(str::to_string),
    );
    zones.sort();
    zones.dedup();
    Ok(zones)
}

pub fn instance_zone(i: &InstanceDoc) -> Option<&str> {
    i.instance
        .attributes
        .iter()
        .flatten()
        .find(|a| a.name == ZONE_ATTRIBUTE)
        .and_then(|a| a.value.as_deref())
}

pub fn default_vpc(ctx: &RequestContext) -> Vpc {
    let id = vpc_id(ctx);
    Vpc {
        owner_id: Some(ctx.account_id.clone()),
        instance_tenancy: Some(Tenancy::from("default")),
        cidr_block_association_set: Some(vec![VpcCidrBlockAssociation {
            association_id: Some(derived_id("vpc-cidr-assoc", &[&id])),
            cidr_block: Some(VPC_CIDR.into()),
            cidr_block_state: Some(VpcCidrBlockState {
                state: Some(VpcCidrBlockStateCode::from("associated")),
                ..Default::default()
            }),
        }]),
        is_default: Some(true),
        vpc_id: Some(id.clone()),
        state: Some(VpcState::from("available")),
        cidr_block: Some(VPC_CIDR.into()),
        dhcp_options_id: Some(derived_id("dopt", &[&id])),
        ..Default::default()
    }
}

/// The zone's ID as AWS spells them (`use1-az1` style is account-specific
/// on AWS; here it is the region and the zone's position).
pub fn zone_id(ctx: &RequestContext, zones: &[String], zone: &str) -> String {
    let n = zones.iter().position(|z| z == zone).unwrap_or(0) + 1;
    format!("{}-az{n}", ctx.region)
}

/// The default VPC's subnets: the default subnet of each zone (a /20 each,
/// as AWS carves them), then the named ones (a /24 each, at the top).
pub fn subnets(ctx: &RequestContext, zones: &[String]) -> Vec<Subnet> {
    let vpc = vpc_id(ctx);
    let first = zones.first().cloned().unwrap_or_default();
    let subnet = |id: String, zone: &str, cidr: String, default_for_az: bool| Subnet {
        availability_zone_id: Some(zone_id(ctx, zones, zone)),
        map_customer_owned_ip_on_launch: Some(false),
        owner_id: Some(ctx.account_id.clone()),
        assign_ipv6_address_on_creation: Some(false),
        subnet_arn: Some(format!(
            "arn:aws:ec2:{}:{}:subnet/{id}",
            ctx.region, ctx.account_id
        )),
        enable_dns64: Some(false),
        ipv6_native: Some(false),
        subnet_id: Some(id),
        state: Some(SubnetState::from("available")),
        vpc_id: Some(vpc.clone()),
        available_ip_address_count: Some(if default_for_az { 4091 } else { 251 }),
        cidr_block: Some(cidr),
        availability_zone: Some(zone.to_string()),
        default_for_az: Some(default_for_az),
        map_public_ip_on_launch: Some(default_for_az),
        ..Default::default()
    };
    let mut out: Vec<Subnet> = zones
        .iter()
        .enumerate()
        .take(15)
        .map(|(i, z)| {
            subnet(
                derived_id("subnet", &[&ctx.account_id, &ctx.region, z]),
                z,
                format!("172.31.{}.0/20", i * 16),
                true,
            )
        })
        .collect();
    out.extend(NAMED_SUBNETS.iter().enumerate().map(|(i, id)| {
        subnet(
            id.to_string(),
            &first,
            format!("172.31.{}.0/24", 250 + i),
            false,
        )
    }));
    out
}

/// The VPC's `default` group: all traffic from members of the group in,
/// all traffic out, as AWS creates it.
pub fn default_group(ctx: &RequestContext) -> SecurityGroup {
    let id = derived_id("sg", &[&ctx.account_id, &ctx.region, "default"]);
    SecurityGroup {
        ip_permissions: Some(vec![IpPermission {
            ip_protocol: Some("-1".into()),
            user_id_group_pairs: Some(vec![UserIdGroupPair {
                user_id: Some(ctx.account_id.clone()),
                group_id: Some(id.clone()),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
        group_name: Some("default".into()),
        description: Some("default VPC security group".into()),
        ..group_shell(ctx, id)
    }
}

/// What every group carries besides its name, description and rules:
/// the egress rule AWS gives every new group, owner, VPC, ARN.
pub fn group_shell(ctx: &RequestContext, id: String) -> SecurityGroup {
    SecurityGroup {
        ip_permissions_egress: Some(vec![IpPermission {
            ip_protocol: Some("-1".into()),
            ip_ranges: Some(vec![IpRange {
                cidr_ip: Some("0.0.0.0/0".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }]),
        vpc_id: Some(vpc_id(ctx)),
        security_group_arn: Some(format!(
            "arn:aws:ec2:{}:{}:security-group/{id}",
            ctx.region, ctx.account_id
        )),
        owner_id: Some(ctx.account_id.clone()),
        ip_permissions: Some(Vec::new()),
        group_id: Some(id),
        ..Default::default()
    }
}
