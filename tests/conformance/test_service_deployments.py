"""Service deployments on a real berth server: a rolling update to a new
task definition revision (two deployments, then one), the service
deployment and revision records (ListServiceDeployments,
DescribeServiceDeployments, DescribeServiceRevisions), the deployment
circuit breaker with and without rollback, and StopServiceDeployment.

Texts and shapes follow ECS as the research notes record it
(/work/notes/ecs-services-behaviour.md §6-7)."""

import re

import pytest
from botocore.exceptions import ClientError

import harness
from errors import assert_error, error_code
from service_helpers import (DEPLOYMENT_ID, cannot_start, cluster, create, describe,  # noqa: F401
                             failing, messages, pids, running_tasks, sleeper, steady_event,
                             stubborn, tasks, wait_for, wait_stable, wait_steady)

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

SERVICE_DEPLOYMENT_ARN = re.compile(
    r"^arn:aws:ecs:[a-z0-9-]+:\d{12}:service-deployment/[^/]+/[^/]+/[A-Za-z0-9]{21}$")


def number(deployment_id):
    return deployment_id.removeprefix("ecs-svc/")


def records(ecs, cluster, svc, **kw):
    return ecs.list_service_deployments(cluster=cluster, service=svc, **kw)["serviceDeployments"]


def record_for(ecs, cluster, svc, deployment_id):
    """The ListServiceDeployments entry whose target revision is the
    deployment's (they share the number)."""
    for r in records(ecs, cluster, svc):
        if r["targetServiceRevisionArn"].endswith("/" + number(deployment_id)):
            return r
    return None


def deployment(ecs, arn):
    out = ecs.describe_service_deployments(serviceDeploymentArns=[arn])
    assert out["failures"] == []
    return out["serviceDeployments"][0]


