"""CloudWatch Logs on berth's endpoint (``Logs_20140328``), driven with boto3
and the aws-cli; every raw response is validated against botocore's ``logs``
model by the ``recorder``.

GetLogEvents paging follows AWS's documented contract: both tokens are
always returned, and at the end of the stream the token passed in comes back
unchanged -- which is how clients (Airflow's ECS task log fetcher, the
aws-cli's ``logs tail``) detect that there is nothing new.
"""

import json
import time

import pytest
from botocore.exceptions import ClientError

from errors import assert_error

DAY_MS = 24 * 60 * 60 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def stream(logs, name):
    """A fresh (group, stream) pair."""
    group, stream = f"/test/{name('g')}", name("s")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def put_numbered(logs, group, stream, n, base=None, batch=1000):
    """Puts events "00000".."n-1" with increasing timestamps, `batch` per call."""
    base = now_ms() - 60_000 if base is None else base
    for start in range(0, n, batch):
        events = [{"timestamp": base + i, "message": f"{i:05d}"}
                  for i in range(start, min(n, start + batch))]
        r = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        assert "rejectedLogEventsInfo" not in r
    return [f"{i:05d}" for i in range(n)]


def messages(page):
    return [e["message"] for e in page["events"]]


# -- groups -----------------------------------------------------------------

def test_log_group_lifecycle(logs, name, account_id, region):
    group = f"/ecs/{name('web')}"
    logs.create_log_group(logGroupName=group, tags={"team": "core"})
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=group)
    assert_error(e, "ResourceAlreadyExistsException")

    [g] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    arn = f"arn:aws:logs:{region}:{account_id}:log-group:{group}"
    assert g["logGroupName"] == group
    assert g["arn"] == arn + ":*"
    assert g["logGroupArn"] == arn
    assert g["metricFilterCount"] == 0
    assert g["storedBytes"] == 0
    assert g["logGroupClass"] == "STANDARD"
    assert abs(g["creationTime"] - now_ms()) < 60_000
    assert "retentionInDays" not in g
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "core"}

    logs.delete_log_group(logGroupName=group)
    with pytest.raises(ClientError) as e:
        logs.delete_log_group(logGroupName=group)
    assert_error(e, "ResourceNotFoundException")
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []


def test_invalid_group_names_and_retention(logs, name):
    for bad in ["has space", "colon:", "aws/reserved"]:
        with pytest.raises(ClientError) as e:
            logs.create_log_group(logGroupName=bad)
        assert_error(e, "InvalidParameterException")
    group = name("ret")
    logs.create_log_group(logGroupName=group)
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName=group, retentionInDays=2)
    assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName=name("missing"), retentionInDays=1)
    assert_error(e, "ResourceNotFoundException")
    logs.put_retention_policy(logGroupName=group, retentionInDays=14)
    [g] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert g["retentionInDays"] == 14
    logs.delete_retention_policy(logGroupName=group)
    [g] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert "retentionInDays" not in g


def test_describe_log_groups_pages(logs, name):
    prefix = f"/{name('page')}/"
    groups = [f"{prefix}{i:02d}" for i in range(7)]
    for g in groups:
        logs.create_log_group(logGroupName=g)
    seen, token = [], None
    while True:
        kw = {"nextToken": token} if token else {}
        page = logs.describe_log_groups(logGroupNamePrefix=prefix, limit=3, **kw)
        seen += [g["logGroupName"] for g in page["logGroups"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == groups
    # The botocore paginator agrees.
    pages = logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix=prefix, PaginationConfig={"PageSize": 2})
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == groups
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups(logGroupNamePrefix=prefix, nextToken="forged")
    assert_error(e, "InvalidParameterException")


def test_tags(logs, name, account_id, region):
    group = name("tags")
    logs.create_log_group(logGroupName=group)
    arn = f"arn:aws:logs:{region}:{account_id}:log-group:{group}"
    logs.tag_resource(resourceArn=arn, tags={"a": "1", "b": "2"})
    logs.untag_resource(resourceArn=arn, tagKeys=["a"])
    logs.tag_log_group(logGroupName=group, tags={"c": "3"})
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"b": "2", "c": "3"}
    logs.untag_log_group(logGroupName=group, tags=["b", "c"])
    # No tags: the member is absent (the model's Tags map has at least one entry).
    assert logs.list_tags_for_resource(resourceArn=arn).get("tags", {}) == {}
    with pytest.raises(ClientError) as e:
        logs.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(51)})
    assert_error(e, "TooManyTagsException")
    with pytest.raises(ClientError) as e:
        logs.list_tags_for_resource(resourceArn=arn + "-missing")
    assert_error(e, "ResourceNotFoundException")


