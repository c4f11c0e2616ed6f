"""PutAccountSetting, PutAccountSettingDefault, ListAccountSettings,
DeleteAccountSetting.

Account settings are account-wide state, so tests that change the calling
identity's own settings or the account default use a fresh server where the
target allows it, and otherwise put things back as they were."""

import pytest
from botocore.exceptions import ClientError

from errors import assert_error


def root_arn(account):
    return f"arn:aws:iam::{account}:root"


def settings_by_name(settings):
    return {s["name"]: s for s in settings}


def list_all_settings(ecs, **kw):
    out, token = [], None
    for _ in range(100):
        resp = ecs.list_account_settings(**kw, **({"nextToken": token} if token else {}))
        out.extend(resp["settings"])
        token = resp.get("nextToken")
        if not token:
            return out
    raise AssertionError("pagination does not terminate")


@pytest.fixture
def own_ecs(request, make_ecs, target):
    """A client on a server whose account settings this test may change."""
    if target == "berth":
        srv = request.getfixturevalue("fresh_server")
        return make_ecs(srv)
    return make_ecs()


@pytest.fixture
def own_account(own_ecs, server, target, request):
    if target == "berth":
        return request.getfixturevalue("fresh_server").default_creds().account_id
    return server.default_creds().account_id


def test_put_account_setting_for_caller(own_ecs, own_account):
    s = own_ecs.put_account_setting(name="containerInsights", value="enabled")["setting"]
    assert s["name"] == "containerInsights"
    assert s["value"] == "enabled"
    assert s["principalArn"] == root_arn(own_account)

    listed = list_all_settings(own_ecs, name="containerInsights")
    assert [(x["name"], x["value"]) for x in listed] == [("containerInsights", "enabled")]
    assert listed[0]["principalArn"] == root_arn(own_account)


def test_put_account_setting_task_long_arn_format(own_ecs):
    s = own_ecs.put_account_setting(name="taskLongArnFormat", value="enabled")["setting"]
    assert (s["name"], s["value"]) == ("taskLongArnFormat", "enabled")
    listed = settings_by_name(list_all_settings(own_ecs, name="taskLongArnFormat",
                                                effectiveSettings=True))
    assert listed["taskLongArnFormat"]["value"] == "enabled"


def test_put_account_setting_for_other_principal(ecs, name, account_id):
    user = f"arn:aws:iam::{account_id}:user/{name('u')}"
    s = ecs.put_account_setting(name="containerInsights", value="enhanced",
                                principalArn=user)["setting"]
    assert s["principalArn"] == user
    assert s["value"] == "enhanced"
    listed = list_all_settings(ecs, name="containerInsights", principalArn=user)
    assert [(x["principalArn"], x["value"]) for x in listed] == [(user, "enhanced")]
    ecs.delete_account_setting(name="containerInsights", principalArn=user)
    after = list_all_settings(ecs, name="containerInsights", principalArn=user)
    assert all(x.get("principalArn") != user or x["value"] != "enhanced" for x in after) or \
        after == []


def test_effective_settings_include_defaults(own_ecs):
    explicit = list_all_settings(own_ecs, effectiveSettings=False)
    effective = list_all_settings(own_ecs, effectiveSettings=True)
    names = settings_by_name(effective)
    # With effectiveSettings every setting has a value, whether set or not.
    assert len(effective) >= len(explicit)
    for expected in ("containerInsights", "taskLongArnFormat", "serviceLongArnFormat",
                     "containerInstanceLongArnFormat", "awsvpcTrunking"):
        assert expected in names, f"{expected} missing from effective settings"
    for s in effective:
        assert s["value"], s


def test_effective_settings_with_name_filter(own_ecs):
    own_ecs.put_account_setting(name="containerInsights", value="disabled")
    listed = list_all_settings(own_ecs, name="containerInsights", effectiveSettings=True)
    assert [s["name"] for s in listed] == ["containerInsights"]
    assert listed[0]["value"] == "disabled"


def test_put_account_setting_default(own_ecs, own_account):
    s = own_ecs.put_account_setting_default(name="containerInsights", value="enabled")["setting"]
    assert (s["name"], s["value"]) == ("containerInsights", "enabled")
    # an identity without its own setting inherits the account default
    user = f"arn:aws:iam::{own_account}:user/inheritor"
    eff = list_all_settings(own_ecs, name="containerInsights", principalArn=user,
                            effectiveSettings=True)
    assert [x["value"] for x in eff] == ["enabled"]
    # an explicit setting for the user wins over the default
    own_ecs.put_account_setting(name="containerInsights", value="disabled", principalArn=user)
    eff = list_all_settings(own_ecs, name="containerInsights", principalArn=user,
                            effectiveSettings=True)
    assert [x["value"] for x in eff] == ["disabled"]
    own_ecs.put_account_setting_default(name="containerInsights", value="disabled")


def test_delete_account_setting(own_ecs, own_account):
    own_ecs.put_account_setting(name="containerInsights", value="enabled")
    deleted = own_ecs.delete_account_setting(name="containerInsights")["setting"]
    assert deleted["name"] == "containerInsights"
    assert deleted["principalArn"] == root_arn(own_account)
    explicit = list_all_settings(own_ecs, name="containerInsights", effectiveSettings=False)
    assert all(s["principalArn"] != root_arn(own_account) for s in explicit) or explicit == []


def test_container_insights_setting_applies_to_new_clusters(own_ecs, name):
    own_ecs.put_account_setting(name="containerInsights", value="enabled")
    c = own_ecs.create_cluster(clusterName=name("ci"))["cluster"]
    assert {"name": "containerInsights", "value": "enabled"} in c.get("settings", []), c


@pytest.mark.parametrize("setting,value", [
    ("notARealSetting", "enabled"),
    ("containerInsights", "maybe"),
    ("taskLongArnFormat", ""),
])
def test_invalid_account_setting(ecs, setting, value):
    with pytest.raises(ClientError) as e:
        ecs.put_account_setting(name=setting, value=value)
    assert_error(e, "InvalidParameterException", "ClientException")


def test_invalid_principal_arn(ecs):
    with pytest.raises(ClientError) as e:
        ecs.put_account_setting(name="containerInsights", value="enabled",
                                principalArn="not-an-arn")
    assert_error(e, "InvalidParameterException", "ClientException")


def test_list_account_settings_pagination(own_ecs):
    everything = list_all_settings(own_ecs, effectiveSettings=True)
    paged, token, pages = [], None, 0
    while True:
        resp = own_ecs.list_account_settings(effectiveSettings=True, maxResults=2,
                                             **({"nextToken": token} if token else {}))
        pages += 1
        assert len(resp["settings"]) <= 2
        paged.extend(resp["settings"])
        token = resp.get("nextToken")
        if not token or pages > 100:
            break
    assert sorted(s["name"] for s in paged) == sorted(s["name"] for s in everything)


def test_list_account_settings_value_filter(own_ecs):
    own_ecs.put_account_setting(name="containerInsights", value="enabled")
    hit = list_all_settings(own_ecs, name="containerInsights", value="enabled")
    assert [(s["name"], s["value"]) for s in hit] == [("containerInsights", "enabled")]
    miss = list_all_settings(own_ecs, name="containerInsights", value="disabled")
    assert miss == []


def test_list_account_settings_value_requires_name(ecs):
    """The reference: "You must also specify an account setting name to use
    this parameter" (the value filter)."""
    with pytest.raises(ClientError) as e:
        ecs.list_account_settings(value="enabled")
    assert_error(e, "InvalidParameterException", "ClientException")
