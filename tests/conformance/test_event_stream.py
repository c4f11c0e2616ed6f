"""``GET /events``: the caller's events as server-sent events, signed with
SigV4 like any request (curl's ``--aws-sigv4``, botocore's signer, a
presigned URL). Real tasks' "ECS Task State Change" events arrive filtered
by a pattern; another account sees none of them; unsigned requests are
refused in the JSON envelope; a stream outlives the idle timeout; a client
that goes away gives its place back.

One server for the module (with its embedded agent), two accounts."""

import http.client
import json
import socket
import subprocess
import time
import urllib.parse

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import harness
from conftest import ACCOUNT_A, ACCOUNT_A2, ACCOUNT_B

pytestmark = pytest.mark.berth_only

FAST = {"Delay": 1, "MaxAttempts": 60}
IDLE_TIMEOUT = 2  # seconds; streams must outlive it


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    if harness.target_name() != "berth":
        pytest.skip("needs berth")
    tmp = tmp_path_factory.mktemp("event-stream")
    config = tmp / "berth.toml"
    config.write_text("".join(
        f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
        f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n\n'
        for c in (ACCOUNT_A, ACCOUNT_A2, ACCOUNT_B)) + f"[http]\nidle_timeout = {IDLE_TIMEOUT}\n")
    s = harness.BerthServer(tmp / "data", config=config).start()
    yield s
    s.stop()


def url(srv, pattern=None):
    # %20, not +: curl signs the query string as it is written.
    query = "?" + urllib.parse.urlencode({"pattern": json.dumps(pattern)},
                                         quote_via=urllib.parse.quote) if pattern else ""
    return f"{srv.endpoint}/events{query}"


def signed(srv, creds, pattern=None, presign=False):
    """(url, headers) of a GET signed by botocore, in headers or the query."""
    req = AWSRequest(method="GET", url=url(srv, pattern))
    key = Credentials(creds.access_key_id, creds.secret_access_key)
    if presign:
        SigV4QueryAuth(key, "events", harness.REGION, expires=300).add_auth(req)
    else:
        SigV4Auth(key, "events", harness.REGION).add_auth(req)
    return req.url, dict(req.headers.items())


