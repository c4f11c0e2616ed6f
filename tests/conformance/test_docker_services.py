"""ECS services on real Docker containers.

One `berth server` and three `berth agent --runtime docker` containers on a
private Docker network (``docker_cluster.DockerCluster``, one per module);
services of EC2 tasks whose containers are siblings of the agents on the
host's Docker Engine (image ``berth-test/busybox:latest``, built locally:
nothing is pulled). They are driven with the unchanged aws-cli and boto3,
every response validated strictly by the suite's hooks (the watcher
thread's client included).

What is proven, each by one test:

1. a rolling update (minimumHealthyPercent 50, maximumPercent 200) of four
   tasks, watched every 200 ms: never fewer than 2 healthy tasks, never
   more than 8 running or pending; it ends COMPLETED and stable (and the
   service says it reached a steady state only once the deployment
   completed);
2. a revision whose container exits at once trips the circuit breaker and
   the service rolls back to the revision before;
3. a task whose container is `docker kill`ed is replaced;
4. a DAEMON service runs one task per instance, on a host that joins later
   too, and leaves a DRAINING instance;
5. a protected task survives a scale-in;
6. `aws ecs delete-service --force` drains the service to INACTIVE and
   stops all its containers.

Where berth is found wrong in code this suite does not own (crates/api,
crates/scheduler, crates/core), the test is marked xfail(strict=True) with
the bug in its reason: it starts passing, and so failing as XPASS, once
the bug is fixed.

Docker is required: without an engine the module fails, unless
``BERTH_SKIP_DOCKER_TESTS=1``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Callable, Optional

import pytest

import harness
from docker_cluster import LABEL_OWNER, LABEL_TASK_ARN, TASK_IMAGE, DockerCluster, docker
from harness import Cli
# The session's Docker check and image build, and the multi-host helpers.
from test_multihost import describe_instance, describe_tasks, docker_images  # noqa: F401

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

# Deadlines. The machine may have two cores, shared by the server, three or
# four agents, the tasks' containers and the Docker Engine itself: a task
# takes a few seconds from launch to RUNNING there (create, start, report),
# a Docker health check says HEALTHY only after its first interval (5 s),
# and a stop waits for the container to exit. Every bound is many times
# what a quiet machine needs; the tests poll and go on as soon as a
# condition holds, so a generous bound costs nothing when things are fast.
#: A new service (or a scaled one) reaching a steady state.
STEADY_WITHIN = 180
#: A rolling update or a circuit breaker's rollback, to its end.
ROLLOUT_WITHIN = 240
#: A task stopped (by the scheduler, or by its container's death) to
#: STOPPED, and its replacement RUNNING.
REPLACED_WITHIN = 120
#: A host that joins: its agent registers, then gets its DAEMON task.
JOIN_WITHIN = 120
#: The aws-cli waiters poll every 15 s (their model's delay, which the v1
#: CLI cannot change); the subprocess gets this long.
CLI_WAIT_TIMEOUT = 600
#: The watcher's period, as the acceptance criterion says.
WATCH_PERIOD = 0.2
#: Polling period of the other waits.
POLL = 0.25


@pytest.fixture(scope="module")
def dc(docker_images, tmp_path_factory):  # noqa: F811 - the imported fixture
    cluster = DockerCluster(tmp_path_factory.mktemp("services"), agents=3, runtime="docker")
    with cluster:
        yield cluster
        server_alive = cluster.server.alive()
        diagnostics = "" if server_alive else cluster.diagnostics()
    assert cluster.leftovers() == [], "teardown left these behind"
    assert server_alive, f"the berth server container died during the run:\n{diagnostics}"


@pytest.fixture
def ecs(dc, recorder):
    """A validating boto3 client of the server container."""
    return dc.server.client(recorder=recorder)


@pytest.fixture
def cli(dc, recorder, tmp_path):
    """The real aws-cli against the server container, validated by the plugin."""
    return Cli(dc.server, tmp_path / "cli", recorder)


@pytest.fixture
def services(dc, ecs):
    """Names of the services a test creates: whatever is still ACTIVE when
    it ends is deleted (force), so its tasks do not outlive the test."""
    made: list[str] = []
    yield made
    for s in made:
        found = ecs.describe_services(cluster=dc.cluster_name, services=[s])["services"]
        if found and found[0]["status"] == "ACTIVE":
            ecs.delete_service(cluster=dc.cluster_name, service=s, force=True)


# -- helpers ------------------------------------------------------------------

def sleeper(name: str = "main", **extra) -> dict:
    """A container that runs until it is told to stop (and then exits 0 at
    once: its TERM trap)."""
    return {"name": name, "image": TASK_IMAGE, "essential": True, "memory": 32,
            "entryPoint": ["/bin/sh", "-c"],
            "command": ["trap 'exit 0' TERM; sleep 3600 & wait"],
            "stopTimeout": 5, **extra}


#: A Docker health check that passes: HEALTHY once its first probe ran
#: (an interval after the container started), UNKNOWN until then.
HEALTH_CHECK = {"command": ["CMD-SHELL", "test -d /proc/1"], "interval": 5, "timeout": 3,
                "retries": 3, "startPeriod": 0}


def register(ecs, family: str, *containers: dict) -> str:
    """Registers an EC2 (bridge) revision of ``family``; returns its ARN."""
    out = ecs.register_task_definition(family=family, networkMode="bridge",
                                       requiresCompatibilities=["EC2"],
                                       containerDefinitions=list(containers))
    return out["taskDefinition"]["taskDefinitionArn"]


def describe_service(ecs, cluster: str, service: str) -> dict:
    r = ecs.describe_services(cluster=cluster, services=[service])
    assert r["failures"] == [], r["failures"]
    return r["services"][0]


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def list_service_tasks(ecs, cluster: str, service: str) -> list[str]:
    """Every task of the service ListTasks knows: desired RUNNING and
    desired STOPPED (on their way out, or stopped)."""
    arns = []
    for desired in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(
                cluster=cluster, serviceName=service, desiredStatus=desired):
            arns += page["taskArns"]
    return sorted(set(arns))


def service_tasks(ecs, cluster: str, service: str) -> list[dict]:
    return describe_tasks(ecs, cluster, list_service_tasks(ecs, cluster, service))


def live(tasks: list[dict]) -> list[dict]:
    """Running or pending: every task whose lastStatus is not STOPPED."""
    return [t for t in tasks if t["lastStatus"] != "STOPPED"]


def brief(tasks: list[dict]) -> list[tuple]:
    """Tasks in a failure message: id, revision, statuses, health."""
    return [(task_id(t["taskArn"]), t["taskDefinitionArn"].rsplit(":", 1)[1], t["lastStatus"],
             t["desiredStatus"], t.get("healthStatus"), t.get("stopCode"))
            for t in tasks]


def messages(service: dict) -> list[str]:
    """The service's event messages, newest first."""
    return [e["message"] for e in service["events"]]


