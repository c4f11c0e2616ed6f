"""FARGATE is a sandbox, as on AWS (issue 9, part 1).

Two accounts share one berth server; account B plays the attacker. On berth
every account's FARGATE tasks run on the server's own host (its managed
capacity), so each way a FARGATE task definition or launch could reach into
that host -- the data dir with ``secrets.key``, ``token.key`` and
``berth.db``, the Engine's socket, ``/dev/mem``, the server's config with
every account's keys -- must be refused the way ECS refuses it, with ECS's
error code and message (see ``berth_core::fargate::sandbox`` for the texts
and their sources). What Fargate does allow keeps working, and so does the
same definition on EC2 (an instance of B's own).

The last test is the defence in depth: a definition (and a running task)
stored before these checks existed, edited into the store while the server
is down, is refused at launch and stopped by the managed capacity's agent
with a ResourceInitializationError.
"""

import json
import sqlite3
import time

import pytest
from botocore.exceptions import ClientError

import harness
from errors import error_code, error_message
from harness import BerthServer

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

FAST = {"Delay": 1, "MaxAttempts": 60}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-berth"]}}
UNSUPPORTED = "Fargate compatible task definitions do not support {}"
NOT_S3 = ("Fargate only supports environment files stored in Amazon S3: '{}' of container "
          "'main' is not an S3 object ARN (arn:aws:s3:::bucket/key.env).")
NO_S3 = ("berth cannot fetch environment files from Amazon S3 ('{}' of container 'main'); "
         "give FARGATE tasks their variables as environment or secrets.")
SANDBOX = "ResourceInitializationError: berth's FARGATE capacity gives tasks no way into its host: "


@pytest.fixture
def accounts(two_accounts, make_ecs):
    """Clients of account A (the victim) and account B (the attacker)."""
    a, _, b = two_accounts.creds
    return make_ecs(two_accounts, a), make_ecs(two_accounts, b)


@pytest.fixture
def attacker(accounts):
    return accounts[1]


def sh(script, **extra):
    return {"name": "main", "image": "host", "entryPoint": ["/bin/sh", "-c"],
            "command": [script], **extra}


def fargate_def(family, container=None, **kw):
    td = dict(family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
              cpu="256", memory="512", containerDefinitions=[container or sh("exit 0")])
    td.update(kw)
    return td


def refused(call, code, message):
    with pytest.raises(ClientError) as e:
        call()
    assert error_code(e) == code, error_message(e)
    assert error_message(e) == message
    return e


def mount(volume):
    """The container mounts `volume` at /data and would read it."""
    return dict(volumes=[volume], containerDefinitions=[sh(
        "ls -la /data; cat /data/secrets.key /data/token.key",
        mountPoints=[{"sourceVolume": volume["name"], "containerPath": "/data"}])])


def linux(**params):
    return dict(containerDefinitions=[sh("exit 0", linuxParameters=params)])


