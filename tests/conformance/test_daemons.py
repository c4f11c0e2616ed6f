"""ECS's Daemon API on a real berth server (two accounts), with real
``berth agent`` hosts (process runtime): daemon task definitions and their
errors; a daemon that runs one task on every host of its capacity provider,
follows a host that joins, rolls to a new revision and stops its tasks when
deleted; idempotent creation; and another account that can reach none of
it. A host joins a provider with ``berth agent --capacity-provider``."""

import os
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import harness
from conftest import ACCOUNT_A, ACCOUNT_B
from errors import assert_error
from service_helpers import sh, wait_for

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

PROVIDERS = ("pool", "other")


@pytest.fixture(autouse=True)
def providers(two_accounts):
    """Account A's agent-pool providers the daemons here name (made once)."""
    ecs = two_accounts.client(creds=ACCOUNT_A)
    have = {p["name"] for p in ecs.describe_capacity_providers(capacityProviders=list(PROVIDERS))
            ["capacityProviders"] if p.get("status") == "ACTIVE"}
    for p in PROVIDERS:
        if p not in have:
            ecs.create_capacity_provider(name=p, autoScalingGroupProvider={
                "autoScalingGroupArn": f"arn:aws:autoscaling:{harness.REGION}:"
                f"{ACCOUNT_A.account_id}:autoScalingGroup:{p}:autoScalingGroupName/{p}"})


@pytest.fixture
def cli(two_accounts, recorder, tmp_path):
    return harness.Cli(two_accounts, tmp_path / "cli", recorder, creds=ACCOUNT_A)


@pytest.fixture
def a(two_accounts, recorder):
    return two_accounts.client(creds=ACCOUNT_A, recorder=recorder)


@pytest.fixture
def b(two_accounts, recorder):
    return two_accounts.client(creds=ACCOUNT_B, recorder=recorder)


def provider_arn(name, account=ACCOUNT_A.account_id):
    return f"arn:aws:ecs:{harness.REGION}:{account}:capacity-provider/{name}"


def register(ecs, family, script="sleep 300", **extra):
    out = ecs.register_daemon_task_definition(
        family=family, containerDefinitions=[sh("main", script, memory=32)], **extra)
    return out["daemonTaskDefinitionArn"]


class Host:
    """A ``berth agent`` process joining ``cluster`` as account A."""

    def __init__(self, srv, cluster, data_dir: Path, provider: str):
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        env = dict(os.environ, **srv.env(ACCOUNT_A))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(harness.berth_bin()), "agent", "--cluster", cluster,
                 "--data-dir", str(data_dir), "--runtime", "process",
                 "--capacity-provider", provider],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.arn = None

    def join(self, ecs, cluster, known: set) -> str:
        """Waits for the instance to register (in its provider)."""
        def probe():
            assert self.proc.poll() is None, self.log_path.read_text()
            arns = set(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"])
            new = arns - known
            return new.pop() if new else None
        self.arn = wait_for("the agent to register", probe)
        return self.arn

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def daemon_tasks(ecs, cluster) -> dict:
    """Live tasks by instance: [(task definition ARN, lastStatus)]."""
    arns = ecs.list_tasks(cluster=cluster)["taskArns"]
    out = {}
    if not arns:
        return out
    for t in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]:
        out.setdefault(t["containerInstanceArn"], []).append(
            (t["taskDefinitionArn"], t["lastStatus"], t["group"]))
    return out


def one_running_each(ecs, cluster, instances, definition):
    def probe():
        tasks = daemon_tasks(ecs, cluster)
        ok = all([(d, s) for d, s, _ in tasks.get(i, [])] == [(definition, "RUNNING")]
                 for i in instances)
        return tasks if ok else None
    return probe


def deployment(ecs, arn):
    out = ecs.describe_daemon_deployments(daemonDeploymentArns=[arn])
    assert out["failures"] == [], out
    return out["daemonDeployments"][0]


# -- daemon task definitions --------------------------------------------------

