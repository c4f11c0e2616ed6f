"""Tags on the resources that live beyond clusters and task definitions:
tasks (RunTask's tags, TagResource by the task's ARN, also in the old
``task/ID`` form), container instances and task sets, as ECS documents
TagResource for them; another account's ARN is never found."""

import pytest
from botocore.exceptions import ClientError

import harness
from conftest import ACCOUNT_A, ACCOUNT_B
from errors import assert_error
from service_helpers import NETWORK, cluster, sleeper  # noqa: F401

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")


def tags_of(ecs, arn):
    return sorted(ecs.list_tags_for_resource(resourceArn=arn)["tags"], key=lambda t: t["key"])


def roundtrip(ecs, arn, initial):
    assert tags_of(ecs, arn) == initial
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "data"}])
    assert {"key": "team", "value": "data"} in tags_of(ecs, arn)
    ecs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert tags_of(ecs, arn) == initial


def test_task_tags(ecs, cluster, name):
    td = sleeper(ecs, name("tagtask"))
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE",
                       networkConfiguration=NETWORK, tags=[{"key": "a", "value": "1"}])
    task = out["tasks"][0]
    arn = task["taskArn"]
    # RunTask's answer shows the tags it was given.
    assert task["tags"] == [{"key": "a", "value": "1"}]
    try:
        roundtrip(ecs, arn, [{"key": "a", "value": "1"}])
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}])
        shown = ecs.describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])["tasks"][0]
        assert sorted(t["key"] for t in shown["tags"]) == ["a", "b"]
        # The old ARN format without the cluster names the same task.
        account, region = arn.split(":")[4], arn.split(":")[3]
        old = f"arn:aws:ecs:{region}:{account}:task/{arn.rsplit('/', 1)[1]}"
        assert [t["key"] for t in tags_of(ecs, old)] == ["a", "b"]
    finally:
        ecs.stop_task(cluster=cluster, task=arn)


def test_container_instance_tags(ecs, name):
    c = name("tagci")
    ecs.create_cluster(clusterName=c)
    inst = ecs.register_container_instance(
        cluster=c, tags=[{"key": "rack", "value": "r1"}],
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}])
    arn = inst["containerInstance"]["containerInstanceArn"]
    try:
        roundtrip(ecs, arn, [{"key": "rack", "value": "r1"}])
        shown = ecs.describe_container_instances(cluster=c, containerInstances=[arn],
                                                 include=["TAGS"])
        assert shown["containerInstances"][0]["tags"] == [{"key": "rack", "value": "r1"}]
    finally:
        ecs.deregister_container_instance(cluster=c, containerInstance=arn, force=True)


def test_task_set_tags(ecs, cluster, name):
    svc = name("tagts")
    ecs.create_service(cluster=cluster, serviceName=svc, desiredCount=0,
                       deploymentController={"type": "EXTERNAL"})
    ts = ecs.create_task_set(cluster=cluster, service=svc, taskDefinition=sleeper(ecs, svc),
                             launchType="FARGATE", networkConfiguration=NETWORK,
                             tags=[{"key": "color", "value": "blue"}])["taskSet"]
    roundtrip(ecs, ts["taskSetArn"], [{"key": "color", "value": "blue"}])
    shown = ecs.describe_task_sets(cluster=cluster, service=svc, taskSets=[ts["id"]],
                                   include=["TAGS"])["taskSets"][0]
    assert shown["tags"] == [{"key": "color", "value": "blue"}]


def test_unknown_task_and_instance(ecs, name, account_id, region):
    c = name("tagmiss")
    for arn in (f"arn:aws:ecs:{region}:{account_id}:task/{c}/0123456789abcdef0123456789abcdef",
                f"arn:aws:ecs:{region}:{account_id}:container-instance/{c}/"
                "0123456789abcdef0123456789abcdef",
                f"arn:aws:ecs:{region}:{account_id}:task-set/{c}/svc/ecs-svc/1"):
        with pytest.raises(ClientError) as e:
            ecs.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}])
        assert_error(e, "ResourceNotFoundException", "InvalidParameterException")
        with pytest.raises(ClientError) as e:
            ecs.list_tags_for_resource(resourceArn=arn)
        assert_error(e, "InvalidParameterException")


def test_another_accounts_instance_is_not_found(two_accounts, recorder, name):
    a = two_accounts.client(creds=ACCOUNT_A, recorder=recorder)
    b = two_accounts.client(creds=ACCOUNT_B, recorder=recorder)
    c = name("tagx")
    a.create_cluster(clusterName=c)
    inst = a.register_container_instance(
        cluster=c, totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                                   {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}])
    arn = inst["containerInstance"]["containerInstanceArn"]
    with pytest.raises(ClientError) as e:
        b.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    assert_error(e, "InvalidParameterException", "ResourceNotFoundException")
    with pytest.raises(ClientError):
        b.list_tags_for_resource(resourceArn=arn)
    assert a.list_tags_for_resource(resourceArn=arn)["tags"] == []
