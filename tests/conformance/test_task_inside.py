"""Inside a task, what ECS gives a container (issue 10): the task metadata
endpoint (v4 and v3), the task role's credentials, AWS_EXECUTION_ENV,
the region, and an AWS_ENDPOINT_URL that reaches berth, so that boto3 in
the task, unchanged and with only that environment, calls berth as the
task's role.

On the process runtime: FARGATE tasks on the server's embedded agent and
EC2 tasks on a ``berth agent``, the host's python3 with boto3 running as
the task. The attacks: another task's (or a guessed) metadata token, a
tampered session token, one task's token with another key, another
account's credentials, credentials used after their task stopped, a task
role's credentials on the agent channel, a role of another account.
(The Docker runtime's side is in test_task_inside_docker.py.)
"""

import datetime
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

import harness
from conftest import ACCOUNT_A, ACCOUNT_B

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

HERE = Path(__file__).resolve().parent
PROBE = (HERE / "inside_probe.py").read_text()
FAST = {"Delay": 1, "MaxAttempts": 60}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-berth"]}}
READER = "arn:aws:iam::111111111111:role/inside-reader"
ANY = "arn:aws:iam::111111111111:role/inside-any"
B_ROLE = "arn:aws:iam::222222222222:role/inside-b"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inside")
    config = tmp / "berth.toml"
    reader = {"Statement": [{"Effect": "Allow", "Action": ["ecs:List*", "ecs:Describe*"],
                             "Resource": "*"}]}
    config.write_text("".join(
        f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
        f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n\n'
        for c in (ACCOUNT_A, ACCOUNT_B)) + f"[[roles]]\narn = \"{READER}\"\n"
        f"policy = '{json.dumps(reader)}'\n")
    # Two trusted accounts: their tasks run as the server's user, which
    # can run the host's python (under /root).
    s = harness.BerthServer(tmp / "data", config=config, runtime="process",
                            extra_args=["--managed-isolation", "none"]).start()
    yield s
    s.stop()


def client(srv, creds, service="ecs"):
    return boto3.session.Session(
        aws_access_key_id=creds.access_key_id, aws_secret_access_key=creds.secret_access_key,
        region_name=harness.REGION,
    ).client(service, endpoint_url=srv.endpoint,
             config=Config(retries={"total_max_attempts": 1}))


class Account:
    """One account's tasks; `image` and `python` say what runs the probe
    (the host's python on the process runtime, an image's on Docker)."""

    def __init__(self, srv, creds, cluster, image="host", python=sys.executable):
        self.srv, self.creds, self.cluster = srv, creds, cluster
        self.image, self.python = image, python
        self.ecs = client(srv, creds)
        self.logs = client(srv, creds, "logs")
        self.ecs.create_cluster(clusterName=cluster)
        self.group = "/inside/" + harness.unique("g")

    def register(self, entry, command, role=None, launch="FARGATE", env=None):
        family = harness.unique("inside")
        container = {"name": "main", "image": self.image, "entryPoint": entry, "command": command,
                     "environment": [{"name": k, "value": v} for k, v in (env or {}).items()],
                     "logConfiguration": {"logDriver": "awslogs", "options": {
                         "awslogs-group": self.group, "awslogs-region": harness.REGION,
                         "awslogs-stream-prefix": "p", "awslogs-create-group": "true"}}}
        kw = {}
        if role:
            kw["taskRoleArn"] = role
        if launch == "FARGATE":
            kw.update(networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                      cpu="256", memory="512")
        else:
            container["memory"] = 64
        self.ecs.register_task_definition(family=family, containerDefinitions=[container], **kw)
        return family

    def start(self, family, launch="FARGATE"):
        kw = {"networkConfiguration": NETWORK} if launch == "FARGATE" else {}
        out = self.ecs.run_task(cluster=self.cluster, taskDefinition=family,
                                launchType=launch, **kw)
        assert out["failures"] == [], out["failures"]
        return out["tasks"][0]["taskArn"]

    def wait(self, arn, waiter="tasks_stopped"):
        self.ecs.get_waiter(waiter).wait(cluster=self.cluster, tasks=[arn], WaiterConfig=FAST)
        return self.ecs.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"][0]

    def output(self, arn):
        stream = f"p/main/{arn.rsplit('/', 1)[1]}"
        events = self.logs.get_log_events(logGroupName=self.group, logStreamName=stream,
                                          startFromHead=True)["events"]
        return [e["message"] for e in events]

    def probe(self, role=None, launch="FARGATE", other=None, env=None):
        """Runs the probe as a task to its end: (task, what it saw)."""
        args = ["-c", PROBE, self.cluster] + ([other] if other else [])
        arn = self.start(self.register([self.python], args, role, launch, env), launch)
        task = self.wait(arn)
        lines = [l for l in self.output(arn) if l.startswith("{")]
        assert lines, (task.get("stoppedReason"), self.output(arn))
        return task, json.loads(lines[-1])

    def holder(self, path, role=READER, launch="FARGATE"):
        """A task that writes its environment (0600) to `path` and waits."""
        script = ("import json,os,time\n"
                  f"fd=os.open({str(path)!r},os.O_WRONLY|os.O_CREAT|os.O_EXCL,0o600)\n"
                  "os.write(fd,json.dumps(dict(os.environ)).encode());os.close(fd)\n"
                  "time.sleep(600)\n")
        arn = self.start(self.register([sys.executable], ["-c", script], role, launch), launch)
        deadline = time.monotonic() + 60
        while not path.exists() or path.stat().st_size == 0:
            assert time.monotonic() < deadline, "the holder task did not start"
            time.sleep(0.2)
        time.sleep(0.2)
        return arn, json.loads(path.read_text())


