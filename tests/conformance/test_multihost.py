"""Several hosts: a `berth server` container and three `berth agent`
containers on a private Docker network, each agent a host of its own
(own address, own data dir). Tasks are spread over them; then one host
goes away for good (its tasks are stopped once the agent is lost) and
another is cut off the network and comes back within the grace (nothing
is stopped, started twice or restarted).

The agents' runtime is ``BERTH_MULTIHOST_RUNTIME`` (``docker``: tasks are
sibling containers on the host's Docker Engine, image
berth-test/busybox:latest; ``process``: tasks are processes inside the
agent containers). Docker is required: without an engine the module fails,
unless ``BERTH_SKIP_DOCKER_TESTS=1``. The images are built here
(scripts/test-images.sh, scripts/berth-image.sh), from ``BERTH_BIN``.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

import harness
from docker_cluster import TASK_IMAGE, DockerCluster, build_images, docker, engine_problem
from shape_validator import format_violations
from validation_hook import Recorder

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

RUNTIME = os.environ.get("BERTH_MULTIHOST_RUNTIME", "docker")
#: Short liveness timings for the server under test. The grace must exceed
#: the agent's long poll (20 s: a quiet agent is heard from only when its
#: poll starts and ends), or healthy agents would show disconnected.
GRACE = 25
LOST = 10
#: How long the partitioned host stays cut off: well inside the grace.
CUT = 6
#: Generous: the machine has two cores and runs Docker too.
TASKS_RUNNING_WITHIN = 120
#: A stopped agent: agentConnected=false once silent for GRACE (its last
#: long poll may count as heard from for 20 s more), tasks stopped LOST
#: later by the sweep (every 2 s); plus slack for a loaded machine.
DISCONNECTED_WITHIN = GRACE + 20 + 40
LOST_WITHIN = LOST + 20 + 40
#: A StopTask wakes the agent's long poll; an agent whose poll was lost
#: in the cut hears of it when that poll times out (35 s) and it polls again.
STOP_WITHIN = 90


@pytest.fixture(scope="session")
def docker_images():
    problem = engine_problem()
    if problem:
        if os.environ.get("BERTH_SKIP_DOCKER_TESTS") == "1":
            pytest.skip(f"BERTH_SKIP_DOCKER_TESTS=1 and {problem}")
        pytest.fail(f"the multi-host tests need a Docker Engine: {problem}\n"
                    "(set BERTH_SKIP_DOCKER_TESTS=1 to skip them)", pytrace=False)
    build_images(harness.berth_bin())


@pytest.fixture(scope="module")
def dc(docker_images, tmp_path_factory):
    cluster = DockerCluster(tmp_path_factory.mktemp("multihost"), agents=3, runtime=RUNTIME,
                            disconnect_grace=GRACE, lost_timeout=LOST)
    with cluster:
        yield cluster
        server_alive = cluster.server.alive()
        diagnostics = "" if server_alive else cluster.diagnostics()
    # Everything it created is gone: its containers, its network, and what
    # the agents started.
    assert cluster.leftovers() == [], "teardown left these behind"
    assert server_alive, f"the berth server container died during the run:\n{diagnostics}"


@pytest.fixture
def ecs(dc, recorder):
    """A validating boto3 client for the server container (the suite's own
    client path, so every response is checked against the model)."""
    return dc.server.client(recorder=recorder)


@pytest.fixture(scope="module")
def placed(dc):
    """Six long-running tasks spread over the three hosts: {instance ARN:
    [task ARN, ...]}. Responses are validated as the tests' are."""
    rec = Recorder()
    ecs = dc.server.client(recorder=rec)
    with dc.explain():
        family = harness.unique("sleeper")
        ecs.register_task_definition(family=family, containerDefinitions=[{
            "name": "main", "image": TASK_IMAGE,
            "entryPoint": ["/bin/sh", "-c"], "command": ["exec sleep 3600"],
            "memory": 32, "stopTimeout": 5}])
        out = ecs.run_task(cluster=dc.cluster_name, taskDefinition=family, launchType="EC2",
                           count=6, placementStrategy=[
                               {"type": "spread", "field": "attribute:ecs.availability-zone"},
                               {"type": "spread", "field": "instanceId"}])
        assert out["failures"] == [], out["failures"]
        arns = [t["taskArn"] for t in out["tasks"]]
        assert len(set(arns)) == 6
        tasks = wait_tasks(ecs, dc.cluster_name, arns,
                           lambda t: t["lastStatus"] == "RUNNING", TASKS_RUNNING_WITHIN,
                           "all six tasks RUNNING",
                           give_up=lambda t: t["lastStatus"] == "STOPPED")
    bad = rec.take()
    assert not bad, format_violations(bad)
    by_instance: dict[str, list[str]] = {}
    for t in tasks:
        by_instance.setdefault(t["containerInstanceArn"], []).append(t["taskArn"])
    return by_instance


