"""Container ``secrets`` injected by the agent: values from Secrets Manager
(a whole secret string, one JSON key) and SSM Parameter Store (a
SecureString by name, one by ARN in another region) reach the container's
environment, on the embedded agent (FARGATE) and on a standalone ``berth
agent`` (EC2), and never leak: no raw response body any client saw, no line
of the server's or the agent's debug log, and no awslogs event the
container did not print holds a value. A reference that cannot be
resolved fails the task start as ECS does (``TaskFailedToStart``,
``ResourceInitializationError: unable to pull secrets or registry auth``),
naming the reference, never a value.
"""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from unittest import mock

import boto3
import pytest
from botocore.config import Config

import harness

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

FAST = {"Delay": 1, "MaxAttempts": 90}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-berth"]}}
OTHER_REGION = "us-west-2"
PREFIX = "ResourceInitializationError: unable to pull secrets or registry auth"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A server of its own, logging at debug level, so the leak check reads
    everything it logs."""
    tmp = tmp_path_factory.mktemp("inject")
    with mock.patch.dict(os.environ, {"BERTH_LOG": "debug"}):
        s = harness.BerthServer(tmp / "data").start()
    yield s
    s.stop()


@pytest.fixture
def bodies(recorder):
    """Every raw response body the test's clients receive."""
    seen = []
    recorder.sink = lambda record: seen.append(record["body"])
    return seen


def client(srv, recorder, service, region=harness.REGION):
    c = srv.default_creds()
    cl = boto3.session.Session(
        aws_access_key_id=c.access_key_id, aws_secret_access_key=c.secret_access_key,
        region_name=region,
    ).client(service, endpoint_url=srv.endpoint,
             config=Config(retries={"total_max_attempts": 1}, read_timeout=60))
    recorder.attach(cl)
    return cl


@pytest.fixture
def ecs(srv, recorder, bodies):
    return client(srv, recorder, "ecs")


@pytest.fixture
def cluster(ecs, name):
    c = name("inject")
    ecs.create_cluster(clusterName=c)
    return c


def secret_value():
    return f"v{uuid.uuid4().hex}"


@pytest.fixture
def secrets(srv, recorder, bodies, name):
    """Creates what the task refers to; returns (secrets list, values by
    env name). Nothing here reads a value back."""
    sm = client(srv, recorder, "secretsmanager")
    ssm = client(srv, recorder, "ssm")
    ssm_west = client(srv, recorder, "ssm", OTHER_REGION)
    values = {k: secret_value() for k in ("PLAIN", "PASSWORD", "PARAM", "WEST")}
    plain = sm.create_secret(Name=f"inject/{name('plain')}", SecretString=values["PLAIN"])
    db = sm.create_secret(Name=f"inject/{name('db')}", SecretString=json.dumps(
        {"username": "app", "password": values["PASSWORD"], "port": 5432}))
    account = plain["ARN"].split(":")[4]
    param = "/inject/" + name("param")
    ssm.put_parameter(Name=param, Value=values["PARAM"], Type="SecureString")
    west = "/inject/" + name("west")
    ssm_west.put_parameter(Name=west, Value=values["WEST"], Type="SecureString")
    refs = [
        {"name": "PLAIN", "valueFrom": plain["ARN"]},
        {"name": "PASSWORD", "valueFrom": f"{db['ARN']}:password::"},
        {"name": "USERNAME", "valueFrom": f"{db['ARN']}:username::"},
        {"name": "PORT", "valueFrom": f"{db['ARN']}:port:AWSCURRENT:"},
        {"name": "PARAM", "valueFrom": param},
        {"name": "WEST",
         "valueFrom": f"arn:aws:ssm:{OTHER_REGION}:{account}:parameter{west}"},
    ]
    return refs, values, account


def awslogs(group):
    return {"logDriver": "awslogs", "options": {
        "awslogs-group": group, "awslogs-region": harness.REGION,
        "awslogs-stream-prefix": "app", "awslogs-create-group": "true"}}


def container(script, refs, out=None, group=None, **extra):
    env = [{"name": "PLAIN", "value": "overridden-by-the-secret"}]
    if out is not None:
        env.append({"name": "OUT", "value": str(out)})
    c = {"name": "main", "image": "host", "entryPoint": ["/bin/sh", "-c"],
         "command": [script], "environment": env, "secrets": refs, **extra}
    if group is not None:
        c["logConfiguration"] = awslogs(group)
    return c


SCRIPT = ('printf "%s\\n" "$PLAIN" "$PASSWORD" "$USERNAME" "$PORT" "$PARAM" "$WEST" > "$OUT"; '
          'echo "the container ran"')


def register(ecs, family, launch, account, containers):
    kw = {"executionRoleArn": f"arn:aws:iam::{account}:role/ecsTaskExecutionRole"}
    if launch == "FARGATE":
        kw.update(networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                  cpu="256", memory="512")
    else:
        for c in containers:
            c["memory"] = 64
    return ecs.register_task_definition(family=family, containerDefinitions=containers,
                                        **kw)["taskDefinition"]


