"""SigV4 authentication and account isolation (berth only: moto does not
authenticate).  Error codes are the ones AWS JSON services use:

* no credentials at all                       -> MissingAuthenticationTokenException
* malformed Authorization header              -> IncompleteSignatureException
* access key unknown to the server            -> UnrecognizedClientException
* wrong secret / tampering / expired / scope  -> InvalidSignatureException
"""

import datetime
from urllib.parse import urlsplit, urlunsplit

import pytest
from botocore.exceptions import ClientError

from errors import assert_error
from harness import Creds, RawClient

pytestmark = pytest.mark.berth_only

AUTH_STATUSES = (400, 403)


def assert_auth_error(r, code):
    assert r.status in AUTH_STATUSES, r
    assert r.error_code == code, r
    assert r.json().get("message"), r


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def test_valid_signature_works(raw):
    r = raw.call("ListClusters", {})
    assert r.status == 200, r


def test_wrong_secret(raw, server):
    good = server.default_creds()
    bad = Creds(good.access_key_id, good.secret_access_key + "x", good.account_id)
    assert_auth_error(raw.call("ListClusters", {}, creds=bad), "InvalidSignatureException")


def test_wrong_secret_via_boto3(make_ecs, server):
    good = server.default_creds()
    ecs = make_ecs(creds=Creds(good.access_key_id, "not-the-secret", good.account_id))
    with pytest.raises(ClientError) as e:
        ecs.list_clusters()
    assert_error(e, "InvalidSignatureException")


def test_unknown_access_key(raw):
    bad = Creds("AKIAUNKNOWNUNKNOWN00", "whatever", "000000000000")
    assert_auth_error(raw.call("ListClusters", {}, creds=bad), "UnrecognizedClientException")


def test_unknown_access_key_via_boto3(make_ecs):
    ecs = make_ecs(creds=Creds("AKIAUNKNOWNUNKNOWN01", "whatever"))
    with pytest.raises(ClientError) as e:
        ecs.describe_clusters()
    assert_error(e, "UnrecognizedClientException")


def test_no_authorization(raw):
    r = raw.send(raw.build("ListClusters", {}), "ListClusters")
    assert_auth_error(r, "MissingAuthenticationTokenException")


@pytest.mark.parametrize("header", [
    "AWS4-HMAC-SHA256",
    "AWS4-HMAC-SHA256 Credential=AKIA/20240101/us-east-1/ecs/aws4_request",
    "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc",
    "Basic dXNlcjpwYXNz",
])
def test_malformed_authorization(raw, header):
    req = raw.build("ListClusters", {})
    req.headers["Authorization"] = header
    req.headers["X-Amz-Date"] = utcnow().strftime("%Y%m%dT%H%M%SZ")
    r = raw.send(req, "ListClusters")
    assert r.status in AUTH_STATUSES, r
    assert r.error_code in ("IncompleteSignatureException", "InvalidSignatureException",
                            "MissingAuthenticationTokenException",
                            "UnrecognizedClientException"), r


@pytest.mark.parametrize("minutes", [-20, 20])
def test_request_outside_clock_skew(raw, minutes):
    """AWS allows 5 minutes of skew: "Signature expired" / "not yet current"."""
    req = raw.sign(raw.build("ListClusters", {}),
                   at=utcnow() + datetime.timedelta(minutes=minutes))
    assert_auth_error(raw.send(req, "ListClusters"), "InvalidSignatureException")


def test_small_clock_skew_is_fine(raw):
    req = raw.sign(raw.build("ListClusters", {}), at=utcnow() - datetime.timedelta(minutes=2))
    assert raw.send(req, "ListClusters").status == 200


def test_tampered_body(raw, name):
    req = raw.sign(raw.build("CreateCluster", {"clusterName": name("a")}))
    tampered = f'{{"clusterName": "{name("b")}"}}'.encode()
    assert_auth_error(raw.send(req, "CreateCluster", body_override=tampered),
                      "InvalidSignatureException")


def test_tampered_signed_header(raw):
    req = raw.sign(raw.build("ListClusters", {}))
    req.headers.replace_header("X-Amz-Target",
                               "AmazonEC2ContainerServiceV20141113.DescribeClusters")
    r = raw.send(req, "DescribeClusters")
    assert_auth_error(r, "InvalidSignatureException")


