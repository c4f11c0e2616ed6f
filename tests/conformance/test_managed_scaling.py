"""Managed scaling of an Auto Scaling group capacity provider: a service
whose tasks have nowhere to go makes berth's engine call the operator's
scaling hook (a command from the server's config) for a host, the host
joins and the tasks are placed; once the service is scaled to 0, the idle
host is drained, the hook removes it and it is deregistered. Another
account's provider of the same name never reaches the hook."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

import harness
from conftest import ACCOUNT_A, ACCOUNT_B
from harness import BerthServer

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

HOOK = Path(__file__).with_name("scaling_hook.py")


def asg(n):
    return {"autoScalingGroupArn":
            f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:{n}:autoScalingGroupName/{n}",
            "managedScaling": {"status": "ENABLED", "targetCapacity": 100,
                               "minimumScalingStepSize": 1, "maximumScalingStepSize": 2,
                               "instanceWarmupPeriod": 8},
            "managedTerminationProtection": "DISABLED",
            "managedDraining": "ENABLED"}


@pytest.fixture
def scaled(tmp_path):
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    data = tmp_path / "data"
    config = tmp_path / "berth.toml"
    creds = "".join(
        f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
        f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n\n'
        for c in (ACCOUNT_A, ACCOUNT_B))
    config.write_text(creds + f"""
[scaling]
interval = 1
scale_in_after = 2

[[scaling_hooks]]
account_id = "{ACCOUNT_A.account_id}"
provider = "pool"
command = [{json.dumps(sys.executable)}, {json.dumps(str(HOOK))}]
timeout = 30
env = {{ HOOK_DIR = {json.dumps(str(hook_dir))}, BERTH_BIN = {json.dumps(str(harness.berth_bin()))}, ENDPOINT_FILE = {json.dumps(str(data / "endpoint"))}, AWS_ACCESS_KEY_ID = "{ACCOUNT_A.access_key_id}", AWS_SECRET_ACCESS_KEY = "{ACCOUNT_A.secret_access_key}" }}
""")
    srv = BerthServer(data, config=config).start()
    yield srv, hook_dir
    for pid in hook_dir.glob("agent-*/pid"):
        try:
            os.kill(int(pid.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
    srv.stop()


def calls(hook_dir):
    log = hook_dir / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait(what, check, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def pool_cluster(ecs, cluster, family):
    ecs.create_capacity_provider(name="pool", autoScalingGroupProvider=asg("pool"))
    ecs.create_cluster(clusterName=cluster, capacityProviders=["pool"],
                       defaultCapacityProviderStrategy=[{"capacityProvider": "pool", "weight": 1}])
    ecs.register_task_definition(
        family=family, containerDefinitions=[{
            "name": "main", "image": "host", "memory": 32, "stopTimeout": 2,
            "entryPoint": ["/bin/sh", "-c"], "command": ["exec sleep 600"]}])


def test_a_service_that_does_not_fit_gets_a_host_and_gives_it_back(scaled):
    srv, hook_dir = scaled
    ecs = srv.client(ACCOUNT_A)
    stranger = srv.client(ACCOUNT_B)
    # The stranger's provider has the operator's provider name and tasks
    # that wait: the hook is the operator's account's only.
    pool_cluster(stranger, "theirs", "waits")
    stranger.create_service(cluster="theirs", serviceName="s", taskDefinition="waits",
                            desiredCount=2)
    pool_cluster(ecs, "ours", "app")
    assert ecs.list_container_instances(cluster="ours")["containerInstanceArns"] == []
    ecs.create_service(cluster="ours", serviceName="web", taskDefinition="app", desiredCount=1)

    # Scale-out: the hook is asked for one host (CPR 200 from zero hosts),
    # which joins the provider; the service's task lands on it.
    out = wait("a scale-out", lambda: [c for c in calls(hook_dir) if not c["remove"]])[0]
    assert (out["cluster"], out["capacityProvider"], out["current"], out["desired"]) == \
        ("ours", "pool", 0, 1)
    assert out["accountId"] == ACCOUNT_A.account_id and out["capacityProviderReservation"] == 200
    arns = wait("the host to join", lambda: ecs.list_container_instances(
        cluster="ours")["containerInstanceArns"])
    assert len(arns) == 1
    inst = ecs.describe_container_instances(cluster="ours", containerInstances=arns)[
        "containerInstances"][0]
    assert inst["capacityProviderName"] == "pool"

    def running():
        ts = ecs.list_tasks(cluster="ours", desiredStatus="RUNNING")["taskArns"]
        return ts and [t for t in ecs.describe_tasks(cluster="ours", tasks=ts)["tasks"]
                       if t["lastStatus"] == "RUNNING"]
    task = wait("the task to run", running)[0]
    assert task["containerInstanceArn"] == arns[0]
    assert task["capacityProviderName"] == "pool"
    # One host was enough: no second scale-out while it warmed up or after.
    time.sleep(3)
    assert len([c for c in calls(hook_dir) if not c["remove"]]) == 1

    # Scale-in: with the service at 0 the host is idle, drained, removed
    # by the hook, then deregistered.
    ecs.update_service(cluster="ours", service="web", desiredCount=0)
    gone = wait("a scale-in", lambda: [c for c in calls(hook_dir) if c["remove"]], timeout=90)[0]
    assert [h["containerInstanceArn"] for h in gone["remove"]] == arns
    assert (gone["current"], gone["desired"]) == (1, 0)
    assert gone["capacityProviderReservation"] == 0
    inst = wait("the host to be deregistered", lambda: [
        i for i in ecs.describe_container_instances(cluster="ours", containerInstances=arns)[
            "containerInstances"] if i["status"] == "INACTIVE"])[0]
    assert inst["runningTasksCount"] == 0
    assert (hook_dir / "agent-0" / "stopped").exists()
    # Never for the stranger's account, cluster or provider.
    assert all(c["accountId"] == ACCOUNT_A.account_id and c["cluster"] == "ours"
               for c in calls(hook_dir))
    assert stranger.list_container_instances(cluster="theirs")["containerInstanceArns"] == []


MI_IMAGE = "berth-test/managed-instance:local"


@pytest.fixture
def fleet(tmp_path):
    """A server whose provider `fleet` scales with berth's own Docker
    launcher (agent containers on the host network, no mounts)."""
    import docker_cluster
    problem = docker_cluster.engine_problem()
    if problem:
        pytest.skip(problem)
    env = dict(os.environ, BERTH_BIN=str(harness.berth_bin()), BERTH_IMAGE=MI_IMAGE)
    import subprocess
    subprocess.run([str(harness.REPO / "scripts" / "berth-image.sh")], env=env, check=True,
                   capture_output=True, timeout=600)
    config = tmp_path / "berth.toml"
    config.write_text(
        f'[[credentials]]\naccess_key_id = "{ACCOUNT_A.access_key_id}"\n'
        f'secret_access_key = "{ACCOUNT_A.secret_access_key}"\naccount_id = "{ACCOUNT_A.account_id}"\n'
        f"""
