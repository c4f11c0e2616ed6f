"""EventBridge on berth's endpoint: rules, patterns, SQS targets, PutEvents,
and ECS's own events delivered to a queue, none lost across a ``kill -9``.
Every raw response is validated against the botocore model.

One server for the module (with its embedded agent), two accounts."""

import json
import time

import pytest
from botocore.exceptions import ClientError

import harness
from conftest import ACCOUNT_A, ACCOUNT_B

pytestmark = pytest.mark.berth_only

FAST = {"Delay": 1, "MaxAttempts": 60}
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-berth"]}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    if harness.target_name() != "berth":
        pytest.skip("needs berth")
    tmp = tmp_path_factory.mktemp("events")
    config = tmp / "berth.toml"
    config.write_text("".join(
        f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
        f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n\n'
        for c in (ACCOUNT_A, ACCOUNT_B)))
    s = harness.BerthServer(tmp / "data", config=config).start()
    yield s
    s.stop()


@pytest.fixture
def clients(srv, recorder):
    """(events, sqs, ecs) of account A, made afresh (the port changes on restart)."""
    def make(creds=ACCOUNT_A):
        return tuple(srv.client(creds=creds, recorder=recorder, service=s)
                     for s in ("events", "sqs", "ecs"))
    return make


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def drain(sqs, url, until, timeout=30.0):
    """Receives (and deletes) messages until ``until(bodies)`` or timeout."""
    bodies = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(bodies):
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                     WaitTimeSeconds=2).get("Messages", []):
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


def test_rules_targets_and_custom_events(clients, name):
    events, sqs, _ = clients()
    url, arn = queue(sqs, name("custom"))
    rule = name("orders")
    pattern = {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}],
                                              "kind": [{"anything-but": "test"}]}}
    rule_arn = events.put_rule(Name=rule, EventPattern=json.dumps(pattern))["RuleArn"]
    assert rule_arn == f"arn:aws:events:{harness.REGION}:{ACCOUNT_A.account_id}:rule/{rule}"
    out = events.put_targets(Rule=rule, Targets=[
        {"Id": "q", "Arn": arn},
        {"Id": "fn", "Arn": f"arn:aws:lambda:{harness.REGION}:{ACCOUNT_A.account_id}:function:f"}])
    assert out["FailedEntryCount"] == 1 and out["FailedEntries"][0]["TargetId"] == "fn"
    assert [t["Id"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]] == ["q"]
    d = events.describe_rule(Name=rule)
    assert (d["State"], d["EventBusName"], json.loads(d["EventPattern"])) == \
        ("ENABLED", "default", pattern)

    def entry(total, kind="real"):
        return {"Source": "shop", "DetailType": "Order", "Resources": ["r1"],
                "Detail": json.dumps({"total": total, "kind": kind})}
    put = events.put_events(Entries=[entry(150), entry(50), entry(500, "test"),
                                     {"Source": "aws.ecs", "DetailType": "x", "Detail": "{}"},
                                     {"Source": "shop", "DetailType": "x", "Detail": "[1]"}])
    assert put["FailedEntryCount"] == 2
    assert [e.get("ErrorCode") for e in put["Entries"][3:]] == [
        "NotAuthorizedForSourceException", "MalformedDetail"]
    got = drain(sqs, url, lambda b: len(b) >= 1, timeout=10)
    got += drain(sqs, url, lambda b: False, timeout=2)  # nothing else arrives
    assert [g["detail"]["total"] for g in got] == [150]
    ev = got[0]
    assert ev["id"] == put["Entries"][0]["EventId"]
    assert (ev["version"], ev["source"], ev["detail-type"], ev["account"], ev["region"],
            ev["resources"]) == ("0", "shop", "Order", ACCOUNT_A.account_id, harness.REGION,
                                 ["r1"])
    # A disabled rule delivers nothing.
    events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="DISABLED")
    events.put_events(Entries=[entry(999)])
    assert drain(sqs, url, lambda b: False, timeout=2) == []

    with pytest.raises(ClientError) as e:
        events.delete_rule(Name=rule)
    assert code(e.value) == "ValidationException"
    events.remove_targets(Rule=rule, Ids=["q"])
    events.delete_rule(Name=rule)
    with pytest.raises(ClientError) as e:
        events.describe_rule(Name=rule)
    assert code(e.value) == "ResourceNotFoundException"


