"""EC2 and STS/IAM on berth's endpoint: the ``ec2`` and ``query`` protocols.

Tools around ECS look the network up before they run a task (Prefect's ECS
worker: DescribeVpcs with ``isDefault``, DescribeSubnets by ``vpc-id``,
then RunTask in those subnets). Every raw XML response, errors included, is
validated strictly against the botocore model by the suite's hooks
(``xml_validator``); unknown operations of each service are a readable
ClientError in boto3 and the aws-cli; each account has a network of its own.
"""

from __future__ import annotations

import json

import requests
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

import harness
import xml_validator
from errors import assert_error
from shape_validator import service_model

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

FAST = {"Delay": 1, "MaxAttempts": 60}


@pytest.fixture
def ec2(make_client):
    return make_client("ec2")


@pytest.fixture
def sts(make_client):
    return make_client("sts")


@pytest.fixture
def cluster(ecs, name):
    c = name("net")
    ecs.create_cluster(clusterName=c)
    return c


def sh(name, script):
    return {"name": name, "image": "host", "entryPoint": ["/bin/sh", "-c"], "command": [script]}


def form(server, recorder, service: str, body: str, *, creds=None, op=None, content_type=None):
    """A hand-signed form POST to ``service``, validated like the clients' answers."""
    c = (creds or server.default_creds()).botocore()
    req = AWSRequest(method="POST", url=server.endpoint + "/", data=body.encode(), headers={
        "Content-Type": content_type or "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(c, service, harness.REGION).add_auth(req)
    p = req.prepare()
    r = requests.post(p.url, data=p.body, headers=dict(p.headers), timeout=30)
    violations = xml_validator.validate_response(service_model(service), op, r.content,
                                                 r.status_code, dict(r.headers))
    recorder.add({"source": "raw", "op": op or "?", "status": r.status_code,
                  "violations": violations, "body": r.text[:2000]})
    return r


# -- the network a tool looks up -----------------------------------------------

def test_prefect_network_lookup_then_run_task(ec2, ecs, cluster, name):
    """Prefect's ECS worker, call for call: the default VPC, its subnets, and
    a FARGATE task in them with a public IP and no security groups."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["IsDefault"] is True
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    ids = [s["SubnetId"] for s in subnets]
    assert {"subnet-berth", "subnet-local"} <= set(ids)
    assert all(s["VpcId"] == vpc_id and s["State"] == "available" for s in subnets)
    fam = name("flow")
    ecs.register_task_definition(
        family=fam, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[sh("prefect", "sleep 30")])
    out = ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {
                           "subnets": ids, "assignPublicIp": "ENABLED", "securityGroups": []}})
    assert out["failures"] == []
    arn = out["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[arn], WaiterConfig=FAST)
    task = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    [eni] = [a for a in task["attachments"] if a["type"] == "ElasticNetworkInterface"]
    details = {d["name"]: d["value"] for d in eni["details"]}
    assert details["subnetId"] == ids[0]
    ecs.stop_task(cluster=cluster, task=arn)


def test_the_default_vpc_and_its_parts_are_stable_and_filterable(ec2):
    vpc = ec2.describe_vpcs()["Vpcs"][0]
    assert ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"] == [vpc]
    assert ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"] == []
    zone = f"{harness.REGION}a"
    default = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [zone]},
                                            {"Name": "default-for-az", "Values": ["true"]}])
    [subnet] = default["Subnets"]
    assert subnet["AvailabilityZone"] == zone and subnet["DefaultForAz"] is True
    assert ec2.describe_subnets(SubnetIds=["subnet-berth"])["Subnets"][0]["SubnetId"] == "subnet-berth"
    assert ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": ["subnet-l*"]}]
                                )["Subnets"][0]["SubnetId"] == "subnet-local"
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert zone in [z["ZoneName"] for z in zones]
    assert ec2.describe_regions()["Regions"][0]["RegionName"] == harness.REGION
    attrs = {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
             for a in ec2.describe_account_attributes()["AccountAttributes"]}
    assert attrs["default-vpc"] == [vpc["VpcId"]]
    [group] = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert group["VpcId"] == vpc["VpcId"]


def test_unknown_ids_answer_ec2s_codes(ec2):
    cases = [
        (lambda: ec2.describe_vpcs(VpcIds=["vpc-0000000000000000"]), "InvalidVpcID.NotFound"),
        (lambda: ec2.describe_subnets(SubnetIds=["subnet-nope"]), "InvalidSubnetID.NotFound"),
        (lambda: ec2.describe_security_groups(GroupIds=["sg-nope"]), "InvalidGroup.NotFound"),
        (lambda: ec2.describe_security_groups(GroupNames=["nope"]), "InvalidGroup.NotFound"),
        (lambda: ec2.delete_security_group(GroupId="sg-nope"), "InvalidGroup.NotFound"),
        (lambda: ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"]),
         "InvalidInstanceID.NotFound"),
        (lambda: ec2.describe_vpcs(Filters=[{"Name": "bogus", "Values": ["x"]}]),
         "InvalidParameterValue"),
        (lambda: ec2.create_security_group(GroupName="default", Description="d"),
         "InvalidGroup.Duplicate"),
        (lambda: ec2.describe_vpcs(DryRun=True), "DryRunOperation"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert_error(e, code)


def test_security_groups_are_stored_and_used_by_run_task(ec2, ecs, cluster, name):
    gname = name("web")
    gid = ec2.create_security_group(GroupName=gname, Description="web servers")["GroupId"]
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName=gname, Description="again")
    assert_error(e, "InvalidGroup.Duplicate", message_contains=gname)
    rules = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert rules["Return"] is True and rules["SecurityGroupRules"][0]["FromPort"] == 80
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=80,
                                             ToPort=80, CidrIp="0.0.0.0/0")
    assert_error(e, "InvalidPermission.Duplicate")
    [g] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [gname]}]
                                       )["SecurityGroups"]
    assert g["GroupId"] == gid and g["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    fam = name("sg")
    ecs.register_task_definition(
        family=fam, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[sh("main", "true")])
    out = ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {
                           "subnets": ["subnet-berth"], "securityGroups": [gid]}})
    assert out["failures"] == []
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupName="default")
    assert_error(e, "CannotDelete")
    assert ec2.delete_security_group(GroupId=gid)["Return"] is True
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                     networkConfiguration={"awsvpcConfiguration": {
                         "subnets": ["subnet-berth"], "securityGroups": [gid]}})
    assert_error(e, "InvalidParameterException", message_contains=f"The security group '{gid}' does not exist")


def test_run_task_refuses_unknown_subnets_and_network_config_for_bridge(ecs, cluster, name):
    fam = name("vpc")
    ecs.register_task_definition(
        family=fam, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[sh("main", "true")])
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                     networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-nope"]}})
    assert_error(e, "InvalidParameterException",
                 message_contains="The subnet ID 'subnet-nope' does not exist")
    bridge = name("bridge")
    ecs.register_task_definition(family=bridge, networkMode="bridge",
                                 containerDefinitions=[dict(sh("main", "true"), memory=64)])
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=bridge,
                     networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-berth"]}})
    assert_error(e, "InvalidParameterException", message_contains=
                 "Network Configuration is not valid for the given networkMode of this task definition.")


# -- STS ------------------------------------------------------------------------

def test_get_caller_identity(sts, account_id):
    me = sts.get_caller_identity()
    assert me["Account"] == account_id
    assert me["Arn"] == f"arn:aws:iam::{account_id}:root"
    assert me["UserId"] == account_id


def test_presigned_get_caller_identity(server, sts, account_id):
    """The presigned GET that EKS-style authenticators hand around."""
    url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
    r = requests.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert xml_validator.validate_response(service_model("sts"), "GetCallerIdentity", r.content,
                                           r.status_code, dict(r.headers)) == []
    assert f"<Account>{account_id}</Account>" in r.text


# -- what berth does not serve, and refusals before the body ---------------------

def test_unserved_and_unknown_operations_are_readable_client_errors(
        ec2, sts, make_client, server, recorder):
    with pytest.raises(ClientError) as e:
        ec2.describe_images()
    assert_error(e, "UnsupportedOperation", message_contains="DescribeImages")
    with pytest.raises(ClientError) as e:
        sts.get_session_token()
    assert_error(e, "UnsupportedOperation", message_contains="GetSessionToken")
    with pytest.raises(ClientError) as e:
        make_client("iam").list_roles()
    assert_error(e, "UnsupportedOperation", message_contains="ListRoles")
    # A query-protocol service berth does not serve at all: still a readable error.
    with pytest.raises(ClientError) as e:
        make_client("sns").list_topics()
    assert_error(e, "UnsupportedOperation", message_contains="does not serve")
    r = form(server, recorder, "sns", "Action=ListTopics&Version=2010-03-31", op="ListTopics")
    assert "<ErrorResponse>" in r.text, r.text
    r = form(server, recorder, "ec2", "Action=Frobnicate&Version=2016-11-15")
    assert r.status_code == 400 and "<Code>InvalidAction</Code>" in r.text, r.text
    r = form(server, recorder, "sts", "Action=Frobnicate&Version=2011-06-15")
    assert "<Code>InvalidAction</Code>" in r.text and "Frobnicate" in r.text, r.text
    r = form(server, recorder, "ec2", "Version=2016-11-15")
    assert "<Code>MissingAction</Code>" in r.text, r.text
    r = form(server, recorder, "ec2", "Action=DescribeVpcs&Version=2016-11-15&Bogus.1=x",
             op="DescribeVpcs")
    assert "<Code>UnknownParameter</Code>" in r.text, r.text
    r = form(server, recorder, "ec2", "Action=CreateSecurityGroup&Version=2016-11-15&GroupName=x",
             op="CreateSecurityGroup")
    assert "<Code>MissingParameter</Code>" in r.text, r.text


def test_a_hostile_form_is_refused_and_the_server_lives(server, recorder, ec2):
    """A key nested a million levels deep (a tree whose drop would exhaust
    the stack) is refused in EC2's shape."""
    deep = "Filter" + ".1" * 1_000_000
    r = form(server, recorder, "ec2", f"Action=DescribeVpcs&Version=2016-11-15&{deep}=x",
             op="DescribeVpcs")
    assert r.status_code == 400 and "<Code>UnknownParameter</Code>" in r.text, r.text[:300]
    assert ec2.describe_vpcs()["Vpcs"]


def test_refusals_before_the_body_are_in_the_protocols_shape(server, recorder):
    stranger = harness.Creds("AKIANOBODYKNOWSTHIS1", "x" * 40, "999999999999")
    r = form(server, recorder, "ec2", "Action=DescribeVpcs&Version=2016-11-15", creds=stranger)
    assert r.status_code == 401 and "<Code>AuthFailure</Code>" in r.text, r.text
    r = form(server, recorder, "sts", "Action=GetCallerIdentity&Version=2011-06-15", creds=stranger)
    assert r.status_code == 403 and "<Code>InvalidClientTokenId</Code>" in r.text, r.text
    wrong = harness.Creds(server.default_creds().access_key_id, "y" * 40, "0")
    r = form(server, recorder, "iam", "Action=ListRoles&Version=2010-05-08", creds=wrong)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text, r.text
    r = form(server, recorder, "ec2", "Action=DescribeVpcs", content_type="application/json")
    assert "<Code>MalformedQueryString</Code>" in r.text, r.text


def test_aws_cli_speaks_ec2_and_sts(cli, account_id):
    assert cli("sts", "get-caller-identity")["Account"] == account_id
    vpc = cli("ec2", "describe-vpcs", "--filters", "Name=isDefault,Values=true")["Vpcs"][0]
    subnets = cli("ec2", "describe-subnets", "--filters", f"Name=vpc-id,Values={vpc['VpcId']}")
    assert "subnet-berth" in [s["SubnetId"] for s in subnets["Subnets"]]
    r = cli.run("ec2", "describe-images", check=False)
    assert r.returncode != 0 and "UnsupportedOperation" in r.stderr, r.stderr
    r = cli.run("iam", "list-users", check=False)
    assert r.returncode != 0 and "UnsupportedOperation" in r.stderr, r.stderr


# -- accounts -------------------------------------------------------------------

def test_another_account_cannot_see_or_delete_a_security_group(two_accounts, make_client, make_ecs):
    a, _, b = two_accounts.creds
    ec2_a = make_client("ec2", srv=two_accounts, creds=a)
    ec2_b = make_client("ec2", srv=two_accounts, creds=b)
    gid = ec2_a.create_security_group(GroupName="private", Description="a's")["GroupId"]
    for call in (lambda: ec2_b.describe_security_groups(GroupIds=[gid]),
                 lambda: ec2_b.delete_security_group(GroupId=gid),
                 lambda: ec2_b.authorize_security_group_ingress(
                     GroupId=gid, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0")):
        with pytest.raises(ClientError) as e:
            call()
        assert_error(e, "InvalidGroup.NotFound")
    assert gid not in [g["GroupId"] for g in ec2_b.describe_security_groups()["SecurityGroups"]]
    # B may use the name A used: groups are per account.
    ec2_b.create_security_group(GroupName="private", Description="b's")
    assert ec2_a.describe_vpcs()["Vpcs"][0]["VpcId"] != ec2_b.describe_vpcs()["Vpcs"][0]["VpcId"]
    # Nor can B launch into A's group.
    ecs_b = make_ecs(two_accounts, b)
    ecs_b.create_cluster(clusterName="b")
    ecs_b.register_task_definition(
        family="b", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", containerDefinitions=[sh("main", "true")])
    with pytest.raises(ClientError) as e:
        ecs_b.run_task(cluster="b", taskDefinition="b", launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {
                           "subnets": ["subnet-berth"], "securityGroups": [gid]}})
    assert_error(e, "InvalidParameterException", message_contains="does not exist")
    assert [g["GroupId"] for g in ec2_a.describe_security_groups(GroupIds=[gid])["SecurityGroups"]] == [gid]


def test_container_instances_with_an_identity_document_are_ec2_instances(ec2, ecs, cluster):
    """ECS reads the instance ID, zone and type from the identity document;
    the instance's zone gets a default subnet."""
    doc = {"instanceId": "i-0abc1234def567890", "availabilityZone": f"{harness.REGION}b",
           "instanceType": "m5.large", "imageId": "ami-0123456789abcdef0",
           "region": harness.REGION}
    ci = ecs.register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps(doc),
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]
    )["containerInstance"]
    try:
        assert ci["ec2InstanceId"] == doc["instanceId"]
        attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
        assert attrs["ecs.availability-zone"] == doc["availabilityZone"]
        [r] = ec2.describe_instances(InstanceIds=[doc["instanceId"]])["Reservations"]
        [i] = r["Instances"]
        assert i["State"]["Name"] == "running" and i["InstanceType"] == "m5.large"
        assert i["Placement"]["AvailabilityZone"] == doc["availabilityZone"]
        [subnet] = ec2.describe_subnets(Filters=[
            {"Name": "availability-zone", "Values": [doc["availabilityZone"]]}])["Subnets"]
        assert i["SubnetId"] == subnet["SubnetId"] and subnet["DefaultForAz"] is True
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        assert doc["availabilityZone"] in zones
    finally:
        ecs.deregister_container_instance(cluster=cluster, containerInstance=ci["containerInstanceArn"],
                                          force=True)