def attacks(server):
    """Every way in that account B tried, with ECS's answer."""
    data, config = str(server.data_dir), str(server.config)
    return {
        "docker-socket": (
            mount({"name": "sock", "host": {"sourcePath": "/var/run/docker.sock"}}),
            UNSUPPORTED.format("sourcePath")),
        "data-dir": (
            mount({"name": "data", "host": {"sourcePath": data}}),
            UNSUPPORTED.format("sourcePath")),
        "root": (
            mount({"name": "root", "host": {"sourcePath": "/"}}),
            UNSUPPORTED.format("sourcePath")),
        "docker-volume-bind": (
            mount({"name": "data", "dockerVolumeConfiguration": {
                "scope": "task", "driver": "local",
                "driverOpts": {"type": "none", "o": "bind", "device": data}}}),
            UNSUPPORTED.format("dockerVolumeConfiguration")),
        "devices": (
            linux(devices=[{"hostPath": "/dev/mem", "containerPath": "/dev/mem",
                            "permissions": ["read"]}]),
            UNSUPPORTED.format("devices")),
        "privileged": (
            dict(containerDefinitions=[sh("exit 0", privileged=True)]),
            UNSUPPORTED.format("privileged")),
        "sys-admin": (
            linux(capabilities={"add": ["SYS_PTRACE", "SYS_ADMIN"]}),
            "Fargate compatible task definitions only support adding the SYS_PTRACE "
            "capability: container 'main' adds 'SYS_ADMIN'."),
        "env-file-config": (
            dict(containerDefinitions=[sh("env", environmentFiles=[
                {"value": config, "type": "s3"}])]),
            NOT_S3.format(config)),
        "env-file-url": (
            dict(containerDefinitions=[sh("env", environmentFiles=[
                {"value": f"file://{data}/credentials.toml", "type": "s3"}])]),
            NOT_S3.format(f"file://{data}/credentials.toml")),
        "host-network": (
            dict(networkMode="host"),
            "Fargate only supports network mode 'awsvpc'."),
        "shared-memory": (
            linux(sharedMemorySize=64),
            UNSUPPORTED.format("sharedMemorySize")),
        "ulimit-nproc": (
            dict(containerDefinitions=[sh("exit 0", ulimits=[
                {"name": "nproc", "softLimit": 999999, "hardLimit": 999999}])]),
            "Fargate compatible task definitions only support the 'nofile' ulimit: "
            "container 'main' sets 'nproc'."),
        "ulimit-nofile": (
            dict(containerDefinitions=[sh("exit 0", ulimits=[
                {"name": "nofile", "softLimit": 1024, "hardLimit": 1048577}])]),
            "Invalid 'nofile' ulimit for container 'main': on Fargate 0 <= softLimit "
            "<= hardLimit <= 1048576."),
        "security-options": (
            dict(containerDefinitions=[sh("exit 0", dockerSecurityOptions=[
                "apparmor=unconfined"])]),
            UNSUPPORTED.format("dockerSecurityOptions")),
        "ipc-host": (
            dict(ipcMode="host"),
            "Tasks using the Fargate launch type do not support ipcMode."),
        "pid-host": (
            dict(pidMode="host"),
            "Fargate compatible task definitions only support the pidMode 'task'."),
    }


