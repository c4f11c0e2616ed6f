"""The process runtime is not a sandbox, so berth says so and acts on it
(issue 9, parts 2 and 3).

Two accounts share one berth server (``two_accounts``), whose managed
capacity runs FARGATE tasks as host processes. Account B plays the
attacker:

* its task runs as an unprivileged uid of B's own (not root, not A's),
  with no new privileges, and cannot read the server's data dir
  (``secrets.key``), its config, nor the server's process; on a server
  that does not run as root, B's task is refused instead;
* on a ``berth agent``, ``environmentFiles`` naming host paths are read
  only from the directories its operator allows (``--allow-env-files``),
  after resolving ``..`` and symlinks;
* StopTask ends every process a task started, also those that left its
  session (``setsid``) or were orphaned by a double fork;
* secret values (``secrets``, ``repositoryCredentials``) are in no file
  under the server's or the agent's data dir, while the task runs or after,
  and in no log; state files are private (0600 / 0700).

The single-account start is unchanged: its tasks run as the server's user.
"""

import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

import harness

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

FAST = {"Delay": 1, "MaxAttempts": 60}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-berth"]}}
ROOT = os.geteuid() == 0


def client(srv, creds, service="ecs", recorder=None):
    c = boto3.session.Session(
        aws_access_key_id=creds.access_key_id, aws_secret_access_key=creds.secret_access_key,
        region_name=harness.REGION,
    ).client(service, endpoint_url=srv.endpoint,
             config=Config(retries={"total_max_attempts": 1}, read_timeout=60))
    if recorder is not None:
        recorder.attach(c)
    return c


class Account:
    """The clients of one account on one server."""

    def __init__(self, srv, creds, recorder, name):
        self.srv, self.creds, self.name = srv, creds, name
        self.ecs = client(srv, creds, "ecs", recorder)
        self.logs = client(srv, creds, "logs", recorder)
        self.sm = client(srv, creds, "secretsmanager", recorder)
        self.ssm = client(srv, creds, "ssm", recorder)
        self.cluster = name("sec-proc")
        self.ecs.create_cluster(clusterName=self.cluster)
        self.group = "/sec-proc/" + name("logs")

    def container(self, script, **extra):
        return {"name": "main", "image": "host", "entryPoint": ["/bin/sh", "-c"],
                "command": [script],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": self.group, "awslogs-region": harness.REGION,
                    "awslogs-stream-prefix": "p", "awslogs-create-group": "true"}},
                **extra}

    def register(self, script, launch="FARGATE", **extra):
        family = self.name("proc")
        kw = {"executionRoleArn": f"arn:aws:iam::{self.creds.account_id}:role/exec"}
        container = self.container(script, **extra)
        if launch == "FARGATE":
            kw.update(networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                      cpu="256", memory="512")
        else:
            container["memory"] = 64
        self.ecs.register_task_definition(family=family, containerDefinitions=[container], **kw)
        return family

    def start(self, family, launch="FARGATE"):
        kw = {"networkConfiguration": NETWORK} if launch == "FARGATE" else {}
        out = self.ecs.run_task(cluster=self.cluster, taskDefinition=family, launchType=launch,
                                **kw)
        assert out["failures"] == [], out["failures"]
        return out["tasks"][0]["taskArn"]

    def wait_stopped(self, arn):
        self.ecs.get_waiter("tasks_stopped").wait(cluster=self.cluster, tasks=[arn],
                                                  WaiterConfig=FAST)
        return self.ecs.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"][0]

    def run(self, script, launch="FARGATE", **extra):
        """Runs a task to its end: (task, its output lines)."""
        arn = self.start(self.register(script, launch, **extra), launch)
        return self.wait_stopped(arn), self.output(arn)

    def output(self, arn):
        stream = f"p/main/{arn.rsplit('/', 1)[1]}"
        try:
            events = self.logs.get_log_events(logGroupName=self.group, logStreamName=stream,
                                              startFromHead=True)["events"]
        except self.logs.exceptions.ResourceNotFoundException:
            return []
        return [e["message"] for e in events]


@pytest.fixture
def accounts(two_accounts, recorder, name):
    a, _, b = two_accounts.creds
    return (Account(two_accounts, a, recorder, name), Account(two_accounts, b, recorder, name))


# -- another account's task is not the server ------------------------------------

