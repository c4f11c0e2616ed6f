"""SQS on berth's endpoint (AWS JSON 1.0, query-compatible errors), driven
by boto3 and the aws-cli with every raw response validated against the
botocore model; Prefect's ECS observer's exact calls; a second account.

One server for the module, configured with two accounts."""

import hashlib
import struct
import threading
import time

import pytest
from botocore.exceptions import ClientError

import harness
from conftest import ACCOUNT_A, ACCOUNT_B

pytestmark = pytest.mark.berth_only


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    if harness.target_name() != "berth":
        pytest.skip("needs berth")
    tmp = tmp_path_factory.mktemp("sqs")
    config = tmp / "berth.toml"
    config.write_text("".join(
        f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
        f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n\n'
        for c in (ACCOUNT_A, ACCOUNT_B)))
    # A body budget of 8 MiB: one chunked request (of unknown length) takes
    # all of it while its body is in memory (see the long-poll test).
    s = harness.BerthServer(tmp / "data", config=config,
                            extra_args=["--no-agent", "--max-body-memory-mib", "8"]).start()
    yield s
    s.stop()


@pytest.fixture
def sqs(srv, recorder):
    return srv.client(creds=ACCOUNT_A, recorder=recorder, service="sqs")


@pytest.fixture
def sqs_b(srv, recorder):
    return srv.client(creds=ACCOUNT_B, recorder=recorder, service="sqs")


def code(e: ClientError) -> str:
    return e.response["Error"]["Code"]


def attributes_md5(attrs: dict) -> str:
    """SQS's documented digest of message attributes, computed here
    independently of the server."""
    buf = b""
    for name in sorted(attrs):
        v = attrs[name]
        for part in (name.encode(), v["DataType"].encode()):
            buf += struct.pack(">I", len(part)) + part
        if "StringValue" in v:
            value = v["StringValue"].encode()
            buf += b"\x01" + struct.pack(">I", len(value)) + value
        else:
            buf += b"\x02" + struct.pack(">I", len(v["BinaryValue"])) + v["BinaryValue"]
    return hashlib.md5(buf).hexdigest()


def test_prefect_observer_calls(sqs, name):
    """What prefect-aws's SqsSubscriber does, call for call."""
    missing = name("prefect-missing")
    with pytest.raises(ClientError) as e:
        sqs.get_queue_url(QueueName=missing)
    assert code(e.value) == "AWS.SimpleQueueService.NonExistentQueue"
    assert isinstance(e.value, sqs.exceptions.QueueDoesNotExist)

    q = name("prefect-events")
    sqs.create_queue(QueueName=q, Attributes={"VisibilityTimeout": "300",
                                              "MessageRetentionPeriod": "604800"})
    url = sqs.get_queue_url(QueueName=q)["QueueUrl"]
    assert url.endswith(f"/{ACCOUNT_A.account_id}/{q}")
    sqs.send_message(QueueUrl=url, MessageBody='{"detail-type": "ECS Task State Change"}')
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=20,
                              VisibilityTimeout=300)["Messages"]
    assert len(got) == 1 and got[0]["Body"] == '{"detail-type": "ECS Task State Change"}'
    assert got[0]["MD5OfBody"] == hashlib.md5(got[0]["Body"].encode()).hexdigest()
    handle = got[0]["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=300)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    t0 = time.monotonic()
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                                 WaitTimeSeconds=1, VisibilityTimeout=300)
    assert time.monotonic() - t0 >= 0.9  # it waited


def test_a_long_poll_is_woken_at_once_by_a_send(sqs, srv, name):
    url = sqs.create_queue(QueueName=name("wake"))["QueueUrl"]
    got = {}

    def poll():
        t0 = time.monotonic()
        got["r"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        got["t"] = time.monotonic() - t0

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(1)
    sqs2 = srv.client(creds=ACCOUNT_A, service="sqs")
    sqs2.send_message(QueueUrl=url, MessageBody="now")
    th.join(timeout=25)
    assert got["r"]["Messages"][0]["Body"] == "now"
    assert got["t"] < 3, got["t"]


def test_visibility_timeout_expiry_redelivers(sqs, name):
    url = sqs.create_queue(QueueName=name("vis"), Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="again")
    first = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"][0]
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # in flight
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "1"
    second = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5,
                                 MessageSystemAttributeNames=["ApproximateReceiveCount"])
    m = second["Messages"][0]
    assert m["MessageId"] == first["MessageId"]
    assert m["Attributes"] == {"ApproximateReceiveCount": "2"}
    assert m["ReceiptHandle"] != first["ReceiptHandle"]
    # The first receive's hold is over: it can no longer extend it.
    with pytest.raises(ClientError) as e:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"],
                                      VisibilityTimeout=30)
    assert code(e.value) == "AWS.SimpleQueueService.MessageNotInflight"
    # Visibility 0 makes it receivable at once.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                  VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["MessageId"] == m["MessageId"]


