"""Task sets of a service with the EXTERNAL deployment controller, on a
real berth server: CreateTaskSet's defaults (scale 0 %, research notes
§8), computedDesiredCount = ⌈desired × scale / 100⌉, tasks that start
when a set is scaled, the primary task set, DeleteTaskSet, and the
refusal on a service ECS deploys itself."""

import re

import pytest
from botocore.exceptions import ClientError

import harness
from errors import assert_error, error_message
from service_helpers import (NETWORK, cluster, computed, create, describe,  # noqa: F401
                             running_tasks, sleeper, tasks, wait_for)

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

TASK_SET_ID = re.compile(r"^ecs-svc/\d{19}$")


def external(ecs, cluster, svc, desired):
    return ecs.create_service(cluster=cluster, serviceName=svc, desiredCount=desired,
                              deploymentController={"type": "EXTERNAL"})["service"]


def task_set(ecs, cluster, svc, td, **kw):
    return ecs.create_task_set(cluster=cluster, service=svc, taskDefinition=td,
                               launchType="FARGATE", networkConfiguration=NETWORK,
                               **kw)["taskSet"]


def describe_sets(ecs, cluster, svc, ids):
    out = ecs.describe_task_sets(cluster=cluster, service=svc, taskSets=ids)
    return out


def steady(ecs, cluster, svc, ts_id, running):
    def probe():
        [ts] = describe_sets(ecs, cluster, svc, [ts_id])["taskSets"]
        ok = ts["runningCount"] == running and ts["pendingCount"] == 0 and \
            ts["stabilityStatus"] == "STEADY_STATE"
        return ts if ok else None
    return wait_for(f"task set {ts_id} to run {running} tasks", probe)