ATTACKS = ["docker-socket", "data-dir", "root", "docker-volume-bind", "devices", "privileged",
           "sys-admin", "env-file-config", "env-file-url", "host-network", "shared-memory",
           "ulimit-nproc", "ulimit-nofile", "security-options", "ipc-host", "pid-host"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_fargate_definitions_that_reach_into_the_host_are_refused(
        two_accounts, attacker, name, attack):
    parts, message = attacks(two_accounts)[attack]
    family = name(f"fg-{attack}")
    refused(lambda: attacker.register_task_definition(**fargate_def(family, **parts)),
            "ClientException", message)
    listed = attacker.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert listed == [], "nothing was registered"


def test_what_fargate_allows_registers_and_runs(attacker, name):
    """A task-scoped volume (host without sourcePath), SYS_PTRACE, drops,
    tmpfs, nofile up to Fargate's maximum, init, pidMode task, and
    environment files in S3 are all FARGATE-compatible."""
    cluster = name("fg-ok")
    attacker.create_cluster(clusterName=cluster)
    container = sh(
        "exit 0",
        mountPoints=[{"sourceVolume": "scratch", "containerPath": "/scratch"}],
        ulimits=[{"name": "nofile", "softLimit": 65536, "hardLimit": 1048576}],
        linuxParameters={"capabilities": {"add": ["SYS_PTRACE"], "drop": ["ALL"]},
                         "initProcessEnabled": True,
                         "tmpfs": [{"containerPath": "/run", "size": 16}]})
    td = attacker.register_task_definition(**fargate_def(
        name("fg-ok"), container, pidMode="task",
        volumes=[{"name": "scratch", "host": {}}]))["taskDefinition"]
    assert "FARGATE" in td["compatibilities"]
    arn = attacker.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"],
                            launchType="FARGATE",
                            networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    attacker.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    t = attacker.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert t["stopCode"] == "EssentialContainerExited", t.get("stoppedReason")
    assert t["containers"][0]["exitCode"] == 0

    s3 = attacker.register_task_definition(**fargate_def(name("fg-s3"), sh(
        "env", environmentFiles=[{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}])))
    assert "FARGATE" in s3["taskDefinition"]["compatibilities"]


def test_run_task_overrides_cannot_add_host_files(two_accounts, attacker, name):
    cluster = name("fg-ovr")
    attacker.create_cluster(clusterName=cluster)
    family = name("fg-ovr")
    attacker.register_task_definition(**fargate_def(family, sh("env")))
    config = str(two_accounts.config)

    def run(env_file, **kw):
        return lambda: attacker.run_task(
            cluster=cluster, taskDefinition=family, networkConfiguration=NETWORK,
            overrides={"containerOverrides": [{"name": "main", "environmentFiles": [
                {"value": env_file, "type": "s3"}]}]}, **kw)

    refused(run(config, launchType="FARGATE"), "ClientException", NOT_S3.format(config))
    key = f"{two_accounts.data_dir}/secrets.key"
    refused(run(key, capacityProviderStrategy=[{"capacityProvider": "FARGATE"}]),
            "ClientException", NOT_S3.format(key))
    refused(run(key, capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT"}]),
            "ClientException", NOT_S3.format(key))
    s3 = "arn:aws:s3:::bucket/app.env"
    refused(run(s3, launchType="FARGATE"), "ClientException", NO_S3.format(s3))
    assert attacker.list_tasks(cluster=cluster)["taskArns"] == [], "no task was started"


def test_s3_environment_files_cannot_run_on_fargate_here(attacker, name):
    """Valid on Fargate, but berth has no S3 to fetch them from: RunTask and
    CreateService say so instead of starting tasks that can only fail."""
    cluster = name("fg-s3")
    attacker.create_cluster(clusterName=cluster)
    s3 = "arn:aws:s3:::bucket/app.env"
    family = name("fg-s3")
    attacker.register_task_definition(**fargate_def(family, sh(
        "env", environmentFiles=[{"value": s3, "type": "s3"}])))
    refused(lambda: attacker.run_task(cluster=cluster, taskDefinition=family,
                                      launchType="FARGATE", networkConfiguration=NETWORK),
            "ClientException", NO_S3.format(s3))
    refused(lambda: attacker.create_service(
        cluster=cluster, serviceName=name("svc"), taskDefinition=family, desiredCount=1,
        launchType="FARGATE", networkConfiguration=NETWORK),
        "ClientException", NO_S3.format(s3))
    assert attacker.list_tasks(cluster=cluster)["taskArns"] == []


def test_a_host_path_definition_is_for_ec2_only(two_accounts, accounts, name):
    """B's definition that reads the server's data dir through a host
    volume is fine for an EC2 instance of B's own (it registers, as on ECS),
    but FARGATE is not among its compatibilities: neither RunTask nor a
    service can put it on the server's host, and A's view is untouched."""
    victim, attacker = accounts
    cluster = name("fg-ec2")
    attacker.create_cluster(clusterName=cluster)
    family = name("reader")
    parts = mount({"name": "data", "host": {"sourcePath": str(two_accounts.data_dir)}})
    td = attacker.register_task_definition(
        family=family, networkMode="awsvpc", cpu="256", memory="512",
        requiresCompatibilities=["EC2"], **parts)["taskDefinition"]
    assert td["volumes"] == parts["volumes"]
    assert "FARGATE" not in td["compatibilities"]
    # Without requiresCompatibilities too: the Fargate checks decide whether
    # FARGATE is among what it is compatible with.
    loose = attacker.register_task_definition(
        family=name("reader"), networkMode="awsvpc", cpu="256", memory="512",
        **parts)["taskDefinition"]
    assert loose["compatibilities"] == ["EC2"]

    nope = "Task definition does not support launch_type FARGATE."
    for t in (family, loose["taskDefinitionArn"]):
        refused(lambda: attacker.run_task(cluster=cluster, taskDefinition=t,
                                          launchType="FARGATE", networkConfiguration=NETWORK),
                "ClientException", nope)
        refused(lambda: attacker.run_task(
            cluster=cluster, taskDefinition=t, networkConfiguration=NETWORK,
            capacityProviderStrategy=[{"capacityProvider": "FARGATE"}]),
            "ClientException", nope)
        refused(lambda: attacker.create_service(
            cluster=cluster, serviceName=name("svc"), taskDefinition=t, desiredCount=1,
            launchType="FARGATE", networkConfiguration=NETWORK),
            "ClientException", nope)
    assert attacker.list_tasks(cluster=cluster)["taskArns"] == []
    assert attacker.list_services(cluster=cluster)["serviceArns"] == []
    # A sees nothing of it.
    assert victim.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == []


# -- defence in depth: documents stored before the checks ----------------------

def edit_docs(data_dir, account, kind, doc_id, change):
    """Changes a stored document in place (the server must be down)."""
    db = sqlite3.connect(data_dir / "berth.db")
    try:
        (body,) = db.execute(
            "SELECT body FROM docs WHERE account=? AND region=? AND kind=? AND id=?",
            (account, harness.REGION, kind, doc_id)).fetchone()
        doc = json.loads(body)
        change(doc)
        db.execute("UPDATE docs SET body=? WHERE account=? AND region=? AND kind=? AND id=?",
                   (json.dumps(doc).encode(), account, harness.REGION, kind, doc_id))
        db.commit()
    finally:
        db.close()


def with_host_volume(path):
    def change(td):
        td["volumes"] = [{"name": "data", "host": {"sourcePath": path}}]
        td["containerDefinitions"][0]["mountPoints"] = [
            {"sourceVolume": "data", "containerPath": "/data", "readOnly": False}]
    return change


def with_env_file(path):
    def change(td):
        td["containerDefinitions"][0]["environmentFiles"] = [{"value": path, "type": "s3"}]
    return change


def test_documents_stored_before_the_checks_cannot_reach_the_host(
        two_accounts, make_ecs, name, tmp_path):
    """B's definition and B's running FARGATE tasks are edited in the store
    (as if written before these checks existed) to mount the server's data
    dir and read its config. After a restart the launch is refused, and the
    managed capacity's agent stops the adopted tasks with a
    ResourceInitializationError instead of giving them the host."""
    srv = BerthServer(tmp_path / "data", config=two_accounts.config).start()
    try:
        _, _, b = srv.creds
        ecs = make_ecs(srv, b)
        cluster = name("fg-old")
        ecs.create_cluster(clusterName=cluster)
        old = name("old")
        ecs.register_task_definition(**fargate_def(old, sh("ls /data")))
        sleeper = name("sleeper")
        ecs.register_task_definition(**fargate_def(sleeper, sh("sleep 60", stopTimeout=2)))
        begun = time.monotonic()
        arns = [ecs.run_task(cluster=cluster, taskDefinition=sleeper, launchType="FARGATE",
                             networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
                for _ in range(2)]
        ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=arns, WaiterConfig=FAST)

        srv.kill9()
        data = str(srv.data_dir)
        edit_docs(srv.data_dir, b.account_id, "task-definition", f"{old}:1",
                  lambda d: with_host_volume(data)(d["taskDefinition"]))
        mounts, reads = arns
        edit_docs(srv.data_dir, b.account_id, "task", mounts.rsplit("/", 1)[1],
                  lambda d: with_host_volume(data)(d["taskDefinition"]))
        edit_docs(srv.data_dir, b.account_id, "task", reads.rsplit("/", 1)[1],
                  lambda d: with_env_file(str(srv.config))(d["taskDefinition"]))
        srv.start()
        ecs = make_ecs(srv, b)

        refused(lambda: ecs.run_task(cluster=cluster, taskDefinition=old, launchType="FARGATE",
                                     networkConfiguration=NETWORK),
                "ClientException", UNSUPPORTED.format("sourcePath"))
        ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=arns, WaiterConfig=FAST)
        tasks = {t["taskArn"]: t for t in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]}
        expected = {
            mounts: f"{SANDBOX}container 'main' would mount the host path {data}",
            reads: f"{SANDBOX}container 'main' names the host file {srv.config} as an "
                   "environment file",
        }
        for arn, reason in expected.items():
            t = tasks[arn]
            assert t["stoppedReason"] == reason
            assert t["stopCode"] == "TaskFailedToStart"
            assert t["containers"][0]["lastStatus"] == "STOPPED"
        # The sleepers were stopped, not left to finish their minute.
        assert time.monotonic() - begun < 50
    finally:
        srv.stop()