# -- streams ----------------------------------------------------------------

def test_stream_errors(logs, stream, name):
    group, s = stream
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    assert_error(e, "ResourceAlreadyExistsException")
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=name("missing"), logStreamName=s)
    assert_error(e, "ResourceNotFoundException")
    with pytest.raises(ClientError) as e:
        logs.create_log_stream(logGroupName=group, logStreamName="a:b")
    assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=name("missing"),
                            logEvents=[{"timestamp": now_ms(), "message": "x"}])
    assert_error(e, "ResourceNotFoundException")
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=group, logStreamName=name("missing"))
    assert_error(e, "ResourceNotFoundException")
    with pytest.raises(ClientError) as e:
        logs.get_log_events(logGroupName=name("missing"), logStreamName=s)
    assert_error(e, "ResourceNotFoundException")
    logs.delete_log_stream(logGroupName=group, logStreamName=s)
    with pytest.raises(ClientError) as e:
        logs.delete_log_stream(logGroupName=group, logStreamName=s)
    assert_error(e, "ResourceNotFoundException")


def test_describe_log_streams(logs, stream, account_id, region):
    group, first = stream
    for s in ["b", "c"]:
        logs.create_log_stream(logGroupName=group, logStreamName=s)
    t = now_ms() - 10_000
    logs.put_log_events(logGroupName=group, logStreamName="b",
                        logEvents=[{"timestamp": t, "message": "x"},
                                   {"timestamp": t + 5, "message": "y"}])
    by_name = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in by_name] == sorted([first, "b", "c"])
    b = next(s for s in by_name if s["logStreamName"] == "b")
    assert b["arn"] == f"arn:aws:logs:{region}:{account_id}:log-group:{group}:log-stream:b"
    assert b["firstEventTimestamp"] == t and b["lastEventTimestamp"] == t + 5
    assert b["lastIngestionTime"] >= t
    latest = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime",
                                       descending=True, limit=1)
    assert [s["logStreamName"] for s in latest["logStreams"]] == ["b"]
    assert "nextToken" in latest
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime",
                                  logStreamNamePrefix="b")
    assert_error(e, "InvalidParameterException")


# -- PutLogEvents / GetLogEvents --------------------------------------------

def test_5000_events_read_back_in_order_through_forward_paging(logs, stream):
    group, s = stream
    expected = put_numbered(logs, group, s, 5000)
    got, token, pages = [], None, 0
    while True:
        kw = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=group, logStreamName=s,
                                   startFromHead=True, limit=700, **kw)
        pages += 1
        assert page["nextForwardToken"].startswith("f/")
        assert page["nextBackwardToken"].startswith("b/")
        got += messages(page)
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        token = page["nextForwardToken"]
    assert got == expected
    assert pages == 5000 // 700 + 2
    ingestion = logs.get_log_events(logGroupName=group, logStreamName=s, limit=1)
    assert ingestion["events"][0]["ingestionTime"] >= ingestion["events"][0]["timestamp"]


def test_same_token_at_the_end_then_new_events(logs, stream):
    """Airflow's fetcher: page forward until the token repeats, wait, ask again."""
    group, s = stream
    put_numbered(logs, group, s, 3)
    first = logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True)
    assert messages(first) == ["00000", "00001", "00002"]
    token = first["nextForwardToken"]
    for _ in range(2):
        again = logs.get_log_events(logGroupName=group, logStreamName=s,
                                    startFromHead=True, nextToken=token)
        assert again["events"] == []
        assert again["nextForwardToken"] == token
    logs.put_log_events(logGroupName=group, logStreamName=s,
                        logEvents=[{"timestamp": now_ms(), "message": "later"}])
    more = logs.get_log_events(logGroupName=group, logStreamName=s,
                               startFromHead=True, nextToken=token)
    assert messages(more) == ["later"]
    assert more["nextForwardToken"] != token


