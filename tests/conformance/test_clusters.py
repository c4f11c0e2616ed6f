"""Clusters: CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
UpdateClusterSettings, DeleteCluster -- as the ECS API reference describes them."""

import pytest
from botocore.exceptions import ClientError

from errors import assert_error, error_code


def cluster_arn(region, account, name):
    return f"arn:aws:ecs:{region}:{account}:cluster/{name}"


def only(resp, key="clusters"):
    assert resp.get("failures", []) == [], resp.get("failures")
    assert len(resp[key]) == 1, resp
    return resp[key][0]


# --------------------------------------------------------------------------
# CreateCluster
# --------------------------------------------------------------------------

def test_create_cluster_returns_active_cluster(ecs, name, region, account_id):
    n = name("c")
    c = ecs.create_cluster(clusterName=n)["cluster"]
    assert c["clusterName"] == n
    assert c["clusterArn"] == cluster_arn(region, account_id, n)
    assert c["status"] == "ACTIVE"
    for counter in ("registeredContainerInstancesCount", "runningTasksCount",
                    "pendingTasksCount", "activeServicesCount"):
        assert c[counter] == 0, counter


def test_create_cluster_with_tags_settings_configuration(ecs, name):
    n = name("c")
    c = ecs.create_cluster(
        clusterName=n,
        tags=[{"key": "team", "value": "core"}, {"key": "env", "value": ""}],
        settings=[{"name": "containerInsights", "value": "enabled"}],
        configuration={"executeCommandConfiguration": {"logging": "DEFAULT"}},
    )["cluster"]
    assert {"name": "containerInsights", "value": "enabled"} in c.get("settings", [])
    assert sorted(c.get("tags", []), key=lambda t: t["key"]) == [
        {"key": "env", "value": ""}, {"key": "team", "value": "core"}]
    d = only(ecs.describe_clusters(clusters=[n], include=["TAGS", "SETTINGS", "CONFIGURATIONS"]))
    assert {"name": "containerInsights", "value": "enabled"} in d["settings"]
    assert sorted(d["tags"], key=lambda t: t["key"]) == [
        {"key": "env", "value": ""}, {"key": "team", "value": "core"}]
    assert d["configuration"]["executeCommandConfiguration"]["logging"] == "DEFAULT"


def test_create_cluster_without_name_creates_default(ecs, region, account_id):
    c = ecs.create_cluster()["cluster"]
    assert c["clusterName"] == "default"
    assert c["clusterArn"] == cluster_arn(region, account_id, "default")
    assert c["status"] == "ACTIVE"
    # DescribeClusters without clusters describes `default`
    d = only(ecs.describe_clusters())
    assert d["clusterName"] == "default"


def test_create_existing_active_cluster_returns_it(ecs, name):
    n = name("c")
    first = ecs.create_cluster(clusterName=n)["cluster"]
    second = ecs.create_cluster(clusterName=n)["cluster"]
    assert second["clusterArn"] == first["clusterArn"]
    assert second["status"] == "ACTIVE"
    arns = list_all_cluster_arns(ecs)
    assert arns.count(first["clusterArn"]) == 1


def test_concurrent_create_of_one_name_yields_one_cluster(make_ecs, name):
    from concurrent.futures import ThreadPoolExecutor
    n = name("race")
    clients = [make_ecs() for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        arns = set(pool.map(lambda i: clients[i % 4].create_cluster(clusterName=n)[
            "cluster"]["clusterArn"], range(16)))
    assert len(arns) == 1
    assert list_all_cluster_arns(clients[0]).count(arns.pop()) == 1


def test_cluster_name_of_255_allowed_chars_is_accepted(ecs, name):
    n = (name("Az09_-") + "x" * 255)[:255]
    c = ecs.create_cluster(clusterName=n)["cluster"]
    assert c["clusterName"] == n
    ecs.delete_cluster(cluster=n)


@pytest.mark.parametrize("bad", [
    "bad name!",
    "has space",
    "slash/name",
    "dot.name",
    "x" * 256,
    "ünïcode",
])
def test_invalid_cluster_names_are_rejected(ecs, bad):
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName=bad)
    assert_error(e, "InvalidParameterException", "ClientException")


# --------------------------------------------------------------------------
# DescribeClusters
# --------------------------------------------------------------------------

def test_describe_unknown_cluster_reports_missing(ecs, name, region, account_id):
    known = name("c")
    ecs.create_cluster(clusterName=known)
    missing = name("nope")
    resp = ecs.describe_clusters(clusters=[known, missing])
    assert [c["clusterName"] for c in resp["clusters"]] == [known]
    assert resp["failures"] == [
        {"arn": cluster_arn(region, account_id, missing), "reason": "MISSING"}]


def test_describe_unknown_cluster_by_arn_reports_missing(ecs, name, region, account_id):
    arn = cluster_arn(region, account_id, name("nope"))
    resp = ecs.describe_clusters(clusters=[arn])
    assert resp["clusters"] == []
    assert resp["failures"] == [{"arn": arn, "reason": "MISSING"}]


