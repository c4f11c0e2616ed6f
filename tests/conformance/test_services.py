"""ECS services on a real berth server, driven with boto3 (waiters and
paginators included) and the aws-cli: CreateService's answer and defaults,
the tasks a service keeps running (replaced when killed or stopped, scaled
up and down), DeleteService's DRAINING → INACTIVE, names and client
tokens, listing, tags, and the validation errors with ECS's codes and
texts (see /work/notes/ecs-services-behaviour.md, the research notes).

Every raw response is validated strictly against the botocore model."""

import os
import re
import signal

import pytest
from botocore.exceptions import ClientError, WaiterError

import harness
from errors import assert_error, error_code, error_message
from service_helpers import (DEPLOYMENT_ID, FAST, NETWORK, TASK_ID, check_events, cluster,  # noqa: F401
                             create, describe, messages, pid_sleeper, pids,
                             running_tasks, sh, sleeper, started_event, started_ids, stubborn,
                             steady_event, task_id, tasks, wait_for, wait_stable,
                             wait_steady)

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")


def ec2_family(ecs, family, network_mode="bridge"):
    out = ecs.register_task_definition(
        family=family, networkMode=network_mode, requiresCompatibilities=["EC2"],
        containerDefinitions=[sh("main", "sleep 300", memory=64)])
    return out["taskDefinition"]["taskDefinitionArn"]


# -- CreateService: the answer and ECS's defaults -----------------------------

def test_create_service_shape_and_defaults(ecs, cluster, name, account_id, region):
    td = sleeper(ecs, name("web"))
    svc_name = name("web")
    s = create(ecs, cluster, svc_name, td, desired=2)
    assert s["serviceArn"] == f"arn:aws:ecs:{region}:{account_id}:service/{cluster}/{svc_name}"
    assert s["serviceName"] == svc_name
    assert s["clusterArn"] == f"arn:aws:ecs:{region}:{account_id}:cluster/{cluster}"
    assert s["status"] == "ACTIVE"
    assert (s["desiredCount"], s["runningCount"], s["pendingCount"]) == (2, 0, 0)
    assert s["taskDefinition"] == td
    assert s["launchType"] == "FARGATE"
    assert s["platformVersion"] == "LATEST"
    assert s["platformFamily"] == "Linux"
    assert s["deploymentConfiguration"] == {
        "deploymentCircuitBreaker": {"enable": False, "rollback": False},
        "maximumPercent": 200, "minimumHealthyPercent": 100,
        "strategy": "ROLLING", "bakeTimeInMinutes": 0}
    assert s["deploymentController"] == {"type": "ECS"}
    assert s["roleArn"] == (f"arn:aws:iam::{account_id}:role/aws-service-role/"
                            "ecs.amazonaws.com/AWSServiceRoleForECS")
    assert s["schedulingStrategy"] == "REPLICA"
    assert s["propagateTags"] == "NONE"
    assert s["enableECSManagedTags"] is False
    assert s["enableExecuteCommand"] is False
    assert s["healthCheckGracePeriodSeconds"] == 0
    assert s["availabilityZoneRebalancing"] == "ENABLED"
    assert s["resourceManagementType"] == "CUSTOMER"
    for k in ("placementConstraints", "placementStrategy", "loadBalancers",
              "serviceRegistries", "events"):
        assert s[k] == [], k
    assert "tags" not in s
    assert "taskSets" not in s
    assert s["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-berth"]

    [d] = s["deployments"]
    assert DEPLOYMENT_ID.match(d["id"]), d["id"]
    assert d["status"] == "PRIMARY"
    assert d["taskDefinition"] == td
    assert d["launchType"] == "FARGATE"
    assert d["platformVersion"] == "1.4.0"
    assert d["platformFamily"] == "Linux"
    assert d["rolloutState"] == "IN_PROGRESS"
    assert d["rolloutStateReason"] == f"ECS deployment {d['id']} in progress."
    assert (d["runningCount"], d["pendingCount"], d["failedTasks"]) == (0, 0, 0)
    assert d["networkConfiguration"] == s["networkConfiguration"]
    assert d["createdAt"] == s["createdAt"]

    [rev] = s["currentServiceRevisions"]
    number = d["id"].removeprefix("ecs-svc/")
    assert rev["arn"] == (f"arn:aws:ecs:{region}:{account_id}:service-revision/"
                          f"{cluster}/{svc_name}/{number}")
    assert (rev["runningTaskCount"], rev["pendingTaskCount"]) == (0, 0)


def test_a_new_deployment_starts_at_desired_count_zero(ecs, cluster, name):
    td = sleeper(ecs, name("zero"))
    s = create(ecs, cluster, name("zero"), td, desired=2)
    assert s["deployments"][0]["desiredCount"] == 0
    assert s["currentServiceRevisions"][0]["requestedTaskCount"] == 0


