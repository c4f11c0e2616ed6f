"""AWS JSON 1.1 on the wire: framing, headers, error classification.

Every raw response in these tests also goes through the strict validator
(via the ``raw`` fixture), so a 200 must match the operation's output shape
and an error must be a proper ``{"__type", "message"}`` envelope with a
modeled or common code, the matching ``x-amzn-ErrorType`` header and status.
"""

import json

import pytest
import requests

from harness import CONTENT_TYPE, TARGET_PREFIX
from shape_validator import service_model

ALL_OPERATIONS = sorted(service_model().operation_names)


def test_model_has_77_operations():
    assert len(ALL_OPERATIONS) == 77


def assert_error_status(r, *codes, status=400):
    assert r.status == status, r
    assert r.error_code in codes, r
    assert isinstance(r.json().get("message"), str), r


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"this is not json", b"{", b"[1, 2", b"\xff\xfe{}",
                                  b'{"clusterName": "a",}'])
def test_body_not_json(raw, body):
    assert_error_status(raw.call("CreateCluster", body), "SerializationException")


@pytest.mark.parametrize("body", [b"[]", b"[{}]", b'"string"', b"5", b"null", b"true"])
def test_body_json_but_not_an_object(raw, body):
    assert_error_status(raw.call("ListClusters", body), "SerializationException")


@pytest.mark.parametrize("op,body", [
    # A JSON array is not a structure, even if a deserializer could map its
    # elements onto the members in order (serde does that by default).
    ("CreateCluster", ["positional-name"]),
    ("ListClusters", []),
    ("CreateCluster", {"clusterName": "x", "tags": [["k", "v"]]}),
    ("CreateCluster", {"clusterName": "x", "settings": [["containerInsights", "enabled"]]}),
    ("RegisterTaskDefinition", {"family": "f", "containerDefinitions": [["a", "busybox"]]}),
    ("CreateCluster", {"clusterName": 5}),
    ("CreateCluster", {"clusterName": ["a"]}),
    ("CreateCluster", {"tags": {"key": "k", "value": "v"}}),
    ("CreateCluster", {"tags": [{"key": 1, "value": "v"}]}),
    ("ListClusters", {"maxResults": "5"}),
    ("ListClusters", {"maxResults": 1.5}),
    ("ListClusters", {"maxResults": True}),
    ("DescribeClusters", {"clusters": "default"}),
    ("ListAccountSettings", {"effectiveSettings": "true"}),
    ("ListAccountSettings", {"effectiveSettings": 1}),
    ("RegisterTaskDefinition", {"family": "f", "containerDefinitions": [
        {"name": "a", "image": "busybox", "memory": "128"}]}),
    ("RegisterTaskDefinition", {"family": "f", "containerDefinitions": [
        {"name": "a", "image": "busybox", "memory": 128, "essential": "yes"}]}),
    ("RegisterTaskDefinition", {"family": "f", "containerDefinitions": [
        {"name": "a", "image": "busybox", "memory": 128, "dockerLabels": {"k": 1}}]}),
], ids=lambda v: v if isinstance(v, str) else json.dumps(v)[:60])
def test_member_of_wrong_type(raw, op, body):
    assert_error_status(raw.call(op, json.dumps(body)), "SerializationException")


def test_empty_body_is_treated_as_empty_object_or_refused(raw):
    r = raw.call("ListClusters", b"")
    assert r.status in (200, 400), r
    if r.status == 400:
        assert r.error_code == "SerializationException", r
    else:
        assert "clusterArns" in r.json()


def test_unknown_members_are_ignored(raw):
    """Coral-style JSON services ignore members they do not know (that is how
    newer clients talk to older endpoints)."""
    r = raw.call("ListClusters", {"someFutureMember": {"x": 1}})
    assert r.status == 200, r


