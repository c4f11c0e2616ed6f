"""The cluster query language: ``memberOf`` placement constraints (RunTask,
services, task definitions) and ListContainerInstances' ``filter``, on
container instances registered through the API (no agent polls them, so
their tasks stay PENDING: what is checked is where they were placed)."""

import pytest
from botocore.exceptions import ClientError

import harness
from errors import assert_error, error_message

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

RESOURCES = [{"name": "CPU", "type": "INTEGER", "integerValue": 4096},
             {"name": "MEMORY", "type": "INTEGER", "integerValue": 8192}]


@pytest.fixture
def fleet(ecs, name):
    """A cluster of four instances: two zones, two stacks, one type each."""
    c = name("cql")
    ecs.create_cluster(clusterName=c)
    specs = {"i1": ("us-east-1a", "prod", "t3.small"), "i2": ("us-east-1b", "prod", "m5.large"),
             "i3": ("us-east-1b", "dev", "t3.small"), "i4": ("us-east-1c", "prod", "t3.large")}
    # What the test's task definitions require of an instance.
    required = ecs.describe_task_definition(taskDefinition=family(ecs, name))[
        "taskDefinition"]["requiresAttributes"]
    arns = {}
    for key, (az, stack, itype) in specs.items():
        inst = ecs.register_container_instance(
            cluster=c, totalResources=RESOURCES, instanceIdentityDocument="",
            attributes=[{"name": "ecs.availability-zone", "value": az},
                        {"name": "stack", "value": stack},
                        {"name": "ecs.instance-type", "value": itype}, *required])
        arns[key] = inst["containerInstance"]["containerInstanceArn"]
    yield c, arns
    for arn in ecs.list_tasks(cluster=c)["taskArns"]:
        ecs.stop_task(cluster=c, task=arn)
    for arn in arns.values():
        ecs.deregister_container_instance(cluster=c, containerInstance=arn, force=True)


def family(ecs, name, **extra):
    return ecs.register_task_definition(
        family=name("cqltd"), containerDefinitions=[
            {"name": "a", "image": "host", "command": ["sleep", "1"], "memory": 32}],
        **extra)["taskDefinition"]["taskDefinitionArn"]


def placed_on(ecs, cluster, out, arns):
    assert out["failures"] == [], out["failures"]
    by_arn = {v: k for k, v in arns.items()}
    return sorted(by_arn[t["containerInstanceArn"]] for t in out["tasks"])


def test_member_of_places_only_where_it_should(ecs, fleet, name):
    c, arns = fleet
    td = family(ecs, name)
    out = ecs.run_task(cluster=c, taskDefinition=td, launchType="EC2", count=6, placementConstraints=[
        {"type": "memberOf", "expression":
         "attribute:ecs.availability-zone in [us-east-1a, us-east-1b] and attribute:stack == prod"}])
    assert set(placed_on(ecs, c, out, arns)) == {"i1", "i2"}
    out = ecs.run_task(cluster=c, taskDefinition=td, launchType="EC2", count=2,
                       placementConstraints=[{"type": "memberOf",
                                              "expression": "attribute:ecs.instance-type =~ t3.*"},
                                             {"type": "memberOf",
                                              "expression": "not(attribute:stack == dev)"}])
    assert set(placed_on(ecs, c, out, arns)) <= {"i1", "i4"}


def test_nothing_selected_is_a_memberof_failure(ecs, fleet, name):
    c, arns = fleet
    out = ecs.run_task(cluster=c, taskDefinition=family(ecs, name), launchType="EC2",
                       placementConstraints=[{"type": "memberOf",
                                              "expression": "attribute:stack == staging"}])
    assert out["tasks"] == []
    # One failure per instance, each naming it, as ECS reports them.
    assert sorted(f["arn"] for f in out["failures"]) == sorted(arns.values())
    assert {f["reason"] for f in out["failures"]} == {"MemberOf placement constraint unsatisfied."}


