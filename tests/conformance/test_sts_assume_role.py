"""STS AssumeRole for the roles berth knows (``[[roles]]`` of the caller's
own account): the answer's credentials act as the role (its policies
apply, GetCallerIdentity names the assumed role), in the role's account.
Unknown roles, other accounts' roles, role chaining and tampered tokens
are refused in STS's own error shape; every response is validated
strictly by the suite's hooks."""

from __future__ import annotations

import datetime
import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import harness
from harness import BerthServer, Creds

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

ACCOUNT = "444444444444"
OTHER = "555555555555"
ADMIN = Creds("AKIABERTHASSUMEADMIN", "admin/" + "a" * 34, ACCOUNT)
# May assume the reader role only.
LIMITED = Creds("AKIABERTHASSUMELIMIT", "limited/" + "l" * 32, ACCOUNT)
STRANGER = Creds("AKIABERTHASSUMEOTHER", "other/" + "o" * 34, OTHER)
READER = f"arn:aws:iam::{ACCOUNT}:role/ops/reader"
ANY = f"arn:aws:iam::{ACCOUNT}:role/builder"
FOREIGN = f"arn:aws:iam::{OTHER}:role/foreign"

READER_POLICY = {"Statement": [{"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"],
                                "Resource": "*"}]}
LIMITED_POLICY = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                 "Resource": READER}]}


def _key(c: Creds, policy: dict | None = None) -> str:
    text = (f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
            f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n')
    if policy is not None:
        text += f"policy = '''{json.dumps(policy)}'''\n"
    return text + "\n"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("assume")
    config = tmp / "berth.toml"
    config.write_text(
        _key(ADMIN) + _key(LIMITED, LIMITED_POLICY) + _key(STRANGER)
        + f"[[roles]]\narn = \"{READER}\"\npolicy = '''{json.dumps(READER_POLICY)}'''\n\n"
        + f"[[roles]]\narn = \"{ANY}\"\n\n[[roles]]\narn = \"{FOREIGN}\"\n")
    s = BerthServer(tmp / "data", config=config).start()
    s.client(creds=ADMIN).create_cluster(clusterName="assumed-home")
    yield s
    s.stop()


def with_session(srv, recorder, credentials: dict, service: str):
    """A validating client signing with AssumeRole's credentials."""
    client = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=harness.REGION,
    ).client(service, endpoint_url=srv.endpoint,
             config=Config(retries={"total_max_attempts": 1}))
    return recorder.attach(client)


def assume(srv, recorder, role: str, creds: Creds = ADMIN, **kw) -> dict:
    sts = srv.client(creds=creds, recorder=recorder, service="sts")
    return sts.assume_role(RoleArn=role, RoleSessionName="conformance@run", **kw)


def refused(excinfo, code: str, status: int) -> str:
    err = excinfo.value.response["Error"]
    assert err["Code"] == code, err
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    return err["Message"]


def test_assumed_credentials_act_as_the_role_in_its_account(srv, recorder):
    out = assume(srv, recorder, READER, DurationSeconds=900)
    user = out["AssumedRoleUser"]
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/conformance@run"
    assert user["Arn"] == arn
    assert user["AssumedRoleId"].startswith("AROA")
    assert user["AssumedRoleId"].endswith(":conformance@run")
    c = out["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA")
    lifetime = (c["Expiration"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert 880 <= lifetime <= 900, c["Expiration"]
    me = with_session(srv, recorder, c, "sts").get_caller_identity()
    assert (me["Arn"], me["Account"], me["UserId"]) == (arn, ACCOUNT, user["AssumedRoleId"])
    ecs = with_session(srv, recorder, c, "ecs")
    # The role's account's clusters; its policy allows reading only.
    assert f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/assumed-home" in ecs.list_clusters()[
        "clusterArns"]
    assert ecs.describe_clusters(clusters=["assumed-home"])["clusters"][0]["status"] == "ACTIVE"
    with pytest.raises(ClientError) as e:
        ecs.run_task(cluster="assumed-home", taskDefinition="web:1")
    msg = refused(e, "AccessDeniedException", 400)
    assert msg.startswith(f"User: {arn} is not authorized to perform: ecs:RunTask"), msg


def test_a_role_without_policies_may_do_everything_in_its_account(srv, recorder, name):
    c = assume(srv, recorder, ANY)["Credentials"]
    cluster = name("by-role")
    with_session(srv, recorder, c, "ecs").create_cluster(clusterName=cluster)
    admin = srv.client(creds=ADMIN, recorder=recorder)
    assert admin.describe_clusters(clusters=[cluster])["clusters"][0]["clusterName"] == cluster
    admin.delete_cluster(cluster=cluster)


def test_unknown_and_other_accounts_roles_are_access_denied(srv, recorder):
    for role in (f"arn:aws:iam::{ACCOUNT}:role/nobody", FOREIGN):
        with pytest.raises(ClientError) as e:
            assume(srv, recorder, role)
        msg = refused(e, "AccessDenied", 403)
        assert msg == (f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: "
                       f"sts:AssumeRole on resource: {role}"), msg
    # Its own account's key may assume it.
    assert assume(srv, recorder, FOREIGN, creds=STRANGER)["AssumedRoleUser"]["Arn"].startswith(
        f"arn:aws:sts::{OTHER}:assumed-role/foreign/")


def test_the_key_policy_decides_which_roles_it_may_assume(srv, recorder):
    assume(srv, recorder, READER, creds=LIMITED)
    with pytest.raises(ClientError) as e:
        assume(srv, recorder, ANY, creds=LIMITED)
    msg = refused(e, "AccessDenied", 403)
    assert f"sts:AssumeRole on resource: {ANY}" in msg, msg


def test_assumed_sessions_cannot_assume_again(srv, recorder):
    c = assume(srv, recorder, ANY)["Credentials"]
    with pytest.raises(ClientError) as e:
        with_session(srv, recorder, c, "sts").assume_role(RoleArn=ANY, RoleSessionName="again")
    msg = refused(e, "AccessDenied", 403)
    assert "does not chain roles" in msg, msg


def test_malformed_requests_are_validation_errors(srv, recorder):
    for kw in ({"RoleSessionName": "has space"}, {"DurationSeconds": 43201},
               {"Policy": json.dumps(READER_POLICY)}):
        args = {"RoleArn": READER, "RoleSessionName": "ok", **kw}
        with pytest.raises(ClientError) as e:
            srv.client(creds=ADMIN, recorder=recorder, service="sts").assume_role(**args)
        refused(e, "ValidationError", 400)


def test_a_tampered_or_borrowed_token_is_refused(srv, recorder):
    c = assume(srv, recorder, ANY)["Credentials"]
    token = c["SessionToken"]
    mid = len(token) // 2
    flipped = token[:mid] + ("A" if token[mid] != "A" else "B") + token[mid + 1:]
    other = assume(srv, recorder, ANY)["Credentials"]
    for bad in ({**c, "SessionToken": flipped}, {**c, "SessionToken": other["SessionToken"]}):
        with pytest.raises(ClientError) as e:
            with_session(srv, recorder, bad, "sts").get_caller_identity()
        refused(e, "InvalidClientTokenId", 403)
        with pytest.raises(ClientError) as e:
            with_session(srv, recorder, bad, "ecs").list_clusters()
        refused(e, "UnrecognizedClientException", 400)
