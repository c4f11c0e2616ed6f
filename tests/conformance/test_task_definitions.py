"""Task definitions: Register/Describe/Deregister/Delete, ListTaskDefinitions,
ListTaskDefinitionFamilies -- semantics from the ECS API reference."""

import copy
import time

import pytest
from botocore.exceptions import ClientError

from errors import assert_error, error_code

VALIDATION_ERRORS = ("ClientException", "InvalidParameterException")


def td_arn(region, account, family, revision):
    return f"arn:aws:ecs:{region}:{account}:task-definition/{family}:{revision}"


def simple_container(name="app", **extra):
    c = {"name": name, "image": "public.ecr.aws/docker/library/busybox:latest",
         "memory": 128, "essential": True}
    c.update(extra)
    return c


def register(ecs, family, containers=None, **kw):
    return ecs.register_task_definition(
        family=family, containerDefinitions=containers or [simple_container()], **kw)


# A container definition with (nearly) every field ECS has, as it would be
# returned by DescribeTaskDefinition (all defaults filled in explicitly, so
# that "comes back unchanged" is an exact comparison).
BIG_CONTAINER = {
    "name": "web",
    "image": "registry.example.com/team/web:1.2.3",
    "repositoryCredentials": {
        "credentialsParameter": "arn:aws:secretsmanager:us-east-1:123456789012:secret:regcreds-AbCdEf"},
    "cpu": 256,
    "memory": 512,
    "memoryReservation": 256,
    "links": ["sidecar:side"],
    "portMappings": [
        {"containerPort": 8080, "hostPort": 0, "protocol": "tcp", "name": "http",
         "appProtocol": "http"},
        {"containerPort": 5353, "hostPort": 5353, "protocol": "udp"},
        {"containerPort": 9100, "hostPort": 9100, "protocol": "tcp"},
    ],
    "essential": True,
    "restartPolicy": {"enabled": True, "ignoredExitCodes": [0, 143], "restartAttemptPeriod": 120},
    "entryPoint": ["/bin/sh", "-c"],
    "command": ["exec web --port=8080"],
    "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "two words"},
                    {"name": "EMPTY", "value": ""}],
    "environmentFiles": [{"value": "arn:aws:s3:::bucket/web.env", "type": "s3"}],
    "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": False},
                    {"sourceVolume": "scratch", "containerPath": "/scratch", "readOnly": True}],
    "volumesFrom": [{"sourceContainer": "sidecar", "readOnly": True}],
    "linuxParameters": {
        "capabilities": {"add": ["NET_ADMIN", "SYS_TIME"], "drop": ["MKNOD"]},
        "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse",
                     "permissions": ["read", "write"]}],
        "initProcessEnabled": True,
        "sharedMemorySize": 64,
        "tmpfs": [{"containerPath": "/run", "size": 64, "mountOptions": ["noexec", "nosuid"]}],
        "maxSwap": 1024,
        "swappiness": 10,
    },
    "secrets": [
        {"name": "DB_PASSWORD",
         "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"},
        {"name": "API_KEY", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/api-key"},
    ],
    "dependsOn": [{"containerName": "sidecar", "condition": "HEALTHY"}],
    "startTimeout": 60,
    "stopTimeout": 30,
    "versionConsistency": "disabled",
    "hostname": "web.local",
    "user": "1000:1000",
    "workingDirectory": "/srv",
    "disableNetworking": False,
    "privileged": False,
    "readonlyRootFilesystem": True,
    "dnsServers": ["10.0.0.2", "1.1.1.1"],
    "dnsSearchDomains": ["example.internal"],
    "extraHosts": [{"hostname": "db.local", "ipAddress": "10.0.0.10"}],
    "dockerSecurityOptions": ["no-new-privileges"],
    "interactive": False,
    "pseudoTerminal": False,
    "dockerLabels": {"com.example.team": "core", "empty": ""},
    "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536},
                {"name": "nproc", "softLimit": 1024, "hardLimit": 2048}],
    "logConfiguration": {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/ecs/web", "awslogs-region": "us-east-1",
                    "awslogs-stream-prefix": "web"},
        "secretOptions": [{"name": "token",
                           "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/log-token"}],
    },
    "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/ || exit 1"],
                    "interval": 15, "timeout": 5, "retries": 4, "startPeriod": 20},
    "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
    "resourceRequirements": [{"value": "1", "type": "GPU"}],
}