def test_services_stable_waiter_events_and_the_service_tasks(ecs, cluster, name):
    td = sleeper(ecs, name("stable"))
    svc = name("stable")
    created = create(ecs, cluster, svc, td, desired=2)
    deployment = created["deployments"][0]["id"]
    s = wait_steady(ecs, cluster, svc)  # the services_stable waiter, then the event
    assert (s["desiredCount"], s["runningCount"], s["pendingCount"]) == (2, 2, 0)
    [d] = s["deployments"]
    assert d["id"] == deployment
    assert (d["desiredCount"], d["runningCount"], d["rolloutState"]) == (2, 2, "COMPLETED")
    assert d["rolloutStateReason"] == f"ECS deployment {deployment} completed."
    assert s["currentServiceRevisions"][0]["runningTaskCount"] == 2

    arns = running_tasks(ecs, cluster, svc)
    assert len(arns) == 2
    ids = sorted(task_id(a) for a in arns)
    for i in ids:
        assert TASK_ID.match(i), i
    for t in tasks(ecs, cluster, arns):
        assert t["group"] == f"service:{svc}"
        assert t["startedBy"] == deployment
        assert t["lastStatus"] == "RUNNING"
        assert t["launchType"] == "FARGATE"
        assert t["platformVersion"] == "1.4.0"
        assert t["taskDefinitionArn"] == td
    # ListTasks by service name, and by startedBy (the deployment id)
    assert sorted(ecs.list_tasks(cluster=cluster, startedBy=deployment)["taskArns"]) == sorted(arns)

    # Events, newest first, with ECS's texts.
    check_events(s)
    msgs = messages(s)
    assert msgs[0] == steady_event(svc)
    assert msgs[1] == f"(service {svc}) (deployment {deployment}) deployment completed."
    assert sorted(started_ids(svc, msgs[2])) == ids
    assert len(msgs) == 3, msgs


def test_aws_cli_waits_for_a_stable_service(ecs, cli, cluster, name):
    td = sleeper(ecs, name("cliwait"))
    svc = name("cliwait")
    create(ecs, cluster, svc, td, desired=1)
    cli.run("ecs", "wait", "services-stable", "--cluster", cluster, "--services", svc)
    s = describe(ecs, cluster, svc)
    assert s["runningCount"] == 1 and len(s["deployments"]) == 1


def test_tags_reach_the_tasks(ecs, cluster, name):
    td = sleeper(ecs, name("tagged"))
    svc = name("tagged")
    s = create(ecs, cluster, svc, td, desired=1, propagateTags="SERVICE",
               enableECSManagedTags=True,
               tags=[{"key": "team", "value": "infra"}, {"key": "env", "value": "dev"}])
    assert s["propagateTags"] == "SERVICE" and s["enableECSManagedTags"] is True
    assert sorted(s["tags"], key=lambda t: t["key"]) == [
        {"key": "env", "value": "dev"}, {"key": "team", "value": "infra"}]
    wait_stable(ecs, cluster, svc)
    [t] = tasks(ecs, cluster, running_tasks(ecs, cluster, svc), include=["TAGS"])
    assert {x["key"]: x["value"] for x in t["tags"]} == {
        "team": "infra", "env": "dev",
        "aws:ecs:serviceName": svc, "aws:ecs:clusterName": cluster}


def test_task_definition_tags_propagate_and_no_tags_without_propagation(ecs, cluster, name):
    fam = name("tdtags")
    ecs.register_task_definition(
        family=fam, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[sh("main", "sleep 300")],
        tags=[{"key": "from", "value": "td"}])
    a, b = name("tdprop"), name("noprop")
    create(ecs, cluster, a, fam, desired=1, propagateTags="TASK_DEFINITION",
           tags=[{"key": "svc", "value": "x"}])
    create(ecs, cluster, b, fam, desired=1, tags=[{"key": "svc", "value": "x"}])
    wait_stable(ecs, cluster, a, b)
    [ta] = tasks(ecs, cluster, running_tasks(ecs, cluster, a), include=["TAGS"])
    assert {x["key"]: x["value"] for x in ta["tags"]} == {"from": "td"}
    [tb] = tasks(ecs, cluster, running_tasks(ecs, cluster, b), include=["TAGS"])
    assert tb.get("tags", []) == []


def test_a_service_of_no_tasks_is_stable_at_once(ecs, cluster, name):
    td = sleeper(ecs, name("empty"))
    svc = name("empty")
    deployment = create(ecs, cluster, svc, td, desired=0)["deployments"][0]["id"]
    s = wait_steady(ecs, cluster, svc)
    [d] = s["deployments"]
    assert (d["id"], d["rolloutState"], d["runningCount"]) == (deployment, "COMPLETED", 0)
    assert messages(s) == [steady_event(svc),
                           f"(service {svc}) (deployment {deployment}) deployment completed."]


