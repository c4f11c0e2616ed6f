"""awsvpc tasks and their ElasticNetworkInterface attachment.

On ECS every awsvpc task (all FARGATE tasks, EC2 tasks with networkMode
awsvpc) carries an attachment of type ElasticNetworkInterface: PRECREATED
with only its subnet until the interface exists, then ATTACHED with the
interface's ID, MAC, private DNS name and IPv4 address, DETACHING while the
task deprovisions and DELETED once it stopped (the details stay). Each
container lists the interface in `networkInterfaces`. berth's process
runtime runs awsvpc tasks on the host network, so the address must be one
this host really has."""

import ipaddress
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import harness
from errors import assert_error

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

FAST = {"Delay": 1, "MaxAttempts": 60}
ENI = "ElasticNetworkInterface"
DETAIL_NAMES = ["subnetId", "networkInterfaceId", "macAddress", "privateDnsName",
                "privateIPv4Address"]


# -- this host's addresses, found independently of berth ---------------------

def primary_ipv4() -> str:
    """The source address of a route off the host (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def host_ipv4s() -> dict[str, str]:
    """Every IPv4 address of this host and its interface, from `ip -4 addr`
    (when the tool is there; the primary address otherwise)."""
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True,
                             text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {primary_ipv4(): ""}
    found = {}
    for line in out.splitlines():
        # "2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\ ..."
        m = re.match(r"\d+:\s+(\S+)\s+inet\s+([\d.]+)/", line)
        if m:
            found[m.group(2)] = m.group(1).split("@")[0]
    return found


def mac_of(device: str):
    try:
        return Path("/sys/class/net", device.split(":")[0], "address").read_text().strip().lower()
    except OSError:
        return None


# -- how clients read a task's address ----------------------------------------

def eni_private_ip(task):
    """The access path ECS clients use for an awsvpc task's address: the
    ElasticNetworkInterface attachment's `privateIPv4Address` detail."""
    for attachment in task.get("attachments", []):
        if attachment.get("type") == ENI:
            for detail in attachment.get("details", []):
                if detail.get("name") == "privateIPv4Address":
                    return detail.get("value")
    return None


def the_eni(task):
    enis = [a for a in task["attachments"] if a["type"] == ENI]
    assert len(enis) == 1, task["attachments"]
    return enis[0]


def details(attachment):
    return {d["name"]: d.get("value") for d in attachment["details"]}


def describe(ecs, cluster, arn):
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


def sh(name, script, **extra):
    return {"name": name, "image": "host", "entryPoint": ["/bin/sh", "-c"],
            "command": [script], **extra}


@pytest.fixture
def cluster(ecs, name):
    c = name("vpc")
    ecs.create_cluster(clusterName=c)
    return c


def assert_precreated(task, subnet):
    """What RunTask answers: the interface does not exist yet."""
    a = the_eni(task)
    assert a["status"] == "PRECREATED"
    assert a["details"] == [{"name": "subnetId", "value": subnet}]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", a["id"])
    for c in task["containers"]:
        assert c["networkInterfaces"] == []
    assert eni_private_ip(task) is None


def assert_attached_to_this_host(task, subnet):
    a = the_eni(task)
    assert a["status"] == "ATTACHED", a
    names = [d["name"] for d in a["details"]]
    # macAddress is left out only when the host's MAC cannot be read.
    assert names == [n for n in DETAIL_NAMES if n in names], names
    assert set(DETAIL_NAMES) - {"macAddress"} <= set(names), names
    d = details(a)
    assert d["subnetId"] == subnet
    assert re.fullmatch(r"eni-[0-9a-f]{17}", d["networkInterfaceId"]), d
    ip = eni_private_ip(task)
    assert ip == d["privateIPv4Address"]
    ipaddress.IPv4Address(ip)
    hosts = host_ipv4s()
    assert ip in hosts, f"{ip} is not an address of this host ({sorted(hosts)})"
    assert ip == primary_ipv4()
    assert d["privateDnsName"] == f"ip-{ip.replace('.', '-')}.ec2.internal"  # us-east-1
    device = hosts.get(ip)
    if "macAddress" in d:
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", d["macAddress"]), d
        if device:
            assert d["macAddress"] == mac_of(device)
    elif device and device != "lo":
        assert mac_of(device) in (None, "00:00:00:00:00:00"), "berth left out a readable MAC"
    for c in task["containers"]:
        assert c["networkInterfaces"] == [{"attachmentId": a["id"], "privateIpv4Address": ip}], c
    return a