def test_pattern_errors_and_listing(clients, name):
    events, _, _ = clients()
    for bad in ['{"source": "x"}', "{}", "not json", '{"a": [{"nope": 1}]}']:
        with pytest.raises(ClientError) as e:
            events.put_rule(Name=name("bad"), EventPattern=bad)
        assert code(e.value) == "InvalidEventPatternException", bad
    with pytest.raises(ClientError) as e:
        events.put_rule(Name=name("bus"), EventPattern='{"a": ["b"]}', EventBusName="other")
    assert code(e.value) == "ResourceNotFoundException"
    prefix = name("list")
    made = [f"{prefix}-{i}" for i in range(3)]
    for r in made:
        events.put_rule(Name=r, EventPattern='{"source": ["x"]}')
    pages = events.get_paginator("list_rules").paginate(
        NamePrefix=prefix, PaginationConfig={"PageSize": 2})
    assert [r["Name"] for p in pages for r in p["Rules"]] == made


def test_another_account_cannot_reach_rules_or_deliver_to_queues(clients, name):
    events, sqs, _ = clients()
    events_b, sqs_b, _ = clients(ACCOUNT_B)
    rule = name("private")
    events.put_rule(Name=rule, EventPattern='{"source": ["p"]}')
    url, arn = queue(sqs, name("private"))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    with pytest.raises(ClientError) as e:
        events_b.describe_rule(Name=rule)
    assert code(e.value) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        events_b.list_targets_by_rule(Rule=rule)
    assert code(e.value) == "ResourceNotFoundException"
    assert rule not in [r["Name"] for r in events_b.list_rules()["Rules"]]
    # B cannot point its own rule at A's queue.
    events_b.put_rule(Name=rule, EventPattern='{"source": ["p"]}')
    out = events_b.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    assert out["FailedEntryCount"] == 1
    # B's events never reach A's rule.
    events_b.put_events(Entries=[{"Source": "p", "DetailType": "x", "Detail": "{}"}])
    assert drain(sqs, url, lambda b: False, timeout=2) == []


def fargate_family(ecs, family, script):
    ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512",
        containerDefinitions=[{"name": "main", "image": "host",
                               "entryPoint": ["/bin/sh", "-c"], "command": [script]}])
    return family


def test_ecs_task_events_reach_a_queue_across_kill_9(srv, clients, name):
    """Prefect's rule (source aws.ecs, ECS Task State Change, lastStatus
    STOPPED) gets exactly the matching events of real tasks, even when the
    server is killed while the tasks run and again right after they stop."""
    events, sqs, ecs = clients()
    cluster = name("ev")
    cluster_arn = ecs.create_cluster(clusterName=cluster)["cluster"]["clusterArn"]
    url, arn = queue(sqs, name("ecs-events"))
    rule = name("stopped")
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["aws.ecs"], "detail-type": ["ECS Task State Change"],
        "detail": {"clusterArn": [cluster_arn], "lastStatus": ["STOPPED"]}}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    # A second queue sees every state of the cluster's tasks.
    all_url, all_arn = queue(sqs, name("all-events"))
    events.put_rule(Name=rule + "-all", EventPattern=json.dumps({
        "source": ["aws.ecs"], "detail": {"clusterArn": [cluster_arn]}}))
    events.put_targets(Rule=rule + "-all", Targets=[{"Id": "q", "Arn": all_arn}])

    fam = fargate_family(ecs, name("ev"), "sleep 2; exit 3")
    out = ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE",
                       networkConfiguration=NETWORK, count=3)
    assert out["failures"] == []
    arns = sorted(t["taskArn"] for t in out["tasks"])
    srv.restart()  # kill -9 while they run
    events, sqs, ecs = clients()
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=arns, WaiterConfig=FAST)
    srv.restart()  # and right after they stopped
    events, sqs, ecs = clients()

    got = drain(sqs, url, lambda b: {e["detail"]["taskArn"] for e in b} >= set(arns))
    assert {e["detail"]["taskArn"] for e in got} == set(arns)
    for e in got:
        assert (e["source"], e["detail-type"], e["detail"]["lastStatus"]) == \
            ("aws.ecs", "ECS Task State Change", "STOPPED")
        assert e["resources"] == [e["detail"]["taskArn"]]
        assert e["account"] == ACCOUNT_A.account_id and e["region"] == harness.REGION
        d = e["detail"]
        assert d["clusterArn"] == cluster_arn and d["stopCode"] == "EssentialContainerExited"
        assert d["stoppedAt"].endswith("Z") and "T" in d["stoppedAt"]  # ISO-8601, as ECS
    # A task may change again once STOPPED (its container's exit is
    # recorded): every such change is an event; the last one has it all.
    def exits_known(bodies):
        return all(any(e["detail"]["taskArn"] == a
                       and e["detail"]["containers"][0].get("exitCode") == 3
                       for e in got + bodies) for a in arns)
    got += drain(sqs, url, exits_known)
    for a in arns:
        last = max((e for e in got if e["detail"]["taskArn"] == a),
                   key=lambda e: e["detail"]["version"])
        assert last["detail"]["containers"][0]["exitCode"] == 3, json.dumps(last)
    def every_state(bodies):
        have = {(e["detail"]["taskArn"], e["detail"]["lastStatus"]) for e in bodies}
        return all((a, "STOPPED") in have
                   and ((a, "PROVISIONING") in have or (a, "PENDING") in have) for a in arns)
    seen = drain(sqs, all_url, every_state)
    statuses = {(e["detail"]["taskArn"], e["detail"]["lastStatus"]) for e in seen}
    for a in arns:
        assert (a, "STOPPED") in statuses
        assert (a, "PROVISIONING") in statuses or (a, "PENDING") in statuses