class Stream:
    """An open event stream read with http.client (no buffering of its own)."""

    def __init__(self, full_url, headers):
        u = urllib.parse.urlsplit(full_url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        target = u.path + ("?" + u.query if u.query else "")
        self.conn.request("GET", target, headers=headers)
        self.resp = self.conn.getresponse()

    def ok(self):
        assert self.resp.status == 200, (self.resp.status, self.resp.read())
        assert self.resp.getheader("Content-Type") == "text/event-stream"
        assert self.resp.readline() == b":\n"  # the opening heartbeat
        assert self.resp.readline() == b"\n"
        return self

    def messages(self, until, timeout):
        """Parsed messages (dicts of their fields) until ``until(msgs)``."""
        msgs, fields = [], {}
        self.conn.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while not until(msgs) and time.monotonic() < deadline:
            try:
                line = self.resp.readline()
            except (socket.timeout, TimeoutError):
                break
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line == "":
                if fields:
                    msgs.append(fields)
                fields = {}
            elif not line.startswith(":"):
                k, _, v = line.partition(": ")
                fields[k] = v
        return msgs

    def close(self):
        self.conn.sock.close()
        self.conn.close()


def events_client(srv, creds):
    return srv.client(creds=creds, service="events")


def test_task_events_stream_filtered_and_private(srv):
    ecs = srv.client(creds=ACCOUNT_A, service="ecs")
    cluster_arn = ecs.create_cluster(clusterName="sse")["cluster"]["clusterArn"]
    pattern = {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"],
               "detail": {"clusterArn": [cluster_arn]}}
    # curl, as the README shows it, filtered to the cluster's task events.
    curl = subprocess.Popen(
        ["curl", "--no-buffer", "-sS", "--fail-with-body",
         "--aws-sigv4", f"aws:amz:{harness.REGION}:events",
         "--user", f"{ACCOUNT_A.access_key_id}:{ACCOUNT_A.secret_access_key}",
         url(srv, pattern)],
        stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"})
    # A presigned URL of the same account, unfiltered; and account B.
    mine = Stream(*signed(srv, ACCOUNT_A, presign=True)).ok()
    other = Stream(*signed(srv, ACCOUNT_B)).ok()
    try:
        assert curl.stdout.readline() == b":\n"  # subscribed
        # A PutEvents event is in A's unfiltered stream, not in curl's.
        events_client(srv, ACCOUNT_A).put_events(
            Entries=[{"Source": "shop", "DetailType": "order", "Detail": "{}"}])
        got = mine.messages(lambda m: m, timeout=10)
        assert [(m["event"], json.loads(m["data"])["source"]) for m in got] == [("order", "shop")]

        ecs.register_task_definition(
            family="sse", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512",
            containerDefinitions=[{"name": "main", "image": "host",
                                   "entryPoint": ["/bin/sh", "-c"], "command": ["exit 0"]}])
        task = ecs.run_task(cluster="sse", taskDefinition="sse", launchType="FARGATE",
                            networkConfiguration={"awsvpcConfiguration": {
                                "subnets": ["subnet-berth"]}})["tasks"][0]["taskArn"]
        ecs.get_waiter("tasks_stopped").wait(cluster="sse", tasks=[task], WaiterConfig=FAST)

        seen, fields = [], {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = curl.stdout.readline().decode().rstrip("\n")
            if line == "" and fields:
                seen.append(fields)
                fields = {}
                data = json.loads(seen[-1]["data"])
                if data["detail"]["taskArn"] == task and data["detail"]["lastStatus"] == "STOPPED":
                    break
            elif line and not line.startswith(":"):
                k, _, v = line.partition(": ")
                fields[k] = v
        statuses = []
        for m in seen:
            data = json.loads(m["data"])
            assert m["event"] == "ECS Task State Change" and m["id"] == data["id"]
            assert data["source"] == "aws.ecs" and data["account"] == ACCOUNT_A.account_id
            assert data["region"] == harness.REGION and data["resources"] == [task]
            statuses.append(data["detail"]["lastStatus"])
        assert statuses and statuses[-1] == "STOPPED", statuses
        assert "order" not in [m["event"] for m in seen]

        # B's stream works (its own event arrives) and holds none of A's.
        events_client(srv, ACCOUNT_B).put_events(
            Entries=[{"Source": "b", "DetailType": "mine", "Detail": "{}"}])
        got = other.messages(lambda m: any(x["event"] == "mine" for x in m), timeout=10)
        assert [m["event"] for m in got] == ["mine"]
    finally:
        curl.kill()
        curl.wait()
        mine.close()
        other.close()


def test_refusals_in_the_json_envelope(srv):
    r = Stream(url(srv), {}).resp
    assert r.status == 403
    body = json.loads(r.read())
    assert body["__type"] == "MissingAuthenticationTokenException"
    assert r.getheader("Content-Type") == "application/x-amz-json-1.1"

    wrong = harness.Creds(ACCOUNT_A.access_key_id, "not-the-secret", ACCOUNT_A.account_id)
    r = Stream(*signed(srv, wrong)).resp
    assert r.status == 400
    assert json.loads(r.read())["__type"] == "InvalidSignatureException"

    full, headers = signed(srv, ACCOUNT_A)
    r = Stream(full + "?pattern=nope", headers).resp  # the signature no longer covers it
    assert r.status == 400
    assert json.loads(r.read())["__type"] == "InvalidSignatureException"

    r = Stream(*signed(srv, ACCOUNT_A, pattern="not a pattern")).resp
    assert r.status == 400
    assert json.loads(r.read())["__type"] == "InvalidEventPatternException"


def test_a_quiet_stream_outlives_the_idle_timeout(srv):
    s = Stream(*signed(srv, ACCOUNT_B, pattern={"source": ["late"]})).ok()
    try:
        time.sleep(IDLE_TIMEOUT * 2)
        events_client(srv, ACCOUNT_B).put_events(
            Entries=[{"Source": "late", "DetailType": "still here", "Detail": "{}"}])
        got = s.messages(lambda m: m, timeout=10)
        assert [m["event"] for m in got] == ["still here"]
    finally:
        s.close()


def test_streams_are_capped_and_a_gone_client_gives_its_place_back(srv):
    per_key = 8
    streams = [Stream(*signed(srv, ACCOUNT_A2)).ok() for _ in range(per_key)]
    r = Stream(*signed(srv, ACCOUNT_A2)).resp
    assert r.status == 400
    assert json.loads(r.read())["__type"] == "LimitExceededException"
    for s in streams:
        s.close()
    # The server learns a client is gone when it next writes to it.
    events = events_client(srv, ACCOUNT_A2)
    deadline = time.monotonic() + 20
    while True:
        events.put_events(Entries=[{"Source": "s", "DetailType": "poke", "Detail": "{}"}])
        time.sleep(0.5)
        r = Stream(*signed(srv, ACCOUNT_A2))
        if r.resp.status == 200:
            r.close()
            break
        r.resp.read()
        assert time.monotonic() < deadline, "closed streams kept their places"