def poll(what: str, probe: Callable[[], Any], within: float, period: float = POLL,
         on_sample: Optional[Callable[[Any], None]] = None,
         explain: Callable[[], str] = lambda: "") -> Any:
    """Calls ``probe`` until it returns something truthy, which is returned.
    ``probe`` may return ``(ok, last)``: then ``last`` is shown on failure."""
    deadline = time.monotonic() + within
    while True:
        got = probe()
        ok, last = got if isinstance(got, tuple) and len(got) == 2 else (got, got)
        if on_sample:
            on_sample(last)
        if ok:
            return last
        assert time.monotonic() < deadline, \
            f"timed out after {within}s waiting for {what}; last: {last!r}\n{explain()}"
        time.sleep(period)


def steady(ecs, cluster: str, service: str, task_definition: str, desired: int):
    """A probe: the service runs ``desired`` tasks of ``task_definition``,
    all RUNNING, under one deployment, COMPLETED (what the ServicesStable
    waiter and an operator both call done). Returns (ok, (service, live
    tasks))."""
    s = describe_service(ecs, cluster, service)
    tasks = live(service_tasks(ecs, cluster, service))
    deployments = s["deployments"]
    ok = (s["status"] == "ACTIVE"
          and s["taskDefinition"] == task_definition
          and s["desiredCount"] == desired
          and s["runningCount"] == desired and s["pendingCount"] == 0
          and len(deployments) == 1
          and deployments[0]["status"] == "PRIMARY"
          and deployments[0]["rolloutState"] == "COMPLETED"
          and deployments[0]["taskDefinition"] == task_definition
          and len(tasks) == desired
          and all(t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"
                  and t["taskDefinitionArn"] == task_definition for t in tasks))
    shown = {"taskDefinition": s["taskDefinition"], "desired": s["desiredCount"],
             "running": s["runningCount"], "pending": s["pendingCount"],
             "deployments": [(d["id"], d["status"], d["taskDefinition"].rsplit(":", 1)[1],
                              d["rolloutState"], d["runningCount"]) for d in deployments],
             "tasks": brief(tasks), "events": messages(s)[:6]}
    return ok, ((s, tasks) if ok else shown)


def wait_steady(ecs, dc, service: str, task_definition: str, desired: int,
                within: float = STEADY_WITHIN) -> tuple[dict, list[dict]]:
    with dc.explain():
        return poll(f"{service} steady on {task_definition} with {desired} tasks",
                    lambda: steady(ecs, dc.cluster_name, service, task_definition, desired),
                    within)


