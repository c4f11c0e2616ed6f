"""Capacity providers as ECS has them: the API (create, update, describe
with FARGATE and FARGATE_SPOT always there, paging, tags, delete refused
while in use), strategies distributed exactly as ECS distributes them
(base first, then weights) over FARGATE, FARGATE_SPOT and pools of
`berth agent --capacity-provider` hosts, and injected spot interruptions
that a service replaces. Another account's providers are invisible."""

import os
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import harness

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-berth"]}}
FAST = {"Delay": 1, "MaxAttempts": 60}


def error(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def asg(n="pool"):
    return {"autoScalingGroupArn":
            f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:{n}:autoScalingGroupName/{n}"}


def sh(script, **extra):
    return {"name": "main", "image": "host", "entryPoint": ["/bin/sh", "-c"],
            "command": [script], **extra}


def both_family(ecs, family):
    """Runs on FARGATE and on EC2 instances alike."""
    ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE", "EC2"],
        cpu="256", memory="512", containerDefinitions=[sh("exec sleep 600")])
    return family


class PoolAgent:
    """A `berth agent` (process runtime) that joins a capacity provider."""

    def __init__(self, server, cluster, provider, data_dir: Path, creds=None):
        self.server, self.cluster, self.provider = server, cluster, provider
        self.data_dir, self.creds = data_dir, creds
        self.proc = None

    def start(self):
        env = dict(os.environ, **self.server.env(self.creds))
        self.log = self.data_dir.parent / f"{self.data_dir.name}.agent.log"
        self.proc = subprocess.Popen(
            [str(harness.berth_bin()), "agent", "--cluster", self.cluster,
             "--data-dir", str(self.data_dir), "--runtime", "process",
             "--capacity-provider", self.provider],
            env=env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def wait_for_instances(ecs, cluster, n):
    deadline = time.monotonic() + 30
    while True:
        arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
        if len(arns) >= n:
            return arns
        assert time.monotonic() < deadline, "agent did not register"
        time.sleep(0.2)


def spot_interrupt(server, cluster, task, creds=None):
    env = dict(os.environ, **server.env(creds))
    return subprocess.run(
        [str(harness.berth_bin()), "spot-interrupt", "--cluster", cluster, "--task", task],
        env=env, capture_output=True, text=True, timeout=30)


# -- the API -------------------------------------------------------------------

def test_create_describe_update_delete(ecs, name, account_id, region):
    p = name("pool")
    created = ecs.create_capacity_provider(
        name=p, autoScalingGroupProvider=asg(p), tags=[{"key": "team", "value": "a"}],
    )["capacityProvider"]
    assert created["capacityProviderArn"] == f"arn:aws:ecs:{region}:{account_id}:capacity-provider/{p}"
    assert created["status"] == "ACTIVE" and created["type"] == "EC2_AUTOSCALING"
    g = created["autoScalingGroupProvider"]
    assert g["autoScalingGroupArn"] == asg(p)["autoScalingGroupArn"]
    assert g["managedScaling"] == {"status": "DISABLED", "targetCapacity": 100,
                                   "minimumScalingStepSize": 1, "maximumScalingStepSize": 10000,
                                   "instanceWarmupPeriod": 300}
    assert g["managedTerminationProtection"] == "DISABLED" and g["managedDraining"] == "ENABLED"

    assert error(lambda: ecs.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p + "x")))[0] \
        == "ClientException"
    assert "already being used" in error(lambda: ecs.create_capacity_provider(
        name=p + "-b", autoScalingGroupProvider=asg(p)))[1]
    for bad in ("aws-x", "ECSpool", "fargate2", "a b", "x" * 256):
        assert error(lambda: ecs.create_capacity_provider(
            name=bad, autoScalingGroupProvider=asg(bad)))[0] == "InvalidParameterException", bad
    assert error(lambda: ecs.create_capacity_provider(
        name=p + "-m", autoScalingGroupProvider={**asg(p + "m"), "managedScaling": {"minimumScalingStepSize": 10, "maximumScalingStepSize": 5}}
    ))[0] == "InvalidParameterException"

    out = ecs.describe_capacity_providers(capacityProviders=[p, created["capacityProviderArn"], "nope"],
                                          include=["TAGS"])
    assert [c["name"] for c in out["capacityProviders"]] == [p, p]
    assert out["capacityProviders"][0]["tags"] == [{"key": "team", "value": "a"}]
    assert out["failures"] == [{"arn": "nope", "reason": "MISSING"}]
    assert "tags" not in ecs.describe_capacity_providers(capacityProviders=[p])["capacityProviders"][0]

    updated = ecs.update_capacity_provider(name=p, autoScalingGroupProvider={
        "managedScaling": {"status": "ENABLED", "targetCapacity": 80},
        "managedTerminationProtection": "ENABLED"})["capacityProvider"]
    assert updated["updateStatus"] == "UPDATE_COMPLETE"
    ms = updated["autoScalingGroupProvider"]["managedScaling"]
    assert ms["status"] == "ENABLED" and ms["targetCapacity"] == 80 and ms["instanceWarmupPeriod"] == 300
    assert updated["autoScalingGroupProvider"]["managedTerminationProtection"] == "ENABLED"

    arn = created["capacityProviderArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "prod"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "env", "value": "prod"}]

    gone = ecs.delete_capacity_provider(capacityProvider=p)["capacityProvider"]
    assert gone["status"] == "INACTIVE" and gone["updateStatus"] == "DELETE_COMPLETE"
    assert ecs.describe_capacity_providers(capacityProviders=[p])["capacityProviders"][0]["status"] \
        == "INACTIVE"
    # The name is free again.
    ecs.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p))
    ecs.delete_capacity_provider(capacityProvider=p)


