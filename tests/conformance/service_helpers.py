"""Helpers shared by the service suites (test_services.py,
test_service_deployments.py, test_task_sets.py, test_task_protection.py).

Services run FARGATE awsvpc tasks on the server's embedded agent through
the process runtime: each container is a host process (``/bin/sh -c``), so
a test can kill one, or make one that ignores SIGTERM for a while, and
watch the service scheduler react. Nothing here sleeps for a fixed time:
every wait polls a condition against a deadline.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

FAST = {"Delay": 1, "MaxAttempts": 60}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-berth"]}}
DEPLOYMENT_ID = re.compile(r"^ecs-svc/\d{19}$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TASK_ID = re.compile(r"^[0-9a-f]{32}$")


def sh(name: str, script: str, **extra) -> dict:
    return {"name": name, "image": "host", "entryPoint": ["/bin/sh", "-c"],
            "command": [script], **extra}


def fargate_family(ecs, family: str, containers: list[dict], **extra) -> str:
    """Registers a FARGATE awsvpc revision of ``family``; returns its ARN."""
    out = ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", containerDefinitions=containers, **extra)
    return out["taskDefinition"]["taskDefinitionArn"]


def sleeper(ecs, family: str, seconds: int = 300, **extra) -> str:
    return fargate_family(ecs, family, [sh("main", f"sleep {seconds}", **extra)])


def pid_sleeper(ecs, family: str, piddir: Path) -> str:
    """A revision whose container writes its pid to ``piddir/<pid>`` and
    then becomes ``sleep`` (same pid), so a test can kill it."""
    piddir.mkdir(parents=True, exist_ok=True)
    return fargate_family(ecs, family, [
        sh("main", f"echo $$ > {piddir}/$$; exec sleep 300")])


def stubborn(ecs, family: str, readydir: Path, release: Path) -> str:
    """A revision whose container ignores SIGTERM and keeps running until
    the test creates ``release``, so its task stays stopping (desired
    STOPPED, not yet STOPPED) for exactly as long as the test needs. It
    writes ``readydir/<pid>`` once its trap is installed. (stopTimeout 60:
    should a test fail before releasing it, SIGKILL ends it then.)"""
    readydir.mkdir(parents=True, exist_ok=True)
    script = (f'trap "" TERM; echo $$ > {readydir}/$$; '
              f"while [ ! -e {release} ]; do sleep 0.1; done")
    return fargate_family(ecs, family, [sh("main", script, stopTimeout=60)])


def failing(ecs, family: str, script: str = "exit 1") -> str:
    """A revision whose only (essential) container exits 1 (at once, by
    default: it does reach RUNNING, for a moment)."""
    return fargate_family(ecs, family, [sh("main", script)])


def cannot_start(ecs, family: str) -> str:
    """A revision whose container cannot be started at all (its program
    does not exist): every task stops with TaskFailedToStart, never
    having been RUNNING."""
    return fargate_family(ecs, family, [
        {"name": "main", "image": "host", "command": ["/nonexistent/program"]}])


def create(ecs, cluster: str, name: str, task_definition: Optional[str], desired: int = 1,
           **kw) -> dict:
    args: dict[str, Any] = {"cluster": cluster, "serviceName": name}
    if task_definition is not None:
        args.update(taskDefinition=task_definition, launchType="FARGATE",
                    networkConfiguration=NETWORK)
    if desired is not None:
        args["desiredCount"] = desired
    args.update(kw)
    args = {k: v for k, v in args.items() if v is not None}
    return ecs.create_service(**args)["service"]


def describe(ecs, cluster: str, name: str, **kw) -> dict:
    out = ecs.describe_services(cluster=cluster, services=[name], **kw)
    assert out["failures"] == [], out["failures"]
    return out["services"][0]


def wait_stable(ecs, cluster: str, *names: str) -> dict:
    ecs.get_waiter("services_stable").wait(cluster=cluster, services=list(names),
                                           WaiterConfig=FAST)
    return describe(ecs, cluster, names[0])


def steady_event(service: str) -> str:
    return f"(service {service}) has reached a steady state."


def wait_steady(ecs, cluster: str, name: str) -> dict:
    """Stable by the waiter's rule, and saying so: the newest event is the
    steady-state one (the waiter may see the counts a moment before the
    scheduler's pass that writes the event)."""
    wait_stable(ecs, cluster, name)

    def probe():
        s = describe(ecs, cluster, name)
        said = s["events"] and s["events"][0]["message"] == steady_event(name)
        stable = len(s["deployments"]) == 1 and s["runningCount"] == s["desiredCount"]
        return s if said and stable else None

    return wait_for(f"service {name} to say it is steady", probe)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0,
             interval: float = 0.1) -> Any:
    """Polls ``probe`` until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def running_tasks(ecs, cluster: str, service: str) -> list[str]:
    """ARNs of the service's tasks whose desired status is RUNNING."""
    return ecs.list_tasks(cluster=cluster, serviceName=service,
                          desiredStatus="RUNNING")["taskArns"]


def tasks(ecs, cluster: str, arns: list[str], **kw) -> list[dict]:
    if not arns:
        return []
    out = ecs.describe_tasks(cluster=cluster, tasks=arns, **kw)
    assert out["failures"] == [], out["failures"]
    return out["tasks"]


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def messages(service: dict) -> list[str]:
    return [e["message"] for e in service["events"]]


def check_events(service: dict) -> None:
    """ECS's event list: UUIDv4 ids, newest first, at most 100."""
    events = service["events"]
    assert len(events) <= 100
    for e in events:
        assert UUID4.match(e["id"]), e
    times = [e["createdAt"] for e in events]
    assert times == sorted(times, reverse=True), times


def started_event(service: str, ids: list[str]) -> str:
    return (f"(service {service}) has started {len(ids)} tasks: "
            + " ".join(f"(task {i})" for i in ids) + ".")


def started_ids(service: str, text: str) -> Optional[list[str]]:
    """The task ids of a "has started N tasks" event (None for another event)."""
    m = re.fullmatch(rf"\(service {re.escape(service)}\) has started (\d+) tasks: (.*)\.", text)
    if not m:
        return None
    ids = re.findall(r"\(task ([0-9a-f]+)\)", m.group(2))
    assert len(ids) == int(m.group(1)), text
    return ids


def computed(desired: int, percent: float) -> int:
    return math.ceil(desired * percent / 100)


def pids(directory: Path) -> set[int]:
    return {int(p.name) for p in directory.iterdir()} if directory.exists() else set()


@pytest.fixture
def cluster(ecs, name):
    """A cluster whose services are deleted (force) when the test ends, so
    no task of the test outlives it."""
    c = name("svc")
    ecs.create_cluster(clusterName=c)
    yield c
    arns = [a for page in ecs.get_paginator("list_services").paginate(cluster=c)
            for a in page["serviceArns"]]
    for arn in arns:
        ecs.delete_service(cluster=c, service=arn, force=True)
    # Standalone tasks a test started.
    for arn in ecs.list_tasks(cluster=c, desiredStatus="RUNNING")["taskArns"]:
        ecs.stop_task(cluster=c, task=arn)