def run(ecs, cluster, family, launch):
    kw = {"networkConfiguration": NETWORK} if launch == "FARGATE" else {}
    out = ecs.run_task(cluster=cluster, taskDefinition=family, launchType=launch, **kw)
    assert out["failures"] == [], out["failures"]
    arn = out["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


def assert_no_leak(values, bodies, *logs):
    assert bodies, "the recorder saw no responses"
    for v in values:
        for body in bodies:
            assert v not in body, f"a secret value is in a response: {body[:300]}"
        for log in logs:
            text = Path(log).read_text(errors="replace")
            assert v not in text, f"a secret value is in {log}"


def injection_scenario(srv, ecs, cluster, secrets, bodies, name, tmp_path, launch, logs_client,
                       agent_log=None):
    refs, values, account = secrets
    out = tmp_path / "env.out"
    group = "/inject/" + name("logs")
    fam = name("inject")
    td = register(ecs, fam, launch, account, [container(SCRIPT, refs, out, group)])
    # The definition shows the references only.
    assert td["containerDefinitions"][0]["secrets"] == refs
    described = ecs.describe_task_definition(taskDefinition=fam)["taskDefinition"]
    assert described["containerDefinitions"][0]["secrets"] == refs

    t = run(ecs, cluster, fam, launch)
    assert t["containers"][0].get("exitCode") == 0, t
    assert t["stopCode"] == "EssentialContainerExited"
    assert out.read_text().splitlines() == [
        values["PLAIN"], values["PASSWORD"], "app", "5432", values["PARAM"], values["WEST"]]

    task_id = t["taskArn"].rsplit("/", 1)[1]
    events = logs_client.get_log_events(logGroupName=group, logStreamName=f"app/main/{task_id}",
                                        startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["the container ran"]
    ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")
    logs = [srv.log_path] + ([agent_log] if agent_log else [])
    assert_no_leak(values.values(), bodies, *logs)


def test_fargate_injects_secrets_and_leaks_none(srv, ecs, recorder, cluster, secrets, bodies,
                                                name, tmp_path):
    injection_scenario(srv, ecs, cluster, secrets, bodies, name, tmp_path, "FARGATE",
                       client(srv, recorder, "logs"))


class AgentProcess:
    """A standalone ``berth agent`` logging at debug level."""

    def __init__(self, srv, cluster, data_dir: Path):
        self.log_path = data_dir.parent / f"{data_dir.name}.agent.log"
        env = dict(os.environ, **srv.env(), BERTH_LOG="debug")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(harness.berth_bin()), "agent", "--cluster", cluster,
                 "--data-dir", str(data_dir), "--runtime", "process"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def agent(srv, ecs, cluster, tmp_path):
    a = AgentProcess(srv, cluster, tmp_path / "agent")
    deadline = time.monotonic() + 30
    while not ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]:
        assert a.proc.poll() is None, "the agent exited"
        assert time.monotonic() < deadline, "the agent did not register"
        time.sleep(0.2)
    yield a
    a.stop()


def test_ec2_agent_injects_secrets_and_leaks_none(srv, ecs, recorder, cluster, agent, secrets,
                                                  bodies, name, tmp_path):
    injection_scenario(srv, ecs, cluster, secrets, bodies, name, tmp_path, "EC2",
                       client(srv, recorder, "logs"), agent.log_path)


@pytest.mark.parametrize("case", ["secret", "parameter", "json-key"])
def test_an_unresolvable_secret_fails_the_start(srv, ecs, cluster, secrets, bodies, name, case):
    refs, values, account = secrets
    if case == "secret":
        bad = f"arn:aws:secretsmanager:{harness.REGION}:{account}:secret:inject/absent-{uuid.uuid4().hex[:8]}"
        named = bad
    elif case == "parameter":
        bad = "/inject/absent-" + uuid.uuid4().hex[:8]
        named = bad
    else:
        db = next(r["valueFrom"] for r in refs if r["name"] == "PASSWORD").split(":password:")[0]
        bad, named = f"{db}:nokey::", "json key nokey"
    fam = name("unresolvable")
    register(ecs, fam, "FARGATE", account, [
        container("echo should not run; exit 9", refs + [{"name": "BAD", "valueFrom": bad}])])
    t = run(ecs, cluster, fam, "FARGATE")
    assert t["stopCode"] == "TaskFailedToStart", t
    assert t["stoppedReason"].startswith(PREFIX), t["stoppedReason"]
    assert named in t["stoppedReason"], t["stoppedReason"]
    assert "exitCode" not in t["containers"][0]
    assert t["containers"][0]["reason"] == t["stoppedReason"]
    assert_no_leak(values.values(), bodies, srv.log_path)