def test_managed_instances_providers_are_refused_clearly(ecs, name):
    code, message = error(lambda: ecs.create_capacity_provider(
        name=name("mi"), managedInstancesProvider={
            "infrastructureRoleArn": "arn:aws:iam::123456789012:role/x",
            "instanceLaunchTemplate": {"ec2InstanceProfileArn": "arn:aws:iam::123456789012:instance-profile/x",
                                       "networkConfiguration": {"subnets": ["subnet-berth"]}}}))
    assert code == "UnsupportedFeatureException" and "managedInstancesProvider" in message


def test_fargate_providers_are_always_listed_and_pages_are_signed(ecs, name):
    made = [name("pg") for _ in range(11)]
    for p in made:
        ecs.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p))
    try:
        first = ecs.describe_capacity_providers(maxResults=2)
        assert [(c["name"], c["type"]) for c in first["capacityProviders"]] == [
            ("FARGATE", "FARGATE"), ("FARGATE_SPOT", "FARGATE_SPOT")]
        assert "autoScalingGroupProvider" not in first["capacityProviders"][0]
        seen, token = [], first["nextToken"]
        while token:
            page = ecs.describe_capacity_providers(maxResults=10, nextToken=token)
            seen += [c["name"] for c in page["capacityProviders"]]
            token = page.get("nextToken")
        assert set(made) <= set(seen) and seen == sorted(seen)
        assert error(lambda: ecs.describe_capacity_providers(nextToken="forged"))[0] \
            == "InvalidParameterException"
        assert error(lambda: ecs.describe_capacity_providers(maxResults=11))[0] \
            == "InvalidParameterException"
    finally:
        for p in made:
            ecs.delete_capacity_provider(capacityProvider=p)


