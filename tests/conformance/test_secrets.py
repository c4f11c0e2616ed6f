"""Secrets Manager (``secretsmanager``) and SSM Parameter Store (``AmazonSSM``)
on berth's endpoint, driven with boto3 and the aws-cli; every raw response
is validated strictly against botocore's models by the ``recorder``.

berth's documented choices: a SecureString read without ``WithDecryption``
answers the sealed blob (base64), as AWS answers the KMS ciphertext; only a
parameter's latest version is kept, so ``name:N`` selectors reach only it.
"""

import base64
import stat

import pytest
from botocore.exceptions import ClientError

from errors import assert_error


def secret_name(name):
    return f"conf/{name('s')}"


# -- Secrets Manager ---------------------------------------------------------

def test_secret_lifecycle(secretsmanager, name, account_id, region):
    sm = secretsmanager
    n = secret_name(name)
    c = sm.create_secret(Name=n, SecretString='{"user":"app"}', Description="db",
                         Tags=[{"Key": "team", "Value": "core"}])
    prefix = f"arn:aws:secretsmanager:{region}:{account_id}:secret:{n}-"
    assert c["ARN"].startswith(prefix) and len(c["ARN"]) == len(prefix) + 6
    assert c["Name"] == n and c["VersionId"]

    v = sm.get_secret_value(SecretId=n)
    assert v["SecretString"] == '{"user":"app"}'
    assert v["VersionStages"] == ["AWSCURRENT"] and v["VersionId"] == c["VersionId"]
    assert v["ARN"] == c["ARN"] and v["CreatedDate"]

    p = sm.put_secret_value(SecretId=c["ARN"], SecretString="rotated")
    assert p["VersionStages"] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId=c["ARN"][:-7])["SecretString"] == "rotated"
    prev = sm.get_secret_value(SecretId=n, VersionStage="AWSPREVIOUS")
    assert prev["SecretString"] == '{"user":"app"}'
    by_id = sm.get_secret_value(SecretId=n, VersionId=p["VersionId"])
    assert by_id["SecretString"] == "rotated"

    d = sm.describe_secret(SecretId=n)
    assert "SecretString" not in d and "SecretBinary" not in d
    assert d["VersionIdsToStages"] == {c["VersionId"]: ["AWSPREVIOUS"],
                                       p["VersionId"]: ["AWSCURRENT"]}
    assert d["Tags"] == [{"Key": "team", "Value": "core"}] and d["Description"] == "db"


def test_binary_secret(secretsmanager, name):
    n = secret_name(name)
    secretsmanager.create_secret(Name=n, SecretBinary=b"\x00\xffraw")
    v = secretsmanager.get_secret_value(SecretId=n)
    assert v["SecretBinary"] == b"\x00\xffraw" and "SecretString" not in v


def test_create_errors(secretsmanager, name):
    sm = secretsmanager
    n = secret_name(name)
    sm.create_secret(Name=n, SecretString="x")
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=n, SecretString="x")
    assert_error(e, "ResourceExistsException", message_contains="already exists")
    for bad in ("has space", "a" * 513, "semi;colon"):
        with pytest.raises(ClientError) as e:
            sm.create_secret(Name=bad, SecretString="x")
        assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=secret_name(name), SecretString="x", SecretBinary=b"y")
    assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=secret_name(name))
    assert_error(e, "ResourceNotFoundException")


def test_client_request_token_is_idempotent(secretsmanager, name):
    n, token = secret_name(name), "11111111-2222-3333-4444-555555555555"
    a = secretsmanager.create_secret(Name=n, SecretString="v", ClientRequestToken=token)
    b = secretsmanager.create_secret(Name=n, SecretString="v", ClientRequestToken=token)
    assert a["ARN"] == b["ARN"] and a["VersionId"] == b["VersionId"] == token
    with pytest.raises(ClientError) as e:
        secretsmanager.put_secret_value(SecretId=n, SecretString="other", ClientRequestToken=token)
    assert_error(e, "ResourceExistsException")