# -- helpers ------------------------------------------------------------------

def describe_tasks(ecs, cluster, arns):
    out = []
    for i in range(0, len(arns), 100):
        r = ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])
        assert r["failures"] == [], r["failures"]
        out += r["tasks"]
    return out


def wait_tasks(ecs, cluster, arns, cond, within, what, give_up=None):
    """Polls until ``cond`` holds for every task; returns them. Fails at
    once when ``give_up`` holds for one."""
    deadline = time.monotonic() + within
    while True:
        tasks = describe_tasks(ecs, cluster, arns)
        if all(cond(t) for t in tasks):
            return tasks
        gone = [t for t in tasks if give_up and give_up(t)]
        assert not gone, f"not {what}: {gone}"
        assert time.monotonic() < deadline, (
            f"not {what} within {within}s: "
            f"{[(t['taskArn'].rsplit('/', 1)[1], t['lastStatus']) for t in tasks]}")
        time.sleep(0.5)


def describe_instance(ecs, cluster, arn):
    r = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])
    assert r["failures"] == [], r["failures"]
    return r["containerInstances"][0]


def wait_instance(ecs, cluster, arn, cond, within, what):
    deadline = time.monotonic() + within
    while True:
        ci = describe_instance(ecs, cluster, arn)
        if cond(ci):
            return ci
        assert time.monotonic() < deadline, f"instance not {what} within {within}s: {ci}"
        time.sleep(0.5)


def resource(ci, which, name):
    return next(r["integerValue"] for r in ci[which] if r["name"] == name)


def runtime_ids(tasks):
    """{(task ARN, container name): runtimeId} as berth reports them."""
    return {(t["taskArn"], c["name"]): c.get("runtimeId")
            for t in tasks for c in t["containers"]}


def host_view(dc, agent):
    """{(task ARN, container name): [runtime ids]} of what really runs on
    the agent's host, and everything found there (running or not)."""
    seen = dc.task_containers(agent)
    running = {k: [c["id"] for c in v if c["running"]] for k, v in seen.items()}
    return {k: v for k, v in running.items() if v}, seen


def assert_host_runs_exactly(dc, agent, tasks):
    """The agent's host runs one container per task container, the one
    berth reports (same runtime id), and has never had another for it (a
    restart would leave a second one); it runs nothing else."""
    running, seen = host_view(dc, agent)
    expected = runtime_ids(tasks)
    assert set(running) == set(expected), (
        f"{agent.name} runs {sorted(running)}, berth says {sorted(expected)}; all: {seen}")
    for key, ids in running.items():
        assert ids == [expected[key]], f"{key}: host runs {ids}, berth reports {expected[key]}"
        assert len(seen[key]) == 1, f"{key}: more than one container: {seen[key]}"


# -- the tests ----------------------------------------------------------------

def test_three_agents_register_as_distinct_hosts(dc, ecs):
    with dc.explain():
        arns = ecs.list_container_instances(cluster=dc.cluster_name)["containerInstanceArns"]
        assert sorted(arns) == sorted(a.instance_arn for a in dc.agents)
        cis = ecs.describe_container_instances(cluster=dc.cluster_name,
                                               containerInstances=arns)["containerInstances"]
        assert len(cis) == 3
        for ci in cis:
            agent = dc.agent_for(ci["containerInstanceArn"])
            assert ci["status"] == "ACTIVE" and ci["agentConnected"] is True, ci
            attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
            assert attrs["berth.runtime"] == RUNTIME
            assert attrs["ecs.availability-zone"] == agent.availability_zone
            assert ci["runningTasksCount"] == 0 and ci["pendingTasksCount"] == 0
        # ECS shows no address on a container instance (it is the EC2
        # instance's), and berth registers none: the hosts' own addresses
        # are Docker's to tell.
        ips = [a.ip() for a in dc.agents]
        assert all(ips) and len(set(ips)) == 3, ips