SIDECAR = {
    "name": "sidecar",
    "image": "public.ecr.aws/docker/library/busybox:1.36",
    "cpu": 0,
    "memoryReservation": 64,
    "essential": False,
    "portMappings": [],
    "environment": [],
    "mountPoints": [],
    "volumesFrom": [],
    "command": ["sleep", "infinity"],
    "healthCheck": {"command": ["CMD", "true"], "interval": 30, "timeout": 5, "retries": 3},
    "systemControls": [],
}

BIG_TASKDEF = {
    "taskRoleArn": "arn:aws:iam::123456789012:role/web-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    "networkMode": "bridge",
    "containerDefinitions": [BIG_CONTAINER, SIDECAR],
    "volumes": [
        {"name": "data", "host": {"sourcePath": "/var/lib/web"}},
        {"name": "scratch", "dockerVolumeConfiguration": {
            "scope": "task", "driver": "local",
            "driverOpts": {"type": "tmpfs", "device": "tmpfs"},
            "labels": {"purpose": "scratch"}}},
    ],
    "placementConstraints": [{"type": "memberOf",
                              "expression": "attribute:ecs.instance-type =~ t3.*"}],
    "requiresCompatibilities": ["EC2"],
    "cpu": "1024",
    "memory": "2048",
    "pidMode": "task",
    "ipcMode": "task",
    "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
}


# --------------------------------------------------------------------------
# Register / Describe
# --------------------------------------------------------------------------

def test_big_task_definition_round_trips(ecs, name, region, account_id):
    family = name("big")
    tags = [{"key": "team", "value": "core"}]
    reg = ecs.register_task_definition(family=family, tags=tags, **copy.deepcopy(BIG_TASKDEF))
    td = reg["taskDefinition"]
    assert reg.get("tags", []) == tags
    assert td["family"] == family
    assert td["revision"] == 1
    assert td["status"] == "ACTIVE"
    assert td["taskDefinitionArn"] == td_arn(region, account_id, family, 1)
    assert "EC2" in td.get("compatibilities", [])
    assert abs(td["registeredAt"].timestamp() - time.time()) < 300

    described = ecs.describe_task_definition(taskDefinition=f"{family}:1", include=["TAGS"])
    assert described["tags"] == tags
    got = described["taskDefinition"]
    assert got == td, "Describe must return what Register returned"
    for key, value in BIG_TASKDEF.items():
        if key == "containerDefinitions":
            continue
        assert got.get(key) == value, key
    by_name = {c["name"]: c for c in got["containerDefinitions"]}
    assert [c["name"] for c in got["containerDefinitions"]] == ["web", "sidecar"]
    for sent in BIG_TASKDEF["containerDefinitions"]:
        back = by_name[sent["name"]]
        for key, value in sent.items():
            assert back.get(key) == value, f"{sent['name']}.{key}: sent {value!r}, got {back.get(key)!r}"


def test_register_fills_container_defaults(ecs, name):
    family = name("defaults")
    td = register(ecs, family, [{"name": "app", "image": "busybox", "memory": 64}])["taskDefinition"]
    c = td["containerDefinitions"][0]
    # ECS defaults: essential true, cpu 0, empty lists for these members
    assert c.get("essential", True) is True
    assert c.get("cpu", 0) == 0
    for key in ("portMappings", "environment", "mountPoints", "volumesFrom"):
        assert c.get(key, []) == [], key


def test_port_mapping_protocol_defaults_to_tcp(ecs, name):
    td = register(ecs, name("ports"), [simple_container(portMappings=[{"containerPort": 80}])])
    pm = td["taskDefinition"]["containerDefinitions"][0]["portMappings"][0]
    assert pm["containerPort"] == 80
    assert pm.get("protocol", "tcp") == "tcp"