def test_backward_paging_from_the_tail(logs, stream):
    group, s = stream
    expected = put_numbered(logs, group, s, 2500)
    # Without a token and startFromHead=false: the last `limit` events, oldest first.
    page = logs.get_log_events(logGroupName=group, logStreamName=s, limit=600)
    assert messages(page) == expected[-600:]
    got, token = messages(page), page["nextBackwardToken"]
    while True:
        page = logs.get_log_events(logGroupName=group, logStreamName=s,
                                   limit=600, nextToken=token)
        got = messages(page) + got
        if page["nextBackwardToken"] == token:
            assert page["events"] == []
            break
        token = page["nextBackwardToken"]
    assert got == expected


def test_start_and_end_time(logs, stream):
    group, s = stream
    base = now_ms() - 60_000
    put_numbered(logs, group, s, 10, base=base)
    page = logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True,
                               startTime=base + 3, endTime=base + 6)
    # startTime inclusive, endTime exclusive.
    assert messages(page) == ["00003", "00004", "00005"]
    tail = logs.get_log_events(logGroupName=group, logStreamName=s, startTime=base + 8)
    assert messages(tail) == ["00008", "00009"]


def test_out_of_order_batch_is_refused(logs, stream):
    group, s = stream
    t = now_ms()
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=s,
                            logEvents=[{"timestamp": t, "message": "b"},
                                       {"timestamp": t - 1, "message": "a"}])
    assert_error(e, "InvalidParameterException")


def test_too_old_and_too_new_events_are_rejected_the_rest_stored(logs, stream):
    group, s = stream
    t = now_ms()
    r = logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=[
        {"timestamp": t - 15 * DAY_MS, "message": "ancient"},
        {"timestamp": t - 1000, "message": "kept"},
        {"timestamp": t + 3 * 3600 * 1000, "message": "future"},
    ], sequenceToken="ignored-as-aws-does")
    assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0,
                                          "tooNewLogEventStartIndex": 2}
    assert r["nextSequenceToken"]
    page = logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True)
    assert messages(page) == ["kept"]


def test_retention_hides_old_events(logs, stream):
    group, s = stream
    t = now_ms()
    # Two batches: one batch may not span more than 24 hours.
    for ts, msg in [(t - 3 * DAY_MS, "three days old"), (t - 1000, "fresh")]:
        logs.put_log_events(logGroupName=group, logStreamName=s,
                            logEvents=[{"timestamp": ts, "message": msg}])
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    page = logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True)
    assert messages(page) == ["fresh"]
    found = logs.filter_log_events(logGroupName=group)
    assert [e["message"] for e in found["events"]] == ["fresh"]
    # And older events are now refused as expired.
    r = logs.put_log_events(logGroupName=group, logStreamName=s,
                            logEvents=[{"timestamp": t - 2 * DAY_MS, "message": "late"}])
    assert r["rejectedLogEventsInfo"] == {"expiredLogEventEndIndex": 0}


def test_bad_tokens_are_invalid_parameters(logs, stream):
    group, s = stream
    put_numbered(logs, group, s, 3)
    good = logs.get_log_events(logGroupName=group, logStreamName=s)["nextForwardToken"]
    forged = good[:-1] + ("1" if good[-1] == "0" else "0")
    for bad in ["f/123", "nonsense", forged, good.replace("f/", "b/", 1)]:
        with pytest.raises(ClientError) as e:
            logs.get_log_events(logGroupName=group, logStreamName=s, nextToken=bad)
        assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group, nextToken="nonsense")
    assert_error(e, "InvalidParameterException")


def test_limits_are_checked_by_the_server(make_logs, stream):
    logs = make_logs(parameter_validation=False)
    group, s = stream
    for limit in (0, 10_001):
        with pytest.raises(ClientError) as e:
            logs.get_log_events(logGroupName=group, logStreamName=s, limit=limit)
        assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        logs.put_log_events(logGroupName=group, logStreamName=s, logEvents=[])
    assert_error(e, "InvalidParameterException")


# -- FilterLogEvents ----------------------------------------------------------