def test_service_action_and_deployment_events(clients, name):
    events, sqs, ecs = clients()
    cluster = name("svc-ev")
    ecs.create_cluster(clusterName=cluster)
    fam = fargate_family(ecs, name("svc-ev"), "sleep 120")
    service = name("svc")
    # The rule first: events before it exists are not its to deliver.
    arn = f"arn:aws:ecs:{harness.REGION}:{ACCOUNT_A.account_id}:service/{cluster}/{service}"
    url, qarn = queue(sqs, name("svc-events"))
    rule = name("svc")
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["aws.ecs"], "resources": [arn],
        "detail-type": ["ECS Service Action", "ECS Deployment State Change"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": qarn}])
    created = ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=fam,
                                 desiredCount=1, launchType="FARGATE",
                                 networkConfiguration=NETWORK)["service"]
    assert created["serviceArn"] == arn
    try:
        got = drain(sqs, url, lambda b: {e["detail"]["eventName"] for e in b} >= {
            "SERVICE_STEADY_STATE", "SERVICE_DEPLOYMENT_COMPLETED"}, timeout=40)
        names = {e["detail"]["eventName"]: e for e in got}
        assert {"SERVICE_STEADY_STATE", "SERVICE_DEPLOYMENT_COMPLETED"} <= set(names), got
        steady = names["SERVICE_STEADY_STATE"]
        assert steady["detail-type"] == "ECS Service Action"
        assert steady["detail"]["eventType"] == "INFO" and steady["resources"] == [arn]
        done = names["SERVICE_DEPLOYMENT_COMPLETED"]["detail"]
        assert done["deploymentId"].startswith("ecs-svc/")
    finally:
        ecs.delete_service(cluster=cluster, service=service, force=True)


def test_berth_events_streams_to_a_terminal(srv, clients, name):
    import os
    import signal
    import subprocess
    events, _, _ = clients()
    source = name("cli.test")
    env = {**os.environ, **srv.env(ACCOUNT_A)}
    env.pop("AWS_CA_BUNDLE", None)
    proc = subprocess.Popen(
        [str(srv.binary), "events", "--json", "--pattern", json.dumps({"source": [source]})],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "watching events" in proc.stderr.readline()
        put = events.put_events(Entries=[{"Source": source, "DetailType": "hello",
                                          "Detail": '{"n": 1}'}])
        line = proc.stdout.readline()
        ev = json.loads(line)
        assert ev["id"] == put["Entries"][0]["EventId"] and ev["detail"] == {"n": 1}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)
    # It cleans up after itself.
    assert not [r for r in events.list_rules(NamePrefix="berth-events-")["Rules"]
                if source in r.get("EventPattern", "")]