def probe_script(srv):
    data = srv.data_dir
    pid = srv.proc.pid
    return "; ".join([
        "id -u", "id -g", "grep NoNewPrivs /proc/self/status",
        f"cat {data}/secrets.key >/dev/null 2>&1 && echo read-secrets-key || echo no-secrets-key",
        f"ls {data} >/dev/null 2>&1 && echo listed-data-dir || echo no-data-dir",
        f"cat {srv.config} >/dev/null 2>&1 && echo read-config || echo no-config",
        f"cat /proc/{pid}/environ >/dev/null 2>&1 && echo read-server-env || echo no-server-env",
        f"ls /proc/{pid}/fd >/dev/null 2>&1 && echo listed-server-fds || echo no-server-fds",
        f"ls /proc/{pid}/root/ >/dev/null 2>&1 && echo server-root || echo no-server-root",
        # Nothing of the server's is open in the task.
        "ls -l /proc/self/fd/ | grep -c berth.db || true",
        "touch \"$HOME/mine\" && echo home-writable",
    ])


def test_another_accounts_task_cannot_read_the_data_dir_or_run_as_root(two_accounts, accounts):
    a, b = accounts
    task, out = b.run(probe_script(two_accounts))
    if not ROOT:
        # A server that cannot switch users refuses other accounts' tasks.
        assert task["stopCode"] == "TaskFailedToStart", task
        assert "refused" in task["stoppedReason"], task["stoppedReason"]
        assert "does not run as root" in task["stoppedReason"], task["stoppedReason"]
        return
    assert task["containers"][0].get("exitCode") == 0, (task, out)
    uid = int(out[0])
    assert uid != 0 and out[1] == out[0], out
    assert out[2:] == ["NoNewPrivs:\t1", "no-secrets-key", "no-data-dir", "no-config",
                       "no-server-env", "no-server-fds", "no-server-root", "0",
                       "home-writable"], out
    # Account A's tasks are isolated the same way, as a uid of A's own.
    task_a, out_a = a.run("id -u")
    assert task_a["containers"][0].get("exitCode") == 0, task_a
    assert int(out_a[0]) not in (0, uid), (out_a, uid)
    # B's next task is B's uid again.
    _, again = b.run("id -u")
    assert int(again[0]) == uid
    # The data dir is the server's user's alone.
    assert (two_accounts.data_dir.stat().st_mode & 0o077) == 0


def test_a_container_user_is_refused_for_isolated_accounts(accounts):
    if not ROOT:
        pytest.skip("isolation by uid needs root")
    _, b = accounts
    task, _ = b.run("id -u", user="0")
    assert task["stopCode"] == "TaskFailedToStart", task
    assert "`user`" in task["stoppedReason"], task["stoppedReason"]
    assert "exitCode" not in task["containers"][0]


def test_one_account_runs_tasks_as_the_server_user(server, recorder, name):
    """The one-command start is unchanged: one account, its tasks run as
    the server's own user."""
    acct = Account(server, server.default_creds(), recorder, name)
    task, out = acct.run("id -u")
    assert task["containers"][0].get("exitCode") == 0, task
    assert out == [str(os.geteuid())]


# -- environment files on a berth agent --------------------------------------------

class AgentProcess:
    """A standalone ``berth agent`` (process runtime) for one account."""

    def __init__(self, srv, creds, cluster, data_dir: Path, *args):
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}.agent.log"
        env = dict(os.environ, **srv.env(creds), BERTH_LOG="debug")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(harness.berth_bin()), "agent", "--cluster", cluster,
                 "--data-dir", str(data_dir), "--runtime", "process", *args],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_registered(self, ecs, cluster):
        deadline = time.monotonic() + 30
        while not ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]:
            assert self.proc.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, "the agent did not register"
            time.sleep(0.2)
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def agent_b(two_accounts, accounts, tmp_path):
    """B's own host: a berth agent that allows env files from one directory."""
    _, b = accounts
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    agent = AgentProcess(two_accounts, b.creds, b.cluster, tmp_path / "agent",
                         "--allow-env-files", str(allowed))
    agent.wait_registered(b.ecs, b.cluster)
    yield agent, allowed
    agent.stop()


NOT_ALLOWED = "is not in a directory this agent allows"


