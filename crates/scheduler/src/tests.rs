//! The scheduler tested as Nomad tests its own: snapshots built in memory,
//! plans checked, no servers. Property tests pin the invariants.

use super::*;
use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};
use proptest::strategy::Strategy as _;
use std::collections::{BTreeMap, BTreeSet};

fn inst(id: &str, cpu: i64, memory: i64) -> Instance {
    Instance {
        id: id.into(),
        active: true,
        connected: true,
        cpu,
        memory,
        ports: BTreeSet::new(),
        attributes: BTreeMap::new(),
        tasks: 0,
        awsvpc_shares_host: false,
        details: Default::default(),
    }
}

fn request(cpu: i64, memory: i64, count: usize, strategies: Vec<Strategy>) -> Request {
    Request {
        demand: Demand {
            cpu,
            memory,
            ..Default::default()
        },
        count,
        strategies,
        distinct_instance: false,
        member_of: vec![],
        group: None,
        seed: 7,
    }
}

fn placed(p: &[Placement]) -> Vec<&str> {
    p.iter()
        .filter_map(|p| match p {
            Placement::Placed(id) => Some(id.as_str()),
            Placement::Unplaced(_) => None,
        })
        .collect()
}

#[test]
fn reports_ecs_reasons_per_instance() {
    let mut draining = inst("d", 4096, 4096);
    draining.active = false;
    let mut lost = inst("l", 4096, 4096);
    lost.connected = false;
    let mut ported = inst("p", 4096, 4096);
    ported.ports.insert((Protocol::Tcp, 80));
    let pool = [
        inst("c", 100, 4096),
        inst("m", 4096, 100),
        draining,
        lost,
        ported,
    ];
    let mut req = request(512, 512, 1, vec![]);
    req.demand.host_ports = vec![(Protocol::Tcp, 80)];
    let out = place(&pool, &req);
    let Placement::Unplaced(reasons) = &out[0] else {
        panic!("placed: {out:?}")
    };
    let reasons: BTreeMap<&str, &str> = reasons
        .iter()
        .map(|(i, r)| (i.as_str(), r.as_str()))
        .collect();
    assert_eq!(reasons["c"], "RESOURCE:CPU");
    assert_eq!(reasons["m"], "RESOURCE:MEMORY");
    assert_eq!(reasons["p"], "RESOURCE:PORTS");
    assert_eq!(reasons["l"], "AGENT");
    assert_eq!(reasons["d"], "INACTIVE");
}

#[test]
fn fixed_host_ports_never_collide_within_a_plan() {
    let pool = [inst("a", 8192, 8192), inst("b", 8192, 8192)];
    let mut req = request(10, 10, 3, vec![]);
    req.demand.host_ports = vec![(Protocol::Tcp, 8080)];
    let out = place(&pool, &req);
    let ids = placed(&out);
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert!(matches!(out[2], Placement::Unplaced(_)));
}

#[test]
fn awsvpc_ports_are_host_ports_only_where_awsvpc_shares_the_host_network() {
    let mut process = inst("process", 8192, 8192);
    process.awsvpc_shares_host = true;
    let docker = inst("docker", 8192, 8192);
    let mut req = request(10, 10, 3, vec![]);
    req.demand.awsvpc_ports = vec![(Protocol::Tcp, 80)];
    // Each docker task has a namespace of its own ...
    assert_eq!(placed(&place(&[docker], &req)).len(), 3);
    // ... while on the process runtime the port is the host's.
    let out = place(&[process], &req);
    assert_eq!(placed(&out).len(), 1);
    assert!(matches!(&out[1], Placement::Unplaced(r) if r[0].1.as_str() == "RESOURCE:PORTS"));
}

#[test]
fn attributes_are_required() {
    let mut arm = inst("arm", 1024, 1024);
    arm.attributes
        .insert("ecs.cpu-architecture".into(), Some("arm64".into()));
    let x86 = inst("x86", 1024, 1024);
    let mut req = request(1, 1, 1, vec![]);
    req.demand.attributes = vec![("ecs.cpu-architecture".into(), Some("arm64".into()))];
    assert_eq!(placed(&place(&[x86, arm], &req)), ["arm"]);
}

#[test]
fn binpack_fills_the_fullest_instance_first() {
    let pool = [inst("roomy", 4096, 8192), inst("snug", 4096, 1024)];
    let out = place(
        &pool,
        &request(10, 256, 3, vec![Strategy::Binpack(BinpackField::Memory)]),
    );
    assert_eq!(placed(&out), ["snug", "snug", "snug"]);
}

#[test]
fn spread_balances_across_instances_and_zones() {
    let pool = [
        inst("a", 4096, 4096),
        inst("b", 4096, 4096),
        inst("c", 4096, 4096),
    ];
    let out = place(
        &pool,
        &request(10, 10, 6, vec![Strategy::Spread("instanceId".into())]),
    );
    let mut counts = BTreeMap::new();
    for id in placed(&out) {
        *counts.entry(id).or_insert(0) += 1;
    }
    assert_eq!(counts.values().copied().collect::<Vec<_>>(), [2, 2, 2]);

    let zone = |id: &str, z: &str| {
        let mut i = inst(id, 4096, 4096);
        i.attributes
            .insert("ecs.availability-zone".into(), Some(z.into()));
        i
    };
    let pool = [zone("a1", "a"), zone("a2", "a"), zone("b1", "b")];
    let out = place(
        &pool,
        &request(
            10,
            10,
            2,
            vec![Strategy::Spread("attribute:ecs.availability-zone".into())],
        ),
    );
    let ids = placed(&out);
    assert!(ids.contains(&"b1"), "{ids:?}");
}

