"""Inside a Docker task, what ECS gives a container (issue 10): boto3 in
a container of a locally built image (``berth-test/python``: the host's
python and boto3, FROM scratch) calls berth as the task's role with only
the environment the task was given, and reads its task metadata.

The agent serves each task inside the task's own network namespace, on its
loopback (127.0.0.1:51679), where botocore accepts a credentials URI, and
forwards the control plane's loopback port from there: awsvpc (FARGATE on
the server's embedded agent) and bridge (EC2 on a ``berth agent``). Such a
listener answers for its own task alone: another task's token is refused.
Needs a Docker Engine (BERTH_SKIP_DOCKER_TESTS=1 skips).
"""

import json
import os
import subprocess
import time

import pytest

import harness
from conftest import ACCOUNT_A, ACCOUNT_B
from test_task_inside import ANY, READER, Account

pytestmark = [
    pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth"),
    pytest.mark.skipif(os.environ.get("BERTH_SKIP_DOCKER_TESTS") == "1",
                       reason="BERTH_SKIP_DOCKER_TESTS=1"),
]

IMAGE = "berth-test/python:latest"
PYTHON = "/usr/local/bin/python3"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    subprocess.run(["bash", str(harness.REPO / "scripts" / "test-images.sh")], check=True)
    tmp = tmp_path_factory.mktemp("inside-docker")
    config = tmp / "berth.toml"
    reader = {"Statement": [{"Effect": "Allow", "Action": ["ecs:List*", "ecs:Describe*"],
                             "Resource": "*"}]}
    config.write_text("".join(
        f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
        f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n\n'
        for c in (ACCOUNT_A, ACCOUNT_B)) + f"[[roles]]\narn = \"{READER}\"\n"
        f"policy = '{json.dumps(reader)}'\n")
    s = harness.BerthServer(tmp / "data", config=config, runtime="docker",
                            extra_args=["--task-cleanup-wait", "0"]).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def a(srv):
    return Account(srv, ACCOUNT_A, harness.unique("inside-a"), IMAGE, PYTHON)


@pytest.fixture(scope="module")
def b(srv):
    return Account(srv, ACCOUNT_B, harness.unique("inside-b"), IMAGE, PYTHON)


@pytest.fixture(scope="module")
def agent(srv, a, tmp_path_factory):
    """A `berth agent --runtime docker` in account A's cluster (EC2, bridge)."""
    data = tmp_path_factory.mktemp("inside-docker-agent")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ACCOUNT_A.access_key_id,
               AWS_SECRET_ACCESS_KEY=ACCOUNT_A.secret_access_key,
               AWS_DEFAULT_REGION=harness.REGION)
    log = open(data / "agent.log", "wb")
    proc = subprocess.Popen(
        [str(harness.berth_bin()), "agent", "--endpoint", srv.endpoint, "--cluster", a.cluster,
         "--data-dir", str(data / "state"), "--runtime", "docker", "--task-cleanup-wait", "0"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while not a.ecs.list_container_instances(cluster=a.cluster)["containerInstanceArns"]:
        assert proc.poll() is None and time.monotonic() < deadline, (data / "agent.log").read_text()
        time.sleep(0.2)
    yield proc
    proc.terminate()
    proc.wait(10)
    owner = (data / "state" / "owner-id").read_text().strip()
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=berth.owner={owner}"],
                         capture_output=True, text=True).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


@pytest.mark.parametrize("launch", ["FARGATE", "EC2"])
def test_boto3_in_a_container_calls_berth_as_its_role(a, agent, launch):
    task, seen = a.probe(role=ANY, launch=launch)
    assert "boto3_error" not in seen, seen
    env = seen["env"]
    assert env["AWS_EXECUTION_ENV"] == ("AWS_ECS_FARGATE" if launch == "FARGATE" else "AWS_ECS_EC2")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == harness.REGION
    assert env["AWS_ENDPOINT_URL"] == a.srv.endpoint
    assert env["AWS_ACCESS_KEY_ID"] is None
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:51679/v2/")
    assert seen["credential_method"] == "container-role"
    assert task["taskArn"] in seen["list_tasks"]
    status, t = seen["task"]
    assert status == 200 and t["TaskARN"] == task["taskArn"], seen
    assert t["LaunchType"] == launch
    [c] = t["Containers"]
    assert c["DockerId"] == task["containers"][0]["runtimeId"]
    if launch == "FARGATE":
        ip = task["attachments"][0]["details"]
        assert c["Networks"][0]["IPv4Addresses"] == [
            d["value"] for d in ip if d["name"] == "privateIPv4Address"]
    status, stats = seen["stats"]
    assert status == 200
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert stats["memory_stats"]["usage"] > 0
    assert list(seen["task_stats"][1]) == [c["DockerId"]]
    assert seen["guessed"][0] == 404


def test_role_policy_limits_the_container(a):
    _, seen = a.probe(role=READER)
    assert isinstance(seen.get("list_tasks"), list), seen
    assert seen["run_task"] == "AccessDeniedException"


def test_another_tasks_token_is_refused_in_a_tasks_network(a, b):
    # (PID 1 of its container: it must handle SIGTERM to stop at once.)
    script = ("import os,signal,sys,time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
              "print(os.environ['ECS_CONTAINER_METADATA_URI_V4'],flush=True)\ntime.sleep(600)\n")
    arn = a.start(a.register([PYTHON], ["-c", script]))
    a.wait(arn, "tasks_running")
    deadline = time.monotonic() + 30
    while not (lines := a.output(arn)):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    uri = lines[0].strip()
    assert uri.startswith("http://127.0.0.1:51679/v4/")
    # B's task, with A's real token, at the same address in its own network.
    _, seen = b.probe(other=uri)
    assert seen["other_task"][0] == 404, seen
    assert seen["task"][0] == 200
    a.ecs.stop_task(cluster=a.cluster, task=arn)
    a.wait(arn)