def env_file_task(b, path):
    return b.run("echo \"from-file=$FROM_FILE\"", launch="EC2",
                 environmentFiles=[{"value": str(path), "type": "s3"}])


def test_env_files_are_read_only_from_allowed_directories(two_accounts, accounts, agent_b,
                                                          tmp_path):
    _, b = accounts
    agent, allowed = agent_b
    (allowed / "sub").mkdir()
    (allowed / "sub" / "app.env").write_text("FROM_FILE=allowed\n")
    # The server's config holds every account's secret key.
    config = two_accounts.config
    (allowed / "config-link.env").symlink_to(config)
    (allowed / "dir-link").symlink_to(config.parent)

    task, out = env_file_task(b, allowed / "sub" / "app.env")
    assert task["containers"][0].get("exitCode") == 0, task
    assert out == ["from-file=allowed"]
    task, out = env_file_task(b, f"file://{allowed}/sub/../sub/app.env")
    assert out == ["from-file=allowed"], task

    climb = str(allowed) + "/.." * (len(allowed.parts) - 1) + str(config)
    for attack in [config, climb, allowed / "config-link.env",
                   allowed / "dir-link" / config.name, "/etc/shadow"]:
        task, out = env_file_task(b, attack)
        assert task["stopCode"] == "TaskFailedToStart", (attack, task)
        reason = task["stoppedReason"]
        assert reason.startswith("ResourceInitializationError: environment file "), reason
        assert NOT_ALLOWED in reason, (attack, reason)
        assert out == [], out
    # Nothing of the config reached a response or a log.
    secret = two_accounts.creds[0].secret_access_key
    assert secret not in agent.log_path.read_text(errors="replace")


def test_an_agent_reads_no_env_file_unless_allowed(two_accounts, accounts, tmp_path, name):
    _, b = accounts
    cluster = name("no-env")
    b.ecs.create_cluster(clusterName=cluster)
    b.cluster = cluster
    env_file = tmp_path / "app.env"
    env_file.write_text("FROM_FILE=1\n")
    agent = AgentProcess(two_accounts, b.creds, cluster, tmp_path / "agent2")
    try:
        agent.wait_registered(b.ecs, cluster)
        task, out = env_file_task(b, env_file)
        assert task["stopCode"] == "TaskFailedToStart", task
        assert "reads no environment files from its host" in task["stoppedReason"], task
        assert "--allow-env-files" in task["stoppedReason"]
    finally:
        agent.stop()


# -- StopTask ends every process of the task -----------------------------------------

def processes_with(marker):
    """Live processes whose command line holds `marker`."""
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmdline = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in cmdline and state not in ("Z", "X"):
            found.append((int(p.name), cmdline))
    return found


def detaching_script():
    """A task whose processes leave its session and its process tree: a
    setsid child, an orphan of a double fork, and a daemonizing Python."""
    n = random.randint(100000, 999999)
    marks = [f"{n}1", f"{n}2", f"{n}3"]
    python = ("import os,time\n"
              "if os.fork(): os._exit(0)\n"
              "os.setsid()\n"
              "if os.fork(): os._exit(0)\n"
              f"time.sleep({marks[2]})")
    script = (f"setsid sleep {marks[0]} & "
              f"sh -c 'sleep {marks[1]} & exit 0'; "
              f"python3 -c '{python}'; "
              "echo started; trap 'exit 143' TERM; while :; do sleep 1; done")
    return script, marks


@pytest.mark.parametrize("accounts_on_server", ["one", "two"])
def test_stop_task_kills_processes_that_left_the_task(server, two_accounts, accounts, recorder,
                                                      name, accounts_on_server):
    if accounts_on_server == "one":
        acct = Account(server, server.default_creds(), recorder, name)
    else:
        acct = accounts[1]
    script, marks = detaching_script()
    arn = acct.start(acct.register(script, stopTimeout=5))
    deadline = time.monotonic() + 30
    while acct.output(arn) != ["started"]:
        assert time.monotonic() < deadline, acct.output(arn)
        time.sleep(0.2)
    # Each runs, not only the task's shell (whose script names them all).
    for m in marks:
        assert any("sleep" in c or "python3" in c for _, c in processes_with(m)
                   if not c.startswith("/bin/sh -c")), (m, processes_with(m))
    acct.ecs.stop_task(cluster=acct.cluster, task=arn, reason="test")
    task = acct.wait_stopped(arn)
    assert task["containers"][0].get("exitCode") == 143, task
    left = [p for m in marks for p in processes_with(m)]
    assert left == [], f"still running after StopTask reported STOPPED: {left}"


