//! DescribeInstances over the container instances that registered with an
//! `ec2InstanceId`: each is the EC2 instance it says it is, running in the
//! default subnet of its zone while it is registered.

use super::filters::{self, one};
use super::network;
use crate::ecs::InstanceDoc;
use crate::records::{self, scope};
use berth_store::Query;
use berth_wire::ec2::*;
use berth_wire::{ApiError, RequestContext};

pub async fn describe(
    store: &dyn berth_store::Store,
    ctx: &RequestContext,
    input: DescribeInstancesRequest,
) -> Result<DescribeInstancesResult, ApiError> {
    let filters = input.filters.unwrap_or_default();
    filters::check(
        &filters,
        &[
            "instance-id",
            "availability-zone",
            "instance-state-name",
            "vpc-id",
            "subnet-id",
            "instance-type",
        ],
    )?;
    let q = Query {
        limit: usize::MAX,
        ..Query::default()
    };
    let docs: Vec<InstanceDoc> = records::list::<InstanceDoc>(store, &scope(ctx), &q)
        .await?
        .into_iter()
        .map(|d| d.value)
        .filter(|d| d.instance.ec2_instance_id.is_some())
        .collect();
    let zones = network::zones(store, ctx).await?;
    let subnets = network::subnets(ctx, &zones);
    let instances: Vec<Instance> = docs.iter().map(|d| instance(ctx, d, &subnets)).collect();
    for id in input.instance_ids.iter().flatten() {
        if !instances.iter().any(|i| i.instance_id.as_ref() == Some(id)) {
            return Err(ApiError::client(
                "InvalidInstanceID.NotFound",
                format!("The instance ID '{id}' does not exist"),
            ));
        }
    }
    let reservations = instances
        .into_iter()
        .filter(|i| {
            let lookup = |name: &str| match name {
                "instance-id" => Some(one(i.instance_id.as_ref())),
                "availability-zone" => Some(one(i
                    .placement
                    .as_ref()
                    .and_then(|p| p.availability_zone.as_ref()))),
                "instance-state-name" => Some(
                    i.state
                        .as_ref()
                        .and_then(|s| s.name.as_ref())
                        .map(|n| n.as_str().to_string())
                        .into_iter()
                        .collect(),
                ),
                "vpc-id" => Some(one(i.vpc_id.as_ref())),
                "subnet-id" => Some(one(i.subnet_id.as_ref())),
                "instance-type" => Some(
                    i.instance_type
                        .as_ref()
                        .map(|t| t.as_str().to_string())
                        .into_iter()
                        .collect(),
                ),
                _ => None,
            };
            input
                .instance_ids
                .as_ref()
                .filter(|w| !w.is_empty())
                .is_none_or(|w| i.instance_id.as_ref().is_some_and(|id| w.contains(id)))
                && filters::matches(&filters, &lookup)
        })
        .map(|i| Reservation {
            reservation_id: Some(network::derived_id(
                "r",
                &[i.instance_id.as_deref().unwrap_or_default()],
            )),
            owner_id: Some(ctx.account_id.clone()),
            groups: Some(Vec::new()),
            instances: Some(vec![i]),
            ..Default::default()
        })
        .collect();
    Ok(DescribeInstancesResult {
        reservations: Some(reservations),
        ..Default::default()
    })
}

fn instance(ctx: &RequestContext, d: &InstanceDoc, subnets: &[Subnet]) -> Instance {
    let zone = network::instance_zone(d)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}a", ctx.region));
    let subnet = subnets
        .iter()
        .find(|s| s.default_for_az == Some(true) && s.availability_zone.as_deref() == Some(&zone))
        .and_then(|s| s.subnet_id.clone());
    let attribute = |name: &str| {
        d.instance
            .attributes
            .iter()
            .flatten()
            .find(|a| a.name == name)
            .and_then(|a| a.value.clone())
    };
    // A registered instance runs; a deregistered one is gone (terminated).
    let (code, state) = match d.instance.status.as_deref() {
        Some("INACTIVE") => (48, "terminated"),
        _ => (16, "running"),
    };
    Instance {
        instance_id: d.instance.ec2_instance_id.clone(),
        instance_type: attribute("ecs.instance-type").map(|t| InstanceType::from(t.as_str())),
        image_id: attribute("ecs.ami-id"),
        state: Some(InstanceState {
            code: Some(code),
            name: Some(InstanceStateName::from(state)),
        }),
        launch_time: d.instance.registered_at,
        placement: Some(Placement {
            availability_zone: Some(zone),
            tenancy: Some(Tenancy::from("default")),
            ..Default::default()
        }),
        subnet_id: subnet,
        vpc_id: Some(network::vpc_id(ctx)),
        ..Default::default()
    }
}
