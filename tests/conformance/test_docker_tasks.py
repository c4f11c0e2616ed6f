"""Tasks as real Docker containers: a standalone ``berth agent --runtime
docker`` runs an ECS task definition written for ECS (bridge networking,
awslogs, a health check, a task volume, a secret) with the locally built
``berth-test/busybox`` image (nothing can be pulled here).

Needs a Docker Engine: without one these tests fail, unless
BERTH_SKIP_DOCKER_TESTS=1 says the machine has none on purpose.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.skipif(
    os.environ.get("BERTH_SKIP_DOCKER_TESTS") == "1", reason="BERTH_SKIP_DOCKER_TESTS=1")

IMAGE = "berth-test/busybox:latest"
FAST = {"Delay": 1, "MaxAttempts": 90}


@pytest.fixture(scope="module", autouse=True)
def images():
    subprocess.run(["bash", str(harness.REPO / "scripts" / "test-images.sh")], check=True)


class DockerAgent:
    def __init__(self, server, cluster, data_dir: Path):
        self.server, self.cluster, self.data_dir = server, cluster, data_dir
        self.proc = None

    def start(self):
        env = dict(os.environ, **self.server.env())
        self.log = self.data_dir.parent / f"{self.data_dir.name}.agent.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(harness.berth_bin()), "agent", "--cluster", self.cluster,
                 "--data-dir", str(self.data_dir), "--runtime", "docker",
                 "--task-cleanup-wait", "0"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def owner(self) -> str:
        return (self.data_dir / "owner-id").read_text().strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        # Whatever this agent left on the Engine goes with it.
        try:
            owner = self.owner()
        except FileNotFoundError:
            return
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=berth.owner={owner}"],
            capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        vols = subprocess.run(
            ["docker", "volume", "ls", "-q", "--filter", f"label=berth.owner={owner}"],
            capture_output=True, text=True).stdout.split()
        if vols:
            subprocess.run(["docker", "volume", "rm", "-f", *vols], capture_output=True)


@pytest.fixture
def cluster(ecs, name):
    c = name("docker")
    ecs.create_cluster(clusterName=c)
    return c


@pytest.fixture
def agent(server, cluster, tmp_path, ecs):
    a = DockerAgent(server, cluster, tmp_path / "agent").start()
    deadline = time.monotonic() + 30
    while not ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]:
        assert a.proc.poll() is None, a.log.read_text()
        assert time.monotonic() < deadline, "the docker agent did not register"
        time.sleep(0.2)
    yield a
    a.stop()


def describe(ecs, cluster, arn):
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


def container(task, name):
    return next(c for c in task["containers"] if c["name"] == name)


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


def until(what, f, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        v = f()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def test_an_ecs_task_definition_runs_as_docker_containers(
        ecs, logs, secretsmanager, cluster, agent, name, recorder, server):
    bodies: list[str] = []  # every raw response body this test's clients get
    recorder.sink = lambda record: bodies.append(record["body"])
    secret_value = "s3cr3t-" + name("v")
    secret_arn = secretsmanager.create_secret(
        Name=name("db-password"), SecretString=secret_value)["ARN"]
    group = name("/berth/web")
    logs.create_log_group(logGroupName=group)
    awslogs = {"logDriver": "awslogs", "options": {
        "awslogs-group": group, "awslogs-region": harness.REGION,
        "awslogs-stream-prefix": "web"}}
    family = name("web")
    ecs.register_task_definition(
        family=family,
        networkMode="bridge",
        requiresCompatibilities=["EC2"],
        volumes=[{"name": "content"}],
        containerDefinitions=[
            {
                # Proves the secret arrived: only its hash is served.
                "name": "init", "image": IMAGE, "essential": False, "memory": 32,
                "command": ["sh", "-c",
                            'mkdir -p /data && echo hello-from-a-volume > /data/index.html && '
                            'printf %s "$DB_PASSWORD" | sha256sum > /data/secret.txt'],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": secret_arn}],
                "mountPoints": [{"sourceVolume": "content", "containerPath": "/data"}],
                "logConfiguration": awslogs,
            },
            {
                "name": "web", "image": IMAGE, "essential": True, "memory": 64,
                "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
                "command": ["sh", "-c",
                            "echo web starting; trap 'echo bye; exit 0' TERM; "
                            "httpd -f -v -p 8080 -h /www & wait"],
                "mountPoints": [{"sourceVolume": "content", "containerPath": "/www",
                                 "readOnly": True}],
                "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
                "healthCheck": {"command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/"],
                                "interval": 5, "timeout": 2, "retries": 3, "startPeriod": 0},
                "stopTimeout": 5,
                "logConfiguration": awslogs,
            },
        ])
    out = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="EC2")
    assert out["failures"] == [], out["failures"]
    arn = out["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)

    task = describe(ecs, cluster, arn)
    web = container(task, "web")
    [binding] = web["networkBindings"]
    assert binding["containerPort"] == 8080 and binding["protocol"] == "tcp"
    assert binding["bindIP"] == "0.0.0.0" and binding["hostPort"] > 0
    # The published port answers from the host, serving what init wrote.
    assert until("the web container answers",
                 lambda: _try(lambda: http_get(binding["hostPort"], "/index.html"))) \
        .strip() == "hello-from-a-volume"
    assert http_get(binding["hostPort"], "/secret.txt").split()[0] == \
        hashlib.sha256(secret_value.encode()).hexdigest()
    # The runtime id is the Docker container's id.
    inspect = subprocess.run(["docker", "inspect", "--format", "{{.Id}} {{.Config.Image}}",
                              web["runtimeId"]], capture_output=True, text=True, check=True)
    assert inspect.stdout.split() == [web["runtimeId"], IMAGE]
    assert container(task, "init")["exitCode"] == 0

    until("web HEALTHY", lambda: container(describe(ecs, cluster, arn), "web")
          .get("healthStatus") == "HEALTHY")
    until("task HEALTHY", lambda: describe(ecs, cluster, arn).get("healthStatus") == "HEALTHY")

    ecs.stop_task(cluster=cluster, task=arn, reason="test done")
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    task = describe(ecs, cluster, arn)
    assert task["stopCode"] == "UserInitiated"
    assert container(task, "web")["exitCode"] == 0  # its TERM trap ran

    task_id = arn.rsplit("/", 1)[1]
    streams = {s["logStreamName"] for s in logs.describe_log_streams(
        logGroupName=group)["logStreams"]}
    assert streams == {f"web/web/{task_id}", f"web/init/{task_id}"}
    lines = [e["message"] for e in logs.get_log_events(
        logGroupName=group, logStreamName=f"web/web/{task_id}", startFromHead=True)["events"]]
    assert lines[0] == "web starting" and lines[-1] == "bye", lines

    # The secret's value is in no API response and no log.
    assert len(bodies) > 10
    for body in bodies:
        assert secret_value not in body
    assert secret_value not in server.log_path.read_text(errors="replace")
    assert secret_value not in agent.log.read_text(errors="replace")
    for stream in streams:
        for e in logs.get_log_events(logGroupName=group, logStreamName=stream,
                                     startFromHead=True)["events"]:
            assert secret_value not in e["message"]


def _try(f):
    try:
        return f()
    except OSError:
        return None


def test_a_missing_image_fails_the_task_with_cannot_pull(ecs, cluster, agent, name):
    family = name("noimage")
    ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": "main", "image": "berth-test/not-here:1", "memory": 32}])
    arn = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="EC2")["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("CannotPullContainerError"), t["stoppedReason"]
    assert "berth-test/not-here:1" in t["stoppedReason"]


def test_exit_code_and_logs_of_a_docker_container(ecs, logs, cluster, agent, name):
    group = name("/berth/exit")
    family = name("exit")
    ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": "main", "image": IMAGE, "memory": 32,
         "command": ["sh", "-c", "for i in $(seq 1 200); do echo line-$i; done; exit 7"],
         "logConfiguration": {"logDriver": "awslogs", "options": {
             "awslogs-group": group, "awslogs-create-group": "true",
             "awslogs-region": harness.REGION, "awslogs-stream-prefix": "x"}}}])
    arn = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="EC2")["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["containers"][0]["exitCode"] == 7
    assert t["stopCode"] == "EssentialContainerExited"
    task_id = arn.rsplit("/", 1)[1]
    events = logs.get_log_events(logGroupName=group, logStreamName=f"x/main/{task_id}",
                                 startFromHead=True)["events"]
    assert [e["message"] for e in events] == [f"line-{i}" for i in range(1, 201)]


# -- FARGATE on the Docker runtime: awsvpc namespaces -------------------------

@pytest.fixture(scope="module")
def docker_server(tmp_path_factory):
    srv = harness.BerthServer(tmp_path_factory.mktemp("docker-server") / "data",
                              runtime="docker").start()
    yield srv
    srv.stop()
    # The embedded agent's owner id names what it left on the Engine.
    owner = srv.data_dir / "agent" / "owner-id"
    if owner.exists():
        ids = subprocess.run(["docker", "ps", "-aq", "--filter",
                              f"label=berth.owner={owner.read_text().strip()}"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def pause_address(task_id: str) -> str:
    out = subprocess.run(
        ["docker", "inspect", "--format",
         "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", f"berth-pause-{task_id}"],
        capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_fargate_tasks_get_their_own_namespace_and_address(docker_server, recorder, name):
    ecs = docker_server.client(recorder=recorder)
    cluster = name("fargate-docker")
    ecs.create_cluster(clusterName=cluster)
    family = name("pair")
    # Two containers on localhost:8080 of their task's namespace; two such
    # tasks side by side, as on Fargate (no host port is taken).
    ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512",
        containerDefinitions=[
            {"name": "server", "image": IMAGE, "essential": True,
             "portMappings": [{"containerPort": 8080}],
             "command": ["sh", "-c", "mkdir -p /www && echo ok > /www/x && "
                         "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]},
            {"name": "client", "image": IMAGE, "essential": False,
             "command": ["sh", "-c", "for i in $(seq 1 100); do "
                         "wget -q -O /dev/null http://127.0.0.1:8080/x && exit 0; sleep 0.1; done; exit 1"]},
        ])
    arns = []
    for _ in range(2):
        out = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="FARGATE",
                           networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-a"]}})
        assert out["failures"] == [], out["failures"]
        arns.append(out["tasks"][0]["taskArn"])
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=arns, WaiterConfig=FAST)
    addresses = set()
    for arn in arns:
        until("the client reached the server over localhost", lambda: container(
            describe(ecs, cluster, arn), "client").get("exitCode") == 0)
        t = describe(ecs, cluster, arn)
        [eni] = [a for a in t["attachments"] if a["type"] == "ElasticNetworkInterface"]
        details = {d["name"]: d["value"] for d in eni["details"]}
        assert eni["status"] == "ATTACHED"
        ip = details["privateIPv4Address"]
        assert ip == pause_address(arn.rsplit("/", 1)[1])
        assert container(t, "server")["networkInterfaces"][0]["privateIpv4Address"] == ip
        # Reachable from the host at the task's own address, as an ENI is.
        assert urllib.request.urlopen(f"http://{ip}:8080/x", timeout=5).read() == b"ok\n"
        addresses.add(ip)
    assert len(addresses) == 2
    for arn in arns:
        ecs.stop_task(cluster=cluster, task=arn)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=arns, WaiterConfig=FAST)
    for arn in arns:
        t = describe(ecs, cluster, arn)
        assert [a["status"] for a in t["attachments"]] == ["DELETED"]
        gone = subprocess.run(["docker", "inspect", f"berth-pause-{arn.rsplit('/', 1)[1]}"],
                              capture_output=True)
        assert gone.returncode != 0, "the namespace holder is removed with the task"