def test_revisions_increment(ecs, name, region, account_id):
    family = name("rev")
    revs = [register(ecs, family)["taskDefinition"]["revision"] for _ in range(3)]
    assert revs == [1, 2, 3]
    latest = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert latest["revision"] == 3
    assert latest["taskDefinitionArn"] == td_arn(region, account_id, family, 3)


def test_concurrent_registrations_get_distinct_revisions(make_ecs, name):
    """Registrations racing on one family each get their own revision."""
    from concurrent.futures import ThreadPoolExecutor
    family = name("race")
    clients = [make_ecs() for _ in range(4)]

    def one(i):
        return register(clients[i % 4], family)["taskDefinition"]["revision"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        revs = list(pool.map(one, range(24)))
    assert sorted(revs) == list(range(1, 25))
    listed = clients[0].list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert [int(a.rsplit(":", 1)[1]) for a in listed] == list(range(1, 25))


def test_registered_by_is_the_caller(ecs, name, account_id):
    td = register(ecs, name("who"))["taskDefinition"]
    if "registeredBy" in td:
        assert td["registeredBy"] == f"arn:aws:iam::{account_id}:root"


def test_unicode_round_trips(ecs, name):
    env = [{"name": "GREETING", "value": "grüß dich — 你好 🚀"}]
    labels = {"note": "ünïcödé ✓"}
    td = register(ecs, name("uni"), [simple_container(environment=env, dockerLabels=labels)],
                  tags=[{"key": "owner", "value": "zoë"}])
    got = ecs.describe_task_definition(taskDefinition=td["taskDefinition"]["taskDefinitionArn"],
                                       include=["TAGS"])
    c = got["taskDefinition"]["containerDefinitions"][0]
    assert c["environment"] == env and c["dockerLabels"] == labels
    assert got["tags"] == [{"key": "owner", "value": "zoë"}]


def test_describe_by_family_revision_and_arn(ecs, name):
    family = name("desc")
    r1 = register(ecs, family, [simple_container(command=["one"])])["taskDefinition"]
    r2 = register(ecs, family, [simple_container(command=["two"])])["taskDefinition"]
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"] == r2
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"] == r1
    assert ecs.describe_task_definition(
        taskDefinition=r1["taskDefinitionArn"])["taskDefinition"] == r1
    assert ecs.describe_task_definition(
        taskDefinition=r2["taskDefinitionArn"])["taskDefinition"] == r2


def test_describe_by_family_skips_inactive_latest(ecs, name):
    """"If a revision isn't specified, the latest ACTIVE revision is used."""
    family = name("latest")
    register(ecs, family)
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:2")
    got = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert got["revision"] == 1
    assert got["status"] == "ACTIVE"


def test_describe_tags_only_with_include(ecs, name):
    family = name("tags")
    register(ecs, family, tags=[{"key": "k", "value": "v"}])
    plain = ecs.describe_task_definition(taskDefinition=family)
    assert plain.get("tags", []) == []
    tagged = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    assert tagged["tags"] == [{"key": "k", "value": "v"}]


@pytest.mark.parametrize("ref", ["{family}:99", "{family}", "nosuchfamily-{family}",
                                 "arn:aws:ecs:us-east-1:{account}:task-definition/{family}:42"])
def test_describe_unknown_task_definition(ecs, name, account_id, ref):
    family = name("unk")
    register(ecs, family)
    if ref == "{family}":
        ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    with pytest.raises(ClientError) as e:
        ecs.describe_task_definition(taskDefinition=ref.format(family=family, account=account_id))
    # ECS: "ClientException: Unable to describe task definition."
    assert_error(e, "ClientException", "InvalidParameterException")


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["bad name!", "has/slash", "dot.ted", "x" * 256, ""])
def test_invalid_family_name(raw, family):
    r = raw.call("RegisterTaskDefinition", {"family": family,
                                            "containerDefinitions": [simple_container()]})
    assert r.status == 400, r
    assert r.error_code in VALIDATION_ERRORS, r