def test_signed_for_another_service(raw):
    req = raw.sign(raw.build("ListClusters", {}), service="logs")
    assert_auth_error(raw.send(req, "ListClusters"), "InvalidSignatureException")


def test_presigned_query_request_works(raw, name):
    n = name("presigned")
    req = raw.sign(raw.build("CreateCluster", {"clusterName": n}), query=True)
    assert "X-Amz-Signature=" in req.url and "Authorization" not in req.headers
    r = raw.send(req, "CreateCluster")
    assert r.status == 200, r
    assert r.json()["cluster"]["clusterName"] == n


def test_presigned_query_request_expired(raw):
    req = raw.sign(raw.build("ListClusters", {}), query=True, expires=60,
                   at=utcnow() - datetime.timedelta(minutes=10))
    assert_auth_error(raw.send(req, "ListClusters"), "InvalidSignatureException")


def test_presigned_query_request_bad_signature(raw):
    req = raw.sign(raw.build("ListClusters", {}), query=True)
    parts = urlsplit(req.url)
    query = parts.query.rsplit("X-Amz-Signature=", 1)[0] + "X-Amz-Signature=" + "0" * 64
    req.url = urlunsplit(parts._replace(query=query))
    assert_auth_error(raw.send(req, "ListClusters"), "InvalidSignatureException")


def test_server_survives_auth_failures(raw, server):
    for _ in range(20):
        raw.call("ListClusters", {}, creds=Creds("AKIANOPE", "x"))
    assert raw.call("ListClusters", {}).status == 200


# --------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------

@pytest.fixture
def accounts(two_accounts, make_ecs):
    a, a2, b = two_accounts.creds
    assert a.account_id == a2.account_id != b.account_id
    return (make_ecs(two_accounts, a), make_ecs(two_accounts, a2), make_ecs(two_accounts, b),
            a, b)


def test_clusters_are_per_account(accounts, name):
    ecs_a, ecs_a2, ecs_b, a, b = accounts
    n = name("iso")
    arn = ecs_a.create_cluster(clusterName=n)["cluster"]["clusterArn"]
    assert f":{a.account_id}:" in arn

    # the other key of the same account sees it
    assert ecs_a2.describe_clusters(clusters=[n])["clusters"][0]["clusterArn"] == arn

    # account B does not
    resp = ecs_b.describe_clusters(clusters=[n])
    assert resp["clusters"] == []
    assert resp["failures"] == [
        {"arn": f"arn:aws:ecs:us-east-1:{b.account_id}:cluster/{n}", "reason": "MISSING"}]
    assert arn not in ecs_b.list_clusters()["clusterArns"]
    with pytest.raises(ClientError) as e:
        ecs_b.delete_cluster(cluster=n)
    assert_error(e, "ClusterNotFoundException")

    # B may create its own cluster of the same name
    arn_b = ecs_b.create_cluster(clusterName=n)["cluster"]["clusterArn"]
    assert arn_b != arn and f":{b.account_id}:" in arn_b


def test_cluster_arn_of_other_account(accounts, name):
    ecs_a, _, ecs_b, a, b = accounts
    arn = ecs_a.create_cluster(clusterName=name("iso"))["cluster"]["clusterArn"]
    try:
        resp = ecs_b.describe_clusters(clusters=[arn])
    except ClientError as e:
        assert_error(e, "InvalidParameterException")  # "Identifier is for <acct>..."
    else:
        assert resp["clusters"] == []
    with pytest.raises(ClientError) as e:
        ecs_b.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    assert_error(e, "InvalidParameterException", "ClusterNotFoundException", "AccessDeniedException")
    with pytest.raises(ClientError) as e:
        ecs_b.delete_cluster(cluster=arn)
    assert_error(e, "InvalidParameterException", "ClusterNotFoundException", "AccessDeniedException")
    # still there for A, untagged
    c = ecs_a.describe_clusters(clusters=[arn], include=["TAGS"])["clusters"][0]
    assert c["status"] == "ACTIVE" and c.get("tags", []) == []