# -- secrets at rest --------------------------------------------------------------------

def files_under(*roots):
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for d in dirnames:
                yield Path(dirpath) / d
            for f in filenames:
                yield Path(dirpath) / f


def assert_in_no_file(values, *roots, logs=()):
    for path in list(files_under(*roots)) + [Path(p) for p in logs]:
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for v in values:
            assert v.encode() not in data, f"a secret value is in {path}"


def assert_private(root):
    """State files 0600, directories 0700 (what the agent writes)."""
    for path in files_under(root):
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{path} is {mode:o}"


@pytest.fixture
def signals():
    """A directory where a task, whatever its uid, can see the test's signal."""
    d = Path(tempfile.mkdtemp(prefix="berth-go-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def secret_task(acct, launch, signals):
    """A task that gets a Secrets Manager secret, an SSM SecureString and
    registry credentials, checks them (by hash: the value must not reach the
    definition or the output) and waits for `go`; returns (arn, values, go)."""
    values = [f"sv-{uuid.uuid4().hex}", f"pv-{uuid.uuid4().hex}", f"rp-{uuid.uuid4().hex}"]
    secret = acct.sm.create_secret(Name=acct.name("sec/plain"), SecretString=values[0])
    param = "/sec/" + acct.name("param")
    acct.ssm.put_parameter(Name=param, Value=values[1], Type="SecureString")
    registry = acct.sm.create_secret(Name=acct.name("sec/registry"), SecretString=json.dumps(
        {"username": "robot", "password": values[2]}))
    want = [hashlib.sha256(v.encode()).hexdigest() for v in values[:2]]
    go = signals / f"go-{uuid.uuid4().hex[:8]}"
    script = ('h() { printf %s "$1" | sha256sum | cut -d" " -f1; }; '
              f'[ "$(h "$PLAIN")" = {want[0]} ] && [ "$(h "$PARAM")" = {want[1]} ] '
              '&& echo secrets-match || echo secrets-differ; '
              f'while [ ! -e {go} ]; do sleep 0.1; done')
    family = acct.register(script, launch,
                           secrets=[{"name": "PLAIN", "valueFrom": secret["ARN"]},
                                    {"name": "PARAM", "valueFrom": param}],
                           repositoryCredentials={"credentialsParameter": registry["ARN"]})
    return acct.start(family, launch), values, go


def check_secrets_at_rest(srv, acct, arn, values, go, data_dirs, logs):
    acct.ecs.get_waiter("tasks_running").wait(cluster=acct.cluster, tasks=[arn],
                                              WaiterConfig=FAST)
    deadline = time.monotonic() + 20
    while acct.output(arn) != ["secrets-match"]:
        assert time.monotonic() < deadline, acct.output(arn)
        time.sleep(0.2)
    # While it runs: in no file.
    assert_in_no_file(values, *data_dirs, logs=logs)
    go.write_text("")
    task = acct.wait_stopped(arn)
    assert task["containers"][0].get("exitCode") == 0, task
    assert_in_no_file(values, *data_dirs, logs=logs)
    return task


def test_secrets_are_in_no_file_of_the_server(two_accounts, accounts, signals):
    """FARGATE on the managed capacity: the server's data dir holds its
    agent's state too (DATA_DIR/agent)."""
    _, b = accounts
    arn, values, go = secret_task(b, "FARGATE", signals)
    data = two_accounts.data_dir
    check_secrets_at_rest(two_accounts, b, arn, values, go, [data],
                          [two_accounts.log_path])
    assert_private(data / "agent")
    assert (data.stat().st_mode & 0o077) == 0


def test_secrets_are_in_no_file_of_an_agent(two_accounts, accounts, agent_b, signals):
    _, b = accounts
    agent, _ = agent_b
    arn, values, go = secret_task(b, "EC2", signals)
    check_secrets_at_rest(two_accounts, b, arn, values, go,
                          [agent.data_dir, two_accounts.data_dir],
                          [two_accounts.log_path, agent.log_path])
    assert_private(agent.data_dir)