def test_external_service_and_task_sets(ecs, cluster, name, account_id, region):
    fam = name("ext")
    td1 = sleeper(ecs, fam)
    td2 = sleeper(ecs, fam)
    svc = name("ext")
    s = external(ecs, cluster, svc, desired=3)
    assert s["deploymentController"] == {"type": "EXTERNAL"}
    assert s["taskSets"] == [] and s["deployments"] == []
    assert "taskDefinition" not in s

    ts = task_set(ecs, cluster, svc, td1, externalId="blue")
    assert TASK_SET_ID.match(ts["id"]), ts["id"]
    assert ts["taskSetArn"] == (f"arn:aws:ecs:{region}:{account_id}:task-set/{cluster}/{svc}/"
                                f"{ts['id']}")
    assert ts["serviceArn"] == s["serviceArn"] and ts["clusterArn"] == s["clusterArn"]
    assert ts["scale"] == {"value": 0.0, "unit": "PERCENT"}
    assert ts["computedDesiredCount"] == 0
    assert (ts["runningCount"], ts["pendingCount"]) == (0, 0)
    assert ts["status"] == "ACTIVE"
    assert ts["taskDefinition"] == td1
    assert ts["externalId"] == "blue"
    assert ts["launchType"] == "FARGATE"
    assert (ts["platformVersion"], ts["platformFamily"]) == ("1.4.0", "Linux")
    assert ts["loadBalancers"] == [] and ts["serviceRegistries"] == []
    assert ts["networkConfiguration"] == {"awsvpcConfiguration": {
        "subnets": ["subnet-berth"], "assignPublicIp": "DISABLED"}}
    assert "startedBy" not in ts
    # Just created: STABILIZING since its creation, whatever its size.
    assert ts["stabilityStatus"] == "STABILIZING"
    assert ts["stabilityStatusAt"] == ts["createdAt"]
    blue = ts["id"]

    # Scaled to 50 % of 3: ⌈1.5⌉ = 2 tasks.
    ts = ecs.update_task_set(cluster=cluster, service=svc, taskSet=blue,
                             scale={"value": 50.0, "unit": "PERCENT"})["taskSet"]
    assert ts["scale"] == {"value": 50.0, "unit": "PERCENT"}
    ts = steady(ecs, cluster, svc, blue, computed(3, 50))
    assert ts["computedDesiredCount"] == 2
    arns = running_tasks(ecs, cluster, svc)
    assert len(arns) == 2
    for t in tasks(ecs, cluster, arns):
        assert t["group"] == f"service:{svc}" and t["taskDefinitionArn"] == td1
    s = describe(ecs, cluster, svc)
    assert [x["id"] for x in s["taskSets"]] == [blue]
    assert s["runningCount"] == 2 and s["deployments"] == []

    # The desired count sizes every set: 50 % of 4 is 2, of 5 is 3.
    ecs.update_service(cluster=cluster, service=svc, desiredCount=5)
    ts = steady(ecs, cluster, svc, blue, 3)
    assert ts["computedDesiredCount"] == computed(5, 50) == 3

    # A second set at 100 %; it becomes the primary.
    green = task_set(ecs, cluster, svc, td2, scale={"value": 100.0, "unit": "PERCENT"})["id"]
    ts = steady(ecs, cluster, svc, green, 5)
    assert ts["computedDesiredCount"] == 5
    primary = ecs.update_service_primary_task_set(cluster=cluster, service=svc,
                                                  primaryTaskSet=green)["taskSet"]
    assert primary["id"] == green and primary["status"] == "PRIMARY"
    sets = {x["id"]: x for x in describe_sets(ecs, cluster, svc, [blue, green])["taskSets"]}
    assert (sets[green]["status"], sets[blue]["status"]) == ("PRIMARY", "ACTIVE")
    s = describe(ecs, cluster, svc)
    assert s["taskDefinition"] == td2

    # Deleting a scaled set needs force; it drains.
    with pytest.raises(ClientError) as e:
        ecs.delete_task_set(cluster=cluster, service=svc, taskSet=blue)
    assert_error(e, "InvalidParameterException")
    gone = ecs.delete_task_set(cluster=cluster, service=svc, taskSet=blue, force=True)["taskSet"]
    assert gone["id"] == blue and gone["status"] == "DRAINING"

    def blue_gone():
        arns = running_tasks(ecs, cluster, svc)
        return arns if len(arns) == 5 and all(
            t["taskDefinitionArn"] == td2 for t in tasks(ecs, cluster, arns)) else None

    wait_for("the drained set's tasks to stop", blue_gone)
    out = wait_for("the drained set to go", lambda: (
        lambda o: o if o["failures"] else None)(describe_sets(ecs, cluster, svc, [blue])))
    assert out["taskSets"] == []
    assert [(f["arn"], f["reason"]) for f in out["failures"]] == [(blue, "MISSING")]


def test_task_set_errors(ecs, cluster, name):
    td = sleeper(ecs, name("tserr"))
    ecs_svc = name("ecsctl")
    create(ecs, cluster, ecs_svc, td, desired=0)
    with pytest.raises(ClientError) as e:
        task_set(ecs, cluster, ecs_svc, td)
    assert_error(e, "InvalidParameterException")
    assert error_message(e) == ("Amazon ECS only supports task set management on services "
                                "configured to use external deployment controllers.")

    svc = name("ext")
    external(ecs, cluster, svc, desired=1)
    with pytest.raises(ClientError) as e:
        ecs.describe_task_sets(cluster=cluster, service=svc)
    assert error_message(e) == "TaskSets cannot be empty."
    with pytest.raises(ClientError) as e:
        ecs.update_task_set(cluster=cluster, service=svc, taskSet="ecs-svc/1234567890123456789",
                            scale={"value": 10.0, "unit": "PERCENT"})
    assert_error(e, "TaskSetNotFoundException")
    with pytest.raises(ClientError) as e:
        task_set(ecs, cluster, svc, td, scale={"value": 101.0, "unit": "PERCENT"})
    assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster=cluster, service=svc, taskDefinition=td)
    assert_error(e, "InvalidParameterException")
    # Sets at 0 % are deleted without force.
    ts = task_set(ecs, cluster, svc, td)
    assert ecs.delete_task_set(cluster=cluster, service=svc,
                               taskSet=ts["taskSetArn"])["taskSet"]["status"] == "DRAINING"
    ecs.delete_service(cluster=cluster, service=svc, force=True)