def test_task_definitions_are_per_account(accounts, name):
    ecs_a, ecs_a2, ecs_b, a, b = accounts
    family = name("iso")
    td = ecs_a.register_task_definition(
        family=family, containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}],
    )["taskDefinition"]
    assert ecs_a2.describe_task_definition(taskDefinition=family)["taskDefinition"] == td
    with pytest.raises(ClientError) as e:
        ecs_b.describe_task_definition(taskDefinition=family)
    assert_error(e, "ClientException", "InvalidParameterException")
    assert ecs_b.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == []
    assert family not in ecs_b.list_task_definition_families(familyPrefix=family)["families"]
    # B's own family of the same name starts at revision 1
    assert ecs_b.register_task_definition(
        family=family, containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}],
    )["taskDefinition"]["revision"] == 1
    assert ecs_a.register_task_definition(
        family=family, containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}],
    )["taskDefinition"]["revision"] == 2


def test_account_settings_are_per_account(accounts):
    ecs_a, _, ecs_b, a, b = accounts
    ecs_a.put_account_setting_default(name="containerInsights", value="enhanced")
    try:
        eff_b = ecs_b.list_account_settings(name="containerInsights", effectiveSettings=True)
        assert all(s["value"] != "enhanced" for s in eff_b["settings"]), eff_b
    finally:
        ecs_a.put_account_setting_default(name="containerInsights", value="disabled")


def test_pagination_token_of_other_account(accounts, name):
    ecs_a, _, ecs_b, a, b = accounts
    family = name("tok")
    for _ in range(3):
        ecs_a.register_task_definition(
            family=family, containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}])
    token = ecs_a.list_task_definitions(familyPrefix=family, maxResults=1)["nextToken"]
    with pytest.raises(ClientError) as e:
        ecs_b.list_task_definitions(familyPrefix=family, maxResults=1, nextToken=token)
    assert_error(e, "InvalidParameterException")


def test_raw_requests_per_account(two_accounts, recorder, name):
    a, _, b = two_accounts.creds
    rc = RawClient(two_accounts, recorder)
    n = name("rawiso")
    assert rc.call("CreateCluster", {"clusterName": n}, creds=a).status == 200
    r = rc.call("DescribeClusters", {"clusters": [n]}, creds=b)
    assert r.json()["clusters"] == []


# --------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------

def test_resources_are_regional(raw, name, account_id):
    """ECS is a regional service: the region comes from the signature's
    credential scope, ARNs carry it, and one region's clusters are invisible
    from another."""
    n = name("eu")
    req = raw.sign(raw.build("CreateCluster", {"clusterName": n}), region="eu-west-1")
    r = raw.send(req, "CreateCluster")
    assert r.status == 200, r
    assert r.json()["cluster"]["clusterArn"] == f"arn:aws:ecs:eu-west-1:{account_id}:cluster/{n}"
    here = raw.call("DescribeClusters", {"clusters": [n]}).json()
    assert here["clusters"] == []
    assert here["failures"] == [
        {"arn": f"arn:aws:ecs:us-east-1:{account_id}:cluster/{n}", "reason": "MISSING"}]
    there = raw.send(raw.sign(raw.build("ListClusters", {}), region="eu-west-1"), "ListClusters")
    assert f"arn:aws:ecs:eu-west-1:{account_id}:cluster/{n}" in there.json()["clusterArns"]


def test_invalid_region_in_scope(raw):
    req = raw.sign(raw.build("ListClusters", {}), region="not-a-region")
    assert_auth_error(raw.send(req, "ListClusters"), "InvalidSignatureException")


def test_region_allowlist(tmp_path, recorder):
    from harness import BerthServer
    config = tmp_path / "berth.toml"
    c = Creds("AKIABERTHREGIONTEST1", "regionsecret/" + "r" * 27, "333333333333")
    config.write_text(
        'regions = ["us-east-1"]\n\n'
        f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
        f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n')
    srv = BerthServer(tmp_path / "data", config=config).start()
    try:
        rc = RawClient(srv, recorder)
        assert rc.call("ListClusters", {}).status == 200
        r = rc.send(rc.sign(rc.build("ListClusters", {}), region="eu-west-1"), "ListClusters")
        assert_auth_error(r, "InvalidSignatureException")
    finally:
        srv.stop()