def test_daemon_task_definitions(a, name, cli):
    fam = name("dtd")
    arn1 = register(a, fam, tags=[{"key": "team", "value": "ops"}])
    assert arn1 == (f"arn:aws:ecs:{harness.REGION}:{ACCOUNT_A.account_id}:"
                    f"daemon-task-definition/{fam}:1")
    assert a.list_tags_for_resource(resourceArn=arn1)["tags"] == [{"key": "team", "value": "ops"}]
    arn2 = register(a, fam, cpu="256", memory="128")
    assert arn2.endswith(f"{fam}:2")

    latest = a.describe_daemon_task_definition(daemonTaskDefinition=fam)["daemonTaskDefinition"]
    assert latest["daemonTaskDefinitionArn"] == arn2
    assert (latest["family"], latest["revision"], latest["status"]) == (fam, 2, "ACTIVE")
    assert (latest["cpu"], latest["memory"]) == ("256", "128")
    assert latest["registeredBy"].startswith("arn:aws:")
    assert latest["containerDefinitions"][0]["image"] == "host"
    for ref in (f"{fam}:1", arn1):
        d = a.describe_daemon_task_definition(daemonTaskDefinition=ref)["daemonTaskDefinition"]
        assert d["revision"] == 1

    listed = a.list_daemon_task_definitions(familyPrefix=fam)["daemonTaskDefinitions"]
    assert [d["arn"] for d in listed] == [arn1, arn2]
    assert all(d["status"] == "ACTIVE" for d in listed)
    desc = a.list_daemon_task_definitions(family=fam, sort="DESC")["daemonTaskDefinitions"]
    assert [d["arn"] for d in desc] == [arn2, arn1]
    last = a.list_daemon_task_definitions(familyPrefix=fam, revision="LAST_REGISTERED")
    assert [d["arn"] for d in last["daemonTaskDefinitions"]] == [arn2]
    page = a.list_daemon_task_definitions(family=fam, maxResults=1)
    assert [d["arn"] for d in page["daemonTaskDefinitions"]] == [arn1]
    rest = a.list_daemon_task_definitions(family=fam, maxResults=1, nextToken=page["nextToken"])
    assert [d["arn"] for d in rest["daemonTaskDefinitions"]] == [arn2]
    assert "nextToken" not in rest

    # The aws-cli speaks it too.
    out = cli("ecs", "list-daemon-task-definitions", "--family", fam)
    assert [d["arn"] for d in out["daemonTaskDefinitions"]] == [arn1, arn2]

    # No daemon runs revision 1: deleting it is immediate.
    gone = a.delete_daemon_task_definition(daemonTaskDefinition=f"{fam}:1")
    assert gone["daemonTaskDefinitionArn"] == arn1
    d = a.describe_daemon_task_definition(daemonTaskDefinition=arn1)["daemonTaskDefinition"]
    assert d["status"] == "DELETED" and "deleteRequestedAt" in d
    assert [x["arn"] for x in a.list_daemon_task_definitions(family=fam)[
        "daemonTaskDefinitions"]] == [arn2]
    every = a.list_daemon_task_definitions(family=fam, status="ALL")["daemonTaskDefinitions"]
    assert [x["status"] for x in every] == ["DELETED", "ACTIVE"]
    with pytest.raises(ClientError) as e:
        a.delete_daemon_task_definition(daemonTaskDefinition=arn1)
    assert_error(e, "ClientException", message_contains="ACTIVE")


def test_daemon_task_definition_errors(a, name):
    fam = name("dtd")
    with pytest.raises(ClientError) as e:
        register(a, "no spaces allowed")
    assert_error(e, "ClientException", message_contains="Family")
    with pytest.raises(ClientError) as e:
        a.register_daemon_task_definition(
            family=fam, containerDefinitions=[sh("main", "true")], memory="lots")
    assert_error(e, "ClientException", message_contains="memory")
    with pytest.raises(ClientError) as e:
        a.describe_daemon_task_definition(daemonTaskDefinition=f"{fam}:7")
    assert_error(e, "ClientException")
    with pytest.raises(ClientError) as e:
        a.describe_daemon_task_definition(daemonTaskDefinition=f"{fam}:zero")
    assert_error(e, "ClientException", message_contains="revision")
    with pytest.raises(ClientError) as e:
        a.delete_daemon_task_definition(daemonTaskDefinition=fam)
    assert_error(e, "ClientException")
    with pytest.raises(ClientError) as e:
        a.list_daemon_task_definitions(maxResults=0)
    assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        a.list_daemon_task_definitions(nextToken="forged")
    assert_error(e, "InvalidParameterException")


# -- daemons ------------------------------------------------------------------