def wait_healthy(ecs, dc, service: str, n: int, within: float = STEADY_WITHIN) -> list[dict]:
    """Waits until the service's ``n`` live tasks are all HEALTHY; returns them."""
    def probe():
        tasks = live(service_tasks(ecs, dc.cluster_name, service))
        ok = len(tasks) == n and all(t.get("healthStatus") == "HEALTHY" for t in tasks)
        return ok, (tasks if ok else brief(tasks))
    with dc.explain():
        return poll(f"{n} HEALTHY tasks of {service}", probe, within)


def wait_event(ecs, dc, service: str, message: str, since: float,
               within: float = STEADY_WITHIN) -> dict:
    """Waits until the service said ``message`` at or after ``since``
    (epoch seconds; the scheduler's pass writes its events a moment after
    the counts it read); returns the service."""
    def probe():
        s = describe_service(ecs, dc.cluster_name, service)
        said = [e["message"] for e in s["events"] if e["createdAt"].timestamp() >= since]
        return message in said, (s if message in said else said)
    with dc.explain():
        return poll(f"{service} saying {message!r}", probe, within)


def create_service(ecs, services: list[str], cluster: str, name: str, task_definition: str,
                   **kw) -> dict:
    services.append(name)
    return ecs.create_service(cluster=cluster, serviceName=name,
                              taskDefinition=task_definition, launchType="EC2", **kw)["service"]


def host_containers(dc, task_arn: str) -> list[dict]:
    """The task's containers as the host's Engine has them (by berth's
    task-ARN label): ``{"id", "running", "labels"}`` each."""
    return [c for v in dc.docker_task_containers(f"label={LABEL_TASK_ARN}={task_arn}").values()
            for c in v]


def assert_runs_on_host(dc, task: dict) -> None:
    """Each of the task's containers runs on the host, as the container
    berth reports (same runtime id), and only that one."""
    found = host_containers(dc, task["taskArn"])
    running = sorted(c["id"] for c in found if c["running"])
    reported = sorted(c["runtimeId"] for c in task["containers"])
    assert running == reported and len(found) == len(reported), \
        f"{task['taskArn']}: berth reports {reported}, the host has {found}"


def assert_stopped_on_host(dc, task_arn: str) -> None:
    found = host_containers(dc, task_arn)
    assert not [c for c in found if c["running"]], f"{task_arn} still runs on the host: {found}"


def docker_health(container_id: str) -> Optional[str]:
    r = docker("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
               container_id, check=False)
    return r.stdout.strip() or None


class Watcher(threading.Thread):
    """Polls DescribeServices and the service's tasks (ListTasks, then
    DescribeTasks) every ``period`` with a client of its own, and records
    what it saw: healthy tasks (RUNNING and not on their way out, and
    HEALTHY where the task's revision has a health check) and live ones
    (lastStatus not STOPPED)."""

    def __init__(self, client, cluster: str, service: str, health_checked: set[str],
                 period: float = WATCH_PERIOD):
        super().__init__(name=f"watch-{service}", daemon=True)
        self.ecs, self.cluster, self.service = client, cluster, service
        self.health_checked = health_checked
        self.period = period
        self.samples: list[dict] = []
        self.error: Optional[BaseException] = None
        self._halt = threading.Event()
        #: Every task seen, to its creation time.
        self._known: dict[str, float] = {}

    def healthy(self, t: dict) -> bool:
        return (t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"
                and (t["taskDefinitionArn"] not in self.health_checked
                     or t.get("healthStatus") == "HEALTHY"))

    def sample(self) -> dict:
        started = time.monotonic()
        s = describe_service(self.ecs, self.cluster, self.service)
        # A task is never forgotten once seen, so one that changes its
        # desired status between the two listings is still counted.
        for arn in list_service_tasks(self.ecs, self.cluster, self.service):
            self._known.setdefault(arn, float("inf"))
        # DescribeTasks reads its tasks one after the other, not as one
        # snapshot: oldest first, so that a newer task turning healthy and
        # an older one stopped for it, both between two reads, show as one
        # more healthy task, never one less.
        arns = sorted(self._known, key=lambda a: (self._known[a], a))
        tasks = describe_tasks(self.ecs, self.cluster, arns)
        for t in tasks:
            self._known[t["taskArn"]] = t["createdAt"].timestamp()
        return {
            "at": started,
            "healthy": sum(1 for t in tasks if self.healthy(t)),
            "live": len(live(tasks)),
            "service": (s["runningCount"], s["pendingCount"]),
            "deployments": [(d["id"], d["status"], d["taskDefinition"], d["rolloutState"])
                            for d in s["deployments"]],
            "tasks": brief(live(tasks)),
        }

    def start(self) -> None:
        """Takes the first sample, then goes on polling in the background."""
        self.samples.append(self.sample())
        super().start()

    def run(self) -> None:
        try:
            while not self._halt.wait(
                    max(0.0, self.samples[-1]["at"] + self.period - time.monotonic())):
                self.samples.append(self.sample())
        except BaseException as e:  # noqa: BLE001 - re-raised by stop()
            self.error = e

    def stop(self) -> list[dict]:
        self._halt.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the watcher did not stop"
        if self.error is not None:
            raise self.error
        # And one last look, at the state the test waited for.
        self.samples.append(self.sample())
        return self.samples