def test_a_cluster_with_services_cannot_be_deleted(ecs, name):
    c = name("busy")
    ecs.create_cluster(clusterName=c)
    td = sleeper(ecs, name("busy"))
    svc = name("busy")
    create(ecs, c, svc, td, desired=1)
    wait_stable(ecs, c, svc)
    cl = ecs.describe_clusters(clusters=[c])["clusters"][0]
    assert (cl["activeServicesCount"], cl["runningTasksCount"]) == (1, 1)
    with pytest.raises(ClientError) as e:
        ecs.delete_cluster(cluster=c)
    _expect(e, "ClusterContainsServicesException",
            "The Cluster cannot be deleted while Services are active.")
    ecs.delete_service(cluster=c, service=svc, force=True)
    ecs.get_waiter("services_inactive").wait(cluster=c, services=[svc], WaiterConfig=FAST)
    # INACTIVE services and stopped tasks do not count.
    cl = ecs.describe_clusters(clusters=[c])["clusters"][0]
    assert (cl["activeServicesCount"], cl["runningTasksCount"]) == (0, 0)
    assert ecs.delete_cluster(cluster=c)["cluster"]["status"] == "INACTIVE"


# -- keeping the desired count: replacements, scaling ---------------------------

def test_a_killed_task_is_replaced(ecs, cluster, name, tmp_path):
    piddir = tmp_path / "pids"
    td = pid_sleeper(ecs, name("kill"), piddir)
    svc = name("kill")
    create(ecs, cluster, svc, td, desired=1)
    wait_stable(ecs, cluster, svc)
    [first] = running_tasks(ecs, cluster, svc)
    [pid] = wait_for("the task's pid file", lambda: pids(piddir))
    os.kill(pid, signal.SIGKILL)

    def replaced():
        arns = running_tasks(ecs, cluster, svc)
        return arns if arns and first not in arns else None

    [second] = wait_for("a replacement task", replaced)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[first], WaiterConfig=FAST)
    [old] = tasks(ecs, cluster, [first])
    assert old["stopCode"] == "EssentialContainerExited"
    assert old["containers"][0]["exitCode"] == 137
    wait_for("the replacement's own pid", lambda: len(pids(piddir)) == 2)
    # Newest first: the replacement's start comes before (above) the first
    # start; the service says it is steady again.
    s = wait_steady(ecs, cluster, svc)
    assert s["runningCount"] == 1
    check_events(s)
    msgs = messages(s)
    starts = [m for m in msgs if started_ids(svc, m)]
    assert starts == [started_event(svc, [task_id(second)]),
                      started_event(svc, [task_id(first)])]
    assert msgs.index(starts[0]) < msgs.index(starts[1])


def test_a_stopped_task_is_replaced(ecs, cluster, name):
    td = sleeper(ecs, name("stopped"))
    svc = name("stopped")
    create(ecs, cluster, svc, td, desired=2)
    wait_stable(ecs, cluster, svc)
    before = running_tasks(ecs, cluster, svc)
    victim = before[0]
    ecs.stop_task(cluster=cluster, task=victim, reason="testing replacement")

    def replaced():
        arns = running_tasks(ecs, cluster, svc)
        return arns if len(arns) == 2 and victim not in arns else None

    after = wait_for("a replacement", replaced)
    assert before[1] in after
    [new] = [a for a in after if a not in before]
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[new], WaiterConfig=FAST)
    [v] = tasks(ecs, cluster, [victim])
    assert v["stopCode"] == "UserInitiated" and v["stoppedReason"] == "testing replacement"
    s = wait_stable(ecs, cluster, svc)
    assert started_event(svc, [task_id(new)]) in messages(s)


def test_scale_up_and_down(ecs, cluster, name):
    td = sleeper(ecs, name("scale"))
    svc = name("scale")
    deployment = create(ecs, cluster, svc, td, desired=1)["deployments"][0]["id"]
    wait_stable(ecs, cluster, svc)
    [first] = running_tasks(ecs, cluster, svc)

    up = ecs.update_service(cluster=cluster, service=svc, desiredCount=3)["service"]
    assert up["desiredCount"] == 3
    assert [d["id"] for d in up["deployments"]] == [deployment], "scaling starts no deployment"
    s = wait_steady(ecs, cluster, svc)
    assert (s["desiredCount"], s["runningCount"]) == (3, 3)
    three = running_tasks(ecs, cluster, svc)
    assert len(three) == 3 and first in three
    newer = sorted(task_id(a) for a in three if a != first)
    # The newest "has started" event names the two new tasks (the first
    # deployment's "deployment completed" may come between, once its task
    # has run the settle time).
    latest_start = next(ids for m in messages(s) if (ids := started_ids(svc, m)) is not None)
    assert sorted(latest_start) == newer, messages(s)

    down = ecs.update_service(cluster=cluster, service=svc, desiredCount=1)["service"]
    assert down["desiredCount"] == 1
    s = wait_steady(ecs, cluster, svc)
    assert (s["desiredCount"], s["runningCount"]) == (1, 1)
    left = running_tasks(ecs, cluster, svc)
    assert len(left) == 1
    stopped = [a for a in three if a not in left]
    assert len(stopped) == 2
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=stopped, WaiterConfig=FAST)
    for t in tasks(ecs, cluster, stopped):
        assert t["stopCode"] == "ServiceSchedulerInitiated"
        assert t["stoppedReason"] == f"Scaling activity initiated by (deployment {deployment})"
    stop_events = [m for m in messages(s) if "has stopped" in m]
    [m] = stop_events
    got = re.fullmatch(rf"\(service {svc}\) has stopped 2 running tasks: "
                       r"\(task ([0-9a-f]{32})\) \(task ([0-9a-f]{32})\)\.", m)
    assert got, m
    assert sorted(got.groups()) == sorted(task_id(a) for a in stopped)
    check_events(s)