@pytest.fixture
def hosts(two_accounts, a, name, tmp_path):
    cluster = name("dmn")
    a.create_cluster(clusterName=cluster)
    started = []

    def start(provider):
        known = set(a.list_container_instances(cluster=cluster)["containerInstanceArns"])
        h = Host(two_accounts, cluster, tmp_path / f"host{len(started)}", provider)
        started.append(h)
        return h.join(a, cluster, known)

    yield cluster, start
    for d in a.list_daemons(clusterArn=cluster)["daemonSummariesList"]:
        if d["status"] == "ACTIVE":
            a.delete_daemon(daemonArn=d["daemonArn"])
    for h in started:
        h.stop()


def test_a_daemon_follows_its_hosts_rolls_and_goes(a, hosts, name, cli):
    cluster, start = hosts
    first, second = start("pool"), start("pool")
    elsewhere = start("other")
    fam = name("agent")
    v1 = register(a, fam)
    daemon_name = name("d")
    out = cli("ecs", "create-daemon", "--cluster-arn", cluster, "--daemon-name", daemon_name,
              "--daemon-task-definition-arn", v1,
              "--capacity-provider-arns", provider_arn("pool"),
              "--client-token", "token-1", "--tags", "key=team,value=ops")
    daemon = out["daemonArn"]
    assert daemon == (f"arn:aws:ecs:{harness.REGION}:{ACCOUNT_A.account_id}:"
                      f"daemon/{cluster}/{daemon_name}")
    assert out["status"] == "ACTIVE"
    assert out["deploymentArn"].startswith(
        f"arn:aws:ecs:{harness.REGION}:{ACCOUNT_A.account_id}:"
        f"daemon-deployment/{cluster}/{daemon_name}/")

    assert a.list_tags_for_resource(resourceArn=daemon)["tags"] == [{"key": "team", "value": "ops"}]
    a.tag_resource(resourceArn=daemon, tags=[{"key": "tier", "value": "base"}])
    a.untag_resource(resourceArn=daemon, tagKeys=["team"])
    assert a.list_tags_for_resource(resourceArn=daemon)["tags"] == [{"key": "tier", "value": "base"}]

    # Idempotent with its token; a second create without it is refused.
    again = a.create_daemon(clusterArn=cluster, daemonName=daemon_name,
                            daemonTaskDefinitionArn=v1,
                            capacityProviderArns=[provider_arn("pool")], clientToken="token-1")
    assert again["daemonArn"] == daemon and again["deploymentArn"] == out["deploymentArn"]
    with pytest.raises(ClientError) as e:
        a.create_daemon(clusterArn=cluster, daemonName=daemon_name, daemonTaskDefinitionArn=v1,
                        capacityProviderArns=[provider_arn("pool")])
    assert_error(e, "InvalidParameterException", message_contains="idempotent")

    tasks = wait_for("a daemon task on each pool host",
                     one_running_each(a, cluster, [first, second], v1), timeout=60)
    assert elsewhere not in tasks, tasks
    assert {g for ts in tasks.values() for _, _, g in ts} == {f"daemon:{daemon_name}"}
    wait_for("the first deployment to succeed",
             lambda: deployment(a, out["deploymentArn"])["status"] == "SUCCESSFUL", timeout=60)
    # No service shows for it, nor its deployments' records.
    assert a.list_services(cluster=cluster)["serviceArns"] == []
    hidden = a.describe_services(cluster=cluster, services=[f"daemon:{daemon_name}"])
    assert hidden["services"] == [] and hidden["failures"][0]["reason"] == "MISSING"
    deployment_id = out["deploymentArn"].rsplit("/", 1)[1]
    forged = (f"arn:aws:ecs:{harness.REGION}:{ACCOUNT_A.account_id}:"
              f"service-deployment/{cluster}/daemon:{daemon_name}/{deployment_id}")
    records = a.describe_service_deployments(serviceDeploymentArns=[forged])
    assert records["serviceDeployments"] == [] and records["failures"][0]["reason"] == "MISSING"

    # A host that joins later gets its daemon task.
    third = start("pool")
    wait_for("a daemon task on the host that joined",
             one_running_each(a, cluster, [first, second, third], v1), timeout=60)
    detail = a.describe_daemon(daemonArn=daemon)["daemon"]
    assert detail["status"] == "ACTIVE" and detail["deploymentArn"] == out["deploymentArn"]
    [rev] = detail["currentRevisions"]
    assert rev["totalRunningCount"] == 3
    assert rev["capacityProviders"] == [{"arn": provider_arn("pool"), "runningCount": 3}]
    [revision] = a.describe_daemon_revisions(daemonRevisionArns=[rev["arn"]])["daemonRevisions"]
    assert revision["daemonTaskDefinitionArn"] == v1 and revision["daemonArn"] == daemon
    assert revision["containerImages"] == [{"containerName": "main", "image": "host"}]

    listed = a.list_daemons(clusterArn=cluster)["daemonSummariesList"]
    assert [d["daemonArn"] for d in listed] == [daemon]
    assert a.list_daemons(capacityProviderArns=[provider_arn("other")])[
        "daemonSummariesList"] == []

    # UpdateDaemon rolls every host to the new revision.
    v2 = register(a, fam, script="sleep 301")
    upd = a.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=v2,
                          capacityProviderArns=[provider_arn("pool")],
                          deploymentConfiguration={"drainPercent": 50.0})
    assert upd["deploymentArn"] != out["deploymentArn"]
    wait_for("every host on the new revision",
             one_running_each(a, cluster, [first, second, third], v2), timeout=90)
    wait_for("the update to succeed",
             lambda: deployment(a, upd["deploymentArn"])["status"] == "SUCCESSFUL", timeout=60)
    d = deployment(a, upd["deploymentArn"])
    assert d["deploymentConfiguration"] == {"drainPercent": 50.0}
    assert d["targetDaemonRevision"]["totalRunningInstanceCount"] == 3
    assert d["circuitBreaker"]["status"] == "MONITORING_COMPLETE"
    deployments = a.list_daemon_deployments(daemonArn=daemon)["daemonDeployments"]
    assert [x["daemonDeploymentArn"] for x in deployments] == [upd["deploymentArn"],
                                                               out["deploymentArn"]]
    assert [x["status"] for x in deployments] == ["SUCCESSFUL", "SUCCESSFUL"]
    only = a.list_daemon_deployments(daemonArn=daemon, status=["SUCCESSFUL"], maxResults=1)
    assert len(only["daemonDeployments"]) == 1 and "nextToken" in only

    # The daemon task definition it runs can be deleted; the daemon runs on.
    a.delete_daemon_task_definition(daemonTaskDefinition=v2)
    assert a.describe_daemon_task_definition(daemonTaskDefinition=v2)[
        "daemonTaskDefinition"]["status"] == "DELETE_IN_PROGRESS"

    # DeleteDaemon stops every task; then the daemon is gone.
    deleted = cli("ecs", "delete-daemon", "--daemon-arn", daemon)
    assert deleted["status"] == "DELETE_IN_PROGRESS"
    with pytest.raises(ClientError) as e:
        a.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=v2,
                        capacityProviderArns=[provider_arn("pool")])
    assert_error(e, "DaemonNotActiveException", "DaemonNotFoundException")
    wait_for("no task left", lambda: daemon_tasks(a, cluster) == {}, timeout=60)

    def gone():
        try:
            a.describe_daemon(daemonArn=daemon)
        except ClientError as err:
            return err.response["Error"]["Code"] == "DaemonNotFoundException"
        return False
    wait_for("the daemon to be gone", gone, timeout=30)
    # With no daemon left on it, the revision's deletion is complete.
    assert a.describe_daemon_task_definition(daemonTaskDefinition=v2)[
        "daemonTaskDefinition"]["status"] == "DELETED"
    assert [d["status"] for d in a.list_daemon_task_definitions(family=fam, status="ALL")[
        "daemonTaskDefinitions"]] == ["ACTIVE", "DELETED"]