def test_dead_letter_queue_after_max_receives(sqs, name):
    dlq = sqs.create_queue(QueueName=name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    redrive = f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"1"}}'
    url = sqs.create_queue(QueueName=name("src"), Attributes={
        "VisibilityTimeout": "0", "RedrivePolicy": redrive})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "poison"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # moved, not handed out
    moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2)["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert got["RedrivePolicy"] == redrive


def test_attributes_batches_and_md5s(sqs, name):
    url = sqs.create_queue(QueueName=name("batch"), Attributes={"DelaySeconds": "0"})["QueueUrl"]
    attrs = {"kind": {"DataType": "String", "StringValue": "task"},
             "n": {"DataType": "Number", "StringValue": "3"},
             "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="one", MessageAttributes=attrs)
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"one").hexdigest()
    assert sent["MD5OfMessageAttributes"] == attributes_md5(attrs)
    out = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "two"}, {"Id": "b", "MessageBody": "three"},
        {"Id": "c", "MessageBody": "four", "DelaySeconds": 901}])
    assert sorted(x["Id"] for x in out["Successful"]) == ["a", "b"]
    assert [(f["Id"], f["SenderFault"]) for f in out["Failed"]] == [("c", True)]
    got = []
    while len(got) < 3:
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2,
                                   MessageAttributeNames=["All"])["Messages"]
    first = next(m for m in got if m["Body"] == "one")
    assert first["MessageAttributes"] == attrs
    assert first["MD5OfMessageAttributes"] == attributes_md5(attrs)
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    assert len(deleted["Successful"]) == 3 and deleted["Failed"] == []
    for bad, want in [([], "AWS.SimpleQueueService.EmptyBatchRequest"),
                      ([{"Id": "x", "MessageBody": "a"}] * 2,
                       "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
                      ([{"Id": str(i), "MessageBody": "a"} for i in range(11)],
                       "AWS.SimpleQueueService.TooManyEntriesInBatchRequest")]:
        with pytest.raises(ClientError) as e:
            sqs.send_message_batch(QueueUrl=url, Entries=bad)
        assert code(e.value) == want


def test_queue_lifecycle_and_errors(sqs, name):
    q = name("life")
    url = sqs.create_queue(QueueName=q, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    # Idempotent with equal attributes; refused with different ones.
    assert sqs.create_queue(QueueName=q, Attributes={"VisibilityTimeout": "5"})["QueueUrl"] == url
    with pytest.raises(ClientError) as e:
        sqs.create_queue(QueueName=q, Attributes={"VisibilityTimeout": "6"})
    assert code(e.value) == "QueueAlreadyExists"
    assert isinstance(e.value, sqs.exceptions.QueueNameExists)
    with pytest.raises(ClientError) as e:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"])
    assert code(e.value) == "InvalidAttributeName"
    with pytest.raises(ClientError) as e:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "99999"})
    assert code(e.value) == "InvalidAttributeValue"
    with pytest.raises(ClientError) as e:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    assert code(e.value) == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as e:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert code(e.value) == "InvalidParameterValue"
    policy = '{"Version":"2012-10-17","Statement":[]}'
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy,
                                                       "ReceiveMessageWaitTimeSeconds": "1"})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["Policy"] == policy and attrs["VisibilityTimeout"] == "5"
    assert attrs["QueueArn"] == f"arn:aws:sqs:{harness.REGION}:{ACCOUNT_A.account_id}:{q}"
    assert int(attrs["CreatedTimestamp"]) <= int(attrs["LastModifiedTimestamp"])
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.purge_queue(QueueUrl=url)
    with pytest.raises(ClientError) as e:
        sqs.purge_queue(QueueUrl=url)
    assert code(e.value) == "AWS.SimpleQueueService.PurgeQueueInProgress"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # the queue's own 1 s wait
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(ClientError) as e:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert code(e.value) == "AWS.SimpleQueueService.NonExistentQueue"


def test_list_queues_prefix_and_pages(sqs, name):
    prefix = name("list")
    urls = [sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(5)]
    assert sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"] == urls
    pages = sqs.get_paginator("list_queues").paginate(
        QueueNamePrefix=prefix, PaginationConfig={"PageSize": 2})
    assert [u for p in pages for u in p["QueueUrls"]] == urls
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix=name("none"))