def test_task_definition_constraints_apply(ecs, fleet, name):
    c, arns = fleet
    td = family(ecs, name, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1c"}])
    out = ecs.run_task(cluster=c, taskDefinition=td, launchType="EC2", count=3)
    assert placed_on(ecs, c, out, arns) == ["i4", "i4", "i4"]


def test_task_group_keeps_a_group_apart(ecs, fleet, name):
    """`task:group != G` with group G: one task per instance, counting the
    tasks placed earlier and those of the same call."""
    c, arns = fleet
    td = family(ecs, name)
    constraint = [{"type": "memberOf", "expression": "task:group != batch:x"}]
    first = ecs.run_task(cluster=c, taskDefinition=td, launchType="EC2", count=3, group="batch:x",
                         placementConstraints=constraint)
    on = placed_on(ecs, c, first, arns)
    assert len(set(on)) == 3
    second = ecs.run_task(cluster=c, taskDefinition=td, launchType="EC2", count=2,
                          group="batch:x", placementConstraints=constraint)
    assert len(second["tasks"]) == 1
    assert {f["reason"] for f in second["failures"]} == {"MemberOf placement constraint unsatisfied."}
    assert second["tasks"][0]["containerInstanceArn"] not in \
        [t["containerInstanceArn"] for t in first["tasks"]]


def test_list_container_instances_filter(ecs, fleet):
    c, arns = fleet

    def listed(expr):
        pages = ecs.get_paginator("list_container_instances").paginate(
            cluster=c, filter=expr, PaginationConfig={"PageSize": 1})
        got = [a for p in pages for a in p["containerInstanceArns"]]
        by_arn = {v: k for k, v in arns.items()}
        return sorted(by_arn[a] for a in got)

    assert listed("attribute:stack == prod") == ["i1", "i2", "i4"]
    assert listed("attribute:ecs.availability-zone == us-east-1b || "
                  "attribute:ecs.instance-type == t3.large") == ["i2", "i3", "i4"]
    assert listed("attribute:stack exists and runningTasksCount == 0") == ["i1", "i2", "i3", "i4"]
    assert listed("agentConnected == true and registeredAt > 2020-01-01") == \
        ["i1", "i2", "i3", "i4"]
    assert listed("attribute:gpu exists") == []


@pytest.mark.parametrize("expr,where", [
    ("attribute:stack = prod", "at position 16"),
    ("colour == red", "unknown subject 'colour'"),
    ("(attribute:stack == prod", "expected ')'"),
    ("runningTasksCount =~ 1", "cannot be used with runningTasksCount"),
])
def test_bad_expressions_say_where(ecs, fleet, name, expr, where):
    c, _ = fleet
    with pytest.raises(ClientError) as e:
        ecs.list_container_instances(cluster=c, filter=expr)
    assert_error(e, "InvalidParameterException")
    assert where in error_message(e)
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster=c, taskDefinition=family(ecs, name), launchType="EC2",
                     placementConstraints=[{"type": "memberOf", "expression": expr}])
    assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        ecs.register_task_definition(
            family=name("cqlbad"), placementConstraints=[{"type": "memberOf", "expression": expr}],
            containerDefinitions=[{"name": "a", "image": "host", "memory": 32}])
    assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        ecs.create_service(cluster=c, serviceName=name("cqlsvc"),
                           taskDefinition=family(ecs, name), desiredCount=0,
                           placementConstraints=[{"type": "memberOf", "expression": expr}])
    assert_error(e, "InvalidParameterException")


def test_a_service_places_by_member_of(ecs, fleet, name):
    c, arns = fleet
    svc = name("cqlsvc")
    ecs.create_service(cluster=c, serviceName=svc, taskDefinition=family(ecs, name),
                       desiredCount=3, launchType="EC2", placementConstraints=[
                           {"type": "memberOf", "expression": "attribute:stack == dev"}])
    try:
        import time
        deadline = time.time() + 20
        while time.time() < deadline:
            arns_now = ecs.list_tasks(cluster=c, serviceName=svc)["taskArns"]
            if len(arns_now) == 3:
                break
            time.sleep(0.2)
        tasks = ecs.describe_tasks(cluster=c, tasks=arns_now)["tasks"]
        assert len(tasks) == 3
        assert {t["containerInstanceArn"] for t in tasks} == {arns["i3"]}
    finally:
        ecs.delete_service(cluster=c, service=svc, force=True)


def test_strategies_chain_up_to_five(ecs, fleet, name):
    c, arns = fleet
    td = family(ecs, name)
    five = [{"type": "spread", "field": "attribute:ecs.availability-zone"},
            {"type": "spread", "field": "attribute:stack"},
            {"type": "binpack", "field": "memory"},
            {"type": "spread", "field": "instanceId"},
            {"type": "random"}]
    out = ecs.run_task(cluster=c, taskDefinition=td, launchType="EC2", count=3,
                       placementStrategy=five)
    # Spread over the three zones first: one task in each.
    zones = {"i1": "a", "i2": "b", "i3": "b", "i4": "c"}
    assert sorted(zones[i] for i in placed_on(ecs, c, out, arns)) == ["a", "b", "c"]
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster=c, taskDefinition=td, launchType="EC2",
                     placementStrategy=five + [{"type": "random"}])
    assert_error(e, "InvalidParameterException")
    assert "Maximum number of strategies is 5." in error_message(e)
