"""Tasks that really run: the embedded agent (FARGATE) and standalone
`berth agent` processes (EC2) running host processes through the process
runtime, driven with boto3 (waiters included) and checked through the
strictly validated API responses and the processes' own side effects."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

FAST = {"Delay": 1, "MaxAttempts": 60}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-berth"]}}


def fargate_family(ecs, family, containers):
    ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", containerDefinitions=containers)
    return family


def sh(name, script, **extra):
    return {"name": name, "image": "host", "entryPoint": ["/bin/sh", "-c"],
            "command": [script], **extra}


def run_fargate(ecs, cluster, family, **kw):
    out = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="FARGATE",
                       networkConfiguration=NETWORK, **kw)
    assert out["failures"] == [], out["failures"]
    return out["tasks"][0]["taskArn"]


def describe(ecs, cluster, arn):
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


@pytest.fixture
def cluster(ecs, name):
    c = name("tasks")
    ecs.create_cluster(clusterName=c)
    return c


def test_exit_code_stop_code_and_reason(ecs, cluster, name):
    fam = fargate_family(ecs, name("exit"), [sh("main", "echo hello; exit 3")])
    arn = run_fargate(ecs, cluster, fam)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["lastStatus"] == "STOPPED" and t["desiredStatus"] == "STOPPED"
    assert t["containers"][0]["exitCode"] == 3
    assert t["stopCode"] == "EssentialContainerExited"
    assert t["stoppedReason"] == "Essential container in task exited"
    for k in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt",
              "executionStoppedAt", "stoppedAt"):
        assert k in t, k
    assert t["createdAt"] <= t["startedAt"] <= t["stoppedAt"]


def test_waiters_and_stop_task(ecs, cluster, name):
    fam = fargate_family(ecs, name("sleep"), [sh("main", "sleep 60")])
    arn = run_fargate(ecs, cluster, fam)
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    assert describe(ecs, cluster, arn)["containers"][0]["lastStatus"] == "RUNNING"
    listed = ecs.list_tasks(cluster=cluster, family=fam)["taskArns"]
    assert listed == [arn]
    ecs.stop_task(cluster=cluster, task=arn, reason="test is done")
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["stopCode"] == "UserInitiated"
    assert t["stoppedReason"] == "test is done"
    assert t["containers"][0]["exitCode"] == 143  # SIGTERM, as Docker reports it


def test_stop_timeout_kills_a_process_that_ignores_sigterm(ecs, cluster, name, tmp_path):
    trapped = tmp_path / "trapped"
    script = f'trap "" TERM; touch {trapped}; while true; do sleep 0.1; done'
    fam = fargate_family(ecs, name("stubborn"), [sh("main", script, stopTimeout=3)])
    arn = run_fargate(ecs, cluster, fam)
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    # RUNNING means spawned; wait until the shell has really installed its
    # trap (a fixed sleep was not enough on a loaded machine).
    deadline = time.monotonic() + 30
    while not trapped.exists():
        assert time.monotonic() < deadline, "the shell never installed its trap"
        time.sleep(0.05)
    begun = time.monotonic()
    ecs.stop_task(cluster=cluster, task=arn)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    assert time.monotonic() - begun >= 3
    assert describe(ecs, cluster, arn)["containers"][0]["exitCode"] == 137


def test_depends_on_healthy_orders_container_starts(ecs, cluster, name, tmp_path):
    mark, started = tmp_path / "healthy", tmp_path / "app-started"
    db = sh("db", f"sleep 1; touch {mark}; sleep 60",
            healthCheck={"command": ["CMD-SHELL", f"test -f {mark}"], "interval": 5,
                         "timeout": 2, "retries": 3, "startPeriod": 0})
    app = sh("app", f"date +%s.%N > {started}; sleep 60",
             dependsOn=[{"containerName": "db", "condition": "HEALTHY"}])
    fam = fargate_family(ecs, name("deps"), [db, app])
    arn = run_fargate(ecs, cluster, fam)
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline, "app never started"
        time.sleep(0.1)
    assert float(started.read_text()) >= mark.stat().st_mtime
    deadline = time.monotonic() + 10
    while True:
        t = describe(ecs, cluster, arn)
        db_c = next(c for c in t["containers"] if c["name"] == "db")
        if db_c.get("healthStatus") == "HEALTHY" and t.get("healthStatus") == "HEALTHY":
            break
        assert time.monotonic() < deadline, t
        time.sleep(0.1)
    ecs.stop_task(cluster=cluster, task=arn)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)


def test_overrides_reach_the_process(ecs, cluster, name, tmp_path):
    out = tmp_path / "env"
    fam = fargate_family(ecs, name("ovr"), [sh("main", "true", environment=[{"name": "A", "value": "1"}])])
    arn = run_fargate(ecs, cluster, fam, overrides={"containerOverrides": [
        {"name": "main", "command": [f'echo "$A $B" > {out}'],
         "environment": [{"name": "B", "value": "2"}]}]})
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    assert out.read_text().strip() == "1 2"
    assert describe(ecs, cluster, arn)["containers"][0]["exitCode"] == 0


def test_cannot_start_is_reported(ecs, cluster, name):
    fam = fargate_family(ecs, name("nostart"), [
        {"name": "main", "image": "host", "command": ["/nonexistent/program"]}])
    arn = run_fargate(ecs, cluster, fam)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("CannotStartContainerError")


# -- standalone agents (EC2) --------------------------------------------------

class AgentProcess:
    def __init__(self, server, cluster, data_dir: Path):
        self.server, self.cluster, self.data_dir = server, cluster, data_dir
        self.proc = None

    def start(self):
        env = dict(os.environ, **self.server.env())
        log = open(self.data_dir.parent / f"{self.data_dir.name}.agent.log", "ab")
        self.proc = subprocess.Popen(
            [str(harness.berth_bin()), "agent", "--cluster", self.cluster,
             "--data-dir", str(self.data_dir), "--runtime", "process"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def wait_for_instances(ecs, cluster, n):
    deadline = time.monotonic() + 30
    while True:
        arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
        if len(arns) >= n:
            return arns
        assert time.monotonic() < deadline, "agent did not register"
        time.sleep(0.2)


def ec2_family(ecs, family, script, **extra):
    ecs.register_task_definition(family=family, containerDefinitions=[
        sh("main", script, memory=64, **extra)])
    return family


@pytest.fixture
def agent(server, cluster, tmp_path):
    a = AgentProcess(server, cluster, tmp_path / "agent").start()
    yield a
    a.stop()


def test_a_standalone_agent_runs_ec2_tasks(ecs, cluster, agent, name):
    [inst] = wait_for_instances(ecs, cluster, 1)
    ci = ecs.describe_container_instances(cluster=cluster, containerInstances=[inst])["containerInstances"][0]
    assert ci["agentConnected"] is True
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    assert attrs["ecs.os-type"] == "linux" and "ecs.cpu-architecture" in attrs
    names = {r["name"] for r in ci["registeredResources"]}
    assert names >= {"CPU", "MEMORY", "PORTS", "PORTS_UDP"}
    fam = ec2_family(ecs, name("ec2"), "exit 3")
    out = ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="EC2")
    arn = out["tasks"][0]["taskArn"]
    assert out["tasks"][0]["containerInstanceArn"] == inst
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    assert describe(ecs, cluster, arn)["containers"][0]["exitCode"] == 3


def test_killed_agent_adopts_its_task_on_restart(ecs, cluster, agent, name, tmp_path):
    wait_for_instances(ecs, cluster, 1)
    pids = tmp_path / "pids"
    fam = ec2_family(ecs, name("adopt"), f"echo $$ >> {pids}; sleep 4; exit 0")
    arn = ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="EC2")["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    agent.kill9()
    time.sleep(0.5)
    assert describe(ecs, cluster, arn)["lastStatus"] == "RUNNING"
    agent.start()
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["containers"][0]["exitCode"] == 0
    assert len(pids.read_text().split()) == 1, "the task was started again"
    running = ecs.list_tasks(cluster=cluster)["taskArns"]
    assert arn not in running


# -- the acceptance scenario: awslogs, HEALTHY ordering, the aws-cli ----

def awslogs(group, prefix="app", create=True):
    opts = {"awslogs-group": group, "awslogs-region": harness.REGION,
            "awslogs-stream-prefix": prefix}
    if create:
        opts["awslogs-create-group"] = "true"
    return {"logDriver": "awslogs", "options": opts}


def acceptance_scenario(ecs, cli, cluster, name, tmp_path, launch):
    """The issue's acceptance scenario: two containers, one essential, one
    that starts only when the first is HEALTHY; logs read back with the
    aws-cli; `aws ecs wait tasks-stopped`; exit codes and stop code."""
    group = "/berth/" + name("logs")
    mark = tmp_path / "ready"
    extra = {} if launch == "FARGATE" else {"memory": 64}
    db = sh("db", f"echo db starting; sleep 0.5; touch {mark}; echo db ready; sleep 60",
            healthCheck={"command": ["CMD-SHELL", f"test -f {mark}"], "interval": 5,
                         "timeout": 2, "retries": 3},
            logConfiguration=awslogs(group), **extra)
    lines = "; ".join(f"echo line-{i}" for i in range(300))
    app = sh("app", f"{lines}; echo oops >&2; exit 0",
             essential=False, dependsOn=[{"containerName": "db", "condition": "HEALTHY"}],
             logConfiguration=awslogs(group), **extra)
    if launch == "FARGATE":
        fam = fargate_family(ecs, name("pair"), [db, app])
        run = cli("ecs", "run-task", "--cluster", cluster, "--task-definition", fam,
                  "--launch-type", "FARGATE", "--network-configuration",
                  "awsvpcConfiguration={subnets=[subnet-berth]}")
    else:
        fam = name("pair")
        ecs.register_task_definition(family=fam, containerDefinitions=[db, app])
        run = cli("ecs", "run-task", "--cluster", cluster, "--task-definition", fam,
                  "--launch-type", "EC2")
    arn = run["tasks"][0]["taskArn"]
    task_id = arn.rsplit("/", 1)[1]
    # app exits 0 (non-essential: the task keeps running); then stop the task.
    deadline = time.monotonic() + 30
    while True:
        t = describe(ecs, cluster, arn)
        app_c = next(c for c in t["containers"] if c["name"] == "app")
        if app_c.get("exitCode") == 0:
            break
        assert time.monotonic() < deadline, t
        time.sleep(0.2)
    assert t["lastStatus"] == "RUNNING"
    cli("ecs", "stop-task", "--cluster", cluster, "--task", arn)
    cli.run("ecs", "wait", "tasks-stopped", "--cluster", cluster, "--tasks", arn)
    out = cli("logs", "get-log-events", "--log-group-name", group,
              "--log-stream-name", f"app/app/{task_id}", "--start-from-head")
    messages = [e["message"] for e in out["events"]]
    # stdout in order and complete; stderr's line is there too (two pipes
    # written in the same millisecond have no order between them)
    assert [m for m in messages if m != "oops"] == [f"line-{i}" for i in range(300)]
    assert messages.count("oops") == 1
    db_out = cli("logs", "get-log-events", "--log-group-name", group,
                 "--log-stream-name", f"app/db/{task_id}", "--start-from-head")
    assert [e["message"] for e in db_out["events"]] == ["db starting", "db ready"]
    t = describe(ecs, cluster, arn)
    assert t["stopCode"] == "UserInitiated"
    db_c = next(c for c in t["containers"] if c["name"] == "db")
    assert db_c["exitCode"] == 143
    return t


def test_acceptance_fargate_on_the_one_command_server(ecs, cli, cluster, name, tmp_path):
    acceptance_scenario(ecs, cli, cluster, name, tmp_path, "FARGATE")


def test_acceptance_ec2_on_a_standalone_agent(ecs, cli, cluster, agent, name, tmp_path):
    wait_for_instances(ecs, cluster, 1)
    t = acceptance_scenario(ecs, cli, cluster, name, tmp_path, "EC2")
    assert t["launchType"] == "EC2" and "containerInstanceArn" in t


def test_missing_log_group_fails_the_task_start(ecs, cluster, name):
    fam = fargate_family(ecs, name("nolog"), [
        sh("main", "echo hi", logConfiguration=awslogs("/berth/" + name("absent"), create=False))])
    arn = run_fargate(ecs, cluster, fam)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["stopCode"] == "TaskFailedToStart"
    assert "log group does not exist" in t["stoppedReason"]


def test_a_task_that_ends_by_itself_records_connectivity(ecs, cluster, name):
    fam = fargate_family(ecs, name("stages"), [sh("main", "exit 0")])
    arn = run_fargate(ecs, cluster, fam)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["lastStatus"] == "STOPPED"
    assert t["connectivity"] == "CONNECTED" and "connectivityAt" in t


def test_propagate_tags_from_the_task_definition(ecs, cluster, name):
    fam = name("tagged")
    ecs.register_task_definition(
        family=fam, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[sh("main", "sleep 5")],
        tags=[{"key": "team", "value": "infra"}, {"key": "env", "value": "dev"}])
    out = ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                       networkConfiguration=NETWORK, propagateTags="TASK_DEFINITION",
                       tags=[{"key": "env", "value": "prod"}])
    arn = out["tasks"][0]["taskArn"]
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn], include=["TAGS"])["tasks"][0]
    assert {x["key"]: x["value"] for x in t["tags"]} == {"team": "infra", "env": "prod"}
    with pytest.raises(Exception) as e:
        ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                     networkConfiguration=NETWORK, propagateTags="SERVICE")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    ecs.stop_task(cluster=cluster, task=arn)


def test_control_plane_kill9_keeps_tasks_running_and_adopts_them(fresh_server, make_ecs, name, tmp_path):
    ecs = make_ecs(srv=fresh_server)
    cluster = name("restart")
    ecs.create_cluster(clusterName=cluster)
    pids = tmp_path / "pids"
    fam = fargate_family(ecs, name("survivor"), [sh("main", f"echo $$ >> {pids}; sleep 4; exit 7")])
    arn = run_fargate(ecs, cluster, fam)
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    fresh_server.kill9()
    time.sleep(0.5)
    fresh_server.start()
    ecs = make_ecs(srv=fresh_server)
    assert describe(ecs, cluster, arn)["lastStatus"] == "RUNNING"
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["containers"][0]["exitCode"] == 7
    assert t["stopCode"] == "EssentialContainerExited"
    assert len(pids.read_text().split()) == 1, "the task was started twice"