@pytest.fixture(scope="module")
def a(srv):
    return Account(srv, ACCOUNT_A, harness.unique("inside-a"))


@pytest.fixture(scope="module")
def b(srv):
    return Account(srv, ACCOUNT_B, harness.unique("inside-b"))


class Agent:
    """A `berth agent` (process runtime) in account A's cluster: EC2 capacity."""

    def __init__(self, srv, cluster, data):
        self.srv, self.cluster, self.data = srv, cluster, data
        self.proc = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=ACCOUNT_A.access_key_id,
                   AWS_SECRET_ACCESS_KEY=ACCOUNT_A.secret_access_key,
                   AWS_DEFAULT_REGION=harness.REGION)
        with open(self.data / "agent.log", "ab") as log:
            self.proc = subprocess.Popen(
                [str(harness.berth_bin()), "agent", "--endpoint", self.srv.endpoint,
                 "--cluster", self.cluster, "--data-dir", str(self.data / "state"),
                 "--runtime", "process"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        return self

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def agent(srv, a, tmp_path_factory):
    ag = Agent(srv, a.cluster, tmp_path_factory.mktemp("inside-agent")).start()
    deadline = time.monotonic() + 30
    while not a.ecs.list_container_instances(cluster=a.cluster)["containerInstanceArns"]:
        assert ag.proc.poll() is None and time.monotonic() < deadline, \
            (ag.data / "agent.log").read_text()
        time.sleep(0.2)
    yield ag
    ag.stop()


def fetch_credentials(env):
    req = urllib.request.Request(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                                 headers={"Authorization": env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def raw_call(srv, key, secret, token, target="AmazonEC2ContainerServiceV20141113.ListClusters",
             body="{}"):
    """A hand-signed call with temporary credentials: (status, JSON)."""
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body.encode(), headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    SigV4Auth(Credentials(key, secret, token), "ecs", harness.REGION).add_auth(req)
    r = requests.post(req.url, data=req.body, headers=dict(req.headers.items()), timeout=30)
    return r.status_code, r.json() if r.content else None


# -- what a task sees -----------------------------------------------------------

@pytest.mark.parametrize("launch", ["FARGATE", "EC2"])
def test_boto3_in_a_task_calls_berth_as_its_role(a, agent, launch):
    task, seen = a.probe(role=ANY, launch=launch)
    assert "boto3_error" not in seen, seen
    env = seen["env"]
    assert env["AWS_EXECUTION_ENV"] == ("AWS_ECS_FARGATE" if launch == "FARGATE" else "AWS_ECS_EC2")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == harness.REGION
    assert env["AWS_ENDPOINT_URL"] == a.srv.endpoint
    # Only what the task was given: no keys of the agent's or the server's.
    assert env["AWS_ACCESS_KEY_ID"] is None and env["AWS_SECRET_ACCESS_KEY"] is None
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"].startswith("http://127.0.0.1:")
    assert seen["has_auth_token"]
    assert seen["credential_method"] == "container-role"
    assert seen["access_key_prefix"] == "ASIA"
    # The role's credentials are the account's: its own task is listed.
    assert task["taskArn"] in seen["list_tasks"]
    # A role without policies may do what its account may (this one fails
    # only because the family does not exist).
    assert seen["run_task"] != "AccessDeniedException"


def test_sts_get_caller_identity_names_the_task_role(a):
    task, seen = a.probe(role=ANY)
    if "caller" not in seen:
        error = seen["caller_error"]
        if "UnknownOperation" in error or "InvalidAction" in error:
            pytest.skip("this berth does not serve STS GetCallerIdentity yet")
        pytest.fail(error)
    task_id = task["taskArn"].rsplit("/", 1)[1]
    assert seen["caller"] == f"arn:aws:sts::111111111111:assumed-role/inside-any/{task_id}"


@pytest.mark.parametrize("launch", ["FARGATE", "EC2"])
def test_metadata_endpoint_describes_the_task(a, agent, launch):
    task, seen = a.probe(launch=launch)
    status, t = seen["task"]
    assert status == 200, seen
    assert t["TaskARN"] == task["taskArn"]
    assert t["Cluster"] == task["clusterArn"]
    assert t["LaunchType"] == launch
    assert t["Family"] == task["taskDefinitionArn"].rsplit("/", 1)[1].split(":")[0]
    assert t["Revision"] == task["taskDefinitionArn"].rsplit(":", 1)[1]
    assert t["DesiredStatus"] == "RUNNING" and t["KnownStatus"] == "RUNNING"
    [c] = t["Containers"]
    assert c["Name"] == "main" and c["KnownStatus"] == "RUNNING"
    assert c["Labels"]["com.amazonaws.ecs.task-arn"] == task["taskArn"]
    assert c["ContainerARN"] == task["containers"][0]["containerArn"]
    assert seen["container"] == [200, c]
    assert seen["v3_task"][1]["TaskARN"] == task["taskArn"]
    status, stats = seen["stats"]
    assert status == 200
    assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    assert stats["memory_stats"]["usage"] > 0
    assert isinstance(stats["cpu_stats"]["system_cpu_usage"], int)
    assert seen["task_stats"][0] == 200
    assert list(seen["task_stats"][1]) == [c["DockerId"]]
    # A guessed token finds nothing.
    assert seen["guessed"][0] == 404
    # Without a task role: no credentials at all.
    assert seen["env"]["AWS_CONTAINER_CREDENTIALS_FULL_URI"] is None
    assert not seen["has_auth_token"]
    assert "NoCredentialsError" in seen.get("boto3_error", ""), seen


def test_task_definition_sets_region_and_endpoint_but_not_ecs_names(a):
    env = {"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://example.invalid",
           "AWS_EXECUTION_ENV": "mine", "ECS_CONTAINER_METADATA_URI_V4": "http://x"}
    _, seen = a.probe(env=env)
    assert seen["env"]["AWS_REGION"] == "eu-west-1"
    assert seen["env"]["AWS_DEFAULT_REGION"] == harness.REGION
    assert seen["env"]["AWS_ENDPOINT_URL"] == "http://example.invalid"
    assert seen["env"]["AWS_EXECUTION_ENV"] == "AWS_ECS_FARGATE"
    assert seen["env"]["ECS_CONTAINER_METADATA_URI_V4"].startswith("http://127.0.0.1:")


def test_role_policy_limits_the_task(a):
    _, seen = a.probe(role=READER)
    assert "boto3_error" not in seen, seen
    assert isinstance(seen["list_tasks"], list)
    assert seen["run_task"] == "AccessDeniedException"


# -- attacks ---------------------------------------------------------------------

def test_credentials_die_with_the_task_and_cannot_be_forged(srv, a, b, tmp_path):
    arn, env = a.holder(tmp_path / "env.json")
    c = fetch_credentials(env)
    assert c["RoleArn"] == READER and c["AccessKeyId"].startswith("ASIA")
    expiration = datetime.datetime.fromisoformat(c["Expiration"].replace("Z", "+00:00"))
    assert expiration > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=30)
    key, secret, token = c["AccessKeyId"], c["SecretAccessKey"], c["Token"]
    # The same credentials again (cached), and no other path gives them.
    assert fetch_credentials(env)["AccessKeyId"] == key
    bad = urllib.request.Request(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                                 headers={"Authorization": "x" * 64})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=10)
    assert e.value.code == 400

    status, _ = raw_call(srv, key, secret, token)
    assert status == 200
    # Tampered token: one character changed.
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    status, body = raw_call(srv, key, secret, flipped)
    assert (status, body["__type"]) == (400, "UnrecognizedClientException")
    # The token with another key id, a wrong secret, no token.
    status, body = raw_call(srv, "ASIA" + "A" * 16, secret, token)
    assert body["__type"] == "UnrecognizedClientException"
    status, body = raw_call(srv, key, "wrong" + secret, token)
    assert body["__type"] == "InvalidSignatureException"
    status, body = raw_call(srv, key, secret, None)
    assert body["__type"] == "UnrecognizedClientException"
    # Not a way onto the agent channel (which hands out credentials).
    status, body = raw_call(srv, key, secret, token, "BerthAgentV1.GetTaskCredentials",
                            json.dumps({"cluster": a.cluster, "containerInstanceArn": "x",
                                        "task": arn}))
    assert body["__type"] == "AccessDeniedException"
    # Scoped to the task's account: account B's tasks are not there.
    b_task = b.start(b.register(["/bin/sh"], ["-c", "sleep 30"]))
    status, body = raw_call(srv, key, secret, token,
                            "AmazonEC2ContainerServiceV20141113.DescribeTasks",
                            json.dumps({"cluster": b.cluster, "tasks": [b_task]}))
    assert body["__type"] == "ClusterNotFoundException", body
    b.ecs.stop_task(cluster=b.cluster, task=b_task)

    a.ecs.stop_task(cluster=a.cluster, task=arn)
    a.wait(arn)
    status, body = raw_call(srv, key, secret, token)
    assert (status, body["__type"]) == (400, "ExpiredTokenException")
    # And the agent no longer serves them.
    with pytest.raises(OSError):
        fetch_credentials(env)


def test_a_role_of_another_account_gets_no_credentials(a, tmp_path):
    _, seen = a.probe(role=B_ROLE)
    # The environment points at credentials, but the control plane issues
    # none for a role of another account.
    assert seen["env"]["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    assert "boto3_error" in seen, seen


def forged(uri: str) -> str:
    """The URI with its token's last character changed (never to itself)."""
    return uri[:-1] + ("1" if uri.endswith("0") else "0")


def test_another_tasks_token_is_its_own(a, b, tmp_path):
    """Metadata tokens are per container and unguessable; B's task reading
    with A's token would need A's token, which only A's environment holds."""
    arn, env = a.holder(tmp_path / "env.json", role=None)
    _, seen = b.probe(other=forged(env["ECS_CONTAINER_METADATA_URI_V4"]))
    assert seen["other_task"][0] == 404
    a.ecs.stop_task(cluster=a.cluster, task=arn)
    a.wait(arn)
    # A stopped task's metadata is gone.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(env["ECS_CONTAINER_METADATA_URI_V4"] + "/task", timeout=10)
    assert e.value.code == 404


def test_a_restarted_agent_answers_its_adopted_tasks(a, agent, tmp_path):
    """The URIs in a running task's environment outlive the agent that
    gave them: a restarted agent derives the same tokens, on the same port."""
    arn, env = a.holder(tmp_path / "env.json", launch="EC2")
    before = fetch_credentials(env)
    agent.stop()
    agent.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(env["ECS_CONTAINER_METADATA_URI_V4"] + "/task",
                                        timeout=5) as r:
                assert json.load(r)["TaskARN"] == arn
            break
        except (OSError, AssertionError):
            assert time.monotonic() < deadline, (agent.data / "agent.log").read_text()[-3000:]
            time.sleep(0.3)
    assert fetch_credentials(env)["RoleArn"] == before["RoleArn"]
    a.ecs.stop_task(cluster=a.cluster, task=arn)
    a.wait(arn)


def test_a_service_task_protects_itself_through_ecs_agent_uri(a, tmp_path):
    family = a.register([sys.executable], ["-c", (
        "import json,os,time\n"
        f"fd=os.open({str(tmp_path / 'env.json')!r},os.O_WRONLY|os.O_CREAT|os.O_EXCL,0o600)\n"
        "os.write(fd,json.dumps(dict(os.environ)).encode());os.close(fd)\ntime.sleep(600)\n")])
    svc = harness.unique("guarded")
    a.ecs.create_service(cluster=a.cluster, serviceName=svc, taskDefinition=family,
                         desiredCount=1, launchType="FARGATE", networkConfiguration=NETWORK)
    path = tmp_path / "env.json"
    deadline = time.monotonic() + 60
    while not path.exists() or path.stat().st_size == 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(0.2)
    uri = json.loads(path.read_text())["ECS_AGENT_URI"] + "/task-protection/v1/state"
    put = urllib.request.Request(uri, method="PUT", data=json.dumps(
        {"ProtectionEnabled": True, "ExpiresInMinutes": 60}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(put, timeout=10) as r:
        p = json.load(r)["protection"]
    assert p["ProtectionEnabled"] is True and p["ExpirationDate"]
    [task] = a.ecs.list_tasks(cluster=a.cluster, serviceName=svc)["taskArns"]
    assert p["TaskArn"] == task
    got = a.ecs.get_task_protection(cluster=a.cluster, tasks=[task])["protectedTasks"][0]
    assert got["protectionEnabled"] is True
    with urllib.request.urlopen(uri, timeout=10) as r:
        assert json.load(r)["protection"]["ProtectionEnabled"] is True
    bad = urllib.request.Request(uri, method="PUT", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=10)
    assert e.value.code == 400
    a.ecs.delete_service(cluster=a.cluster, service=svc, force=True)


def test_agent_channel_gives_credentials_only_to_the_tasks_agent(srv, a, b, agent, tmp_path):
    """GetTaskCredentials: refused to another account's key, for another
    instance, for a FARGATE task (the managed instance is no account's)."""
    arn, _ = a.holder(tmp_path / "env.json", launch="EC2")
    [instance] = a.ecs.list_container_instances(cluster=a.cluster)["containerInstanceArns"]
    target = "BerthAgentV1.GetTaskCredentials"

    def ask(creds, task, inst=instance):
        body = json.dumps({"cluster": a.cluster, "containerInstanceArn": inst, "task": task})
        return raw_call(srv, creds.access_key_id, creds.secret_access_key, None, target, body)

    status, body = ask(ACCOUNT_A, arn)
    assert status == 200 and body["roleArn"] == READER, body
    assert body["accessKeyId"].startswith("ASIA")
    assert ask(ACCOUNT_B, arn)[1]["__type"] == "InvalidParameterException"
    wrong = instance.rsplit("/", 1)[0] + "/" + "0" * 32
    assert ask(ACCOUNT_A, arn, wrong)[1]["__type"] == "InvalidParameterException"
    fargate, _ = a.holder(tmp_path / "env2.json")
    assert ask(ACCOUNT_A, fargate)[1]["__type"] == "InvalidParameterException"
    for t in (arn, fargate):
        a.ecs.stop_task(cluster=a.cluster, task=t)
        a.wait(t)
    # Nor for a task that has stopped.
    assert ask(ACCOUNT_A, arn)[1]["__type"] == "InvalidParameterException"