def test_run_task_spreads_six_tasks_over_three_hosts(dc, ecs, placed):
    with dc.explain():
        assert sorted(placed) == sorted(a.instance_arn for a in dc.agents)
        assert Counter(len(v) for v in placed.values()) == {2: 3}, placed
        for arn, task_arns in placed.items():
            tasks = describe_tasks(ecs, dc.cluster_name, task_arns)
            assert all(t["lastStatus"] == "RUNNING" and t["launchType"] == "EC2"
                       for t in tasks), tasks
            assert all(c["lastStatus"] == "RUNNING" and c.get("runtimeId")
                       for t in tasks for c in t["containers"]), tasks
            ci = describe_instance(ecs, dc.cluster_name, arn)
            assert ci["runningTasksCount"] == 2, ci
            # Each task really runs on the host it was placed on, once.
            assert_host_runs_exactly(dc, dc.agent_for(arn), tasks)


def test_a_stopped_host_is_disconnected_then_its_tasks_are_stopped(dc, ecs, placed):
    with dc.explain():
        victim = dc.agents[0]
        others = [a for a in dc.agents if a is not victim]
        victim_tasks = placed[victim.instance_arn]
        other_arns = [t for a in others for t in placed[a.instance_arn]]
        before = runtime_ids(describe_tasks(ecs, dc.cluster_name, other_arns))

        on_host = host_view(dc, victim)[0]
        victim.stop()
        # A real host failure takes its containers along: with the Docker
        # runtime they are the host daemon's siblings of the agent, so they
        # are killed here (by the agent's owner label).
        killed = dc.host_goes_away(victim)
        if RUNTIME == "process":
            assert not victim.running()
        else:
            assert {cid for ids in on_host.values() for cid in ids} <= set(killed)
        assert {k[0] for k in on_host} == set(victim_tasks), on_host
        assert dc.still_running_for(victim) == []

        ci = wait_instance(ecs, dc.cluster_name, victim.instance_arn,
                           lambda ci: ci["agentConnected"] is False, DISCONNECTED_WITHIN,
                           "disconnected")
        assert ci["status"] == "ACTIVE"
        stopped = wait_tasks(ecs, dc.cluster_name, victim_tasks,
                             lambda t: t["lastStatus"] == "STOPPED", LOST_WITHIN,
                             "STOPPED after the agent was lost")
        for t in stopped:
            assert t["desiredStatus"] == "STOPPED"
            assert t["stopCode"] == "TerminationNotice", t
            assert "has not been heard from" in t["stoppedReason"], t
            assert victim.instance_arn in t["stoppedReason"], t
            assert "stoppedAt" in t
        # Their resources are freed; the instance stays, disconnected.
        ci = describe_instance(ecs, dc.cluster_name, victim.instance_arn)
        assert ci["agentConnected"] is False and ci["runningTasksCount"] == 0, ci
        assert resource(ci, "remainingResources", "MEMORY") == \
            resource(ci, "registeredResources", "MEMORY")
        listed = ecs.list_tasks(cluster=dc.cluster_name,
                                containerInstance=victim.instance_arn)["taskArns"]
        assert listed == []

        # The other hosts' tasks are untouched: same tasks, same containers.
        tasks = describe_tasks(ecs, dc.cluster_name, other_arns)
        assert all(t["lastStatus"] == "RUNNING" for t in tasks), tasks
        assert runtime_ids(tasks) == before
        for a in others:
            assert_host_runs_exactly(
                dc, a, [t for t in tasks if t["containerInstanceArn"] == a.instance_arn])
            assert describe_instance(ecs, dc.cluster_name, a.instance_arn)["agentConnected"]