def test_clusters_use_real_providers_and_keep_them_in_use(ecs, name):
    p, c = name("cp"), name("cpc")
    assert "does not exist" in error(lambda: ecs.create_cluster(
        clusterName=c, capacityProviders=[p]))[1]
    ecs.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p))
    ecs.create_cluster(clusterName=c, capacityProviders=[p, "FARGATE"],
                       defaultCapacityProviderStrategy=[{"capacityProvider": p, "weight": 1}])
    assert error(lambda: ecs.delete_capacity_provider(capacityProvider=p)) == (
        "ClientException", "The specified capacity provider is in use and cannot be removed.")
    # A strategy's provider must be associated with the cluster.
    code, message = error(lambda: ecs.put_cluster_capacity_providers(
        cluster=c, capacityProviders=["FARGATE"],
        defaultCapacityProviderStrategy=[{"capacityProvider": p, "weight": 1}]))
    assert code == "InvalidParameterException" and "not associated" in message
    out = ecs.put_cluster_capacity_providers(
        cluster=c, capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "base": 1, "weight": 1}])
    assert out["cluster"]["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert out["cluster"]["defaultCapacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE", "base": 1, "weight": 1}]
    ecs.delete_capacity_provider(capacityProvider=p)


def test_strategies_are_checked_as_ecs_checks_them(ecs, name):
    p, c = name("sv"), name("svc")
    ecs.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p))
    ecs.create_cluster(clusterName=c, capacityProviders=["FARGATE", "FARGATE_SPOT", p])
    fam = both_family(ecs, name("sv"))

    def run(strategy):
        return error(lambda: ecs.run_task(cluster=c, taskDefinition=fam, networkConfiguration=NETWORK,
                                          capacityProviderStrategy=strategy))

    assert "Only one capacity provider" in run([{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                                 {"capacityProvider": "FARGATE_SPOT", "base": 1}])[1]
    assert "weight greater than zero" in run([{"capacityProvider": "FARGATE", "base": 1},
                                              {"capacityProvider": "FARGATE_SPOT"}])[1]
    assert "maximum of 20" in run([{"capacityProvider": f"p{i}", "weight": 1} for i in range(21)])[1]
    ecs.delete_cluster(cluster=c)
    ecs.delete_capacity_provider(capacityProvider=p)


# -- where tasks land ----------------------------------------------------------

def test_a_service_splits_base_then_weights_over_fargate_and_spot(ecs, server, name):
    c = name("fg")
    ecs.create_cluster(clusterName=c, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    fam = both_family(ecs, name("fg"))
    svc = name("svc")
    ecs.create_service(cluster=c, serviceName=svc, taskDefinition=fam, desiredCount=6,
                       networkConfiguration=NETWORK, capacityProviderStrategy=[
                           {"capacityProvider": "FARGATE", "base": 2, "weight": 1},
                           {"capacityProvider": "FARGATE_SPOT", "weight": 3}])
    try:
        ecs.get_waiter("services_stable").wait(cluster=c, services=[svc], WaiterConfig=FAST)
        arns = ecs.list_tasks(cluster=c, serviceName=svc)["taskArns"]
        tasks = ecs.describe_tasks(cluster=c, tasks=arns)["tasks"]
        # base 2 on FARGATE, then 4 at 1:3: FARGATE 2 + 1, FARGATE_SPOT 3
        # (6 tasks of 256 CPU units: the managed host of a 2-core machine).
        assert Counter(t["capacityProviderName"] for t in tasks) == {"FARGATE": 3, "FARGATE_SPOT": 3}
        assert {t["launchType"] for t in tasks} == {"FARGATE"}

        # A spot interruption: SIGTERM now, stopCode SpotInterruption, and
        # the service puts a new task back on FARGATE_SPOT.
        victim = next(t for t in tasks if t["capacityProviderName"] == "FARGATE_SPOT")
        r = spot_interrupt(server, c, victim["taskArn"])
        assert r.returncode == 0, r.stderr
        ecs.get_waiter("tasks_stopped").wait(cluster=c, tasks=[victim["taskArn"]], WaiterConfig=FAST)
        t = ecs.describe_tasks(cluster=c, tasks=[victim["taskArn"]])["tasks"][0]
        assert t["stopCode"] == "SpotInterruption"
        assert t["stoppedReason"] == "Your Spot Task was interrupted."
        deadline = time.monotonic() + 60
        while True:
            arns = ecs.list_tasks(cluster=c, serviceName=svc)["taskArns"]
            live = ecs.describe_tasks(cluster=c, tasks=arns)["tasks"]
            running = [x for x in live if x["lastStatus"] == "RUNNING"]
            if len(running) == 6 and victim["taskArn"] not in arns:
                break
            assert time.monotonic() < deadline, "the interrupted task was not replaced"
            time.sleep(0.5)
        assert Counter(x["capacityProviderName"] for x in running) == {"FARGATE": 3, "FARGATE_SPOT": 3}

        # Only FARGATE_SPOT tasks can be interrupted.
        on_demand = next(x for x in running if x["capacityProviderName"] == "FARGATE")
        r = spot_interrupt(server, c, on_demand["taskArn"])
        assert r.returncode != 0 and "FARGATE_SPOT" in r.stderr
        # FARGATE_SPOT cannot leave the cluster while the service uses it.
        assert error(lambda: ecs.put_cluster_capacity_providers(
            cluster=c, capacityProviders=["FARGATE"], defaultCapacityProviderStrategy=[]
        ))[0] == "ResourceInUseException"
    finally:
        ecs.delete_service(cluster=c, service=svc, force=True)


def test_one_service_over_fargate_spot_and_an_agent_pool(ecs, server, name, tmp_path):
    """The issue's cluster: base 2 on FARGATE, then 1:3 over FARGATE_SPOT and a
    pool of agents (ECS refuses mixing Fargate with Auto Scaling group
    providers; berth allows it, both being its own capacity)."""
    p, c = name("mixp"), name("mix")
    ecs.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p))
    ecs.create_cluster(clusterName=c, capacityProviders=["FARGATE", "FARGATE_SPOT", p])
    agent = PoolAgent(server, c, p, tmp_path / "mix-agent").start()
    fam = both_family(ecs, name("mix"))
    svc = name("svc")
    try:
        [instance] = wait_for_instances(ecs, c, 1)
        ecs.create_service(cluster=c, serviceName=svc, taskDefinition=fam, desiredCount=6,
                           networkConfiguration=NETWORK, capacityProviderStrategy=[
                               {"capacityProvider": "FARGATE", "base": 2, "weight": 0},
                               {"capacityProvider": "FARGATE_SPOT", "weight": 1},
                               {"capacityProvider": p, "weight": 3}])
        ecs.get_waiter("services_stable").wait(cluster=c, services=[svc], WaiterConfig=FAST)
        arns = ecs.list_tasks(cluster=c, serviceName=svc)["taskArns"]
        tasks = ecs.describe_tasks(cluster=c, tasks=arns)["tasks"]
        # 2 on FARGATE (base, weight 0), then 4 at 1:3: FARGATE_SPOT 1, pool 3.
        assert Counter(t["capacityProviderName"] for t in tasks) == \
            {"FARGATE": 2, "FARGATE_SPOT": 1, p: 3}
        for t in tasks:
            pool = t["capacityProviderName"] == p
            assert t["launchType"] == ("EC2" if pool else "FARGATE")
            assert (t.get("containerInstanceArn") == instance) == pool
    finally:
        ecs.delete_service(cluster=c, service=svc, force=True)
        agent.stop()