# -- DeleteService: DRAINING, INACTIVE, names -----------------------------------

def test_delete_service_drains_then_goes_inactive(ecs, cluster, name, tmp_path):
    ready, release = tmp_path / "ready", tmp_path / "release"
    td = stubborn(ecs, name("drain"), ready, release)
    svc = name("drain")
    created = create(ecs, cluster, svc, td, desired=1)
    wait_stable(ecs, cluster, svc)
    wait_for("the trap", lambda: pids(ready))

    with pytest.raises(ClientError) as e:
        ecs.delete_service(cluster=cluster, service=svc)
    assert error_code(e) == "InvalidParameterException"
    assert error_message(e) == "The service cannot be stopped while it is scaled above 0."

    gone = ecs.delete_service(cluster=cluster, service=svc, force=True)["service"]
    assert gone["status"] == "DRAINING"
    assert gone["desiredCount"] == 0
    assert gone["serviceArn"] == created["serviceArn"]
    # The task ignores SIGTERM until released: the service stays DRAINING.
    assert svc not in " ".join(ecs.list_services(cluster=cluster)["serviceArns"])
    again = ecs.delete_service(cluster=cluster, service=svc, force=True)["service"]
    assert again["status"] == "DRAINING"
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster=cluster, service=svc, desiredCount=1)
    assert_error(e, "ServiceNotActiveException")
    assert error_message(e) == "Service was not ACTIVE."
    with pytest.raises(ClientError) as e:
        create(ecs, cluster, svc, td, desired=1)
    assert error_code(e) == "InvalidParameterException"
    assert error_message(e) == "Unable to Start a service that is still Draining."
    assert describe(ecs, cluster, svc)["status"] == "DRAINING"
    # services-stable gives up at once on a DRAINING service.
    with pytest.raises(WaiterError) as w:
        ecs.get_waiter("services_stable").wait(cluster=cluster, services=[svc],
                                               WaiterConfig=FAST)
    assert "terminal failure state" in str(w.value) and "DRAINING" in str(w.value)
    # The reconciler asks the task to stop (it ignores SIGTERM meanwhile).
    wait_for("the task asked to stop", lambda: ecs.list_tasks(
        cluster=cluster, serviceName=svc, desiredStatus="STOPPED")["taskArns"])

    release.touch()
    ecs.get_waiter("services_inactive").wait(cluster=cluster, services=[svc],
                                             WaiterConfig=FAST)
    s = describe(ecs, cluster, svc)
    assert s["status"] == "INACTIVE"
    assert (s["desiredCount"], s["runningCount"], s["pendingCount"]) == (0, 0, 0)
    assert running_tasks(ecs, cluster, svc) == []
    # INACTIVE: still described, never listed; deleting again answers it.
    assert ecs.list_services(cluster=cluster)["serviceArns"] == []
    assert ecs.delete_service(cluster=cluster, service=svc)["service"]["status"] == "INACTIVE"
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster=cluster, service=svc, desiredCount=1)
    assert_error(e, "ServiceNotActiveException")
    assert error_message(e) == "Service was not ACTIVE."


def test_an_inactive_name_can_be_reused(ecs, cluster, name):
    td = sleeper(ecs, name("reuse"))
    svc = name("reuse")
    first = create(ecs, cluster, svc, td, desired=0)
    ecs.delete_service(cluster=cluster, service=svc)
    ecs.get_waiter("services_inactive").wait(cluster=cluster, services=[svc],
                                             WaiterConfig=FAST)
    second = create(ecs, cluster, svc, td, desired=1)
    assert second["status"] == "ACTIVE"
    assert second["serviceArn"] == first["serviceArn"]
    assert second["deployments"][0]["id"] != first["deployments"][0]["id"]
    assert second["events"] == []
    s = wait_stable(ecs, cluster, svc)
    assert s["runningCount"] == 1
    assert ecs.list_services(cluster=cluster)["serviceArns"] == [first["serviceArn"]]