def test_rolling_update_to_a_new_revision(ecs, cluster, name, tmp_path, account_id, region):
    fam = name("roll")
    ready, release = tmp_path / "ready", tmp_path / "release"
    # Revision 1 ignores SIGTERM until released, so the rollout stays in
    # progress (the old tasks are still stopping) until the test says.
    td1 = stubborn(ecs, fam, ready, release)
    td2 = sleeper(ecs, fam)
    svc = name("roll")
    first = create(ecs, cluster, svc, td1, desired=2)["deployments"][0]["id"]
    wait_stable(ecs, cluster, svc)
    wait_for("both tasks' traps", lambda: len(pids(ready)) == 2)
    old_tasks = running_tasks(ecs, cluster, svc)

    # The family alone names its latest ACTIVE revision.
    s = ecs.update_service(cluster=cluster, service=svc, taskDefinition=fam)["service"]
    assert s["taskDefinition"] == td2
    new, old = s["deployments"]
    assert DEPLOYMENT_ID.match(new["id"]) and new["id"] != first
    assert (new["status"], new["taskDefinition"], new["rolloutState"]) == \
        ("PRIMARY", td2, "IN_PROGRESS")
    assert new["rolloutStateReason"] == f"ECS deployment {new['id']} in progress."
    assert (old["id"], old["status"], old["taskDefinition"], old["rolloutState"]) == \
        (first, "ACTIVE", td1, "COMPLETED")
    assert old["rolloutStateReason"] == f"ECS deployment {first} completed."
    assert (old["desiredCount"], old["runningCount"]) == (2, 2)
    # Both revisions are current, the new one first.
    revs = s["currentServiceRevisions"]
    assert [r["arn"].rsplit("/", 1)[1] for r in revs] == [number(new["id"]), number(first)]
    assert revs[1]["runningTaskCount"] == 2

    # The new deployment's record is in progress while the old tasks stop.
    rec = record_for(ecs, cluster, svc, new["id"])
    assert rec is not None and rec["status"] == "IN_PROGRESS", rec
    # Once the new tasks run, the old ones are asked to stop; both
    # deployments stay listed until they have.
    wait_for("the old tasks to be stopping", lambda: all(
        t["desiredStatus"] == "STOPPED" for t in tasks(ecs, cluster, old_tasks)))
    s = describe(ecs, cluster, svc)
    assert [d["id"] for d in s["deployments"]] == [new["id"], first]
    assert s["deployments"][0]["runningCount"] == 2
    assert s["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert record_for(ecs, cluster, svc, new["id"])["status"] == "IN_PROGRESS"

    release.touch()
    s = wait_steady(ecs, cluster, svc)
    [d] = s["deployments"]
    assert (d["id"], d["status"], d["taskDefinition"], d["rolloutState"]) == \
        (new["id"], "PRIMARY", td2, "COMPLETED")
    assert d["rolloutStateReason"] == f"ECS deployment {new['id']} completed."
    assert [r["arn"].rsplit("/", 1)[1] for r in s["currentServiceRevisions"]] == \
        [number(new["id"])]
    now_running = running_tasks(ecs, cluster, svc)
    assert len(now_running) == 2 and not set(now_running) & set(old_tasks)
    for t in tasks(ecs, cluster, now_running):
        assert (t["taskDefinitionArn"], t["startedBy"]) == (td2, new["id"])
    for t in tasks(ecs, cluster, old_tasks):
        assert t["desiredStatus"] == "STOPPED"
        assert t["stopCode"] == "ServiceSchedulerInitiated"
        assert t["stoppedReason"] == f"Scaling activity initiated by (deployment {first})"
    msgs = messages(s)
    assert msgs[0] == steady_event(svc)
    assert msgs[1] == f"(service {svc}) (deployment {new['id']}) deployment completed."

    # The records: both SUCCESSFUL, newest first.
    listed = records(ecs, cluster, svc)
    assert [r["status"] for r in listed] == ["SUCCESSFUL", "SUCCESSFUL"]
    assert [r["targetServiceRevisionArn"].rsplit("/", 1)[1] for r in listed] == \
        [number(new["id"]), number(first)]
    base = f"arn:aws:ecs:{region}:{account_id}"
    for r in listed:
        assert SERVICE_DEPLOYMENT_ARN.match(r["serviceDeploymentArn"]), r
        assert r["serviceDeploymentArn"].startswith(f"{base}:service-deployment/{cluster}/{svc}/")
        assert r["serviceArn"] == s["serviceArn"] and r["clusterArn"] == s["clusterArn"]
        assert r["createdAt"] <= r["startedAt"] <= r["finishedAt"]
    assert s["currentServiceDeployment"] == listed[0]["serviceDeploymentArn"]
    assert [r["serviceDeploymentArn"] for r in records(ecs, cluster, svc,
                                                       status=["SUCCESSFUL"])] == \
        [r["serviceDeploymentArn"] for r in listed]
    assert records(ecs, cluster, svc, status=["IN_PROGRESS"]) == []
    page = ecs.list_service_deployments(cluster=cluster, service=svc, maxResults=1)
    assert len(page["serviceDeployments"]) == 1 and page["nextToken"]
    rest = ecs.list_service_deployments(cluster=cluster, service=svc, maxResults=1,
                                        nextToken=page["nextToken"])
    assert rest["serviceDeployments"] == listed[1:] and "nextToken" not in rest

    out = ecs.describe_service_deployments(
        serviceDeploymentArns=[r["serviceDeploymentArn"] for r in listed])
    assert out["failures"] == []
    latest, creation = out["serviceDeployments"]
    assert latest["status"] == creation["status"] == "SUCCESSFUL"
    assert creation["sourceServiceRevisions"] == []
    # Alarms that were never set show only their status.
    assert creation["alarms"] == {"status": "DISABLED"}
    assert creation["targetServiceRevision"]["arn"].endswith("/" + number(first))
    assert [r["arn"] for r in latest["sourceServiceRevisions"]] == \
        [creation["targetServiceRevision"]["arn"]]
    target = latest["targetServiceRevision"]
    assert (target["requestedTaskCount"], target["runningTaskCount"],
            target["pendingTaskCount"]) == (2, 2, 0)
    assert latest["deploymentConfiguration"]["maximumPercent"] == 200
    assert latest["serviceArn"] == s["serviceArn"]

    # The revisions, numbered like their deployments.
    rev_arns = [creation["targetServiceRevision"]["arn"], target["arn"]]
    out = ecs.describe_service_revisions(serviceRevisionArns=rev_arns)
    assert out["failures"] == []
    r1, r2 = out["serviceRevisions"]
    assert rev_arns[0] == f"{base}:service-revision/{cluster}/{svc}/{number(first)}"
    for r, td in ((r1, td1), (r2, td2)):
        assert r["taskDefinition"] == td
        assert r["serviceArn"] == s["serviceArn"] and r["clusterArn"] == s["clusterArn"]
        assert (r["launchType"], r["platformVersion"], r["platformFamily"]) == \
            ("FARGATE", "1.4.0", "Linux")
        assert r["containerImages"] == [{"containerName": "main", "image": "host"}]
        assert r["guardDutyEnabled"] is False
        assert r["serviceConnectConfiguration"] == {"enabled": False}
        assert r["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-berth"]
    ghost = rev_arns[0].rsplit("/", 1)[0] + "/1234567890123456789"
    out = ecs.describe_service_revisions(serviceRevisionArns=[ghost])
    assert out["serviceRevisions"] == []
    assert out["failures"] == [{"arn": ghost, "reason": "MISSING"}]


def test_scaling_and_settings_start_no_deployment_but_force_does(ecs, cluster, name):
    td = sleeper(ecs, name("nodeploy"))
    svc = name("nodeploy")
    first = create(ecs, cluster, svc, td, desired=1)["deployments"][0]["id"]
    wait_stable(ecs, cluster, svc)
    s = ecs.update_service(cluster=cluster, service=svc, desiredCount=2,
                           healthCheckGracePeriodSeconds=5, propagateTags="SERVICE",
                           deploymentConfiguration={"minimumHealthyPercent": 50})["service"]
    assert [d["id"] for d in s["deployments"]] == [first]
    assert s["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert s["deploymentConfiguration"]["maximumPercent"] == 200
    wait_stable(ecs, cluster, svc)
    assert len(records(ecs, cluster, svc)) == 1

    s = ecs.update_service(cluster=cluster, service=svc, forceNewDeployment=True)["service"]
    new = s["deployments"][0]
    assert new["id"] != first and new["taskDefinition"] == td
    assert [d["id"] for d in s["deployments"]] == [new["id"], first]
    s = wait_stable(ecs, cluster, svc)
    assert [d["id"] for d in s["deployments"]] == [new["id"]]
    for t in tasks(ecs, cluster, running_tasks(ecs, cluster, svc)):
        assert t["startedBy"] == new["id"]
    assert [r["status"] for r in records(ecs, cluster, svc)] == ["SUCCESSFUL"] * 2


def test_circuit_breaker_with_rollback(ecs, cluster, name):
    fam = name("cb")
    td1 = sleeper(ecs, fam)
    td2 = cannot_start(ecs, fam)
    svc = name("cb")
    good = create(ecs, cluster, svc, td1, desired=1, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})["deployments"][0]["id"]
    wait_stable(ecs, cluster, svc)
    [survivor] = running_tasks(ecs, cluster, svc)
    bad = ecs.update_service(cluster=cluster, service=svc,
                             taskDefinition=td2)["service"]["deployments"][0]["id"]
    failed_event = f"(service {svc}) (deployment {bad}) deployment failed: tasks failed to start."
    rolling_event = f"(service {svc}) rolling back to deployment {good}."
    s = wait_for("the circuit breaker", lambda: (
        lambda s: s if rolling_event in messages(s) else None)(describe(ecs, cluster, svc)))
    msgs = messages(s)
    assert failed_event in msgs
    # Newest first: the rollback is said after (above) the failure.
    assert msgs.index(rolling_event) < msgs.index(failed_event)
    s = wait_stable(ecs, cluster, svc)
    [d] = s["deployments"]
    # The rollback reuses the id of the deployment it goes back to.
    assert (d["id"], d["taskDefinition"], d["rolloutState"]) == (good, td1, "COMPLETED")
    assert d["rolloutStateReason"] == f"ECS deployment {good} completed."
    assert s["taskDefinition"] == td1
    assert running_tasks(ecs, cluster, svc) == [survivor], "the old task was never stopped"
    assert f"(service {svc}) (deployment {good}) deployment completed." in messages(s)

    failed = record_for(ecs, cluster, svc, bad)
    rec = wait_for("the failed deployment's record", lambda: (
        lambda r: r if r["status"] == "ROLLBACK_SUCCESSFUL" else None)(
            deployment(ecs, failed["serviceDeploymentArn"])))
    assert rec["targetServiceRevision"]["arn"].endswith("/" + number(bad))
    assert rec["rollback"]["serviceRevisionArn"].endswith("/" + number(good))
    assert rec["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert rec["deploymentCircuitBreaker"]["threshold"] == 3
    assert rec["deploymentCircuitBreaker"]["failureCount"] >= 3
    # No new deployment (nor revision) for a rollback.
    assert len(records(ecs, cluster, svc)) == 2
    stopped = ecs.list_tasks(cluster=cluster, serviceName=svc, desiredStatus="STOPPED")
    bad_tasks = [t for t in tasks(ecs, cluster, stopped["taskArns"]) if t["startedBy"] == bad]
    assert len(bad_tasks) >= 3
    for t in bad_tasks:
        assert t["taskDefinitionArn"] == td2 and t["stopCode"] == "TaskFailedToStart"


def test_circuit_breaker_shows_the_failed_deployment(ecs, cluster, name):
    """Without rollback the failed deployment stays PRIMARY, FAILED, and
    the old one keeps running."""
    fam = name("cbstay")
    td1 = sleeper(ecs, fam)
    td2 = cannot_start(ecs, fam)
    svc = name("cbstay")
    good = create(ecs, cluster, svc, td1, desired=1, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": False}})["deployments"][0]["id"]
    wait_stable(ecs, cluster, svc)
    [survivor] = running_tasks(ecs, cluster, svc)
    bad = ecs.update_service(cluster=cluster, service=svc,
                             taskDefinition=td2)["service"]["deployments"][0]["id"]

    def failed():
        s = describe(ecs, cluster, svc)
        return s if s["deployments"][0]["rolloutState"] == "FAILED" else None

    s = wait_for("the deployment to fail", failed)
    primary, old = s["deployments"]
    assert (primary["id"], primary["status"], primary["taskDefinition"]) == (bad, "PRIMARY", td2)
    assert primary["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert primary["failedTasks"] >= 3
    assert (old["id"], old["status"], old["runningCount"]) == (good, "ACTIVE", 1)
    assert running_tasks(ecs, cluster, svc) == [survivor]
    assert f"(service {svc}) (deployment {bad}) deployment failed: tasks failed to start." in \
        messages(s)
    assert not any("rolling back" in m for m in messages(s))
    rec = deployment(ecs, record_for(ecs, cluster, svc, bad)["serviceDeploymentArn"])
    assert rec["deploymentCircuitBreaker"]["status"] == "TRIGGERED"
    assert rec["status"] != "IN_PROGRESS"
    # A revision that works is deployed over the failed one.
    fixed = sleeper(ecs, fam)
    ecs.update_service(cluster=cluster, service=svc, taskDefinition=fixed)
    s = wait_stable(ecs, cluster, svc)
    assert s["deployments"][0]["taskDefinition"] == fixed


def test_circuit_breaker_catches_tasks_that_crash_just_after_starting(ecs, cluster, name,
                                                                       tmp_path):
    fam = name("crash")
    td1 = sleeper(ecs, fam)
    marks = tmp_path / "crashed"
    marks.mkdir()
    # Runs for a second (so it is seen RUNNING), then exits 1.
    td2 = failing(ecs, fam, f"sleep 1; touch {marks}/$$; exit 1")
    svc = name("crash")
    create(ecs, cluster, svc, td1, desired=1, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    wait_stable(ecs, cluster, svc)
    [survivor] = running_tasks(ecs, cluster, svc)
    bad = ecs.update_service(cluster=cluster, service=svc,
                             taskDefinition=td2)["service"]["deployments"][0]["id"]
    wait_for("the first crash", lambda: pids(marks))

    def crashed_task_stopped():
        s = describe(ecs, cluster, svc)
        d = next((d for d in s["deployments"] if d["id"] == bad), None)
        return s if d is None or d["failedTasks"] >= 1 or d["rolloutState"] != "IN_PROGRESS" \
            else None

    s = wait_for("the crash to be counted", crashed_task_stopped)
    [t] = tasks(ecs, cluster, [survivor])
    assert t["desiredStatus"] == "RUNNING", (t.get("stoppedReason"), messages(s))
    bad_d = next(d for d in s["deployments"] if d["id"] == bad)
    assert bad_d["rolloutState"] == "IN_PROGRESS", bad_d
    assert f"(service {svc}) (deployment {bad}) deployment completed." not in messages(s)


def test_stop_service_deployment_rolls_back(ecs, cluster, name):
    fam = name("stopdep")
    td1 = sleeper(ecs, fam)
    td2 = cannot_start(ecs, fam)
    svc = name("stopdep")
    good = create(ecs, cluster, svc, td1, desired=1)["deployments"][0]["id"]
    wait_stable(ecs, cluster, svc)
    [survivor] = running_tasks(ecs, cluster, svc)
    # Without a circuit breaker a deployment whose tasks keep failing stays
    # in progress.
    bad = ecs.update_service(cluster=cluster, service=svc,
                             taskDefinition=td2)["service"]["deployments"][0]["id"]
    rec = record_for(ecs, cluster, svc, bad)
    assert rec["status"] == "IN_PROGRESS"
    arn = rec["serviceDeploymentArn"]
    wait_for("a failed task of the new revision", lambda: describe(
        ecs, cluster, svc)["deployments"][0]["failedTasks"] >= 1)
    assert describe(ecs, cluster, svc)["deployments"][0]["rolloutState"] == "IN_PROGRESS"

    out = ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert out["serviceDeploymentArn"] == arn
    s = wait_stable(ecs, cluster, svc)
    [d] = s["deployments"]
    assert (d["id"], d["taskDefinition"]) == (good, td1)
    assert s["taskDefinition"] == td1
    assert running_tasks(ecs, cluster, svc) == [survivor]
    assert f"(service {svc}) rolling back to deployment {good}." in messages(s)
    rec = wait_for("the stopped deployment's record", lambda: (
        lambda r: r if r["status"] == "ROLLBACK_SUCCESSFUL" else None)(deployment(ecs, arn)))
    assert rec["rollback"]["serviceRevisionArn"].endswith("/" + number(good))

    # A finished deployment cannot be stopped; an unknown one does not exist.
    with pytest.raises(ClientError) as e:
        ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    assert_error(e, "ConflictException")
    ghost = arn[: -21] + "A" * 21
    with pytest.raises(ClientError) as e:
        ecs.stop_service_deployment(serviceDeploymentArn=ghost, stopType="ROLLBACK")
    assert_error(e, "ServiceDeploymentNotFoundException")
    out = ecs.describe_service_deployments(serviceDeploymentArns=[ghost])
    assert out["serviceDeployments"] == []
    assert out["failures"] == [{"arn": ghost, "reason": "MISSING"}]


def test_deployment_records_of_a_missing_service(ecs, cluster):
    with pytest.raises(ClientError) as e:
        ecs.list_service_deployments(cluster=cluster, service="ghost")
    assert error_code(e) == "ServiceNotFoundException"