def test_filter_log_events(logs, stream):
    group, first = stream
    logs.create_log_stream(logGroupName=group, logStreamName="db")
    t = now_ms() - 10_000
    logs.put_log_events(logGroupName=group, logStreamName=first, logEvents=[
        {"timestamp": t, "message": "GET /orders 200"},
        {"timestamp": t + 2, "message": "ERROR GET /orders 500"},
    ])
    logs.put_log_events(logGroupName=group, logStreamName="db", logEvents=[
        {"timestamp": t + 1, "message": "ERROR deadlock detected"},
    ])
    everything = logs.filter_log_events(logGroupName=group)["events"]
    assert [(e["logStreamName"], e["timestamp"]) for e in everything] == [
        (first, t), ("db", t + 1), (first, t + 2)]
    assert all(len(e["eventId"]) == 56 for e in everything)
    errors = logs.filter_log_events(logGroupName=group, filterPattern="ERROR")["events"]
    assert [e["message"] for e in errors] == ["ERROR deadlock detected",
                                              "ERROR GET /orders 500"]
    phrase = logs.filter_log_events(logGroupName=group, filterPattern='"GET /orders" -ERROR')
    assert [e["message"] for e in phrase["events"]] == ["GET /orders 200"]
    only_db = logs.filter_log_events(logGroupName=group, logStreamNames=["db"])
    assert [e["logStreamName"] for e in only_db["events"]] == ["db"]
    window = logs.filter_log_events(logGroupName=group, startTime=t + 1, endTime=t + 2)
    assert len(window["events"]) == 2
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, PaginationConfig={"PageSize": 1})
    assert [e["message"] for p in pages for e in p["events"]] == [
        e["message"] for e in everything]
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group, filterPattern='{ $.level = "error" }')
    assert_error(e, "InvalidParameterException")
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=group, logStreamNames=["db"],
                               logStreamNamePrefix="d")
    assert_error(e, "InvalidParameterException")


# -- the aws-cli --------------------------------------------------------------

def test_aws_cli_tour(cli, name):
    group, s = f"/cli/{name('g')}", "main"
    cli("logs", "create-log-group", "--log-group-name", group)
    cli("logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", s)
    t = now_ms() - 5000
    events = [{"timestamp": t + i, "message": f"line {i} {'ERROR' if i % 2 else 'ok'}"}
              for i in range(4)]
    out = cli("logs", "put-log-events", "--log-group-name", group, "--log-stream-name", s,
              "--log-events", json.dumps(events))
    assert "nextSequenceToken" in out and "rejectedLogEventsInfo" not in out
    got = cli("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", s,
              "--start-from-head")
    assert [e["message"] for e in got["events"]] == [e["message"] for e in events]
    again = cli("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", s,
                "--start-from-head", "--next-token", got["nextForwardToken"])
    assert again["events"] == [] and again["nextForwardToken"] == got["nextForwardToken"]
    found = cli("logs", "filter-log-events", "--log-group-name", group,
                "--filter-pattern", "ERROR")
    assert [e["message"] for e in found["events"]] == ["line 1 ERROR", "line 3 ERROR"]
    groups = cli("logs", "describe-log-groups", "--log-group-name-prefix", group)
    assert [g["logGroupName"] for g in groups["logGroups"]] == [group]
    code, err = cli.fails("logs", "create-log-group", "--log-group-name", group)
    assert "ResourceAlreadyExistsException" in err
    cli("logs", "delete-log-group", "--log-group-name", group)


# -- durability ---------------------------------------------------------------

@pytest.mark.berth_only
def test_acknowledged_events_survive_kill_9(fresh_server, make_logs, name):
    logs = make_logs(fresh_server)
    group, s = name("dur"), "s"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=s)
    expected = put_numbered(logs, group, s, 3000)
    fresh_server.kill9()  # right after the last acknowledged PutLogEvents

    fresh_server.start()
    logs = make_logs(fresh_server)
    page = logs.get_log_events(logGroupName=group, logStreamName=s, startFromHead=True)
    assert messages(page) == expected
    # Sequence numbers continue where they were.
    r = logs.put_log_events(logGroupName=group, logStreamName=s,
                            logEvents=[{"timestamp": now_ms(), "message": "after"}])
    assert int(r["nextSequenceToken"]) == 3001