def test_pools_of_agents_take_their_providers_tasks(ecs, server, name, tmp_path):
    a, b, c = name("poola"), name("poolb"), name("pools")
    for p in (a, b):
        ecs.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p))
    ecs.create_cluster(clusterName=c, capacityProviders=[a, b])
    agents = [PoolAgent(server, c, p, tmp_path / p).start() for p in (a, b)]
    # An agent naming no such provider is refused at registration.
    stray = PoolAgent(server, c, name("nosuch"), tmp_path / "stray").start()
    try:
        arns = wait_for_instances(ecs, c, 2)
        cis = ecs.describe_container_instances(cluster=c, containerInstances=arns)["containerInstances"]
        by_provider = {ci["capacityProviderName"]: ci["containerInstanceArn"] for ci in cis}
        assert set(by_provider) == {a, b}
        time.sleep(1)
        assert len(ecs.list_container_instances(cluster=c)["containerInstanceArns"]) == 2
        assert "does not exist" in stray.log.read_text()

        fam = name("pooled")
        ecs.register_task_definition(family=fam, containerDefinitions=[
            sh("exec sleep 600", memory=16)])
        out = ecs.run_task(cluster=c, taskDefinition=fam, count=10, capacityProviderStrategy=[
            {"capacityProvider": a, "base": 2, "weight": 1}, {"capacityProvider": b, "weight": 3}])
        assert out["failures"] == []
        got = Counter((t["capacityProviderName"], t["containerInstanceArn"]) for t in out["tasks"])
        assert got == {(a, by_provider[a]): 4, (b, by_provider[b]): 6}
        assert {t["launchType"] for t in out["tasks"]} == {"EC2"}
        desc = ecs.describe_tasks(cluster=c, tasks=[t["taskArn"] for t in out["tasks"]])["tasks"]
        assert Counter(t["capacityProviderName"] for t in desc) == {a: 4, b: 6}
        for t in out["tasks"]:
            ecs.stop_task(cluster=c, task=t["taskArn"])
        # The cluster default applies when RunTask names neither.
        ecs.put_cluster_capacity_providers(cluster=c, capacityProviders=[a, b],
                                           defaultCapacityProviderStrategy=[{"capacityProvider": b, "weight": 1}])
        t = ecs.run_task(cluster=c, taskDefinition=fam)["tasks"][0]
        assert t["capacityProviderName"] == b and t["containerInstanceArn"] == by_provider[b]
        ecs.stop_task(cluster=c, task=t["taskArn"])
    finally:
        for x in agents + [stray]:
            x.stop()