# -- 1. rolling update --------------------------------------------------------

def test_rolling_update_keeps_minimum_healthy_and_maximum_percent(dc, ecs, cli, services,
                                                                   recorder):
    with dc.explain():
        family, svc = harness.unique("roll"), harness.unique("roll")
        rev1 = register(ecs, family, sleeper(environment=[{"name": "REV", "value": "1"}]))
        rev2 = register(ecs, family, sleeper(environment=[{"name": "REV", "value": "2"}],
                                             healthCheck=HEALTH_CHECK))
        create_service(ecs, services, dc.cluster_name, svc, rev1, desiredCount=4,
                       deploymentConfiguration={"minimumHealthyPercent": 50,
                                                "maximumPercent": 200})
        _, before = wait_steady(ecs, dc, svc, rev1, 4)
        old = {t["taskArn"] for t in before}
        first = describe_service(ecs, dc.cluster_name, svc)["deployments"][0]["id"]

        watcher = Watcher(dc.server.client(recorder=recorder), dc.cluster_name, svc, {rev2})
        watcher.start()
        try:
            updated = ecs.update_service(cluster=dc.cluster_name, service=svc,
                                         taskDefinition=rev2)["service"]
            new = updated["deployments"][0]
            updated_at = new["createdAt"]
            assert new["status"] == "PRIMARY" and new["taskDefinition"] == rev2
            assert new["id"] != first and new["rolloutState"] == "IN_PROGRESS"
            s, after = wait_steady(ecs, dc, svc, rev2, 4, within=ROLLOUT_WITHIN)
        finally:
            samples = watcher.stop()

        # What the watcher saw, every 200 ms from before the update to the end.
        assert len(samples) >= 10, samples
        assert {d[2] for d in samples[0]["deployments"]} == {rev1}, samples[0]
        assert samples[-1]["deployments"] == [(new["id"], "PRIMARY", rev2, "COMPLETED")], \
            samples[-1]
        both = [x for x in samples if len({t[1] for t in x["tasks"]}) == 2]
        assert both, "the watcher never saw the two revisions side by side"
        too_few = [x for x in samples if x["healthy"] < 2]
        assert not too_few, f"fewer than 2 healthy tasks (minimumHealthyPercent 50): {too_few}"
        too_many = [x for x in samples if x["live"] > 8 or sum(x["service"]) > 8]
        assert not too_many, f"more than 8 tasks running or pending (maximumPercent 200): " \
                             f"{too_many}"

        # One deployment, COMPLETED, on revision 2; and the CLI agrees it is stable.
        [d] = s["deployments"]
        assert d["id"] == new["id"] and d["rolloutStateReason"] == \
            f"ECS deployment {new['id']} completed."
        cli.run("ecs", "wait", "services-stable", "--cluster", dc.cluster_name,
                "--services", svc, timeout=CLI_WAIT_TIMEOUT)
        # (In which order these two come is test_steady_state_waits_for_the_deployment's.)
        s = wait_event(ecs, dc, svc, f"(service {svc}) has reached a steady state.",
                       updated_at.timestamp())
        since = [e["message"] for e in s["events"] if e["createdAt"] >= updated_at]
        assert f"(service {svc}) (deployment {new['id']}) deployment completed." in since, since

        # The new tasks run on the hosts, HEALTHY by Docker's own check.
        for t in after:
            assert t["startedBy"] == new["id"] and t["group"] == f"service:{svc}"
            assert t["healthStatus"] == "HEALTHY"
            assert_runs_on_host(dc, t)
            assert docker_health(t["containers"][0]["runtimeId"]) == "healthy"
        assert not old & {t["taskArn"] for t in after}
        # The old ones were stopped by the scheduler, and are gone from the hosts.
        for t in describe_tasks(ecs, dc.cluster_name, sorted(old)):
            assert t["lastStatus"] == "STOPPED", t
            assert t["stopCode"] == "ServiceSchedulerInitiated", t
            assert t["stoppedReason"] == f"Scaling activity initiated by (deployment {first})", t
            assert_stopped_on_host(dc, t["taskArn"])


