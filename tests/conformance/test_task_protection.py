"""Task scale-in protection (UpdateTaskProtection, GetTaskProtection) on
a real berth server: what the answers look like (research notes §9), and
that a protected task survives its service's scale-in."""

import datetime

import pytest
from botocore.exceptions import ClientError

import harness
from errors import assert_error
from service_helpers import (NETWORK, cluster, create, describe, messages,  # noqa: F401
                             running_tasks, sleeper, task_id, tasks, wait_for, wait_stable)

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")


def minutes_from_now(ts):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (ts - now).total_seconds() / 60


def test_protection_answers(ecs, cluster, name):
    td = sleeper(ecs, name("prot"))
    svc = name("prot")
    create(ecs, cluster, svc, td, desired=2)
    wait_stable(ecs, cluster, svc)
    a, b = sorted(running_tasks(ecs, cluster, svc))

    # An id is enough; the answer names the full ARN. 120 minutes by default.
    out = ecs.update_task_protection(cluster=cluster, tasks=[task_id(a)], protectionEnabled=True)
    assert out["failures"] == []
    [p] = out["protectedTasks"]
    assert p["taskArn"] == a and p["protectionEnabled"] is True
    assert 119 < minutes_from_now(p["expirationDate"]) <= 120.1

    out = ecs.get_task_protection(cluster=cluster, tasks=[a, b])
    assert out["failures"] == []
    got = {t["taskArn"]: t for t in out["protectedTasks"]}
    assert got[a]["protectionEnabled"] is True and "expirationDate" in got[a]
    # Never protected: no expirationDate at all.
    assert got[b] == {"taskArn": b, "protectionEnabled": False}

    # Calling again resets the expiry.
    [p] = ecs.update_task_protection(cluster=cluster, tasks=[a], protectionEnabled=True,
                                     expiresInMinutes=5)["protectedTasks"]
    assert 4.9 < minutes_from_now(p["expirationDate"]) <= 5.1
    [p] = ecs.update_task_protection(cluster=cluster, tasks=[a], protectionEnabled=True,
                                     expiresInMinutes=2880)["protectedTasks"]
    assert 2879.9 < minutes_from_now(p["expirationDate"]) <= 2880.1

    # Turned off: no expirationDate.
    out = ecs.update_task_protection(cluster=cluster, tasks=[a], protectionEnabled=False)
    assert out["protectedTasks"] == [{"taskArn": a, "protectionEnabled": False}]
    assert ecs.get_task_protection(cluster=cluster, tasks=[a])["protectedTasks"] == \
        [{"taskArn": a, "protectionEnabled": False}]

    for bad in (0, 2881):
        with pytest.raises(ClientError) as e:
            ecs.update_task_protection(cluster=cluster, tasks=[a], protectionEnabled=True,
                                       expiresInMinutes=bad)
        assert_error(e, "InvalidParameterException")
    assert ecs.get_task_protection(cluster=cluster, tasks=[a])["protectedTasks"][0][
        "protectionEnabled"] is False

    # Without tasks: the cluster's service tasks.
    listed = ecs.get_task_protection(cluster=cluster)["protectedTasks"]
    assert sorted(t["taskArn"] for t in listed) == [a, b]


def test_standalone_and_missing_tasks_fail(ecs, cluster, name):
    td = sleeper(ecs, name("standalone"))
    run = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE",
                       networkConfiguration=NETWORK)
    arn = run["tasks"][0]["taskArn"]
    out = ecs.update_task_protection(cluster=cluster, tasks=[arn], protectionEnabled=True)
    assert out["protectedTasks"] == []
    [f] = out["failures"]
    assert (f["arn"], f["reason"]) == (arn, "TASK_NOT_VALID")
    out = ecs.get_task_protection(cluster=cluster, tasks=[arn])
    assert out["protectedTasks"] == []
    assert [(f["arn"], f["reason"]) for f in out["failures"]] == [(arn, "TASK_NOT_VALID")]
    ghost = arn.rsplit("/", 1)[0] + "/" + "0" * 32
    out = ecs.update_task_protection(cluster=cluster, tasks=[ghost], protectionEnabled=True)
    assert out["protectedTasks"] == [] and out["failures"][0]["arn"] == ghost
    assert out["failures"][0]["reason"] == "MISSING"
    with pytest.raises(ClientError) as e:
        ecs.update_task_protection(cluster=name("nocluster"), tasks=[arn],
                                   protectionEnabled=True)
    assert_error(e, "ClusterNotFoundException")


def test_a_protected_task_survives_a_scale_in(ecs, cluster, name):
    td = sleeper(ecs, name("keep"))
    svc = name("keep")
    create(ecs, cluster, svc, td, desired=3)
    wait_stable(ecs, cluster, svc)
    three = running_tasks(ecs, cluster, svc)
    # Protect the task a scale-in would otherwise be likeliest to pick, and
    # check all the candidates: whichever it is, it stays.
    keep = sorted(three)[1]
    ecs.update_task_protection(cluster=cluster, tasks=[keep], protectionEnabled=True)
    ecs.update_service(cluster=cluster, service=svc, desiredCount=1)
    s = wait_stable(ecs, cluster, svc)
    assert running_tasks(ecs, cluster, svc) == [keep]
    assert (s["desiredCount"], s["runningCount"]) == (1, 1)
    stopped = [a for a in three if a != keep]
    for t in tasks(ecs, cluster, stopped):
        assert t["desiredStatus"] == "STOPPED"
        assert t["stopCode"] == "ServiceSchedulerInitiated"


def test_more_protected_tasks_than_desired_hold_the_scale_in(ecs, cluster, name):
    td = sleeper(ecs, name("hold"))
    svc = name("hold")
    deployment = create(ecs, cluster, svc, td, desired=2)["deployments"][0]["id"]
    wait_stable(ecs, cluster, svc)
    both = sorted(running_tasks(ecs, cluster, svc))
    out = ecs.update_task_protection(cluster=cluster, tasks=both, protectionEnabled=True)
    assert sorted(p["taskArn"] for p in out["protectedTasks"]) == both
    ecs.update_service(cluster=cluster, service=svc, desiredCount=0)

    blocked = ("The number of protected tasks are more than the desired count of tasks.")
    s = wait_for("the blocked scale-in event",
                 lambda: (lambda s: s if any(blocked in m for m in messages(s)) else None)(
                     describe(ecs, cluster, svc)))
    [m] = [m for m in messages(s) if blocked in m]
    assert m.startswith(f"(service {svc}) was unable to reach steady state because task set "
                        f"({deployment}) was unable to scale in."), m
    assert sorted(running_tasks(ecs, cluster, svc)) == both
    assert s["runningCount"] == 2 and s["desiredCount"] == 0

    # Unprotected, they go.
    ecs.update_task_protection(cluster=cluster, tasks=both, protectionEnabled=False)
    s = wait_stable(ecs, cluster, svc)
    assert s["runningCount"] == 0
    assert running_tasks(ecs, cluster, svc) == []
