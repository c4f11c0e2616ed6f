"""Tasks as real Docker containers: a standalone ``berth agent --runtime
docker`` runs an ECS task definition written for ECS (bridge networking,
awslogs, a health check, a task volume, a secret) with the locally built
``berth-test/busybox`` image (nothing can be pulled here).

Needs a Docker Engine: without one these tests fail, unless
BERTH_SKIP_DOCKER_TESTS=1 says the machine has none on purpose.
"""

from __future__ import annotations

import hashlib
import json
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
                 "--task-cleanup-wait", "0",
                 # The env file of test_container_definition_fields_reach_docker.
                 "--allow-env-files", str(self.data_dir.parent)],
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
    # The dynamic port counts in the instance's PORTS, as on ECS.
    ci = ecs.describe_container_instances(
        cluster=cluster, containerInstances=[task["containerInstanceArn"]])["containerInstances"][0]
    [ports] = [r for r in ci["remainingResources"] if r["name"] == "PORTS"]
    assert str(binding["hostPort"]) in ports["stringSetValue"], ports
    # So a task that wants that port as a fixed one is refused at placement.
    clash = name("clash")
    ecs.register_task_definition(family=clash, containerDefinitions=[
        {"name": "c", "image": IMAGE, "memory": 16, "command": ["true"],
         "portMappings": [{"containerPort": 80, "hostPort": binding["hostPort"]}]}])
    out = ecs.run_task(cluster=cluster, taskDefinition=clash, launchType="EC2")
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "RESOURCE:PORTS", out
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
                           networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-berth"]}})
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


# -- the container definition as Docker sees it --------------------------------