def test_describe_by_name_and_arn(ecs, name):
    n = name("c")
    arn = ecs.create_cluster(clusterName=n)["cluster"]["clusterArn"]
    by_name = only(ecs.describe_clusters(clusters=[n]))
    by_arn = only(ecs.describe_clusters(clusters=[arn]))
    assert by_name == by_arn
    assert by_arn["clusterArn"] == arn


def test_describe_include_variants(ecs, name):
    n = name("c")
    ecs.create_cluster(clusterName=n, tags=[{"key": "k", "value": "v"}],
                       settings=[{"name": "containerInsights", "value": "enabled"}])

    plain = only(ecs.describe_clusters(clusters=[n]))
    # Tags are only returned when TAGS is included (the reference: "If TAGS is
    # specified, the metadata tags associated with the cluster are included").
    assert plain.get("tags", []) == []

    tags = only(ecs.describe_clusters(clusters=[n], include=["TAGS"]))
    assert tags["tags"] == [{"key": "k", "value": "v"}]

    settings = only(ecs.describe_clusters(clusters=[n], include=["SETTINGS"]))
    assert {"name": "containerInsights", "value": "enabled"} in settings["settings"]

    stats = only(ecs.describe_clusters(clusters=[n], include=["STATISTICS"]))
    assert isinstance(stats.get("statistics", []), list)

    att = only(ecs.describe_clusters(clusters=[n], include=["ATTACHMENTS"]))
    assert isinstance(att.get("attachments", []), list)

    everything = only(ecs.describe_clusters(
        clusters=[n], include=["ATTACHMENTS", "CONFIGURATIONS", "SETTINGS", "STATISTICS", "TAGS"]))
    assert everything["tags"] == [{"key": "k", "value": "v"}]
    assert {"name": "containerInsights", "value": "enabled"} in everything["settings"]


def test_describe_invalid_include_is_rejected(raw, name):
    r = raw.call("DescribeClusters", {"clusters": [name("c")], "include": ["NOPE"]})
    assert r.status == 400
    assert r.error_code in ("InvalidParameterException", "ClientException",
                            "SerializationException", "ValidationException"), r


def test_describe_more_than_100_clusters_is_rejected(ecs, name):
    with pytest.raises(ClientError) as e:
        ecs.describe_clusters(clusters=[name("c") for _ in range(101)])
    assert_error(e, "InvalidParameterException", "ClientException")


# --------------------------------------------------------------------------
# ListClusters
# --------------------------------------------------------------------------

def list_all_cluster_arns(ecs, page_size=None):
    arns, token, pages = [], None, 0
    while True:
        kw = {}
        if page_size:
            kw["maxResults"] = page_size
        if token:
            kw["nextToken"] = token
        resp = ecs.list_clusters(**kw)
        pages += 1
        assert pages < 1000, "pagination does not terminate"
        if page_size:
            assert len(resp["clusterArns"]) <= page_size
        arns.extend(resp["clusterArns"])
        token = resp.get("nextToken")
        if not token:
            return arns


def test_list_clusters_paginates_completely(ecs, name):
    created = [ecs.create_cluster(clusterName=name("lc"))["cluster"]["clusterArn"]
               for _ in range(5)]
    everything = list_all_cluster_arns(ecs)
    paged = list_all_cluster_arns(ecs, page_size=2)
    assert len(paged) == len(set(paged)), "duplicates across pages"
    assert sorted(paged) == sorted(everything)
    for arn in created:
        assert arn in paged


def test_list_clusters_with_paginator(ecs, name):
    created = {ecs.create_cluster(clusterName=name("lp"))["cluster"]["clusterArn"]
               for _ in range(3)}
    pages = list(ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 1}))
    arns = [a for p in pages for a in p["clusterArns"]]
    assert created <= set(arns)
    assert len(arns) == len(set(arns))


@pytest.mark.parametrize("bad", [0, 101])
def test_list_clusters_max_results_bounds(ecs, bad):
    with pytest.raises(ClientError) as e:
        ecs.list_clusters(maxResults=bad)
    assert_error(e, "InvalidParameterException", "ClientException")


def test_list_clusters_forged_token(ecs):
    with pytest.raises(ClientError) as e:
        ecs.list_clusters(nextToken="definitely-not-a-token")
    assert_error(e, "InvalidParameterException")


# --------------------------------------------------------------------------
# UpdateCluster / UpdateClusterSettings
# --------------------------------------------------------------------------