# -- accounts ------------------------------------------------------------------

def test_another_accounts_providers_are_invisible(two_accounts, make_ecs, name):
    a, _, b = two_accounts.creds
    victim, attacker = make_ecs(two_accounts, a), make_ecs(two_accounts, b)
    p = name("secret")
    arn = victim.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p))["capacityProvider"][
        "capacityProviderArn"]
    seen = attacker.describe_capacity_providers(capacityProviders=[p, arn])
    assert seen["capacityProviders"] == []
    assert [f["reason"] for f in seen["failures"]] == ["MISSING", "MISSING"]
    assert p not in [c["name"] for c in attacker.describe_capacity_providers(maxResults=10)["capacityProviders"]]
    assert error(lambda: attacker.update_capacity_provider(name=arn, autoScalingGroupProvider={
        "managedTerminationProtection": "ENABLED"}))[0] == "InvalidParameterException"
    assert error(lambda: attacker.delete_capacity_provider(capacityProvider=arn))[0] \
        in ("InvalidParameterException", "ClientException")
    assert error(lambda: attacker.tag_resource(resourceArn=arn, tags=[{"key": "x", "value": "y"}]))[0] \
        == "InvalidParameterException"
    assert error(lambda: attacker.create_cluster(clusterName=name("steal"), capacityProviders=[p]))[0] \
        == "InvalidParameterException"
    # The attacker may make its own provider of the same name: its own.
    mine = attacker.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p))["capacityProvider"]
    assert mine["capacityProviderArn"] != arn
    assert victim.describe_capacity_providers(capacityProviders=[p])["capacityProviders"][0][
        "capacityProviderArn"] == arn


def test_an_agent_cannot_join_another_accounts_provider(two_accounts, make_ecs, name, tmp_path):
    a, _, b = two_accounts.creds
    victim, attacker = make_ecs(two_accounts, a), make_ecs(two_accounts, b)
    p, c = name("theirs"), name("mine")
    victim.create_capacity_provider(name=p, autoScalingGroupProvider=asg(p))
    attacker.create_cluster(clusterName=c)
    agent = PoolAgent(two_accounts, c, p, tmp_path / "intruder", creds=b).start()
    try:
        time.sleep(3)
        assert attacker.list_container_instances(cluster=c)["containerInstanceArns"] == []
        assert "does not exist" in agent.log.read_text()
    finally:
        agent.stop()


def test_spot_interruption_is_for_the_tasks_own_account(two_accounts, make_ecs, name):
    a, _, b = two_accounts.creds
    victim, attacker = make_ecs(two_accounts, a), make_ecs(two_accounts, b)
    c = name("spot")
    victim.create_cluster(clusterName=c, capacityProviders=["FARGATE_SPOT"])
    fam = both_family(victim, name("spot"))
    t = victim.run_task(cluster=c, taskDefinition=fam, networkConfiguration=NETWORK,
                        capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])["tasks"][0]
    assert t["capacityProviderName"] == "FARGATE_SPOT" and t["launchType"] == "FARGATE"
    attacker.create_cluster(clusterName=c)
    for cluster in (c, t["clusterArn"]):
        r = spot_interrupt(two_accounts, cluster, t["taskArn"], creds=b)
        assert r.returncode != 0
    assert victim.describe_tasks(cluster=c, tasks=[t["taskArn"]])["tasks"][0]["desiredStatus"] == "RUNNING"
    r = spot_interrupt(two_accounts, c, t["taskArn"], creds=a)
    assert r.returncode == 0, r.stderr
    victim.get_waiter("tasks_stopped").wait(cluster=c, tasks=[t["taskArn"]], WaiterConfig=FAST)
    assert victim.describe_tasks(cluster=c, tasks=[t["taskArn"]])["tasks"][0]["stopCode"] == "SpotInterruption"