def test_delete_with_recovery_window_and_force(secretsmanager, name):
    sm = secretsmanager
    n = secret_name(name)
    arn = sm.create_secret(Name=n, SecretString="v")["ARN"]
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=n, RecoveryWindowInDays=3)
    assert_error(e, "InvalidParameterException")
    d = sm.delete_secret(SecretId=n, RecoveryWindowInDays=7)
    assert d["ARN"] == arn and d["DeletionDate"]
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=n)
    assert_error(e, "InvalidRequestException", message_contains="marked for deletion")
    assert sm.describe_secret(SecretId=n)["DeletedDate"]
    names = lambda **kw: [s["Name"] for s in sm.list_secrets(
        Filters=[{"Key": "name", "Values": [n]}], **kw)["SecretList"]]
    assert names() == [] and names(IncludePlannedDeletion=True) == [n]

    sm.delete_secret(SecretId=n, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=n)
    assert_error(e, "ResourceNotFoundException")
    assert sm.create_secret(Name=n, SecretString="again")["ARN"] != arn


def test_list_secrets_paginates(secretsmanager, name):
    base = secret_name(name)
    made = sorted(f"{base}/{i}" for i in range(5))
    for n in made:
        secretsmanager.create_secret(Name=n, SecretString="v")
    pages = secretsmanager.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [base + "/"]}], PaginationConfig={"PageSize": 2})
    seen = [s["Name"] for page in pages for s in page["SecretList"]]
    assert seen == made
    for s in secretsmanager.list_secrets(MaxResults=100)["SecretList"]:
        assert "SecretString" not in s
    with pytest.raises(ClientError) as e:
        secretsmanager.list_secrets(NextToken="bogus")
    assert_error(e, "InvalidNextTokenException")


def test_secrets_with_aws_cli(cli, name):
    n = secret_name(name)
    c = cli("secretsmanager", "create-secret", "--name", n, "--secret-string", "cli-value")
    v = cli("secretsmanager", "get-secret-value", "--secret-id", c["ARN"])
    assert v["SecretString"] == "cli-value"
    _, err = cli.fails("secretsmanager", "get-secret-value", "--secret-id", n + "-missing")
    assert "ResourceNotFoundException" in err


# -- SSM Parameter Store -------------------------------------------------------

def test_parameter_lifecycle(ssm, name, account_id, region):
    p = f"/conf/{name('p')}/db/host"
    assert ssm.put_parameter(Name=p, Value="a", Type="String")["Version"] == 1
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=p, Value="b", Type="String")
    assert_error(e, "ParameterAlreadyExists")
    r = ssm.put_parameter(Name=p, Value="b", Overwrite=True)
    assert r["Version"] == 2 and r["Tier"] == "Standard"
    g = ssm.get_parameter(Name=p)["Parameter"]
    assert (g["Value"], g["Version"], g["Type"]) == ("b", 2, "String")
    assert g["ARN"] == f"arn:aws:ssm:{region}:{account_id}:parameter{p}"
    assert ssm.get_parameter(Name=g["ARN"])["Parameter"]["Name"] == p
    ssm.delete_parameter(Name=p)
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=p)
    assert_error(e, "ParameterNotFound")
    with pytest.raises(ClientError) as e:
        ssm.delete_parameter(Name=p)
    assert_error(e, "ParameterNotFound")


def test_secure_string_needs_with_decryption(ssm, name):
    p = f"/conf/{name('p')}/key"
    ssm.put_parameter(Name=p, Value="s3cret", Type="SecureString")
    hidden = ssm.get_parameter(Name=p)["Parameter"]["Value"]
    assert hidden != "s3cret"
    base64.b64decode(hidden, validate=True)  # the sealed blob, as AWS sends ciphertext
    assert ssm.get_parameter(Name=p, WithDecryption=True)["Parameter"]["Value"] == "s3cret"
    [m] = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [p]}])["Parameters"]
    assert m["KeyId"] == "alias/aws/ssm" and m["Type"] == "SecureString" and "Value" not in m