def test_family_name_of_255_allowed_chars(ecs, name):
    family = (name("Ok_-") + "9" * 255)[:255]
    assert register(ecs, family)["taskDefinition"]["family"] == family


def expect_invalid(ecs, **kwargs):
    with pytest.raises(ClientError) as e:
        ecs.register_task_definition(**kwargs)
    return assert_error(e, *VALIDATION_ERRORS)


def test_duplicate_container_names(ecs, name):
    expect_invalid(ecs, family=name("dup"),
                   containerDefinitions=[simple_container("a"), simple_container("a")])


def test_no_essential_container(ecs, name):
    expect_invalid(ecs, family=name("ess"),
                   containerDefinitions=[simple_container("a", essential=False),
                                         simple_container("b", essential=False)])


def test_fargate_invalid_cpu_memory_combination(ecs, name):
    expect_invalid(ecs, family=name("fg"), requiresCompatibilities=["FARGATE"],
                   networkMode="awsvpc", cpu="256", memory="4096",
                   containerDefinitions=[simple_container()])


def test_fargate_requires_task_level_cpu_and_memory(ecs, name):
    expect_invalid(ecs, family=name("fg"), requiresCompatibilities=["FARGATE"],
                   networkMode="awsvpc", containerDefinitions=[simple_container()])


def test_fargate_requires_awsvpc(ecs, name):
    expect_invalid(ecs, family=name("fg"), requiresCompatibilities=["FARGATE"],
                   networkMode="bridge", cpu="256", memory="512",
                   containerDefinitions=[simple_container()])


def test_fargate_valid_combination(ecs, name):
    td = register(ecs, name("fg"), requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                  cpu="256", memory="512")["taskDefinition"]
    assert "FARGATE" in td["compatibilities"]
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert (td["cpu"], td["memory"]) == ("256", "512")


@pytest.mark.parametrize("mode", ["awsvpc", "host"])
def test_host_port_must_equal_container_port(ecs, name, mode):
    expect_invalid(ecs, family=name("hp"), networkMode=mode, containerDefinitions=[
        simple_container(portMappings=[{"containerPort": 80, "hostPort": 8080}])])


@pytest.mark.parametrize("mode", ["awsvpc", "host"])
def test_host_port_equal_container_port_ok(ecs, name, mode):
    td = register(ecs, name("hp"), [
        simple_container(portMappings=[{"containerPort": 80, "hostPort": 80}])], networkMode=mode)
    assert td["taskDefinition"]["networkMode"] == mode


def test_memory_reservation_greater_than_memory(ecs, name):
    expect_invalid(ecs, family=name("mem"), containerDefinitions=[
        simple_container(memory=128, memoryReservation=256)])


def test_ec2_container_without_any_memory(ecs, name):
    c = simple_container()
    del c["memory"]
    expect_invalid(ecs, family=name("nomem"), requiresCompatibilities=["EC2"],
                   containerDefinitions=[c])


def test_container_memory_may_come_from_task_level(ecs, name):
    c = simple_container()
    del c["memory"]
    td = register(ecs, name("taskmem"), [c], memory="512")["taskDefinition"]
    assert td["memory"] == "512"


def test_depends_on_unknown_container(ecs, name):
    expect_invalid(ecs, family=name("dep"), containerDefinitions=[
        simple_container(dependsOn=[{"containerName": "ghost", "condition": "START"}])])


def test_mount_point_unknown_volume(ecs, name):
    expect_invalid(ecs, family=name("vol"), containerDefinitions=[
        simple_container(mountPoints=[{"sourceVolume": "ghost", "containerPath": "/x"}])])