def test_update_cluster_settings_and_configuration(ecs, name):
    n = name("c")
    ecs.create_cluster(clusterName=n)
    c = ecs.update_cluster(
        cluster=n,
        settings=[{"name": "containerInsights", "value": "enabled"}],
        configuration={"executeCommandConfiguration": {
            "logging": "OVERRIDE",
            "logConfiguration": {"cloudWatchLogGroupName": "/ecs/exec",
                                 "cloudWatchEncryptionEnabled": True,
                                 "s3BucketName": "bucket", "s3KeyPrefix": "exec/",
                                 "s3EncryptionEnabled": False},
        }},
    )["cluster"]
    assert c["clusterName"] == n
    assert {"name": "containerInsights", "value": "enabled"} in c["settings"]
    exec_cfg = c["configuration"]["executeCommandConfiguration"]
    assert exec_cfg["logging"] == "OVERRIDE"
    assert exec_cfg["logConfiguration"]["cloudWatchLogGroupName"] == "/ecs/exec"
    assert exec_cfg["logConfiguration"]["cloudWatchEncryptionEnabled"] is True

    d = only(ecs.describe_clusters(clusters=[n], include=["CONFIGURATIONS", "SETTINGS"]))
    assert d["configuration"]["executeCommandConfiguration"] == exec_cfg
    assert {"name": "containerInsights", "value": "enabled"} in d["settings"]


def test_update_cluster_settings(ecs, name):
    n = name("c")
    arn = ecs.create_cluster(clusterName=n)["cluster"]["clusterArn"]
    c = ecs.update_cluster_settings(
        cluster=arn, settings=[{"name": "containerInsights", "value": "enhanced"}])["cluster"]
    assert c["clusterArn"] == arn
    assert {"name": "containerInsights", "value": "enhanced"} in c["settings"]
    c = ecs.update_cluster_settings(
        cluster=n, settings=[{"name": "containerInsights", "value": "disabled"}])["cluster"]
    assert {"name": "containerInsights", "value": "disabled"} in c["settings"]
    assert {"name": "containerInsights", "value": "enhanced"} not in c["settings"]


def test_update_cluster_settings_bad_value(ecs, name):
    n = name("c")
    ecs.create_cluster(clusterName=n)
    with pytest.raises(ClientError) as e:
        ecs.update_cluster_settings(cluster=n,
                                    settings=[{"name": "containerInsights", "value": "maybe"}])
    assert_error(e, "InvalidParameterException", "ClientException")


def test_update_unknown_cluster(ecs, name):
    with pytest.raises(ClientError) as e:
        ecs.update_cluster_settings(cluster=name("nope"),
                                    settings=[{"name": "containerInsights", "value": "enabled"}])
    assert_error(e, "ClusterNotFoundException")
    with pytest.raises(ClientError) as e:
        ecs.update_cluster(cluster=name("nope"),
                           settings=[{"name": "containerInsights", "value": "enabled"}])
    assert_error(e, "ClusterNotFoundException")


# --------------------------------------------------------------------------
# DeleteCluster
# --------------------------------------------------------------------------

def test_delete_cluster_makes_it_inactive(ecs, name):
    n = name("c")
    arn = ecs.create_cluster(clusterName=n)["cluster"]["clusterArn"]
    deleted = ecs.delete_cluster(cluster=n)["cluster"]
    assert deleted["clusterArn"] == arn
    assert deleted["status"] == "INACTIVE"
    # Still describable, as INACTIVE ("INACTIVE clusters may remain
    # discoverable in your account for a period of time")
    d = ecs.describe_clusters(clusters=[n])
    if d["clusters"]:
        assert d["clusters"][0]["status"] == "INACTIVE"
    else:
        assert d["failures"][0]["reason"] == "MISSING"
    assert arn not in list_all_cluster_arns(ecs)


def test_deleted_cluster_can_be_recreated(ecs, name):
    n = name("c")
    ecs.create_cluster(clusterName=n)
    ecs.delete_cluster(cluster=n)
    c = ecs.create_cluster(clusterName=n)["cluster"]
    assert c["status"] == "ACTIVE"
    assert only(ecs.describe_clusters(clusters=[n]))["status"] == "ACTIVE"


def test_delete_cluster_by_arn(ecs, name):
    arn = ecs.create_cluster(clusterName=name("c"))["cluster"]["clusterArn"]
    assert ecs.delete_cluster(cluster=arn)["cluster"]["status"] == "INACTIVE"


def test_delete_unknown_cluster(ecs, name):
    with pytest.raises(ClientError) as e:
        ecs.delete_cluster(cluster=name("nope"))
    assert_error(e, "ClusterNotFoundException")


def test_operations_on_inactive_cluster(ecs, name):
    n = name("c")
    ecs.create_cluster(clusterName=n)
    ecs.delete_cluster(cluster=n)
    with pytest.raises(ClientError) as e:
        ecs.update_cluster_settings(cluster=n,
                                    settings=[{"name": "containerInsights", "value": "enabled"}])
    assert error_code(e) in ("ClusterNotFoundException", "ClientException",
                             "InvalidParameterException")


def test_cluster_arn_from_other_region(ecs, name, account_id):
    """ECS rejects identifiers for another region ("Identifier is for
    eu-west-1. Your region is us-east-1.") -- a MISSING failure is accepted
    too, but the cluster of this region must never be returned."""
    n = name("c")
    ecs.create_cluster(clusterName=n)
    other = cluster_arn("eu-west-1", account_id, n)
    try:
        resp = ecs.describe_clusters(clusters=[other])
    except ClientError as e:
        assert_error(e, "InvalidParameterException")
        return
    assert resp["clusters"] == []
    assert resp["failures"][0]["reason"] == "MISSING"
