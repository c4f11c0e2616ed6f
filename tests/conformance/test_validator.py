"""Unit tests of the strict validator itself (no server needed)."""

import json

import pytest

from shape_validator import assert_valid, validate_response

CT = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "r-1"}


def err_headers(code):
    return {**CT, "x-amzn-ErrorType": code}


def body(obj) -> bytes:
    return json.dumps(obj).encode()


GOOD_CLUSTER = {
    "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/c1",
    "clusterName": "c1",
    "status": "ACTIVE",
    "registeredContainerInstancesCount": 0,
    "runningTasksCount": 0,
    "pendingTasksCount": 0,
    "activeServicesCount": 0,
    "statistics": [],
    "tags": [{"key": "k", "value": "v"}],
    "settings": [{"name": "containerInsights", "value": "disabled"}],
    "capacityProviders": [],
    "defaultCapacityProviderStrategy": [],
}

GOOD_TASKDEF = {
    "taskDefinition": {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/f:1",
        "family": "f",
        "revision": 1,
        "status": "ACTIVE",
        "containerDefinitions": [{
            "name": "web", "image": "nginx", "essential": True, "cpu": 0, "memory": 128,
            "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
            "environment": [], "mountPoints": [], "volumesFrom": [],
            "healthCheck": {"command": ["CMD", "true"], "interval": 30},
            "dockerLabels": {"a": "b"},
        }],
        "volumes": [],
        "registeredAt": 1700000000.123,
        "registeredBy": "arn:aws:iam::123456789012:root",
        "requiresAttributes": [],
        "compatibilities": ["EC2"],
    },
    "tags": [],
}


def violations(op, obj, status=200, headers=CT, **kw):
    raw = obj if isinstance(obj, (bytes, str)) else body(obj)
    return validate_response(op, raw, status, headers, **kw)


# --------------------------------------------------------------------------
# Success bodies that must pass
# --------------------------------------------------------------------------

@pytest.mark.parametrize("op,obj", [
    ("DescribeClusters", {"clusters": [GOOD_CLUSTER], "failures": []}),
    ("DescribeClusters", {"clusters": [], "failures": [
        {"arn": "arn:aws:ecs:us-east-1:123456789012:cluster/x", "reason": "MISSING"}]}),
    ("ListClusters", {"clusterArns": ["a", "b"], "nextToken": "tok"}),
    ("ListClusters", {"clusterArns": []}),
    ("DescribeTaskDefinition", GOOD_TASKDEF),
    ("DescribeTaskDefinition", {"taskDefinition": {**GOOD_TASKDEF["taskDefinition"],
                                                   "registeredAt": 1700000000}}),
    ("TagResource", {}),
    ("DeleteAccountSetting", {"setting": {"name": "containerInsights", "value": "enabled",
                                          "principalArn": "arn:aws:iam::123456789012:root",
                                          "type": "user"}}),
])
def test_valid_bodies_pass(op, obj):
    assert violations(op, obj) == []
    assert_valid(op, body(obj), 200, CT)


# --------------------------------------------------------------------------
# Success bodies that must fail
# --------------------------------------------------------------------------

def bad_cluster(**changes):
    c = dict(GOOD_CLUSTER)
    for k, v in changes.items():
        if v is ...:
            c.pop(k)
        else:
            c[k] = v
    return {"clusters": [c]}