#[test]
fn distinct_instance_uses_each_instance_once() {
    let pool = [inst("a", 4096, 4096), inst("b", 4096, 4096)];
    let mut req = request(10, 10, 3, vec![]);
    req.distinct_instance = true;
    let out = place(&pool, &req);
    assert_eq!(placed(&out).len(), 2);
    let Placement::Unplaced(r) = &out[2] else {
        panic!()
    };
    assert!(r.iter().all(|(_, r)| *r == Reason::DistinctInstance));
}

#[test]
fn same_seed_same_plan() {
    let pool: Vec<Instance> = (0..5).map(|i| inst(&format!("i{i}"), 4096, 4096)).collect();
    let a = place(&pool, &request(10, 10, 4, vec![Strategy::Random]));
    let b = place(&pool, &request(10, 10, 4, vec![Strategy::Random]));
    assert_eq!(a, b);
}

fn arb_instance() -> impl proptest::strategy::Strategy<Value = Instance> {
    (
        0..4096i64,
        0..8192i64,
        any::<bool>(),
        any::<bool>(),
        proptest::collection::btree_set(8000u16..8004, 0..3),
    )
        .prop_map(|(cpu, memory, active, connected, ports)| Instance {
            id: String::new(),
            active,
            connected,
            cpu,
            memory,
            ports: ports.into_iter().map(|p| (Protocol::Tcp, p)).collect(),
            attributes: BTreeMap::new(),
            tasks: 0,
            awsvpc_shares_host: false,
            details: Default::default(),
        })
}

proptest! {
    /// Whatever the pool and the request, a plan never oversubscribes an
    /// instance, never uses an unavailable one, never double-books a port,
    /// and places a task whenever some instance could still take it.
    #[test]
    fn plans_respect_capacity(
        mut pool in proptest::collection::vec(arb_instance(), 0..6),
        cpu in 0..1024i64,
        memory in 0..2048i64,
        port in proptest::option::of(8000u16..8004),
        count in 1usize..12,
        binpack in any::<bool>(),
        seed in any::<u64>(),
    ) {
        for (i, inst) in pool.iter_mut().enumerate() {
            inst.id = format!("i{i}");
        }
        let strategies = if binpack { vec![Strategy::Binpack(BinpackField::Memory)] } else { vec![Strategy::Spread("instanceId".into())] };
        let demand = Demand { cpu, memory, host_ports: port.map(|p| vec![(Protocol::Tcp, p)]).unwrap_or_default(), awsvpc_ports: vec![], attributes: vec![] };
        let req = Request { demand: demand.clone(), count, strategies, distinct_instance: false, member_of: vec![], group: None, seed };
        let out = place(&pool, &req);
        prop_assert_eq!(out.len(), count);
        let mut after = pool.clone();
        for p in &out {
            match p {
                Placement::Placed(id) => {
                    let inst = after.iter_mut().find(|i| &i.id == id).unwrap();
                    prop_assert!(inst.active && inst.connected);
                    prop_assert!(demand.host_ports.iter().all(|p| !inst.ports.contains(p)));
                    inst.reserve(&demand, None);
                    prop_assert!(inst.cpu >= 0 && inst.memory >= 0);
                }
                Placement::Unplaced(_) => {
                    prop_assert!(after.iter().all(|i| feasibility::check(i, &demand).is_some()));
                }
            }
        }
    }
}

#[test]
fn member_of_places_only_where_the_expression_selects() {
    let zone = |id: &str, az: &str, stack: &str| {
        let mut i = inst(id, 1024, 1024);
        i.attributes
            .insert("ecs.availability-zone".into(), Some(az.into()));
        i.attributes.insert("stack".into(), Some(stack.into()));
        i
    };
    let pool = vec![
        zone("a", "us-east-1a", "prod"),
        zone("b", "us-east-1b", "dev"),
        zone("c", "us-east-1c", "prod"),
        zone("d", "us-east-1b", "prod"),
    ];
    let mut req = request(10, 10, 6, vec![Strategy::Spread("instanceId".into())]);
    req.member_of = vec![berth_core::query::parse(
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and attribute:stack == prod",
    )
    .unwrap()];
    let placed = place(&pool, &req);
    let mut on: Vec<String> = placed
        .iter()
        .map(|p| match p {
            Placement::Placed(id) => id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    on.sort();
    assert_eq!(on, ["a", "a", "a", "d", "d", "d"]);

    // Nowhere selected: every instance refuses with ECS's reason.
    req.member_of = vec![berth_core::query::parse("attribute:stack == staging").unwrap()];
    req.count = 1;
    match &place(&pool, &req)[0] {
        Placement::Unplaced(why) => assert!(why.iter().all(|(_, r)| *r == Reason::MemberOf)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn task_group_counts_the_tasks_placed_in_the_same_plan() {
    let pool = vec![inst("a", 4096, 4096), inst("b", 4096, 4096)];
    // Only where no task of the group runs yet: one per instance.
    let mut req = request(10, 10, 3, vec![Strategy::Binpack(BinpackField::Memory)]);
    req.group = Some("service:web".into());
    req.member_of = vec![berth_core::query::parse("task:group != service:web").unwrap()];
    let placed = place(&pool, &req);
    assert!(matches!(&placed[0], Placement::Placed(_)));
    assert!(matches!(&placed[1], Placement::Placed(_)));
    assert_ne!(placed[0], placed[1]);
    assert!(matches!(&placed[2], Placement::Unplaced(_)));
}