def test_get_parameters_and_by_path(ssm, name):
    root = f"/conf/{name('tree')}"
    names = [f"{root}/a", f"{root}/b", f"{root}/sub/c", f"{root}/sub/deeper/d"]
    for n in names:
        ssm.put_parameter(Name=n, Value=n, Type="String")
    r = ssm.get_parameters(Names=[names[0], f"{root}/missing"])
    assert [p["Name"] for p in r["Parameters"]] == [names[0]]
    assert r["InvalidParameters"] == [f"{root}/missing"]
    one = ssm.get_parameters_by_path(Path=root)["Parameters"]
    assert [p["Name"] for p in one] == names[:2]
    pages = ssm.get_paginator("get_parameters_by_path").paginate(
        Path=root, Recursive=True, PaginationConfig={"PageSize": 1})
    assert [p["Name"] for page in pages for p in page["Parameters"]] == names
    d = ssm.delete_parameters(Names=[names[0], f"{root}/missing"])
    assert d["DeletedParameters"] == [names[0]] and d["InvalidParameters"] == [f"{root}/missing"]


def test_describe_parameters_paginates(ssm, name):
    root = f"/conf/{name('desc')}"
    made = [f"{root}/{i}" for i in range(4)]
    for n in made:
        ssm.put_parameter(Name=n, Value="v", Type="StringList")
    pages = ssm.get_paginator("describe_parameters").paginate(
        ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [root]}],
        PaginationConfig={"PageSize": 3})
    seen = [p["Name"] for page in pages for p in page["Parameters"]]
    assert seen == made
    with pytest.raises(ClientError) as e:
        ssm.describe_parameters(ParameterFilters=[{"Key": "Bogus", "Values": ["x"]}])
    assert_error(e, "InvalidFilterKey", "ValidationException")


def test_parameter_name_rules(ssm, name):
    for bad in ("no/leading/slash", "/aws/reserved", "/bad name", "/a//b"):
        with pytest.raises(ClientError) as e:
            ssm.put_parameter(Name=bad, Value="v", Type="String")
        assert_error(e, "ValidationException")
    deep = "/" + "/".join(["l"] * 16)
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=deep, Value="v", Type="String")
    assert_error(e, "HierarchyLevelLimitExceededException")


def test_parameters_with_aws_cli(cli, name):
    p = f"/conf/{name('cli')}/token"
    r = cli("ssm", "put-parameter", "--name", p, "--value", "cli-secret", "--type", "SecureString")
    assert r["Version"] == 1
    g = cli("ssm", "get-parameter", "--name", p, "--with-decryption")
    assert g["Parameter"]["Value"] == "cli-secret"
    _, err = cli.fails("ssm", "put-parameter", "--name", p, "--value", "x", "--type", "String")
    assert "ParameterAlreadyExists" in err


# -- at rest -------------------------------------------------------------------

@pytest.mark.berth_only
def test_values_survive_kill_9_and_stay_encrypted_on_disk(fresh_server, make_client, name):
    sm = make_client("secretsmanager", srv=fresh_server)
    ssm = make_client("ssm", srv=fresh_server)
    secret, param = "plain-secret-" + name("v"), "plain-param-" + name("v")
    sm.create_secret(Name="durable", SecretString=secret)
    sm.put_secret_value(SecretId="durable", SecretString=secret + "-2")
    ssm.put_parameter(Name="/durable/p", Value=param, Type="SecureString")
    fresh_server.kill9()  # right after the acknowledged writes

    data = fresh_server.data_dir
    key = data / "secrets.key"
    assert key.stat().st_size == 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for f in data.iterdir():
        if f.is_file() and f.name != "secrets.key":
            blob = f.read_bytes()
            for plain in (secret, param):
                assert plain.encode() not in blob, f"{plain} in {f.name}"

    fresh_server.start()
    sm = make_client("secretsmanager", srv=fresh_server)
    ssm = make_client("ssm", srv=fresh_server)
    assert sm.get_secret_value(SecretId="durable")["SecretString"] == secret + "-2"
    assert sm.get_secret_value(SecretId="durable", VersionStage="AWSPREVIOUS")["SecretString"] == secret
    p = ssm.get_parameter(Name="/durable/p", WithDecryption=True)["Parameter"]
    assert p["Value"] == param
    assert ssm.put_parameter(Name="/durable/p", Value="x", Overwrite=True)["Version"] == 2


@pytest.mark.berth_only
def test_values_are_not_logged(fresh_server, make_client, name):
    secret = "never-log-me-" + name("v")
    make_client("secretsmanager", srv=fresh_server).create_secret(Name="l", SecretString=secret)
    make_client("ssm", srv=fresh_server).put_parameter(Name="/l", Value=secret, Type="SecureString")
    assert secret not in fresh_server.log_path.read_text(errors="replace")