@pytest.mark.parametrize("obj,expected", [
    (bad_cluster(runningTasksCount=True), "$.clusters[0].runningTasksCount: expected integer"),
    (bad_cluster(runningTasksCount=1.0), "$.clusters[0].runningTasksCount: expected integer"),
    (bad_cluster(runningTasksCount="1"), "$.clusters[0].runningTasksCount: expected integer"),
    (bad_cluster(clusterName=None), "$.clusters[0].clusterName: null is not allowed"),
    (bad_cluster(foo="bar"), "$.clusters[0].foo: unknown member"),
    (bad_cluster(clusterName=5), "$.clusters[0].clusterName: expected string"),
    (bad_cluster(tags={"k": "v"}), "$.clusters[0].tags: expected array"),
    (bad_cluster(tags=[{"key": "k" * 129, "value": "v"}]), "$.clusters[0].tags[0].key: string length 129"),
    (bad_cluster(tags=[{"key": "", "value": "v"}]), "$.clusters[0].tags[0].key: string length 0 is below"),
    (bad_cluster(tags=[{"key": f"k{i}", "value": "v"} for i in range(51)]), "$.clusters[0].tags: list length 51"),
    (bad_cluster(settings=[{"name": "containerInsights", "value": None}]),
     "$.clusters[0].settings[0].value: null"),
    (bad_cluster(settings=[{"name": "CONTAINER_INSIGHTS", "value": "enabled"}]),
     "$.clusters[0].settings[0].name: 'CONTAINER_INSIGHTS' is not a value of enum"),
    ({"clusters": [GOOD_CLUSTER], "failures": None}, "$.failures: null"),
    ({"clusters": [GOOD_CLUSTER], "extra": 1}, "$.extra: unknown member"),
    ([], "$: expected object"),
])
def test_invalid_cluster_bodies_fail(obj, expected):
    found = violations("DescribeClusters", obj)
    assert any(v.startswith(expected) for v in found), found
    with pytest.raises(AssertionError):
        assert_valid("DescribeClusters", body(obj), 200, CT)


def taskdef(**changes):
    td = json.loads(json.dumps(GOOD_TASKDEF))
    td["taskDefinition"].update(changes)
    return td


def container(**changes):
    td = json.loads(json.dumps(GOOD_TASKDEF))
    td["taskDefinition"]["containerDefinitions"][0].update(changes)
    return td


@pytest.mark.parametrize("obj,expected", [
    (taskdef(registeredAt="2024-01-01T00:00:00Z"), "$.taskDefinition.registeredAt: expected timestamp"),
    (taskdef(registeredAt=True), "$.taskDefinition.registeredAt: expected timestamp"),
    (taskdef(registeredAt=1700000000123), "$.taskDefinition.registeredAt: implausible"),
    (taskdef(revision="1"), "$.taskDefinition.revision: expected integer"),
    (taskdef(status="active"), "$.taskDefinition.status: 'active' is not a value of enum"),
    (taskdef(networkMode="vpc"), "$.taskDefinition.networkMode: 'vpc' is not a value of enum"),
    (container(essential=1), "$.taskDefinition.containerDefinitions[0].essential: expected boolean"),
    (container(essential="true"), "$.taskDefinition.containerDefinitions[0].essential: expected boolean"),
    (container(healthCheck={"interval": 30}),
     "$.taskDefinition.containerDefinitions[0].healthCheck.command: required member"),
    (container(ulimits=[{"name": "nofile", "softLimit": 1}]),
     "$.taskDefinition.containerDefinitions[0].ulimits[0].hardLimit: required member"),
    (container(dockerLabels={"a": 1}), "$.taskDefinition.containerDefinitions[0].dockerLabels['a']: expected string"),
    (container(dockerLabels={"a": None}), "$.taskDefinition.containerDefinitions[0].dockerLabels['a']: null"),
    (container(portMappings=[{"containerPort": 2**31}]),
     "$.taskDefinition.containerDefinitions[0].portMappings[0].containerPort: 2147483648 does not fit"),
    (container(portMappings=[{"containerPort": 80, "protocol": "TCP"}]),
     "$.taskDefinition.containerDefinitions[0].portMappings[0].protocol: 'TCP' is not a value"),
])
def test_invalid_taskdef_bodies_fail(obj, expected):
    found = violations("DescribeTaskDefinition", obj)
    assert any(v.startswith(expected) for v in found), found


def test_blob_must_be_base64():
    # No ECS output has a blob; use a service that does.
    ok = validate_response("Decrypt", body({"Plaintext": "aGVsbG8="}), 200, CT, service="kms")
    assert ok == []
    bad = validate_response("Decrypt", body({"Plaintext": "not base64!"}), 200, CT, service="kms")
    assert any("not valid base64" in v for v in bad), bad


def test_double_accepts_int_and_float_but_not_bool():
    # ECS outputs carry doubles only deep inside daemon shapes, so exercise
    # the walker directly on one of them (a double with a 0..100 range).
    from shape_validator import service_model, validate_value
    shape = service_model().shape_for("DaemonDrainPercent")
    for good in (0, 12.5, 100):
        out = []
        validate_value(shape, good, "$", out)
        assert out == [], (good, out)
    for bad in (True, "1.0", None, 100.5):
        out = []
        validate_value(shape, bad, "$", out)
        assert out, bad