def docker_inspect(ref: str) -> dict:
    out = subprocess.run(["docker", "inspect", ref], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def test_container_definition_fields_reach_docker(ecs, cluster, agent, name, tmp_path):
    host_dir = tmp_path / "host-data"
    host_dir.mkdir()
    (host_dir / "greeting").write_text("from-the-host\n")
    env_file = tmp_path / "app.env"
    env_file.write_text("# comment\nFROM_FILE=1\nBOTH=file\n")
    family = name("fields")
    ecs.register_task_definition(
        family=family, networkMode="bridge",
        volumes=[
            {"name": "hostdata", "host": {"sourcePath": str(host_dir)}},
            {"name": "shared", "dockerVolumeConfiguration": {
                "scope": "shared", "autoprovision": True, "driver": "local",
                "labels": {"purpose": "test"}}},
            {"name": "scratch", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}},
        ],
        containerDefinitions=[{
            "name": "main", "image": IMAGE, "essential": True,
            "cpu": 128, "memory": 96, "memoryReservation": 48,
            "entryPoint": ["sh", "-c"],
            "command": ["cat /hostdata/greeting; echo $FROM_FILE $BOTH; id -u; pwd; "
                        "ulimit -n; cat /etc/hosts | grep berth-extra; hostname; "
                        "touch /root-is-ro 2>/dev/null && echo rw || echo ro; "
                        "echo done > /scratch/f; sleep 600"],
            "environment": [{"name": "BOTH", "value": "definition"}],
            "environmentFiles": [{"value": str(env_file), "type": "s3"}],
            "workingDirectory": "/tmp",
            "user": "65534",
            "ulimits": [{"name": "nofile", "softLimit": 1000, "hardLimit": 2000}],
            "linuxParameters": {
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                "initProcessEnabled": True,
                "sharedMemorySize": 32,
                "tmpfs": [{"containerPath": "/tmpfs", "size": 16, "mountOptions": ["noexec"]}],
                "devices": [{"hostPath": "/dev/null", "containerPath": "/dev/berth-null",
                             "permissions": ["read", "write"]}],
            },
            "readonlyRootFilesystem": True,
            "dockerLabels": {"team": "berth"},
            "extraHosts": [{"hostname": "berth-extra", "ipAddress": "10.1.2.3"}],
            "dnsServers": ["10.0.0.2"],
            "dnsSearchDomains": ["berth.internal"],
            "hostname": "berth-host",
            "stopTimeout": 3,
            "mountPoints": [
                {"sourceVolume": "hostdata", "containerPath": "/hostdata", "readOnly": True},
                {"sourceVolume": "shared", "containerPath": "/shared"},
                {"sourceVolume": "scratch", "containerPath": "/scratch"},
            ],
            "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}},
        }])
    arn = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="EC2")["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    main = container(describe(ecs, cluster, arn), "main")
    c = docker_inspect(main["runtimeId"])
    cfg, hc = c["Config"], c["HostConfig"]
    task_id = arn.rsplit("/", 1)[1]
    assert c["Name"] == f"/berth-{task_id}-main"
    assert cfg["Labels"]["team"] == "berth"
    assert cfg["Labels"]["berth.task-arn"] == arn
    assert cfg["Labels"]["berth.container"] == "main"
    assert cfg["Labels"]["berth.owner"] == agent.owner()
    assert cfg["User"] == "65534" and cfg["WorkingDir"] == "/tmp"
    assert cfg["Hostname"] == "berth-host"
    assert "FROM_FILE=1" in cfg["Env"] and "BOTH=definition" in cfg["Env"]
    assert cfg["StopTimeout"] == 3
    assert hc["CpuShares"] == 128
    assert hc["Memory"] == 96 * 1024 * 1024 and hc["MemoryReservation"] == 48 * 1024 * 1024
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 1000, "Hard": 2000}]
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["MKNOD"]
    assert hc["Init"] is True
    assert hc["ShmSize"] == 32 * 1024 * 1024
    assert hc["Tmpfs"] == {"/tmpfs": "size=16m,noexec"}
    assert hc["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/berth-null",
                              "CgroupPermissions": "rw"}]
    assert hc["ReadonlyRootfs"] is True
    assert hc["ExtraHosts"] == ["berth-extra:10.1.2.3"]
    assert hc["Dns"] == ["10.0.0.2"] and hc["DnsSearch"] == ["berth.internal"]
    # (the daemon may add its own default options)
    assert hc["LogConfig"]["Type"] == "json-file"
    assert hc["LogConfig"]["Config"]["max-size"] == "1m"
    assert hc["NetworkMode"] == "bridge"
    binds = set(hc["Binds"])
    assert binds == {f"{host_dir}:/hostdata:ro", "shared:/shared",
                     f"berth-{task_id}-scratch:/scratch"}, binds
    vol = json.loads(subprocess.run(["docker", "volume", "inspect", "shared"],
                                    capture_output=True, text=True, check=True).stdout)[0]
    assert vol["Labels"]["purpose"] == "test"
    # What the process inside saw.
    out = until("the container's report", lambda: (lambda s: s if "ro" in s.split() else None)(
        subprocess.run(["docker", "logs", main["runtimeId"]], capture_output=True,
                       text=True).stdout))
    lines = out.split("\n")
    assert lines[0] == "from-the-host"
    assert lines[1] == "1 definition"
    assert lines[2] == "65534" and lines[3] == "/tmp" and lines[4] == "1000"
    assert "10.1.2.3" in lines[5] and lines[6] == "berth-host" and lines[7] == "ro"
    ecs.stop_task(cluster=cluster, task=arn)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    # The task-scoped volume goes with the task (cleanup wait 0); the shared one stays.
    until("the task volume is removed", lambda: subprocess.run(
        ["docker", "volume", "inspect", f"berth-{task_id}-scratch"],
        capture_output=True).returncode != 0)
    subprocess.run(["docker", "volume", "rm", "-f", "shared"], capture_output=True)


def test_host_and_none_network_modes(ecs, cluster, agent, name):
    port = 20000 + int(time.time() * 1000) % 20000
    host_family, none_family = name("host"), name("none")
    ecs.register_task_definition(family=host_family, networkMode="host", containerDefinitions=[
        {"name": "main", "image": IMAGE, "memory": 32,
         "portMappings": [{"containerPort": port}],
         "command": ["sh", "-c", f"mkdir -p /w && echo host-mode > /w/i && trap 'exit 0' TERM; "
                     f"httpd -f -p {port} -h /w & wait"]}])
    ecs.register_task_definition(family=none_family, networkMode="none", containerDefinitions=[
        {"name": "main", "image": IMAGE, "memory": 32,
         "command": ["sh", "-c", "ip -o link | grep -v ' lo' | wc -l; sleep 600"]}])
    h = ecs.run_task(cluster=cluster, taskDefinition=host_family, launchType="EC2")["tasks"][0]["taskArn"]
    n = ecs.run_task(cluster=cluster, taskDefinition=none_family, launchType="EC2")["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[h, n], WaiterConfig=FAST)
    hc = container(describe(ecs, cluster, h), "main")
    assert hc["networkBindings"] == [{"bindIP": "0.0.0.0", "containerPort": port,
                                      "hostPort": port, "protocol": "tcp"}]
    assert until("host mode serves on the host's port",
                 lambda: _try(lambda: http_get(port, "/i"))).strip() == "host-mode"
    # A second host-mode task on the same port is refused at placement.
    out = ecs.run_task(cluster=cluster, taskDefinition=host_family, launchType="EC2")
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "RESOURCE:PORTS"
    nc = container(describe(ecs, cluster, n), "main")
    assert "networkBindings" not in nc or nc["networkBindings"] == []
    assert docker_inspect(nc["runtimeId"])["HostConfig"]["NetworkMode"] == "none"
    assert until("none mode has only loopback", lambda: subprocess.run(
        ["docker", "logs", nc["runtimeId"]], capture_output=True, text=True).stdout.strip()) == "0"
    for arn in (h, n):
        ecs.stop_task(cluster=cluster, task=arn)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[h, n], WaiterConfig=FAST)