def test_another_account_cannot_reach_a_queue(sqs, sqs_b, name):
    q = name("private")
    url = sqs.create_queue(QueueName=q)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="secret")
    for call in (lambda: sqs_b.get_queue_url(QueueName=q),
                 lambda: sqs_b.get_queue_url(QueueName=q,
                                             QueueOwnerAWSAccountId=ACCOUNT_A.account_id),
                 lambda: sqs_b.receive_message(QueueUrl=url),
                 lambda: sqs_b.send_message(QueueUrl=url, MessageBody="x"),
                 lambda: sqs_b.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
                 lambda: sqs_b.purge_queue(QueueUrl=url),
                 lambda: sqs_b.delete_queue(QueueUrl=url)):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e.value) == "AWS.SimpleQueueService.NonExistentQueue"
    # B's URL for the same name is B's own queue, not A's.
    url_b = sqs_b.create_queue(QueueName=q)["QueueUrl"]
    assert url_b != url
    assert "Messages" not in sqs_b.receive_message(QueueUrl=url_b)
    assert sqs_b.list_queues(QueueNamePrefix=q)["QueueUrls"] == [url_b]
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "secret"


def test_aws_cli(srv, recorder, tmp_path, name):
    cli = harness.Cli(srv, tmp_path / "cli", recorder, creds=ACCOUNT_A)
    # aws-cli v1 replaces AWS_ENDPOINT_URL for sqs in us-east-1 with
    # queue.amazonaws.com (its SSL common-name override): name it.
    ep = ("--endpoint-url", srv.endpoint)
    q = name("cli")
    url = cli("sqs", "create-queue", "--queue-name", q, *ep)["QueueUrl"]
    cli("sqs", "send-message", "--queue-url", url, "--message-body", "from the cli", *ep)
    got = cli("sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "2", *ep)
    assert got["Messages"][0]["Body"] == "from the cli"
    rc, err = cli.fails("sqs", "get-queue-url", "--queue-name", name("absent"), *ep)
    assert "AWS.SimpleQueueService.NonExistentQueue" in err


def test_raw_wire_form(srv, name):
    """What is on the wire: JSON 1.0 both ways, the shape name in __type,
    the query code in x-amzn-query-error, strictly valid for the model."""
    from shape_validator import validate_response
    raw = harness.RawClient(srv)

    def call(op, body, content_type="application/x-amz-json-1.0"):
        req = raw.build(op, body, target=f"AmazonSQS.{op}", content_type=content_type)
        r = raw.send(raw.sign(req, ACCOUNT_A, service="sqs"), op, validate=False)
        assert validate_response(op, r.content, r.status, dict(r.headers), service="sqs",
                                 require_request_id=True) == []
        return r

    r = call("GetQueueUrl", {"QueueName": name("raw-missing")})
    assert r.status == 400 and r.json()["__type"] == "QueueDoesNotExist"
    assert r.headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert r.headers["Content-Type"] == "application/x-amz-json-1.0"
    r = call("ReceiveMessage", {})
    assert r.json()["__type"] == "ValidationException"
    assert r.headers["x-amzn-query-error"] == "MissingParameter;Sender"
    # SQS takes JSON 1.0 only, ECS 1.1 only.
    r = call("ListQueues", {}, content_type="application/x-amz-json-1.1")
    assert r.json()["__type"] == "SerializationException"
    ecs = raw.send(raw.sign(raw.build("ListClusters", {},
                                      content_type="application/x-amz-json-1.0"), ACCOUNT_A),
                   "ListClusters", validate=False)
    assert ecs.status == 400 and ecs.json()["__type"] == "SerializationException"


def test_a_waiting_long_poll_holds_no_body_budget(srv, sqs, name):
    """A chunked ReceiveMessage reserves the whole (8 MiB) body budget while
    its body is read; once it waits, it must hold none of it, or every other
    request would be refused 503 for as long as it waits."""
    import requests
    url = sqs.create_queue(QueueName=name("budget"))["QueueUrl"]
    raw = harness.RawClient(srv)
    req = raw.sign(raw.build("ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 6},
                             target="AmazonSQS.ReceiveMessage",
                             content_type="application/x-amz-json-1.0"),
                   ACCOUNT_A, service="sqs")
    prepared = req.prepare()
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    body = prepared.body
    done = {}

    def poll():
        r = requests.post(prepared.url, data=iter([body]), headers=headers, timeout=30)
        done["status"] = r.status_code

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(1.5)  # it is waiting now
    t0 = time.monotonic()
    assert "QueueUrls" in sqs.list_queues(QueueNamePrefix=name("budget")[:6])
    assert time.monotonic() - t0 < 1.5
    th.join(timeout=20)
    assert done["status"] == 200