def test_non_json_and_wrong_headers():
    assert any("not JSON" in v for v in violations("ListClusters", b"<html>"))
    hv = violations("ListClusters", {"clusterArns": []},
                    headers={"Content-Type": "application/json"})
    assert any("Content-Type" in v for v in hv)
    rid = violations("ListClusters", {"clusterArns": []},
                     headers={"Content-Type": "application/x-amz-json-1.1"},
                     require_request_id=True)
    assert any("x-amzn-RequestId" in v for v in rid)


def test_output_less_operation_must_be_empty_object():
    assert violations("TagResource", {}) == []
    assert violations("TagResource", {"x": 1})


def test_success_status_must_be_200():
    assert any("HTTP status 201" in v for v in violations("ListClusters", {"clusterArns": []},
                                                         status=201))


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

@pytest.mark.parametrize("op,obj,status,headers", [
    ("DeleteCluster", {"__type": "ClusterNotFoundException", "message": "Cluster not found."},
     400, err_headers("ClusterNotFoundException")),
    ("DescribeClusters", {"__type": "InvalidParameterException", "message": "bad"},
     400, err_headers("InvalidParameterException")),
    ("ListClusters", {"__type": "ServerException", "message": "boom"}, 500,
     err_headers("ServerException")),
    ("ListClusters", {"__type": "UnrecognizedClientException", "message": "bad key"}, 400,
     err_headers("UnrecognizedClientException")),
    ("ListClusters", {"__type": "MissingAuthenticationTokenException", "message": "x"}, 403,
     err_headers("MissingAuthenticationTokenException")),
    (None, {"__type": "UnknownOperationException", "message": "x"}, 400,
     err_headers("UnknownOperationException")),
    ("NoSuchOperation", {"__type": "UnknownOperationException", "message": "x"}, 400,
     err_headers("UnknownOperationException")),
])
def test_valid_errors_pass(op, obj, status, headers):
    assert violations(op, obj, status=status, headers=headers) == []


def test_error_prefix_and_Message_tolerated_only_when_lax():
    obj = {"__type": "com.amazonaws.ecs#ClientException", "Message": "m"}
    h = err_headers("ClientException")
    assert violations("ListClusters", obj, 400, h, strict_envelope=False) == []
    strict = violations("ListClusters", obj, 400, h, strict_envelope=True)
    assert any("bare code" in v for v in strict)
    assert any("lower-case 'message'" in v for v in strict)


@pytest.mark.parametrize("obj,status,headers,expected", [
    ({"__type": "ClusterNotFoundException", "message": "x"}, 400,
     err_headers("ClusterNotFoundException"), "'ClusterNotFoundException' is neither"),
    ({"__type": "ClientException", "message": "x"}, 500,
     err_headers("ClientException"), "HTTP status 500 does not match"),
    ({"__type": "ClientException", "message": "x"}, 400,
     err_headers("InvalidParameterException"), "header x-amzn-ErrorType"),
    ({"__type": "ClientException", "message": "x"}, 400, CT, "header x-amzn-ErrorType is missing"),
    ({"__type": "ClientException"}, 400, err_headers("ClientException"), "$.message: error message is missing"),
    ({"__type": "ClientException", "message": None}, 400, err_headers("ClientException"),
     "$.message: error message must be a string"),
    ({"__type": "ClientException", "message": "x", "detail": "y"}, 400,
     err_headers("ClientException"), "$.detail: unknown member"),
    ({"message": "x"}, 400, CT, "$.__type: missing"),
    ({"code": "ClientException", "message": "x"}, 400, err_headers("ClientException"),
     "$.code: error code must be sent as __type"),
    ("not json", 400, err_headers("ClientException"), "$: body is not JSON"),
])
def test_invalid_errors_fail(obj, status, headers, expected):
    # ListClusters models only Server/Client/InvalidParameter/AccessDenied.
    raw = obj.encode() if isinstance(obj, str) else body(obj)
    found = validate_response("ListClusters", raw, status, headers)
    assert any(v.startswith(expected) or expected in v for v in found), found


def test_unknown_operation_only_allows_common_errors():
    found = violations("NoSuchOperation", {"__type": "ClientException", "message": "x"}, 400,
                       err_headers("ClientException"))
    assert any("neither" in v for v in found)