[scaling]
interval = 1
scale_in_after = 2

[[scaling_hooks]]
account_id = "{ACCOUNT_A.account_id}"
provider = "fleet"
docker = {{ image = "{MI_IMAGE}", network = "host", access_key_id = "{ACCOUNT_A.access_key_id}", memory_mib = 256, cpus = 0.5 }}
""")
    srv = BerthServer(tmp_path / "data", config=config).start()
    cluster = harness.unique("mi")
    yield srv, cluster
    srv.stop()
    ids = docker_cluster.docker("ps", "-aq", "--filter",
                                f"label=berth.managed-instance.cluster={cluster}").stdout.split()
    if ids:
        docker_cluster.docker("rm", "-f", "-v", *ids, check=False)


def test_berths_docker_launcher_scales_out_one_agent_container_and_back_in(fleet):
    import docker_cluster
    srv, cluster = fleet
    ecs = srv.client(ACCOUNT_A)
    ecs.create_capacity_provider(name="fleet", autoScalingGroupProvider=asg("fleet"))
    ecs.create_cluster(clusterName=cluster, capacityProviders=["fleet"],
                       defaultCapacityProviderStrategy=[{"capacityProvider": "fleet", "weight": 1}])
    ecs.register_task_definition(family="mi", containerDefinitions=[{
        "name": "main", "image": "host", "memory": 32, "stopTimeout": 2,
        "entryPoint": ["/bin/sh", "-c"], "command": ["exec sleep 600"]}])
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition="mi", desiredCount=1)

    def containers():
        out = docker_cluster.docker("ps", "-a", "--format", "{{.Names}}", "--filter",
                                    f"label=berth.managed-instance.cluster={cluster}").stdout
        return out.split()
    names = wait("an agent container", containers)
    assert len(names) == 1 and names[0].startswith("berth-mi-fleet-")
    inspect = json.loads(docker_cluster.docker("inspect", names[0]).stdout)[0]
    assert inspect["Mounts"] == [] and inspect["HostConfig"]["Memory"] == 256 << 20
    assert inspect["Config"]["Labels"]["berth.managed-instance.account"] == ACCOUNT_A.account_id
    arns = wait("the container's agent to join", lambda: ecs.list_container_instances(
        cluster=cluster)["containerInstanceArns"], timeout=90)
    inst = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)[
        "containerInstances"][0]
    assert inst["capacityProviderName"] == "fleet"
    assert {"name": "berth.managed-instance", "value": names[0]} in inst["attributes"]

    def running():
        ts = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
        return ts and [t for t in ecs.describe_tasks(cluster=cluster, tasks=ts)["tasks"]
                       if t["lastStatus"] == "RUNNING"]
    assert wait("the task to run", running, timeout=90)[0]["containerInstanceArn"] == arns[0]

    ecs.update_service(cluster=cluster, service="web", desiredCount=0)
    wait("the agent container to be removed", lambda: containers() == [], timeout=90)
    wait("the host to be deregistered", lambda: [
        i for i in ecs.describe_container_instances(cluster=cluster, containerInstances=arns)[
            "containerInstances"] if i["status"] == "INACTIVE"])