def test_steady_state_waits_for_the_deployment(dc, ecs, services):
    """Replacing every task at once (minimumHealthyPercent 0) with a
    revision whose health check first runs 5 s after start: the new tasks
    are RUNNING, not yet HEALTHY, for those 5 s. The service reaches a
    steady state when the deployment completes, not before."""
    with dc.explain():
        family, svc = harness.unique("steady"), harness.unique("steady")
        rev1 = register(ecs, family, sleeper())
        rev2 = register(ecs, family, sleeper(healthCheck=HEALTH_CHECK))
        create_service(ecs, services, dc.cluster_name, svc, rev1, desiredCount=2,
                       deploymentConfiguration={"minimumHealthyPercent": 0,
                                                "maximumPercent": 100})
        wait_steady(ecs, dc, svc, rev1, 2)
        new = ecs.update_service(cluster=dc.cluster_name, service=svc,
                                 taskDefinition=rev2)["service"]["deployments"][0]
        s, tasks = wait_steady(ecs, dc, svc, rev2, 2, within=ROLLOUT_WITHIN)
        assert all(t["healthStatus"] == "HEALTHY" for t in tasks), brief(tasks)
        completed = f"(service {svc}) (deployment {new['id']}) deployment completed."
        steady_ = f"(service {svc}) has reached a steady state."
        s = wait_event(ecs, dc, svc, steady_, new["createdAt"].timestamp())
        since = [e for e in s["events"] if e["createdAt"] >= new["createdAt"]]
        texts = [e["message"] for e in since]
        assert completed in texts and steady_ in texts, texts
        # Newest first: the steady state comes after the completion, and
        # was not said before it.
        first_steady = max(i for i, t in enumerate(texts) if t == steady_)
        assert first_steady < texts.index(completed), \
            [(e["createdAt"].isoformat(), e["message"]) for e in since]


# -- 2. circuit breaker ---------------------------------------------------------