def assert_deleted_keeping(task, attached):
    a = the_eni(task)
    assert a["status"] == "DELETED"
    assert a["id"] == attached["id"]
    assert a["details"] == attached["details"]
    ip = details(attached)["privateIPv4Address"]
    assert eni_private_ip(task) == ip
    for c in task["containers"]:
        assert c["networkInterfaces"] == [{"attachmentId": a["id"], "privateIpv4Address": ip}]


# -- FARGATE on the one-command server -----------------------------------------

def test_fargate_task_shows_the_address_it_really_has(ecs, cluster, name):
    fam = name("web")
    ecs.register_task_definition(
        family=fam, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[sh("web", "sleep 60"), sh("side", "sleep 60")])
    out = ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {
                           "subnets": ["subnet-berth", "subnet-local"]}})
    assert out["failures"] == []
    task = out["tasks"][0]
    arn = task["taskArn"]
    assert_precreated(task, "subnet-berth")

    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    running = describe(ecs, cluster, arn)
    assert running["lastStatus"] == "RUNNING"
    attached = assert_attached_to_this_host(running, "subnet-berth")
    # The interface does not change while the task runs.
    assert the_eni(describe(ecs, cluster, arn)) == attached

    ecs.stop_task(cluster=cluster, task=arn, reason="done")
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    stopped = describe(ecs, cluster, arn)
    assert stopped["lastStatus"] == "STOPPED" and stopped["stopCode"] == "UserInitiated"
    assert_deleted_keeping(stopped, attached)


def test_a_task_that_ends_by_itself_ends_with_its_interface_deleted(ecs, cluster, name):
    fam = name("oneshot")
    ecs.register_task_definition(
        family=fam, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[sh("main", "exit 0")])
    arn = ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-local"]}}
                       )["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    a = the_eni(t)
    assert a["status"] == "DELETED"
    # The agent attached it before the container started.
    assert eni_private_ip(t) in host_ipv4s()
    assert details(a)["subnetId"] == "subnet-local"


def test_awsvpc_needs_a_subnet(ecs, cluster, name):
    fam = name("nosubnet")
    ecs.register_task_definition(
        family=fam, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[sh("main", "true")])
    with pytest.raises(Exception) as e:
        ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                     networkConfiguration={"awsvpcConfiguration": {"subnets": []}})
    assert_error(e, "InvalidParameterException", message_contains="subnets")


# -- EC2 awsvpc on a standalone `berth agent` (the HTTP control plane) ---------

@pytest.fixture
def agent(server, cluster, tmp_path):
    env = dict(os.environ, **server.env())
    log = open(tmp_path / "agent.log", "ab")
    proc = subprocess.Popen(
        [str(harness.berth_bin()), "agent", "--cluster", cluster, "--runtime", "process",
         "--data-dir", str(tmp_path / "agent")],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    yield proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    log.close()


def wait_for_instance(ecs, cluster):
    deadline = time.monotonic() + 60
    while True:
        arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
        if arns:
            return arns[0]
        assert time.monotonic() < deadline, "the agent did not register"
        time.sleep(0.2)


def test_ec2_awsvpc_task_on_a_standalone_agent(ecs, cluster, agent, name):
    inst = wait_for_instance(ecs, cluster)
    fam = name("ec2vpc")
    ecs.register_task_definition(
        family=fam, networkMode="awsvpc",
        containerDefinitions=[sh("main", "sleep 60", memory=64)])
    out = ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="EC2",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-berth"]}})
    assert out["failures"] == []
    task = out["tasks"][0]
    arn = task["taskArn"]
    assert task["containerInstanceArn"] == inst
    assert_precreated(task, "subnet-berth")
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    attached = assert_attached_to_this_host(describe(ecs, cluster, arn), "subnet-berth")
    ecs.stop_task(cluster=cluster, task=arn)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    assert_deleted_keeping(describe(ecs, cluster, arn), attached)

    # A task without awsvpc has no interface of its own.
    plain = name("bridge")
    ecs.register_task_definition(family=plain, containerDefinitions=[sh("main", "exit 0", memory=64)])
    t = ecs.run_task(cluster=cluster, taskDefinition=plain, launchType="EC2")["tasks"][0]
    assert t["attachments"] == []
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[t["taskArn"]], WaiterConfig=FAST)
    done = describe(ecs, cluster, t["taskArn"])
    assert done["attachments"] == [] and eni_private_ip(done) is None
    assert done["containers"][0]["networkInterfaces"] == []