def test_numbers_in_range(raw):
    r = raw.call("ListClusters", {"maxResults": 2**40})
    assert r.status == 400, r
    assert r.error_code in ("SerializationException", "InvalidParameterException",
                            "ClientException"), r


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"clusterName": "x", "unknown": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
], ids=["deep-array", "deep-object", "deep-unknown-member"])
def test_deeply_nested_json_does_not_crash(raw, body):
    r = raw.call("ListClusters", body)
    assert r.status in (200, 400), r
    if r.status == 400:
        assert r.error_code == "SerializationException", r
    assert raw.call("ListClusters", {}).status == 200


def test_huge_body_is_refused_and_server_survives(raw, server):
    big = b'{"clusterName": "' + b"a" * (20 * 1024 * 1024) + b'"}'
    try:
        r = raw.call("CreateCluster", big, validate=False)
    except requests.ConnectionError:
        pytest.fail("server dropped the connection instead of answering with a 4xx JSON error")
    assert 400 <= r.status < 500, r
    body = r.json()
    assert isinstance(body.get("__type"), str) and isinstance(body.get("message"), str), body
    assert r.headers.get("Content-Type", "").startswith(CONTENT_TYPE)
    # still alive and serving
    ok = raw.call("ListClusters", {})
    assert ok.status == 200, ok


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    f"{TARGET_PREFIX}.NoSuchOperation",
    f"{TARGET_PREFIX}.listClusters",
    f"{TARGET_PREFIX}.",
    "DynamoDB_20120810.ListTables",
    "AmazonEC2ContainerServiceV20141113ListClusters",
])
def test_unknown_operation(raw, target):
    r = raw.call(None, {}, target=target)
    assert_error_status(r, "UnknownOperationException")


def test_missing_target(raw):
    req = raw.build(None, b"{}")
    del req.headers["X-Amz-Target"]
    r = raw.send(raw.sign(req), None)
    assert r.status == 400, r
    assert r.error_code in ("UnknownOperationException", "SerializationException"), r


@pytest.mark.parametrize("op", ALL_OPERATIONS)
def test_every_operation_answers_json(raw, op):
    """All 77 operations answer with a model-valid JSON body: a real result,
    a modeled validation error for the empty input, or a modeled
    "not implemented" error.  Never 404, 5xx or a non-JSON body."""
    r = raw.call(op, {})
    assert r.status < 500, r
    assert r.status in (200, 400), r
    assert r.headers.get("Content-Type", "").split(";")[0] == CONTENT_TYPE, r.headers
    assert r.headers.get("x-amzn-RequestId"), r.headers
    body = r.json()
    assert isinstance(body, dict)
    if r.status == 400:
        assert r.error_code and body.get("message"), body


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------

def test_success_headers(raw):
    r = raw.call("ListClusters", {})
    assert r.status == 200
    assert r.headers["Content-Type"].split(";")[0] == CONTENT_TYPE
    assert r.headers.get("x-amzn-RequestId")
    assert int(r.headers["Content-Length"]) == len(r.content)


def test_error_headers(raw, name):
    r = raw.call("DeleteCluster", {"cluster": name("ghost")})
    assert r.status == 400
    assert r.headers["Content-Type"].split(";")[0] == CONTENT_TYPE
    assert r.headers.get("x-amzn-RequestId")
    assert r.headers.get("x-amzn-ErrorType", "").split(":")[0] == "ClusterNotFoundException"
    assert r.json() == {"__type": "ClusterNotFoundException", "message": r.json()["message"]}


def test_request_ids_are_unique(raw):
    ids = {raw.call("ListClusters", {}).headers.get("x-amzn-RequestId") for _ in range(5)}
    assert len(ids) == 5 and None not in ids


def test_json_1_0_content_type_is_accepted_or_refused_cleanly(raw):
    r = raw.call("ListClusters", {}, content_type="application/x-amz-json-1.0")
    assert r.status in (200, 400), r


def test_boto3_sees_same_request_id(ecs):
    resp = ecs.list_clusters()
    meta = resp["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200
    assert meta.get("RequestId"), meta