def test_circuit_breaker_rolls_back_a_revision_that_cannot_start(dc, ecs, cli, services):
    with dc.explain():
        family, svc = harness.unique("breaker"), harness.unique("breaker")
        good = register(ecs, family, sleeper())
        bad = register(ecs, family, {"name": "main", "image": TASK_IMAGE, "essential": True,
                                     "memory": 32, "entryPoint": ["/bin/sh", "-c"],
                                     "command": ["echo no luck; exit 1"]})
        # One task: the bad revision's tasks are tried one after the other
        # (maximumPercent 200 leaves room for one more), so the breaker's
        # threshold (3) is reached by the third one's exit.
        desired = 1
        create_service(ecs, services, dc.cluster_name, svc, good, desiredCount=desired,
                       deploymentConfiguration={
                           "minimumHealthyPercent": 50, "maximumPercent": 200,
                           "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
        wait_steady(ecs, dc, svc, good, desired)
        good_id = describe_service(ecs, dc.cluster_name, svc)["deployments"][0]["id"]

        bad_id = ecs.update_service(cluster=dc.cluster_name, service=svc,
                                    taskDefinition=bad)["service"]["deployments"][0]["id"]
        assert bad_id != good_id
        # Every deployment's states as DescribeServices showed them, polled
        # every 200 ms until the service is back on the good revision.
        seen: dict[str, list[tuple]] = {}

        def record(_):
            for d in describe_service(ecs, dc.cluster_name, svc)["deployments"]:
                state = (d["status"], d["taskDefinition"], d["rolloutState"],
                         d.get("rolloutStateReason"))
                if seen.setdefault(d["id"], [None])[-1] != state:
                    seen[d["id"]].append(state)
            # A revision whose tasks all die at once never completes.
            assert not any(x and x[2] == "COMPLETED" for x in seen.get(bad_id, [])), \
                f"the deployment of the crashing revision COMPLETED: {seen}"

        s, tasks = poll("the rollback to the good revision",
                        lambda: steady(ecs, dc.cluster_name, svc, good, desired),
                        ROLLOUT_WITHIN, period=WATCH_PERIOD, on_sample=record,
                        explain=lambda: f"deployments seen: {seen}")
        record(None)

        # The rollback reuses the good deployment's id (with ECS's reason
        # while it is in progress), and completes.
        for status, td, rollout, reason in seen[good_id][1:]:
            if status == "PRIMARY" and rollout == "IN_PROGRESS":
                assert reason == \
                    f"ECS deployment circuit breaker: rolling back to deploymentId {good_id}."
        [d] = s["deployments"]
        assert d["id"] == good_id and d["rolloutState"] == "COMPLETED", d
        events = messages(s)
        failed = f"(service {svc}) (deployment {bad_id}) deployment failed: tasks failed to start."
        back = f"(service {svc}) rolling back to deployment {good_id}."
        done = f"(service {svc}) (deployment {good_id}) deployment completed."
        assert failed in events and back in events and done in events, events
        # Newest first: completed again, after rolling back, after failing.
        assert events.index(done) < events.index(back) < events.index(failed), events
        cli.run("ecs", "wait", "services-stable", "--cluster", dc.cluster_name,
                "--services", svc, timeout=CLI_WAIT_TIMEOUT)

        # The bad revision's tasks really ran on the hosts and exited 1
        # (those the breaker counted); any still starting when it tripped
        # was stopped by the scheduler.
        all_tasks = service_tasks(ecs, dc.cluster_name, svc)
        tried = [t for t in all_tasks if t["taskDefinitionArn"] == bad]
        exited = [t for t in tried if t.get("stopCode") == "EssentialContainerExited"]
        assert len(exited) >= 3, brief(all_tasks)
        for t in tried:
            assert t["lastStatus"] == "STOPPED" and t["startedBy"] == bad_id, t
            assert t["stopCode"] in ("EssentialContainerExited", "ServiceSchedulerInitiated"), t
            assert_stopped_on_host(dc, t["taskArn"])
        for t in exited:
            assert t["containers"][0].get("exitCode") == 1, t
        for t in tasks:
            assert_runs_on_host(dc, t)

        # The failed deployment's record says what happened to it.
        arns = ecs.list_service_deployments(cluster=dc.cluster_name,
                                            service=svc)["serviceDeployments"]
        records = ecs.describe_service_deployments(
            serviceDeploymentArns=[a["serviceDeploymentArn"] for a in arns]
        )["serviceDeployments"]
        number = bad_id.split("/")[1]
        [rec] = [r for r in records
                 if r["targetServiceRevision"]["arn"].endswith(f"/{number}")]
        assert rec["status"] == "ROLLBACK_SUCCESSFUL", rec
        assert rec["deploymentCircuitBreaker"]["status"] == "TRIGGERED", rec
        assert rec["deploymentCircuitBreaker"]["failureCount"] >= 3, rec
        assert rec["rollback"]["serviceRevisionArn"].endswith("/" + good_id.split("/")[1]), rec

        # And DescribeServices showed the failed deployment FAILED, next to
        # the PRIMARY rolling back to the good one (real ECS lists it, FAILED,
        # while the rollback runs; it is not the PRIMARY any more).
        failed_states = [x for x in seen[bad_id] if x and x[2] == "FAILED"]
        assert failed_states, f"DescribeServices never showed {bad_id} FAILED: {seen}"
        assert seen[bad_id][-1] in failed_states, f"{bad_id} did not end FAILED: {seen}"
        for status, td, _, reason in failed_states:
            assert status != "PRIMARY" and td == bad, failed_states
            assert reason == "ECS deployment circuit breaker: tasks failed to start.", reason


# -- 3. a killed container -----------------------------------------------------

def test_a_task_whose_container_is_killed_is_replaced(dc, ecs, cli, services):
    with dc.explain():
        family, svc = harness.unique("kill"), harness.unique("kill")
        # With a health check, as a service's tasks usually have: their
        # container's death is no failed health check.
        td = register(ecs, family, sleeper(healthCheck=HEALTH_CHECK))
        create_service(ecs, services, dc.cluster_name, svc, td, desiredCount=2)
        wait_steady(ecs, dc, svc, td, 2)
        victim, other = wait_healthy(ecs, dc, svc, 2)
        before = time.time() - 1  # (the server's clock, to the second)
        docker("kill", victim["containers"][0]["runtimeId"])

        def replaced():
            all_tasks = service_tasks(ecs, dc.cluster_name, svc)
            v = next(t for t in all_tasks if t["taskArn"] == victim["taskArn"])
            fresh = [t for t in all_tasks if t["taskArn"] not in
                     (victim["taskArn"], other["taskArn"]) and t["lastStatus"] == "RUNNING"]
            return v["lastStatus"] == "STOPPED" and len(fresh) == 1, (v, fresh, brief(all_tasks))

        v, [fresh], _ = poll("the killed task STOPPED and a new one RUNNING", replaced,
                             REPLACED_WITHIN)
        assert v["stopCode"] == "EssentialContainerExited", v
        assert v["stoppedReason"] == "Essential container in task exited", v
        assert v["containers"][0]["exitCode"] == 137, v  # SIGKILL
        wait_steady(ecs, dc, svc, td, 2, within=REPLACED_WITHIN)
        now = wait_healthy(ecs, dc, svc, 2)
        s = wait_event(ecs, dc, svc, f"(service {svc}) has reached a steady state.", before)
        assert {t["taskArn"] for t in now} == {other["taskArn"], fresh["taskArn"]}, brief(now)
        # The survivor was not touched; the replacement runs on a host.
        [o] = [t for t in now if t["taskArn"] == other["taskArn"]]
        assert o["containers"][0]["runtimeId"] == other["containers"][0]["runtimeId"]
        assert_runs_on_host(dc, o)
        assert_runs_on_host(dc, fresh)
        assert_stopped_on_host(dc, victim["taskArn"])
        events = s["events"]
        assert f"(service {svc}) has started 1 tasks: (task {task_id(fresh['taskArn'])})." in \
            messages(s), messages(s)
        # It stopped by itself: the scheduler neither stopped it nor saw a
        # failed health check.
        gone = task_id(victim["taskArn"])
        assert not [m for m in messages(s) if f"(task {gone})" in m and "started" not in m], \
            messages(s)
        assert events[0]["message"] == f"(service {svc}) has reached a steady state.", \
            messages(s)[:5]
        cli.run("ecs", "wait", "services-stable", "--cluster", dc.cluster_name,
                "--services", svc, timeout=CLI_WAIT_TIMEOUT)


# -- 5. task scale-in protection -------------------------------------------------

def test_a_protected_task_survives_a_scale_in(dc, ecs, services):
    with dc.explain():
        family, svc = harness.unique("protect"), harness.unique("protect")
        td = register(ecs, family, sleeper())
        create_service(ecs, services, dc.cluster_name, svc, td, desiredCount=3)
        _, tasks = wait_steady(ecs, dc, svc, td, 3)
        # The newest is the one ECS would take first (all else equal);
        # protect it.
        keep = max(tasks, key=lambda t: (t["startedAt"], t["taskArn"]))
        out = ecs.update_task_protection(cluster=dc.cluster_name, tasks=[keep["taskArn"]],
                                         protectionEnabled=True, expiresInMinutes=60)
        assert out["failures"] == [], out
        [p] = out["protectedTasks"]
        assert p["taskArn"] == keep["taskArn"] and p["protectionEnabled"] is True, p
        assert "expirationDate" in p, p
        got = ecs.get_task_protection(cluster=dc.cluster_name, tasks=[keep["taskArn"]])
        assert got["protectedTasks"][0]["protectionEnabled"] is True, got

        ecs.update_service(cluster=dc.cluster_name, service=svc, desiredCount=1)
        _, [survivor] = wait_steady(ecs, dc, svc, td, 1, within=REPLACED_WITHIN)
        assert survivor["taskArn"] == keep["taskArn"], \
            f"the protected task was stopped, {survivor['taskArn']} is left"
        assert survivor["containers"][0]["runtimeId"] == keep["containers"][0]["runtimeId"]
        assert_runs_on_host(dc, survivor)
        for t in describe_tasks(ecs, dc.cluster_name,
                                [t["taskArn"] for t in tasks if t is not keep]):
            assert t["lastStatus"] == "STOPPED", t
            assert t["stopCode"] == "ServiceSchedulerInitiated", t
            assert_stopped_on_host(dc, t["taskArn"])


# -- 6. DeleteService --force ------------------------------------------------------

def test_delete_service_force_drains_to_inactive(dc, ecs, cli, services):
    with dc.explain():
        family, svc = harness.unique("delete"), harness.unique("delete")
        td = register(ecs, family, sleeper())
        create_service(ecs, services, dc.cluster_name, svc, td, desiredCount=2)
        _, tasks = wait_steady(ecs, dc, svc, td, 2)
        for t in tasks:
            assert_runs_on_host(dc, t)

        out = cli("ecs", "delete-service", "--cluster", dc.cluster_name, "--service", svc,
                  "--force")
        assert out["service"]["status"] == "DRAINING", out
        assert out["service"]["desiredCount"] == 0, out
        cli.run("ecs", "wait", "services-inactive", "--cluster", dc.cluster_name,
                "--services", svc, timeout=CLI_WAIT_TIMEOUT)

        s = describe_service(ecs, dc.cluster_name, svc)
        assert s["status"] == "INACTIVE" and s["runningCount"] == 0 and \
            s["pendingCount"] == 0, s
        listed = ecs.list_services(cluster=dc.cluster_name)["serviceArns"]
        assert s["serviceArn"] not in listed
        for t in describe_tasks(ecs, dc.cluster_name, [t["taskArn"] for t in tasks]):
            assert t["lastStatus"] == "STOPPED" and t["desiredStatus"] == "STOPPED", t
            assert t["stopCode"] == "ServiceSchedulerInitiated", t
            assert t["containers"][0]["exitCode"] == 0, t  # its TERM trap ran
            assert_stopped_on_host(dc, t["taskArn"])


# -- 4. DAEMON (last: it adds a host and drains one) ---------------------------------

def daemon_tasks(ecs, dc, svc: str):
    """A probe: the DAEMON's live tasks by instance, when every one is
    RUNNING, alone on its instance, and the service agrees."""
    s = describe_service(ecs, dc.cluster_name, svc)
    tasks = live(service_tasks(ecs, dc.cluster_name, svc))
    by_instance = Counter(t["containerInstanceArn"] for t in tasks)
    ok = (all(t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING" for t in tasks)
          and max(by_instance.values(), default=0) == 1
          and s["desiredCount"] == len(tasks) == s["runningCount"]
          and s["pendingCount"] == 0)
    return ok, ({t["containerInstanceArn"]: t for t in tasks} if ok else
                {"desired": s["desiredCount"], "running": s["runningCount"],
                 "tasks": brief(tasks), "events": messages(s)[:5]})


def test_daemon_runs_one_task_per_instance_including_a_new_host(dc, ecs, services):
    with dc.explain():
        family, svc = harness.unique("daemon"), harness.unique("daemon")
        td = register(ecs, family, sleeper())
        services.append(svc)
        created = ecs.create_service(cluster=dc.cluster_name, serviceName=svc,
                                     taskDefinition=td, launchType="EC2",
                                     schedulingStrategy="DAEMON")["service"]
        assert created["schedulingStrategy"] == "DAEMON"
        hosts = {a.instance_arn for a in dc.agents}
        assert len(hosts) == 3

        def on(instances: set[str]):
            def probe():
                ok, got = daemon_tasks(ecs, dc, svc)
                return ok and set(got) == instances, got
            return probe

        first = poll("one DAEMON task on each of the three instances", on(hosts),
                     STEADY_WITHIN)
        for arn, t in first.items():
            # ... really on that host: the container's owner is its agent.
            assert_runs_on_host(dc, t)
            [c] = host_containers(dc, t["taskArn"])
            assert c["labels"][LABEL_OWNER] == dc.agent_for(arn).owner_id()

        # A fourth host joins: it gets one too, and nothing else moves.
        fourth = dc.add_agent(timeout=JOIN_WITHIN)
        hosts.add(fourth.instance_arn)
        second = poll("a DAEMON task on the host that joined", on(hosts), JOIN_WITHIN)
        for arn in first:
            assert second[arn]["taskArn"] == first[arn]["taskArn"]
        t = second[fourth.instance_arn]
        assert_runs_on_host(dc, t)
        [c] = host_containers(dc, t["taskArn"])
        assert c["labels"][LABEL_OWNER] == fourth.owner_id()
        # The deployment completes (once every host runs its task) and
        # stays the only one: a host joining starts no new deployment.
        def completed():
            d = describe_service(ecs, dc.cluster_name, svc)["deployments"]
            return len(d) == 1 and d[0]["rolloutState"] == "COMPLETED", d
        [d] = poll("the DAEMON's deployment COMPLETED", completed, STEADY_WITHIN)
        assert d["id"] == created["deployments"][0]["id"], d
        ok, now = daemon_tasks(ecs, dc, svc)
        assert ok and {a: t["taskArn"] for a, t in now.items()} == \
            {a: t["taskArn"] for a, t in second.items()}, now

        # Draining an instance takes its task away (and only that one).
        drained = dc.agents[1]
        out = ecs.update_container_instances_state(
            cluster=dc.cluster_name, containerInstances=[drained.instance_arn],
            status="DRAINING")
        assert out["failures"] == [] and out["containerInstances"][0]["status"] == "DRAINING"
        try:
            third = poll("no DAEMON task on the DRAINING instance",
                         on(hosts - {drained.instance_arn}), REPLACED_WITHIN)
            for arn in third:
                assert third[arn]["taskArn"] == second[arn]["taskArn"]
            [gone] = describe_tasks(ecs, dc.cluster_name,
                                    [second[drained.instance_arn]["taskArn"]])
            assert gone["lastStatus"] == "STOPPED", gone
            assert gone["stopCode"] == "ServiceSchedulerInitiated", gone
            assert_stopped_on_host(dc, gone["taskArn"])
            ci = describe_instance(ecs, dc.cluster_name, drained.instance_arn)
            assert ci["runningTasksCount"] == 0 and ci["status"] == "DRAINING", ci
        finally:
            ecs.update_container_instances_state(
                cluster=dc.cluster_name, containerInstances=[drained.instance_arn],
                status="ACTIVE")
        # Back to ACTIVE: it gets a task again.
        poll("a DAEMON task on the instance made ACTIVE again", on(hosts), REPLACED_WITHIN)
        # A DAEMON service is deleted without force.
        out = ecs.delete_service(cluster=dc.cluster_name, service=svc)
        assert out["service"]["status"] == "DRAINING"