def test_create_daemon_errors(a, name):
    cluster = name("dmn")
    a.create_cluster(clusterName=cluster)
    td = register(a, name("agent"))
    ok = {"clusterArn": cluster, "daemonName": name("d"), "daemonTaskDefinitionArn": td,
          "capacityProviderArns": [provider_arn("pool")]}
    cases = [
        ({"clusterArn": name("missing")}, "ClusterNotFoundException", None),
        ({"daemonName": "bad name"}, "InvalidParameterException", "name"),
        ({"daemonTaskDefinitionArn": td.replace(":1", ":9")}, "ClientException", None),
        ({"capacityProviderArns": []}, "InvalidParameterException", None),
        ({"capacityProviderArns": ["FARGATE"]}, "InvalidParameterException", "FARGATE"),
        ({"capacityProviderArns": [provider_arn("pool", ACCOUNT_B.account_id)]},
         "InvalidParameterException", None),
        ({"deploymentConfiguration": {"bakeTimeInMinutes": 1441}},
         "InvalidParameterException", "bakeTimeInMinutes"),
        ({"clientToken": "x" * 37}, "InvalidParameterException", "clientToken"),
    ]
    for change, code, text in cases:
        with pytest.raises(ClientError) as e:
            a.create_daemon(**{**ok, **change})
        assert_error(e, code, message_contains=text)
    with pytest.raises(ClientError) as e:
        a.describe_daemon(daemonArn="not-an-arn")
    assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        a.describe_daemon(daemonArn=f"arn:aws:ecs:{harness.REGION}:{ACCOUNT_A.account_id}:"
                          f"daemon/{cluster}/nothing")
    assert_error(e, "DaemonNotFoundException")
    missing = a.describe_daemon_deployments(daemonDeploymentArns=[
        f"arn:aws:ecs:{harness.REGION}:{ACCOUNT_A.account_id}:daemon-deployment/{cluster}/x/y"])
    assert missing["daemonDeployments"] == []
    assert missing["failures"][0]["reason"] == "MISSING"