def test_a_restarted_agent_adopts_its_containers_and_cleans_up_orphans(
        ecs, cluster, agent, name, server, tmp_path):
    family = name("adopt")
    ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": "main", "image": IMAGE, "memory": 32,
         "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}])
    arn = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="EC2")["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    runtime_id = container(describe(ecs, cluster, arn), "main")["runtimeId"]
    # An orphan: labelled as this agent's, but of a task the cluster never had.
    owner = agent.owner()
    orphan_arn = arn.rsplit("/", 1)[0] + "/" + "0" * 32
    subprocess.run(["docker", "run", "-d", "--name", f"berth-{'0' * 32}-ghost",
                    "--label", f"berth.owner={owner}", "--label", f"berth.task-arn={orphan_arn}",
                    "--label", "berth.container=ghost", IMAGE, "sleep", "600"],
                   check=True, capture_output=True)
    agent.proc.kill()  # kill -9: no chance to tidy up
    agent.proc.wait(timeout=10)
    agent.start()
    # The task keeps its one container; the orphan is stopped and removed.
    until("the orphan is removed", lambda: subprocess.run(
        ["docker", "inspect", f"berth-{'0' * 32}-ghost"], capture_output=True).returncode != 0)
    ids = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter",
                          f"label=berth.task-arn={arn}"], capture_output=True, text=True).stdout.split()
    assert ids == [runtime_id]
    t = describe(ecs, cluster, arn)
    assert t["lastStatus"] == "RUNNING"
    # The adopted task still obeys the control plane.
    ecs.stop_task(cluster=cluster, task=arn)
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    assert container(describe(ecs, cluster, arn), "main")["exitCode"] == 0


# -- private registries: repositoryCredentials ---------------------------------

@pytest.fixture(scope="module")
def registry():
    from registry import Registry
    r = Registry("berth", "reg-" + harness.unique("pw")).start()
    yield r
    r.stop()


def test_repository_credentials_pull_from_a_private_registry(
        ecs, secretsmanager, cluster, agent, name, registry):
    image = registry.push(IMAGE, f"private/{name('img')}:1")
    creds_arn = secretsmanager.create_secret(
        Name=name("registry"),
        SecretString=json.dumps({"username": registry.username,
                                 "password": registry.password}))["ARN"]
    family = name("private")
    ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": "main", "image": image, "memory": 32, "command": ["sh", "-c", "exit 5"],
         "repositoryCredentials": {"credentialsParameter": creds_arn}}])
    arn = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="EC2")["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    # Pulled with the credentials, then ran: its own exit code.
    assert t["containers"][0].get("exitCode") == 5, t
    assert t["stopCode"] == "EssentialContainerExited"
    assert t["pullStartedAt"] <= t["pullStoppedAt"]
    # Without credentials the registry refuses, and the task says so.
    subprocess.run(["docker", "rmi", image], capture_output=True)
    bare = name("bare")
    ecs.register_task_definition(family=bare, containerDefinitions=[
        {"name": "main", "image": image, "memory": 32, "command": ["true"]}])
    arn = ecs.run_task(cluster=cluster, taskDefinition=bare, launchType="EC2")["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = describe(ecs, cluster, arn)
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("CannotPullContainerError"), t["stoppedReason"]
    assert registry.password not in t["stoppedReason"]
    subprocess.run(["docker", "rmi", image], capture_output=True)