@pytest.mark.parametrize("cpu,memory,ok", [
    ("256", "512", True), ("256", "2048", True), ("256", "3072", False),
    ("512", "1024", True), ("512", "4096", True), ("512", "512", False),
    ("1024", "2048", True), ("1024", "8192", True), ("1024", "1024", False),
    ("2048", "4096", True), ("2048", "16384", True), ("2048", "4500", False),
    ("4096", "8192", True), ("4096", "30720", True), ("4096", "31744", False),
    ("8192", "20480", True), ("8192", "18432", False),
    ("16384", "40960", True), ("16384", "36864", False),
    ("128", "512", False), ("3072", "8192", False),
])
def test_fargate_cpu_memory_table(ecs, name, cpu, memory, ok):
    """The Fargate table of the task-size docs: 256 -> 512/1024/2048;
    512 -> 1-4 GB; 1024 -> 2-8 GB; 2048 -> 4-16 GB and 4096 -> 8-30 GB in
    1 GB steps; 8192 -> 16-60 GB in 4 GB steps; 16384 -> 32-120 GB in 8 GB steps."""
    kwargs = dict(family=name("fgt"), requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                  cpu=cpu, memory=memory, containerDefinitions=[simple_container()])
    if ok:
        td = ecs.register_task_definition(**kwargs)["taskDefinition"]
        assert (td["cpu"], td["memory"]) == (cpu, memory)
    else:
        expect_invalid(ecs, **kwargs)


def test_task_size_units_are_converted(ecs, name):
    """"When you register a task definition, a unit value is converted to an
    integer indicating the CPU units / MiB" -- "1 vCPU" -> "1024", "2 GB" -> "2048"."""
    td = register(ecs, name("units"), cpu="1 vCPU", memory="2 GB")["taskDefinition"]
    assert (td["cpu"], td["memory"]) == ("1024", "2048")


def test_more_than_ten_containers(ecs, name):
    """Quota: at most 10 containers per task definition."""
    expect_invalid(ecs, family=name("many"),
                   containerDefinitions=[simple_container(f"c{i}") for i in range(11)])


def test_ten_containers_ok(ecs, name):
    td = register(ecs, name("ten"), [simple_container(f"c{i}") for i in range(10)])
    assert len(td["taskDefinition"]["containerDefinitions"]) == 10


def test_task_definition_larger_than_64_kib(ecs, name):
    """Quota: a task definition is at most 64 KiB."""
    env = [{"name": f"VAR_{i}", "value": "x" * 200} for i in range(400)]  # ~90 KiB
    expect_invalid(ecs, family=name("huge"),
                   containerDefinitions=[simple_container(environment=env)])


@pytest.mark.parametrize("container", [
    {"image": "busybox", "memory": 32},
    {"name": "", "image": "busybox", "memory": 32},
    {"name": "a", "memory": 32},
    {"name": "a", "image": "", "memory": 32},
    {"name": "web app", "image": "busybox", "memory": 32},
    {"name": "x" * 256, "image": "busybox", "memory": 32},
], ids=["no-name", "empty-name", "no-image", "empty-image", "space-in-name", "name-256"])
def test_invalid_container_name_or_image(raw, name, container):
    r = raw.call("RegisterTaskDefinition", {"family": name("cn"),
                                            "containerDefinitions": [container]})
    assert r.status == 400, r
    assert r.error_code in VALIDATION_ERRORS, r


def test_links_not_supported_with_awsvpc(ecs, name):
    expect_invalid(ecs, family=name("lnk"), networkMode="awsvpc", containerDefinitions=[
        simple_container("a", links=["b"]), simple_container("b", essential=False)])


def test_hostname_not_supported_with_awsvpc(ecs, name):
    expect_invalid(ecs, family=name("hn"), networkMode="awsvpc",
                   containerDefinitions=[simple_container(hostname="web")])


@pytest.mark.parametrize("port", [-1, 65536])
def test_container_port_out_of_range(raw, name, port):
    r = raw.call("RegisterTaskDefinition", {"family": name("port"), "containerDefinitions": [
        simple_container(portMappings=[{"containerPort": port}])]})
    assert r.status == 400, r
    assert r.error_code in VALIDATION_ERRORS, r