def test_names_and_client_tokens(ecs, cluster, name):
    td = sleeper(ecs, name("idem"))
    svc = name("idem")
    first = create(ecs, cluster, svc, td, desired=0, clientToken="token-1")
    again = create(ecs, cluster, svc, td, desired=0, clientToken="token-1")
    assert again["serviceArn"] == first["serviceArn"]
    assert again["deployments"][0]["id"] == first["deployments"][0]["id"]
    assert again["createdAt"] == first["createdAt"]
    for token in (None, "token-2"):
        with pytest.raises(ClientError) as e:
            create(ecs, cluster, svc, td, desired=0, clientToken=token)
        assert error_code(e) == "InvalidParameterException"
        assert error_message(e) == "Creation of service was not idempotent."
    assert ecs.list_services(cluster=cluster)["serviceArns"] == [first["serviceArn"]]
    # The same name in another cluster is another service.
    other = name("other")
    ecs.create_cluster(clusterName=other)
    try:
        elsewhere = create(ecs, other, svc, td, desired=0)
        assert elsewhere["serviceArn"].endswith(f":service/{other}/{svc}")
    finally:
        ecs.delete_service(cluster=other, service=svc)


# -- DAEMON ---------------------------------------------------------------------

def test_daemon_service_on_an_empty_cluster(ecs, cluster, name):
    td = ec2_family(ecs, name("daemon"))
    svc = name("daemon")
    s = ecs.create_service(cluster=cluster, serviceName=svc, taskDefinition=td,
                           launchType="EC2", schedulingStrategy="DAEMON")["service"]
    assert s["schedulingStrategy"] == "DAEMON"
    assert s["launchType"] == "EC2"
    assert "platformVersion" not in s and "platformFamily" not in s
    assert s["desiredCount"] == 0
    cfg = s["deploymentConfiguration"]
    assert (cfg["maximumPercent"], cfg["minimumHealthyPercent"]) == (100, 0)
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster=cluster, service=svc, desiredCount=1)
    assert error_code(e) == "InvalidParameterException"
    assert error_message(e) == (
        "The daemon scheduling strategy does not support a desired count for services. "
        "Remove the desired count value and try again")
    with pytest.raises(ClientError) as e:
        ecs.update_service(cluster=cluster, service=svc,
                           placementStrategy=[{"type": "spread", "field": "instanceId"}])
    assert error_message(e) == (
        "The daemon scheduling strategy does not support placement strategies. "
        "Remove the placement strategy and try again")
    daemons = ecs.list_services(cluster=cluster, schedulingStrategy="DAEMON")["serviceArns"]
    assert daemons == [s["serviceArn"]]
    assert ecs.list_services(cluster=cluster, schedulingStrategy="REPLICA")["serviceArns"] == []
    # A DAEMON service is deleted without force.
    assert ecs.delete_service(cluster=cluster, service=svc)["service"]["status"] in (
        "DRAINING", "INACTIVE")
    ecs.get_waiter("services_inactive").wait(cluster=cluster, services=[svc],
                                             WaiterConfig=FAST)


# -- validation -----------------------------------------------------------------

@pytest.fixture
def fams(ecs, name):
    """(awsvpc FARGATE revision, bridge EC2 revision)."""
    return sleeper(ecs, name("v-vpc")), ec2_family(ecs, name("v-bridge"))


def _expect(excinfo, code, message=None, *, prefix=None, mentions=None):
    assert_error(excinfo, code)
    msg = error_message(excinfo)
    if message is not None:
        assert msg == message, msg
    if prefix is not None:
        assert msg.startswith(prefix), msg
    if mentions is not None:
        assert mentions.lower() in msg.lower(), msg


def test_create_service_in_a_missing_cluster(ecs, fams, name):
    vpc, _ = fams
    with pytest.raises(ClientError) as e:
        create(ecs, name("nocluster"), name("s"), vpc)
    _expect(e, "ClusterNotFoundException", "Cluster not found.")
    for call in (lambda: ecs.describe_services(cluster=name("nocluster"), services=["x"]),
                 lambda: ecs.list_services(cluster=name("nocluster"))):
        with pytest.raises(ClientError) as e:
            call()
        _expect(e, "ClusterNotFoundException", "Cluster not found.")


def test_missing_service(ecs, cluster, name):
    for call in (lambda: ecs.update_service(cluster=cluster, service="nope", desiredCount=1),
                 lambda: ecs.delete_service(cluster=cluster, service="nope"),
                 lambda: ecs.list_service_deployments(cluster=cluster, service="nope")):
        with pytest.raises(ClientError) as e:
            call()
        _expect(e, "ServiceNotFoundException", "Service not found.")