def test_another_account_reaches_no_daemon(a, b, name):
    cluster = name("dmn")
    a.create_cluster(clusterName=cluster)
    fam = name("agent")
    td = register(a, fam)
    created = a.create_daemon(clusterArn=cluster, daemonName=name("d"),
                              daemonTaskDefinitionArn=td,
                              capacityProviderArns=[provider_arn("pool")])
    daemon = created["daemonArn"]
    try:
        # B cannot see, describe, update or delete A's daemon...
        for call in (lambda: b.describe_daemon(daemonArn=daemon),
                     lambda: b.delete_daemon(daemonArn=daemon),
                     lambda: b.list_daemon_deployments(daemonArn=daemon),
                     lambda: b.update_daemon(daemonArn=daemon, daemonTaskDefinitionArn=td,
                                             capacityProviderArns=[provider_arn("pool")])):
            with pytest.raises(ClientError) as e:
                call()
            assert_error(e, "DaemonNotFoundException", "ClientException")
        assert b.list_daemons()["daemonSummariesList"] == []
        for arn in (daemon, td):
            with pytest.raises(ClientError) as e:
                b.tag_resource(resourceArn=arn, tags=[{"key": "mine", "value": "now"}])
            assert_error(e, "InvalidParameterException")
            with pytest.raises(ClientError) as e:
                b.list_tags_for_resource(resourceArn=arn)
            assert_error(e, "InvalidParameterException")
        out = b.describe_daemon_deployments(daemonDeploymentArns=[created["deploymentArn"]])
        assert out["daemonDeployments"] == [] and out["failures"][0]["reason"] == "MISSING"
        # ...nor its daemon task definitions.
        for ref in (td, fam, f"{fam}:1"):
            with pytest.raises(ClientError) as e:
                b.describe_daemon_task_definition(daemonTaskDefinition=ref)
            assert_error(e, "ClientException")
        with pytest.raises(ClientError) as e:
            b.delete_daemon_task_definition(daemonTaskDefinition=td)
        assert_error(e, "ClientException")
        assert b.list_daemon_task_definitions(familyPrefix=fam)["daemonTaskDefinitions"] == []
        # B's daemon with the same names is B's own, and A's is untouched.
        b.create_cluster(clusterName=cluster)
        if not [p for p in b.describe_capacity_providers(capacityProviders=["pool"])
                ["capacityProviders"] if p.get("status") == "ACTIVE"]:
            b.create_capacity_provider(name="pool", autoScalingGroupProvider={
                "autoScalingGroupArn": f"arn:aws:autoscaling:{harness.REGION}:"
                f"{ACCOUNT_B.account_id}:autoScalingGroup:pool:autoScalingGroupName/pool"})
        with pytest.raises(ClientError) as e:
            b.create_daemon(clusterArn=cluster, daemonName="x", daemonTaskDefinitionArn=td,
                            capacityProviderArns=[provider_arn("pool", ACCOUNT_B.account_id)])
        assert_error(e, "ClientException")
        assert a.describe_daemon(daemonArn=daemon)["daemon"]["status"] == "ACTIVE"
        # A's cluster keeps its daemon: it can not be deleted under it.
        with pytest.raises(ClientError) as e:
            a.delete_cluster(cluster=cluster)
        assert_error(e, "ClusterContainsServicesException")
    finally:
        a.delete_daemon(daemonArn=daemon)