@pytest.mark.parametrize("check", [
    {"command": ["CMD", "true"], "interval": 4},
    {"command": ["CMD", "true"], "interval": 301},
    {"command": ["CMD", "true"], "timeout": 1},
    {"command": ["CMD", "true"], "timeout": 121},
    {"command": ["CMD", "true"], "retries": 0},
    {"command": ["CMD", "true"], "retries": 11},
    {"command": ["CMD", "true"], "startPeriod": 301},
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items() if k != "command"))
def test_health_check_bounds(ecs, name, check):
    """interval 5-300 s, timeout 2-120 s, retries 1-10, startPeriod 0-300 s."""
    expect_invalid(ecs, family=name("hc"), containerDefinitions=[
        simple_container(healthCheck=check)])


def test_duplicate_volume_names(ecs, name):
    expect_invalid(ecs, family=name("vols"), containerDefinitions=[simple_container()],
                   volumes=[{"name": "v", "host": {"sourcePath": "/a"}},
                            {"name": "v", "host": {"sourcePath": "/b"}}])


def test_container_memory_above_task_memory(ecs, name):
    expect_invalid(ecs, family=name("mem"), memory="512",
                   containerDefinitions=[simple_container(memory=1024)])


def test_more_than_50_tags_at_registration(ecs, name):
    with pytest.raises(ClientError) as e:
        register(ecs, name("tags"), tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    assert_error(e, "InvalidParameterException", "ClientException")


# --------------------------------------------------------------------------
# Deregister / Delete
# --------------------------------------------------------------------------

def test_deregister_makes_inactive_but_describable(ecs, name):
    family = name("dereg")
    register(ecs, family)
    out = ecs.deregister_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert out["status"] == "INACTIVE"
    assert out["revision"] == 1
    got = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert got["status"] == "INACTIVE"
    if "deregisteredAt" in got:
        assert got["deregisteredAt"] >= got["registeredAt"]


def test_deregister_by_arn(ecs, name):
    arn = register(ecs, name("dereg"))["taskDefinition"]["taskDefinitionArn"]
    assert ecs.deregister_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == "INACTIVE"


def test_deregister_requires_revision(ecs, name):
    family = name("dereg")
    register(ecs, family)
    with pytest.raises(ClientError) as e:
        ecs.deregister_task_definition(taskDefinition=family)
    assert_error(e, *VALIDATION_ERRORS)


def test_deregister_unknown(ecs, name):
    with pytest.raises(ClientError) as e:
        ecs.deregister_task_definition(taskDefinition=f"{name('ghost')}:1")
    assert_error(e, *VALIDATION_ERRORS)


def test_revision_numbers_are_not_reused(ecs, name):
    family = name("reuse")
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    assert register(ecs, family)["taskDefinition"]["revision"] == 2


def test_delete_inactive_task_definition(ecs, name):
    family = name("del")
    register(ecs, family)
    register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    resp = ecs.delete_task_definitions(taskDefinitions=[f"{family}:1"])
    assert resp.get("failures", []) == []
    assert [t["status"] for t in resp["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    assert resp["taskDefinitions"][0]["revision"] == 1
    # Still describable while DELETE_IN_PROGRESS (or gone entirely)
    try:
        got = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
        assert got["status"] == "DELETE_IN_PROGRESS"
    except ClientError as e:
        assert_error(e, *VALIDATION_ERRORS)
    # the name is retained: the next registration gets the next revision
    assert register(ecs, family)["taskDefinition"]["revision"] == 3


def test_delete_active_task_definition_is_refused(ecs, name):
    family = name("del")
    arn = register(ecs, family)["taskDefinition"]["taskDefinitionArn"]
    try:
        resp = ecs.delete_task_definitions(taskDefinitions=[f"{family}:1"])
    except ClientError as e:
        assert_error(e, *VALIDATION_ERRORS)
    else:
        assert resp.get("taskDefinitions", []) == []
        assert len(resp["failures"]) == 1
        assert resp["failures"][0]["arn"] == arn
        assert resp["failures"][0].get("reason")
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"][
        "status"] == "ACTIVE"


def test_delete_mixed_batch(ecs, name):
    family = name("del")
    for _ in range(3):
        register(ecs, family)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    ecs.deregister_task_definition(taskDefinition=f"{family}:3")
    try:
        resp = ecs.delete_task_definitions(
            taskDefinitions=[f"{family}:1", f"{family}:2", f"{family}:3"])
    except ClientError as e:
        # all-or-nothing refusal is acceptable; nothing must have changed then
        assert_error(e, *VALIDATION_ERRORS)
        assert ecs.describe_task_definition(taskDefinition=f"{family}:1")[
            "taskDefinition"]["status"] == "INACTIVE"
        return
    assert sorted(t["revision"] for t in resp["taskDefinitions"]) == [1, 3]
    assert [f["arn"].rsplit(":", 1)[1] for f in resp["failures"]] == ["2"]


def test_delete_requires_revision(ecs, name):
    family = name("del")
    register(ecs, family)
    try:
        resp = ecs.delete_task_definitions(taskDefinitions=[family])
    except ClientError as e:
        assert_error(e, *VALIDATION_ERRORS)
    else:
        assert resp.get("taskDefinitions", []) == [] and resp["failures"]


def test_delete_more_than_ten(ecs, name):
    with pytest.raises(ClientError) as e:
        ecs.delete_task_definitions(taskDefinitions=[f"{name('x')}:{i}" for i in range(1, 12)])
    assert_error(e, *VALIDATION_ERRORS)


# --------------------------------------------------------------------------
# ListTaskDefinitions / ListTaskDefinitionFamilies
# --------------------------------------------------------------------------

def list_all(call, key, **kw):
    out, token, pages = [], None, 0
    while True:
        resp = call(**kw, **({"nextToken": token} if token else {}))
        pages += 1
        assert pages < 500, "pagination does not terminate"
        if "maxResults" in kw:
            assert len(resp[key]) <= kw["maxResults"]
        out.extend(resp[key])
        token = resp.get("nextToken")
        if not token:
            return out, pages


def test_list_task_definitions_family_status_sort(ecs, name, region, account_id):
    family = name("list")
    for _ in range(4):
        register(ecs, family)
    register(ecs, family + "-other")  # shares the prefix, different family
    ecs.deregister_task_definition(taskDefinition=f"{family}:2")

    arns = [td_arn(region, account_id, family, r) for r in (1, 2, 3, 4)]
    asc, _ = list_all(ecs.list_task_definitions, "taskDefinitionArns", familyPrefix=family)
    # ListTaskDefinitions' familyPrefix is "the full family name": revisions of
    # `<family>-other` do not belong to the family and are not listed.
    assert asc == [arns[0], arns[2], arns[3]]
    desc, _ = list_all(ecs.list_task_definitions, "taskDefinitionArns", familyPrefix=family,
                       sort="DESC")
    assert desc == [arns[3], arns[2], arns[0]]
    inactive, _ = list_all(ecs.list_task_definitions, "taskDefinitionArns",
                           familyPrefix=family, status="INACTIVE")
    assert inactive == [arns[1]]
    active, _ = list_all(ecs.list_task_definitions, "taskDefinitionArns",
                         familyPrefix=family, status="ACTIVE")
    assert active == asc


def test_list_task_definitions_without_family(ecs, name):
    a, b = name("la"), name("lb")
    register(ecs, a)
    register(ecs, b)
    arns, _ = list_all(ecs.list_task_definitions, "taskDefinitionArns")
    assert len(arns) == len(set(arns))
    for fam in (a, b):
        assert any(x.endswith(f"/{fam}:1") for x in arns)
    # default order is ascending by family, then revision
    def key(arn):
        fam, rev = arn.rsplit("/", 1)[1].rsplit(":", 1)
        return fam, int(rev)
    assert [key(x) for x in arns] == sorted(key(x) for x in arns)


def test_list_task_definitions_pages_of_three_across_seven(ecs, name, region, account_id):
    family = name("page")
    for _ in range(7):
        register(ecs, family)
    expected = [td_arn(region, account_id, family, r) for r in range(1, 8)]
    got, pages = list_all(ecs.list_task_definitions, "taskDefinitionArns",
                          familyPrefix=family, maxResults=3)
    assert got == expected
    assert pages == 3
    got_desc, _ = list_all(ecs.list_task_definitions, "taskDefinitionArns",
                           familyPrefix=family, maxResults=3, sort="DESC")
    assert got_desc == expected[::-1]


def test_list_task_definitions_pagination_stable_under_concurrent_registration(ecs, name):
    family = name("stable")
    for _ in range(7):
        register(ecs, family)
    first = ecs.list_task_definitions(familyPrefix=family, maxResults=3)
    register(ecs, family)  # revision 8 appears between pages
    seen = list(first["taskDefinitionArns"])
    token = first["nextToken"]
    while token:
        resp = ecs.list_task_definitions(familyPrefix=family, maxResults=3, nextToken=token)
        seen.extend(resp["taskDefinitionArns"])
        token = resp.get("nextToken")
    revs = [int(a.rsplit(":", 1)[1]) for a in seen]
    assert len(revs) == len(set(revs)), "duplicates"
    assert revs[:7] == list(range(1, 8)), "nothing skipped"


def test_list_task_definitions_forged_token(ecs, name):
    with pytest.raises(ClientError) as e:
        ecs.list_task_definitions(nextToken="forged" + name("tok"))
    assert_error(e, "InvalidParameterException")


def test_list_task_definitions_tampered_token(ecs, name):
    family = name("tamper")
    for _ in range(3):
        register(ecs, family)
    token = ecs.list_task_definitions(familyPrefix=family, maxResults=1)["nextToken"]
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(ClientError) as e:
        ecs.list_task_definitions(familyPrefix=family, maxResults=1, nextToken=flipped)
    assert_error(e, "InvalidParameterException")


def test_token_from_another_operation(ecs, name):
    for _ in range(3):
        ecs.create_cluster(clusterName=name("tokc"))
    token = ecs.list_clusters(maxResults=1)["nextToken"]
    with pytest.raises(ClientError) as e:
        ecs.list_task_definitions(nextToken=token)
    assert_error(e, "InvalidParameterException")
    family = name("tokf")
    for _ in range(3):
        register(ecs, family)
    td_token = ecs.list_task_definitions(familyPrefix=family, maxResults=1)["nextToken"]
    with pytest.raises(ClientError) as e:
        ecs.list_clusters(nextToken=td_token)
    assert_error(e, "InvalidParameterException")


@pytest.mark.parametrize("bad", [0, 101])
def test_list_task_definitions_max_results_bounds(ecs, bad):
    with pytest.raises(ClientError) as e:
        ecs.list_task_definitions(maxResults=bad)
    assert_error(e, *VALIDATION_ERRORS)


def test_list_task_definition_families_status(ecs, name):
    prefix = name("fam")
    active, inactive, mixed = prefix + "-act", prefix + "-ina", prefix + "-mix"
    register(ecs, active)
    register(ecs, inactive)
    ecs.deregister_task_definition(taskDefinition=f"{inactive}:1")
    register(ecs, mixed)
    register(ecs, mixed)
    ecs.deregister_task_definition(taskDefinition=f"{mixed}:1")

    def fams(**kw):
        out, _ = list_all(ecs.list_task_definition_families, "families", familyPrefix=prefix, **kw)
        return out

    assert fams(status="ACTIVE") == sorted([active, mixed])
    assert fams(status="INACTIVE") == [inactive]
    assert fams(status="ALL") == sorted([active, inactive, mixed])
    # "By default, both ACTIVE and INACTIVE task definition families are listed."
    assert fams() == sorted([active, inactive, mixed])
    # familyPrefix really is a prefix here
    assert fams(status="ALL", maxResults=1) == sorted([active, inactive, mixed])


def test_list_task_definition_families_prefix_matches_only_prefix(ecs, name):
    base = name("pre")
    register(ecs, base + "a")
    register(ecs, "x" + base)
    out, _ = list_all(ecs.list_task_definition_families, "families", familyPrefix=base)
    assert out == [base + "a"]
