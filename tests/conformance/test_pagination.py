"""Pagination across the list operations, with boto3 paginators and with the
aws-cli's own pagination (--max-items/--starting-token, --page-size).

nextToken is opaque, but it must be: complete (every item once), stable
(no duplicates or gaps when paging a fixed set), bound to the operation, the
account and the filters it was issued for, and tamper-proof -- a forged,
modified or foreign token is an InvalidParameterException."""

import base64
import json

import pytest
from botocore.exceptions import ClientError

from errors import assert_error

CONTAINERS = [{"name": "c", "image": "busybox", "memory": 32}]


@pytest.fixture
def family_of_7(ecs, name, region, account_id):
    family = name("pg")
    for _ in range(7):
        ecs.register_task_definition(family=family, containerDefinitions=CONTAINERS)
    arns = [f"arn:aws:ecs:{region}:{account_id}:task-definition/{family}:{r}"
            for r in range(1, 8)]
    return family, arns


@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 100])
def test_paginator_list_task_definitions(ecs, family_of_7, page_size):
    family, arns = family_of_7
    pages = list(ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=family, PaginationConfig={"PageSize": page_size}))
    got = [a for p in pages for a in p["taskDefinitionArns"]]
    assert got == arns
    assert all(len(p["taskDefinitionArns"]) <= page_size for p in pages)
    # no trailing empty page: the last page with items carries no nextToken
    assert "nextToken" not in pages[-1]
    assert len(pages) == -(-7 // page_size)


def test_paginator_max_items_and_resume(ecs, family_of_7):
    family, arns = family_of_7
    paginator = ecs.get_paginator("list_task_definitions")
    first = paginator.paginate(familyPrefix=family,
                               PaginationConfig={"MaxItems": 3, "PageSize": 2}).build_full_result()
    assert first["taskDefinitionArns"] == arns[:3]
    rest = paginator.paginate(familyPrefix=family, PaginationConfig={
        "StartingToken": first["NextToken"], "PageSize": 2}).build_full_result()
    assert rest["taskDefinitionArns"] == arns[3:]


def test_token_keeps_its_filters(ecs, family_of_7):
    """A token is issued for a query; changing the sort order mid-way must not
    silently produce a mixture of the two orders."""
    family, arns = family_of_7
    token = ecs.list_task_definitions(familyPrefix=family, maxResults=3)["nextToken"]
    try:
        resp = ecs.list_task_definitions(familyPrefix=family, maxResults=3, sort="DESC",
                                         nextToken=token)
    except ClientError as e:
        assert_error(e, "InvalidParameterException")
    else:
        # The reference only tells clients to keep the filters constant, so
        # accepting the token is not wrong as such -- but repeating items
        # already seen shows the token is not bound to the query it was
        # issued for.  Reported as an expected failure, not a hard one.
        repeated = set(resp["taskDefinitionArns"]) & set(arns[:3])
        if repeated:
            pytest.xfail(f"token issued for sort=ASC accepted with sort=DESC, repeats {sorted(repeated)}")


@pytest.mark.parametrize("token", [
    "garbage",
    "a" * 3000,
    base64.b64encode(json.dumps({"offset": 0}).encode()).decode(),
    base64.b64encode(b"\x00" * 64).decode(),
])
def test_forged_tokens(ecs, token):
    with pytest.raises(ClientError) as e:
        ecs.list_task_definitions(nextToken=token)
    assert_error(e, "InvalidParameterException")


@pytest.mark.parametrize("op,kwargs,key", [
    ("list_clusters", {}, "clusterArns"),
    ("list_task_definition_families", {}, "families"),
    ("list_account_settings", {"effectiveSettings": True}, "settings"),
])
def test_forged_tokens_on_other_lists(ecs, op, kwargs, key):
    with pytest.raises(ClientError) as e:
        getattr(ecs, op)(nextToken="forged-token", **kwargs)
    assert_error(e, "InvalidParameterException")


def test_token_from_families_used_on_definitions(ecs, name):
    prefix = name("pf")
    for i in range(3):
        ecs.register_task_definition(family=f"{prefix}-{i}", containerDefinitions=CONTAINERS)
    token = ecs.list_task_definition_families(familyPrefix=prefix, maxResults=1)["nextToken"]
    with pytest.raises(ClientError) as e:
        ecs.list_task_definitions(nextToken=token)
    assert_error(e, "InvalidParameterException")


def test_families_paginate(ecs, name):
    prefix = name("pf")
    fams = sorted(f"{prefix}-{i}" for i in range(5))
    for f in fams:
        ecs.register_task_definition(family=f, containerDefinitions=CONTAINERS)
    pages = list(ecs.get_paginator("list_task_definition_families").paginate(
        familyPrefix=prefix, PaginationConfig={"PageSize": 2}))
    assert [f for p in pages for f in p["families"]] == fams
    assert len(pages) == 3


def test_token_survives_restart(fresh_server, make_ecs, name):
    """Tokens stay valid across a restart (they must not depend on an
    in-memory secret that changes every start) -- or are cleanly refused."""
    ecs = make_ecs(fresh_server)
    family = name("rs")
    for _ in range(4):
        ecs.register_task_definition(family=family, containerDefinitions=CONTAINERS)
    first = ecs.list_task_definitions(familyPrefix=family, maxResults=2)
    fresh_server.restart()
    ecs = make_ecs(fresh_server)
    try:
        rest = ecs.list_task_definitions(familyPrefix=family, maxResults=2,
                                         nextToken=first["nextToken"])
    except ClientError as e:
        assert_error(e, "InvalidParameterException")
    else:
        assert [a.rsplit(":", 1)[1] for a in rest["taskDefinitionArns"]] == ["3", "4"]


# --------------------------------------------------------------------------
# aws-cli
# --------------------------------------------------------------------------

def test_cli_max_items_and_starting_token(cli, family_of_7):
    family, arns = family_of_7
    seen, token, calls = [], None, 0
    while True:
        args = ["ecs", "list-task-definitions", "--family-prefix", family, "--max-items", "3"]
        if token:
            args += ["--starting-token", token]
        out = cli(*args)
        calls += 1
        assert len(out["taskDefinitionArns"]) <= 3
        seen.extend(out["taskDefinitionArns"])
        token = out.get("NextToken")
        if not token:
            break
        assert calls < 10
    assert seen == arns
    assert calls == 3


def test_cli_page_size(cli, family_of_7):
    family, arns = family_of_7
    out = cli("ecs", "list-task-definitions", "--family-prefix", family, "--page-size", "3")
    assert out["taskDefinitionArns"] == arns


def test_cli_no_paginate(cli, family_of_7):
    family, arns = family_of_7
    out = cli("ecs", "list-task-definitions", "--family-prefix", family, "--max-results", "3",
              "--no-paginate")
    assert out["taskDefinitionArns"] == arns[:3]
    assert out.get("nextToken")
