"""Authorization: per-key IAM-style policies from the server's config.

Keys of one account: an administrator (no policy: everything in its
account, as before policies existed), a reader (``ecs:Describe*`` and
``ecs:List*`` only), an agent key limited to what ECS's agent is granted,
and a customer key that may do everything but the agent channel. Every
refusal is AWS's AccessDeniedException in the ECS envelope, with its
message shape; every response is validated strictly by the suite's hooks.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

import harness
from harness import BerthServer, Creds, RawClient

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

ACCOUNT = "333333333333"
ADMIN = Creds("AKIABERTHAUTHZADMIN1", "admin/" + "a" * 34, ACCOUNT)
READER = Creds("AKIABERTHAUTHZREADER", "reader/" + "r" * 33, ACCOUNT)
AGENT = Creds("AKIABERTHAUTHZAGENT1", "agent/" + "g" * 34, ACCOUNT)
CUSTOMER = Creds("AKIABERTHAUTHZCUSTOM", "customer/" + "c" * 31, ACCOUNT)

READER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"}],
}
# What ECS's agent is granted (AmazonEC2ContainerServiceforEC2Role), on berth.
AGENT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": ["ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance",
                   "ecs:DiscoverPollEndpoint", "ecs:Poll", "ecs:Submit*",
                   "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                   "secretsmanager:GetSecretValue", "ssm:GetParameters"],
        "Resource": "*",
    }],
}
CUSTOMER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NotTheAgentChannel", "Effect": "Deny",
         "Action": ["ecs:Poll", "ecs:Submit*", "ecs:RegisterContainerInstance"], "Resource": "*"},
        {"Sid": "ProdIsReadOnly", "Effect": "Deny", "Action": ["ecs:Delete*", "ecs:Update*"],
         "Resource": f"arn:aws:ecs:*:{ACCOUNT}:cluster/prod"},
    ],
}


def _entry(c: Creds, policy: dict | None) -> str:
    text = (f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
            f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n')
    if policy is not None:
        text += f"policy = '''{json.dumps(policy)}'''\n"
    return text + "\n"


@pytest.fixture(scope="module")
def authz_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("authz")
    config = tmp / "berth.toml"
    config.write_text(_entry(ADMIN, None) + _entry(READER, READER_POLICY)
                      + _entry(AGENT, AGENT_POLICY) + _entry(CUSTOMER, CUSTOMER_POLICY))
    srv = BerthServer(tmp / "data", config=config).start()
    admin = srv.client(creds=ADMIN)
    for c in ("prod", "dev"):
        admin.create_cluster(clusterName=c)
    yield srv
    srv.stop()


def denied(excinfo, action: str, principal_key: Creds) -> str:
    err = excinfo.value.response["Error"]
    assert err["Code"] == "AccessDeniedException", err
    msg = err["Message"]
    assert msg.startswith(f"User: arn:aws:iam::{principal_key.account_id}:root is not authorized "
                          f"to perform: {action} on resource: "), msg
    return msg


def test_a_reader_may_describe_but_not_run(authz_server, recorder):
    ecs = authz_server.client(creds=READER, recorder=recorder)
    assert "arn:aws:ecs:us-east-1:333333333333:cluster/prod" in ecs.list_clusters()["clusterArns"]
    ecs.describe_clusters(clusters=["prod"])
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster="prod", taskDefinition="web:1")
    msg = denied(e, "ecs:RunTask", READER)
    assert msg.endswith("because no identity-based policy allows the ecs:RunTask action"), msg
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName="mine")
    denied(e, "ecs:CreateCluster", READER)


def test_an_agent_key_cannot_manage_clusters(authz_server, recorder):
    ecs = authz_server.client(creds=AGENT, recorder=recorder)
    with pytest.raises(ClientError) as e:
        ecs.create_cluster(clusterName="agent-made")
    denied(e, "ecs:CreateCluster", AGENT)
    with pytest.raises(ClientError) as e:
        ecs.list_tasks(cluster="prod")
    denied(e, "ecs:ListTasks", AGENT)
    # What an agent does is allowed: register, then poll.
    inst = ecs.register_container_instance(cluster="dev", totalResources=[
        {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}])
    arn = inst["containerInstance"]["containerInstanceArn"]
    raw = RawClient(authz_server, recorder)
    r = raw.call(None, {"cluster": "dev", "containerInstanceArn": arn, "knownVersion": 0,
                        "waitSeconds": 0}, creds=AGENT, target="BerthAgentV1.PollWork",
                 validate=False)
    assert r.status == 200, r.text


def test_a_customer_key_cannot_use_the_agent_channel(authz_server, recorder):
    raw = RawClient(authz_server, recorder)
    r = raw.call(None, {"cluster": "dev", "containerInstanceArn": "x", "knownVersion": 0,
                        "waitSeconds": 0}, creds=CUSTOMER, target="BerthAgentV1.PollWork",
                 validate=False)
    assert r.status == 400 and r.error_code == "AccessDeniedException", r.text
    assert "with an explicit deny in an identity-based policy" in r.json()["message"]
    ecs = authz_server.client(creds=CUSTOMER, recorder=recorder)
    with pytest.raises(ClientError) as e:
        ecs.register_container_instance(cluster="dev", totalResources=[
            {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}])
    denied(e, "ecs:RegisterContainerInstance", CUSTOMER)


def test_an_explicit_deny_on_one_resource_wins(authz_server, recorder, name):
    ecs = authz_server.client(creds=CUSTOMER, recorder=recorder)
    with pytest.raises(ClientError) as e:
        ecs.delete_cluster(cluster="prod")
    msg = denied(e, "ecs:DeleteCluster", CUSTOMER)
    assert "arn:aws:ecs:us-east-1:333333333333:cluster/prod" in msg
    assert msg.endswith("with an explicit deny in an identity-based policy")
    # Another cluster is the customer's to change.
    c = name("c")
    ecs.create_cluster(clusterName=c)
    ecs.delete_cluster(cluster=c)
    # The administrator (no policy) may do what the customer may not.
    admin = authz_server.client(creds=ADMIN, recorder=recorder)
    admin.update_cluster_settings(cluster="prod", settings=[
        {"name": "containerInsights", "value": "disabled"}])


def test_a_refusal_reaches_the_aws_cli(authz_server, recorder, tmp_path):
    cli = harness.Cli(authz_server, tmp_path / "cli", recorder, creds=READER)
    code, err = cli.fails("ecs", "create-cluster", "--cluster-name", "nope")
    assert code != 0 and "AccessDeniedException" in err, err


def test_an_invalid_policy_stops_the_server_with_a_reason(tmp_path):
    bad = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                          "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}
    config = tmp_path / "berth.toml"
    config.write_text(_entry(READER, bad))
    srv = BerthServer(tmp_path / "data", config=config)
    with pytest.raises(Exception):
        srv.start()
    log = srv.log_path.read_text(errors="replace")
    assert "the policy of key AKIABERTHAUTHZREADER" in log and "Condition" in log, log[-3000:]


def test_ec2_actions_are_authorized_and_get_caller_identity_never_denied(authz_server, recorder):
    """EC2 actions go through the key's policies as `ec2:<Action>` and are
    refused in EC2's own error shape; `sts:GetCallerIdentity` is never
    denied, as on AWS."""
    ec2 = authz_server.client(creds=READER, recorder=recorder, service="ec2")
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs()
    err = e.value.response["Error"]
    assert err["Code"] == "UnauthorizedOperation", err
    assert "is not authorized to perform: ec2:DescribeVpcs" in err["Message"], err
    sts = authz_server.client(creds=READER, recorder=recorder, service="sts")
    me = sts.get_caller_identity()
    assert me["Account"] == ACCOUNT and me["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    # The customer's Allow * covers EC2.
    assert authz_server.client(creds=CUSTOMER, recorder=recorder,
                               service="ec2").describe_vpcs()["Vpcs"]