CASES = {
    # id: (overrides of a valid FARGATE awsvpc request, code, exact message or None, mentions)
    "unknown-platform": (dict(platformVersion="9.9.9"), "PlatformUnknownException", None, None),
    "platform-with-ec2": (dict(launchType="EC2", td="bridge", networkConfiguration=None,
                               platformVersion="1.4.0"),
                          "InvalidParameterException",
                          "The platform version must be null when specifying an EC2 launch type.",
                          None),
    "daemon-desired-count": (dict(launchType="EC2", td="bridge", networkConfiguration=None,
                                  schedulingStrategy="DAEMON", desiredCount=0),
                             "InvalidParameterException",
                             "The daemon scheduling strategy does not support a desired count "
                             "for services. Remove the desired count value and try again", None),
    "daemon-placement-strategy": (dict(launchType="EC2", td="bridge", networkConfiguration=None,
                                       schedulingStrategy="DAEMON", desiredCount=None,
                                       placementStrategy=[{"type": "spread",
                                                           "field": "instanceId"}]),
                                  "InvalidParameterException",
                                  "The daemon scheduling strategy does not support placement "
                                  "strategies. Remove the placement strategy and try again", None),
    "daemon-fargate": (dict(schedulingStrategy="DAEMON", desiredCount=None),
                       "InvalidParameterException", None, "daemon"),
    "daemon-max-percent": (dict(launchType="EC2", td="bridge", networkConfiguration=None,
                                schedulingStrategy="DAEMON", desiredCount=None,
                                deploymentConfiguration={"maximumPercent": 200}),
                           "InvalidParameterException",
                           "The daemon scheduling strategy does not support values above 100 "
                           "for maximumPercent on a deployment configuration. Change the "
                           "maximumPercent value to 100, and try again", None),
    "launch-type-and-capacity-providers": (
        dict(capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}]),
        "InvalidParameterException",
        "Specifying both a launch type and capacity provider strategy is not supported. "
        "Remove one and try again.", None),
    "network-configuration-on-bridge": (
        dict(launchType="EC2", td="bridge"), "InvalidParameterException",
        "Network Configuration is not valid for the given networkMode of this task definition.",
        None),
    "awsvpc-without-network-configuration": (
        dict(networkConfiguration=None), "InvalidParameterException", None,
        "Network Configuration must be provided when networkMode 'awsvpc' is specified"),
    "minimum-healthy-above-100": (
        dict(deploymentConfiguration={"minimumHealthyPercent": 101}),
        "InvalidParameterException", "minimumHealthyPercent must be at most 100", None),
    "maximum-below-100": (
        dict(deploymentConfiguration={"maximumPercent": 99}),
        "InvalidParameterException", "maximumPercent must be at least 100", None),
    "both-100": (
        dict(deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 100}),
        "InvalidParameterException", None,
        "Both maximumPercent and minimumHealthyPercent cannot be 100 as this will block"),
    "alarms-enabled": (
        dict(deploymentConfiguration={"alarms": {"alarmNames": ["a"], "enable": True,
                                                 "rollback": True}}),
        "InvalidParameterException", None, "alarm"),
    "lambda-lifecycle-hook": (
        dict(deploymentConfiguration={
            "strategy": "BLUE_GREEN",
            "lifecycleHooks": [{"hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
                                "roleArn": "arn:aws:iam::123456789012:role/r",
                                "lifecycleStages": ["PRE_SCALE_UP"]}]}),
        "InvalidParameterException", None, "lambda"),
    "code-deploy-controller": (
        dict(deploymentController={"type": "CODE_DEPLOY"}),
        "InvalidParameterException", None, "CODE_DEPLOY"),
    "external-controller-with-task-definition": (
        dict(deploymentController={"type": "EXTERNAL"}), "InvalidParameterException",
        "TaskDefinition must be blank.", None),
    "missing-desired-count": (dict(desiredCount=None), "InvalidParameterException",
                              "DesiredCount is missing", None),
    "unknown-task-definition": (dict(td="does-not-exist:1"), "ClientException",
                                "TaskDefinition not found.", None),
    "fargate-placement-strategy": (
        dict(placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}]),
        "InvalidParameterException",
        "Placement strategies are not supported with FARGATE launch type.", None),
    "bad-name": (dict(serviceName="no spaces please"), "InvalidParameterException", None,
                 "ServiceName"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_create_service_validation(ecs, cluster, fams, name, case):
    overrides, code, message, mentions = CASES[case]
    vpc, bridge = fams
    args = {"cluster": cluster, "serviceName": name("bad"), "taskDefinition": vpc,
            "desiredCount": 1, "launchType": "FARGATE", "networkConfiguration": NETWORK}
    overrides = dict(overrides)
    td = overrides.pop("td", None)
    if td == "bridge":
        args["taskDefinition"] = bridge
    elif td is not None:
        args["taskDefinition"] = td
    args.update(overrides)
    args = {k: v for k, v in args.items() if v is not None}
    with pytest.raises(ClientError) as e:
        ecs.create_service(**args)
    _expect(e, code, message, mentions=mentions)
    assert ecs.list_services(cluster=cluster)["serviceArns"] == []


def test_update_service_validation(ecs, cluster, fams, name):
    vpc, bridge = fams
    svc = name("upd")
    create(ecs, cluster, svc, vpc, desired=0)
    for kw, code, message in [
        (dict(deploymentConfiguration={"minimumHealthyPercent": 101}),
         "InvalidParameterException", "minimumHealthyPercent must be at most 100"),
        (dict(deploymentConfiguration={"maximumPercent": 99}),
         "InvalidParameterException", "maximumPercent must be at least 100"),
        (dict(taskDefinition=bridge), "ClientException",
         "Task definition does not support launch_type FARGATE."),
        (dict(platformVersion="0.0.1"), "PlatformUnknownException", None),
    ]:
        with pytest.raises(ClientError) as e:
            ecs.update_service(cluster=cluster, service=svc, **kw)
        _expect(e, code, message)
    # Nothing of the refused updates stuck.
    s = describe(ecs, cluster, svc)
    assert s["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    assert s["taskDefinition"] == vpc and len(s["deployments"]) == 1


def test_describe_services_limits_and_missing(ecs, cluster, name, account_id, region):
    td = sleeper(ecs, name("desc"))
    svc = name("desc")
    s = create(ecs, cluster, svc, td, desired=0)
    with pytest.raises(ClientError) as e:
        ecs.describe_services(cluster=cluster, services=[])
    _expect(e, "InvalidParameterException", "Services cannot be empty.")
    with pytest.raises(ClientError) as e:
        ecs.describe_services(cluster=cluster, services=[f"s{i}" for i in range(11)])
    _expect(e, "InvalidParameterException", "service names can have at most 10 items.")
    missing_arn = f"arn:aws:ecs:{region}:{account_id}:service/{cluster}/ghost-arn"
    out = ecs.describe_services(cluster=cluster, services=[svc, "ghost", missing_arn,
                                                           s["serviceArn"]])
    assert [x["serviceArn"] for x in out["services"]] == [s["serviceArn"]] * 2
    assert out["failures"] == [
        {"arn": f"arn:aws:ecs:{region}:{account_id}:service/ghost", "reason": "MISSING"},
        {"arn": missing_arn, "reason": "MISSING"}]
    # Ten is allowed.
    out = ecs.describe_services(cluster=cluster, services=[svc] + [f"g{i}" for i in range(9)])
    assert len(out["services"]) == 1 and len(out["failures"]) == 9
    # The waiter fails at once on a MISSING service.
    with pytest.raises(Exception) as w:
        ecs.get_waiter("services_stable").wait(cluster=cluster, services=["ghost"],
                                               WaiterConfig=FAST)
    assert "MISSING" in str(w.value) or "failure" in str(w.value).lower()


# -- listing ----------------------------------------------------------------------

def test_list_services_pages_and_filters(ecs, cluster, name):
    td = sleeper(ecs, name("list"))
    ec2 = ec2_family(ecs, name("list-ec2"))
    fargate_arns = {create(ecs, cluster, name("ls"), td, desired=0)["serviceArn"]
                    for _ in range(5)}
    ec2_arn = ecs.create_service(cluster=cluster, serviceName=name("ls-ec2"), taskDefinition=ec2,
                                 desiredCount=0, launchType="EC2")["service"]["serviceArn"]
    everything = fargate_arns | {ec2_arn}

    pages = list(ecs.get_paginator("list_services").paginate(
        cluster=cluster, PaginationConfig={"PageSize": 2}))
    assert [len(p["serviceArns"]) for p in pages] == [2, 2, 2]
    listed = [a for p in pages for a in p["serviceArns"]]
    assert len(listed) == len(set(listed)) and set(listed) == everything
    assert "nextToken" not in pages[-1]

    first = ecs.list_services(cluster=cluster, maxResults=4)
    assert len(first["serviceArns"]) == 4 and first["nextToken"]
    rest = ecs.list_services(cluster=cluster, maxResults=4, nextToken=first["nextToken"])
    assert len(rest["serviceArns"]) == 2 and "nextToken" not in rest
    assert set(first["serviceArns"]) | set(rest["serviceArns"]) == everything

    # The default page size is 10.
    assert set(ecs.list_services(cluster=cluster)["serviceArns"]) == everything
    for bad in (0, 101):
        with pytest.raises(ClientError) as e:
            ecs.list_services(cluster=cluster, maxResults=bad)
        assert_error(e, "InvalidParameterException")

    assert set(ecs.list_services(cluster=cluster, launchType="FARGATE")["serviceArns"]) == \
        fargate_arns
    assert ecs.list_services(cluster=cluster, launchType="EC2")["serviceArns"] == [ec2_arn]
    assert set(ecs.list_services(cluster=cluster, schedulingStrategy="REPLICA")["serviceArns"]) \
        == everything
    assert ecs.list_services(cluster=cluster, schedulingStrategy="DAEMON")["serviceArns"] == []
    assert set(ecs.list_services(cluster=cluster, resourceManagementType="CUSTOMER")[
        "serviceArns"]) == everything
    assert ecs.list_services(cluster=cluster, resourceManagementType="ECS")["serviceArns"] == []
    # A token is bound to its filters.
    with pytest.raises(ClientError) as e:
        ecs.list_services(cluster=cluster, maxResults=4, nextToken=first["nextToken"],
                          launchType="FARGATE")
    assert_error(e, "InvalidParameterException")


def test_list_services_by_namespace(ecs, cluster, name):
    td = sleeper(ecs, name("ns"))
    ns = name("ns")
    other = name("ns-other")
    ecs.create_cluster(clusterName=other)
    arns = []
    try:
        for c in (cluster, other):
            s = create(ecs, c, name("nssvc"), td, desired=0,
                       serviceConnectConfiguration={"enabled": True, "namespace": ns})
            arns.append(s["serviceArn"])
        create(ecs, cluster, name("plain"), td, desired=0)
        pages = list(ecs.get_paginator("list_services_by_namespace").paginate(
            namespace=ns, PaginationConfig={"PageSize": 1}))
        listed = [a for p in pages for a in p["serviceArns"]]
        assert sorted(listed) == sorted(arns)
        ns_arn = f"arn:aws:servicediscovery:us-east-1:123456789012:namespace/{ns}"
        assert sorted(ecs.list_services_by_namespace(namespace=ns_arn)["serviceArns"]) == \
            sorted(arns)
    finally:
        for a in arns[1:]:
            ecs.delete_service(cluster=other, service=a)


# -- tags on services -------------------------------------------------------------

def test_service_tags(ecs, cluster, name):
    td = sleeper(ecs, name("stags"))
    svc = name("stags")
    s = create(ecs, cluster, svc, td, desired=0, tags=[{"key": "a", "value": "1"}])
    arn = s["serviceArn"]
    assert s["tags"] == [{"key": "a", "value": "1"}]
    assert "tags" not in describe(ecs, cluster, svc)
    assert describe(ecs, cluster, svc, include=["TAGS"])["tags"] == [{"key": "a", "value": "1"}]
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "a", "value": "1"}]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "2"}, {"key": "b", "value": ""}])
    got = sorted(ecs.list_tags_for_resource(resourceArn=arn)["tags"], key=lambda t: t["key"])
    assert got == [{"key": "a", "value": "2"}, {"key": "b", "value": ""}]
    ecs.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "b", "value": ""}]
    assert describe(ecs, cluster, svc, include=["TAGS"])["tags"] == [{"key": "b", "value": ""}]
    with pytest.raises(ClientError) as e:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "aws:mine", "value": "x"}])
    assert_error(e, "InvalidParameterException")
    ghost = arn.rsplit("/", 1)[0] + "/" + name("ghost")
    with pytest.raises(ClientError) as e:
        ecs.tag_resource(resourceArn=ghost, tags=[{"key": "k", "value": "v"}])
    assert_error(e, "ResourceNotFoundException", "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        ecs.list_tags_for_resource(resourceArn=ghost)
    assert_error(e, "InvalidParameterException", "ResourceNotFoundException")


# -- the aws-cli, end to end --------------------------------------------------------

def test_service_lifecycle_through_the_aws_cli(ecs, cli, cluster, name):
    td = sleeper(ecs, name("cli"))
    svc = name("cli")
    out = cli("ecs", "create-service", "--cluster", cluster, "--service-name", svc,
              "--task-definition", td, "--desired-count", "1", "--launch-type", "FARGATE",
              "--network-configuration", "awsvpcConfiguration={subnets=[subnet-berth]}",
              "--tags", "key=via,value=cli", "--propagate-tags", "SERVICE")
    assert out["service"]["status"] == "ACTIVE"
    assert out["service"]["tags"] == [{"key": "via", "value": "cli"}]
    cli.run("ecs", "wait", "services-stable", "--cluster", cluster, "--services", svc)
    out = cli("ecs", "update-service", "--cluster", cluster, "--service", svc,
              "--desired-count", "2")
    assert out["service"]["desiredCount"] == 2
    cli.run("ecs", "wait", "services-stable", "--cluster", cluster, "--services", svc)
    desc = cli("ecs", "describe-services", "--cluster", cluster, "--services", svc,
               "--include", "TAGS")
    s = desc["services"][0]
    assert (s["runningCount"], s["tags"]) == (2, [{"key": "via", "value": "cli"}])
    listed = cli("ecs", "list-tasks", "--cluster", cluster, "--service-name", svc)
    assert len(listed["taskArns"]) == 2
    code, stderr = cli.fails("ecs", "delete-service", "--cluster", cluster, "--service", svc)
    assert "The service cannot be stopped while it is scaled above 0." in stderr
    out = cli("ecs", "delete-service", "--cluster", cluster, "--service", svc, "--force")
    assert out["service"]["status"] == "DRAINING"
    cli.run("ecs", "wait", "services-inactive", "--cluster", cluster, "--services", svc)
    s = cli("ecs", "describe-services", "--cluster", cluster, "--services", svc)["services"][0]
    assert s["status"] == "INACTIVE"
    assert cli("ecs", "list-services", "--cluster", cluster)["serviceArns"] == []