def test_error_with_modeled_extra_member():
    # ConflictException carries a modeled `resourceIds` member besides the
    # message; such members are allowed in the envelope and validated.
    from shape_validator import service_model
    m = service_model()
    op = next(o for o in m.operation_names
              if any(e.name == "ConflictException" for e in m.operation_model(o).error_shapes))
    good = {"__type": "ConflictException", "message": "x", "resourceIds": ["a"]}
    assert violations(op, good, 400, err_headers("ConflictException")) == []
    bad = {"__type": "ConflictException", "message": "x", "resourceIds": "a"}
    assert any("resourceIds" in v for v in violations(op, bad, 400, err_headers("ConflictException")))


# -- the XML protocols (xml_validator) ------------------------------------------

XML = {"Content-Type": "text/xml", "x-amzn-RequestId": "r-1"}
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


def ec2_vpcs(inner: str) -> bytes:
    return (f'<DescribeVpcsResponse xmlns="{EC2_NS}"><requestId>r-1</requestId>'
            f'<vpcSet>{inner}</vpcSet></DescribeVpcsResponse>').encode()


def xml_violations(service, op, raw, status=200, headers=XML):
    return validate_response(op, raw, status, headers, service=service)


def test_xml_success_shapes_are_checked_strictly():
    good = "<item><vpcId>vpc-1</vpcId><isDefault>true</isDefault><state>available</state></item>"
    assert xml_violations("ec2", "DescribeVpcs", ec2_vpcs(good)) == []
    bad = [
        ("<item><vpcId>vpc-1</vpcId><bogus>x</bogus></item>", "unknown element"),
        ("<item><isDefault>yes</isDefault></item>", "true or false"),
        ("<item><state>melting</state></item>", "not a value of enum"),
        ("<member><vpcId>v</vpcId></member>", "items must be <item>"),
        ("<item><vpcId><x/></vpcId></item>", "child elements"),
        ("<item><vpcId>a</vpcId><vpcId>b</vpcId></item>", "more than once"),
    ]
    for inner, expected in bad:
        found = xml_violations("ec2", "DescribeVpcs", ec2_vpcs(inner))
        assert any(expected in v for v in found), (inner, found)
    no_request_id = f'<DescribeVpcsResponse xmlns="{EC2_NS}"><vpcSet/></DescribeVpcsResponse>'
    assert any("requestId" in v for v in xml_violations("ec2", "DescribeVpcs", no_request_id.encode()))
    wrong_ns = ec2_vpcs("").replace(EC2_NS.encode(), b"http://example.com/")
    assert any("namespace" in v for v in xml_violations("ec2", "DescribeVpcs", wrong_ns))
    assert any("Content-Type" in v for v in xml_violations(
        "ec2", "DescribeVpcs", ec2_vpcs(""), headers={"Content-Type": "application/json"}))


def test_xml_query_envelope_and_errors():
    ns = "https://sts.amazonaws.com/doc/2011-06-15/"
    ok = (f'<GetCallerIdentityResponse xmlns="{ns}"><GetCallerIdentityResult><Account>1</Account>'
          f'</GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>'
          f'</GetCallerIdentityResponse>').encode()
    assert xml_violations("sts", "GetCallerIdentity", ok) == []
    unwrapped = ok.replace(b"GetCallerIdentityResult", b"Result")
    assert xml_violations("sts", "GetCallerIdentity", unwrapped)
    err = (b"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>"
           b"<Message>no</Message></Error><RequestId>r</RequestId></ErrorResponse>")
    assert xml_violations("sts", "GetCallerIdentity", err, 400) == []
    assert any("status" in v for v in xml_violations("sts", "GetCallerIdentity", err, 500))
    assert xml_violations("sts", "GetCallerIdentity", err.replace(b"InvalidAction", b"Made.Up"), 400)
    ec2_err = (b"<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code><Message>m</Message>"
               b"</Error></Errors><RequestID>r</RequestID></Response>")
    assert xml_violations("ec2", "DescribeVpcs", ec2_err, 400) == []
    # The query shape is not EC2's, and JSON is neither.
    assert xml_violations("ec2", "DescribeVpcs", err, 400)
    assert xml_violations("ec2", "DescribeVpcs", b'{"__type": "X", "message": "m"}', 400)