def test_a_host_cut_off_within_the_grace_loses_nothing(dc, ecs, placed):
    with dc.explain():
        target = dc.agents[1]
        assert target.running()
        mine = placed[target.instance_arn]
        # Every task still running anywhere (an earlier test may have
        # stopped a host's), and what runs for them.
        live = [t for arns in placed.values() for t in arns]
        live = [t["taskArn"] for t in describe_tasks(ecs, dc.cluster_name, live)
                if t["lastStatus"] == "RUNNING"]
        assert set(mine) <= set(live)
        before_tasks = describe_tasks(ecs, dc.cluster_name, live)
        before = runtime_ids(before_tasks)
        live_agents = [a for a in dc.agents if a.running()]

        target.disconnect()
        assert target.ip() is None
        cut_until = time.monotonic() + CUT
        while time.monotonic() < cut_until:
            # Within the grace the host counts as connected all along.
            ci = describe_instance(ecs, dc.cluster_name, target.instance_arn)
            assert ci["agentConnected"] is True, ci
            time.sleep(0.5)
        target.reconnect()
        assert target.ip() == target.ips[-1], "the host did not get its address back"

        # Nothing was stopped, started twice or restarted: the same tasks
        # run, with the same containers, one each.
        tasks = describe_tasks(ecs, dc.cluster_name, live)
        assert all(t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"
                   for t in tasks), tasks
        assert runtime_ids(tasks) == before
        running = ecs.list_tasks(cluster=dc.cluster_name, desiredStatus="RUNNING")["taskArns"]
        assert sorted(running) == sorted(live)
        for a in live_agents:
            assert_host_runs_exactly(
                dc, a, [t for t in tasks if t["containerInstanceArn"] == a.instance_arn])

        # The agent still takes orders and reports: a StopTask issued now
        # takes effect on its host.
        stop, keep = mine
        ecs.stop_task(cluster=dc.cluster_name, task=stop, reason="after the partition")
        [t] = wait_tasks(ecs, dc.cluster_name, [stop], lambda t: t["lastStatus"] == "STOPPED",
                         STOP_WITHIN, "STOPPED after StopTask")
        assert t["stopCode"] == "UserInitiated" and t["stoppedReason"] == "after the partition"
        # Reported by the agent (a lost agent's tasks have no exit code).
        assert t["containers"][0].get("exitCode") is not None, t
        ci = describe_instance(ecs, dc.cluster_name, target.instance_arn)
        assert ci["agentConnected"] is True and ci["runningTasksCount"] == 1, ci
        deadline = time.monotonic() + STOP_WITHIN
        while True:
            running_here, seen = host_view(dc, target)
            if not any(k[0] == stop for k in running_here):
                break
            assert time.monotonic() < deadline, f"{stop} still runs on {target.name}: {seen}"
            time.sleep(0.5)
        assert_host_runs_exactly(dc, target, describe_tasks(ecs, dc.cluster_name, [keep]))
        tasks = describe_tasks(ecs, dc.cluster_name, [t for t in live if t != stop])
        assert all(t["lastStatus"] == "RUNNING" for t in tasks), tasks
        assert runtime_ids(tasks) == {k: v for k, v in before.items() if k[0] != stop}


def test_a_host_that_comes_back_renumbered_loses_nothing(dc, ecs, placed):
    """The cut host returns with another address (its old TCP connections
    now lead nowhere): the agent must notice, reconnect and carry on, with
    its tasks neither stopped nor started twice."""
    with dc.explain():
        target = dc.agents[2]
        assert target.running()
        mine = placed[target.instance_arn]
        before = runtime_ids(describe_tasks(ecs, dc.cluster_name, mine))
        target.disconnect()
        time.sleep(CUT)
        target.reconnect(same_address=False)
        assert target.ip() != target.ips[-1], "Docker gave the host its old address back"
        # It is heard from again (over a new connection) ...
        deadline = time.monotonic() + GRACE + LOST
        marker = time.monotonic()
        while True:
            ci = describe_instance(ecs, dc.cluster_name, target.instance_arn)
            if ci["agentConnected"] and time.monotonic() - marker > 2:
                break
            assert time.monotonic() < deadline, f"the renumbered agent never came back: {ci}"
            time.sleep(0.5)
        # ... and its tasks ran on untouched.
        tasks = describe_tasks(ecs, dc.cluster_name, mine)
        assert all(t["lastStatus"] == "RUNNING" for t in tasks), tasks
        assert runtime_ids(tasks) == before
        assert_host_runs_exactly(dc, target, tasks)
        stop = mine[0]
        ecs.stop_task(cluster=dc.cluster_name, task=stop, reason="after renumbering")
        [t] = wait_tasks(ecs, dc.cluster_name, [stop], lambda t: t["lastStatus"] == "STOPPED",
                         STOP_WITHIN, "STOPPED after StopTask")
        assert t["stopCode"] == "UserInitiated"
        assert t["containers"][0].get("exitCode") is not None, t
