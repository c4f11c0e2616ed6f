"""Durability: whatever a successful response acknowledged survives a
``kill -9`` of the server right after the response, and a restart on the same
data directory (the port may change; the harness re-reads the endpoint file).
"""

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.berth_only

CONTAINERS = [{"name": "c", "image": "busybox", "memory": 32,
               "environment": [{"name": "K", "value": "V"}]}]


def test_cluster_and_task_definition_survive_kill_9(fresh_server, make_ecs, name):
    ecs = make_ecs(fresh_server)
    cluster = name("dur")
    family = name("dur")
    c = ecs.create_cluster(clusterName=cluster, tags=[{"key": "k", "value": "v"}])["cluster"]
    td = ecs.register_task_definition(family=family, containerDefinitions=CONTAINERS)[
        "taskDefinition"]
    fresh_server.kill9()  # immediately after the responses

    fresh_server.start()
    ecs = make_ecs(fresh_server)
    got = ecs.describe_clusters(clusters=[cluster], include=["TAGS"])["clusters"]
    assert [x["clusterArn"] for x in got] == [c["clusterArn"]]
    assert got[0]["status"] == "ACTIVE"
    assert got[0]["tags"] == [{"key": "k", "value": "v"}]
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"] == td
    # the revision counter survived too
    assert ecs.register_task_definition(family=family, containerDefinitions=CONTAINERS)[
        "taskDefinition"]["revision"] == 2


def test_each_acknowledged_write_survives(fresh_server, make_ecs, name):
    """Kill after every single acknowledged write, several times in a row."""
    family = name("dur")
    for revision in range(1, 4):
        ecs = make_ecs(fresh_server)
        td = ecs.register_task_definition(family=family, containerDefinitions=CONTAINERS)
        assert td["taskDefinition"]["revision"] == revision
        fresh_server.restart()  # kill -9 + start
    ecs = make_ecs(fresh_server)
    arns = ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[1] for a in arns] == ["1", "2", "3"]


def test_state_changes_survive(fresh_server, make_ecs, name):
    ecs = make_ecs(fresh_server)
    gone, kept, family = name("gone"), name("kept"), name("dur")
    ecs.create_cluster(clusterName=gone)
    ecs.create_cluster(clusterName=kept)
    ecs.update_cluster_settings(cluster=kept,
                                settings=[{"name": "containerInsights", "value": "enabled"}])
    ecs.delete_cluster(cluster=gone)
    ecs.register_task_definition(family=family, containerDefinitions=CONTAINERS)
    ecs.register_task_definition(family=family, containerDefinitions=CONTAINERS)
    ecs.deregister_task_definition(taskDefinition=f"{family}:1")
    ecs.put_account_setting(name="containerInsights", value="enhanced")
    arn = ecs.describe_clusters(clusters=[kept])["clusters"][0]["clusterArn"]
    ecs.untag_resource(resourceArn=arn, tagKeys=["nothing"])
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "after", "value": "restart"}])
    fresh_server.restart()

    ecs = make_ecs(fresh_server)
    arns = ecs.list_clusters()["clusterArns"]
    assert any(a.endswith("/" + kept) for a in arns)
    assert not any(a.endswith("/" + gone) for a in arns)
    d = ecs.describe_clusters(clusters=[kept], include=["SETTINGS", "TAGS"])["clusters"][0]
    assert {"name": "containerInsights", "value": "enabled"} in d["settings"]
    assert d["tags"] == [{"key": "after", "value": "restart"}]
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"][
        "status"] == "INACTIVE"
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 2
    s = ecs.list_account_settings(name="containerInsights")["settings"]
    assert [x["value"] for x in s] == ["enhanced"]


def test_credentials_are_stable_across_restarts(fresh_server, make_ecs):
    before = list(fresh_server.creds)
    fresh_server.restart()
    assert fresh_server.creds == before, "credentials.toml must not be regenerated"
    make_ecs(fresh_server).list_clusters()


def test_restart_after_graceful_stop(fresh_server, make_ecs, name):
    ecs = make_ecs(fresh_server)
    n = name("graceful")
    ecs.create_cluster(clusterName=n)
    fresh_server.stop()
    fresh_server.start()
    ecs = make_ecs(fresh_server)
    assert ecs.describe_clusters(clusters=[n])["clusters"][0]["status"] == "ACTIVE"


def test_failed_request_leaves_no_trace(fresh_server, make_ecs, name):
    ecs = make_ecs(fresh_server)
    family = name("dur")
    with pytest.raises(ClientError):
        ecs.register_task_definition(family=family, containerDefinitions=[
            {"name": "a", "image": "busybox", "memory": 32},
            {"name": "a", "image": "busybox", "memory": 32}])
    fresh_server.restart()
    ecs = make_ecs(fresh_server)
    assert ecs.register_task_definition(family=family, containerDefinitions=CONTAINERS)[
        "taskDefinition"]["revision"] == 1
