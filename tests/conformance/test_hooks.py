"""The capture hooks themselves: a tiny fake endpoint answers with bodies
that are (in)valid, and the boto3 hook and the aws-cli plugin must report
exactly the invalid ones -- success and error responses alike."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from harness import Cli, Creds, Server
from validation_hook import Recorder

CT = "application/x-amz-json-1.1"


class FakeServer(Server):
    """Answers every request with the next canned (status, headers, body)."""

    name = "fake"

    def __init__(self, replies):
        self.replies = list(replies)
        self.creds = [Creds("AKIAFAKEFAKEFAKEFAKE", "fake-secret")]
        self.log_path = Path("/dev/null")
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, body = fake.replies.pop(0) if fake.replies else (
                    500, {"Content-Type": CT}, b'{"__type":"ServerException","message":"no reply"}')
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def ok(body):
    return 200, {"Content-Type": CT, "x-amzn-RequestId": "req-1"}, json.dumps(body).encode()


def err(code, status=400, body=None):
    body = body if body is not None else {"__type": code, "message": "m"}
    return status, {"Content-Type": CT, "x-amzn-RequestId": "req-2",
                    "x-amzn-ErrorType": code}, json.dumps(body).encode()


@pytest.fixture
def fake():
    servers = []

    def make(*replies):
        s = FakeServer(replies)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


def test_boto3_hook_sees_success_and_error_bodies(fake):
    srv = fake(ok({"clusterArns": ["a"]}),
               ok({"clusterArns": [True]}),
               err("ClusterNotFoundException"),
               err("ClusterNotFoundException", body={"__type": "ClusterNotFoundException",
                                                     "message": None}))
    rec = Recorder()
    ecs = srv.client(recorder=rec)
    ecs.list_clusters()
    ecs.list_clusters()
    with pytest.raises(ClientError):
        ecs.delete_cluster(cluster="x")
    with pytest.raises(ClientError):
        ecs.delete_cluster(cluster="x")
    assert rec.seen == 4
    bad = rec.take()
    assert [(r["op"], r["status"]) for r in bad] == [("ListClusters", 200), ("DeleteCluster", 400)]
    assert "$.clusterArns[0]: expected string" in bad[0]["violations"][0]
    assert "$.message" in bad[1]["violations"][0]


def test_boto3_hook_flags_unmodeled_error_code(fake):
    srv = fake(err("ResourceNotFoundException"))
    rec = Recorder()
    with pytest.raises(ClientError):
        srv.client(recorder=rec).list_clusters()
    (bad,) = rec.take()
    assert "neither a modeled error" in bad["violations"][0]


def test_cli_plugin_sees_success_and_error_bodies(fake, tmp_path):
    srv = fake(ok({"clusterArns": ["a"], "bogus": 1}),
               err("ClusterNotFoundException"),
               err("ClusterNotFoundException", status=500))
    rec = Recorder()
    cli = Cli(srv, tmp_path / "cli", rec)
    assert cli("ecs", "list-clusters")["clusterArns"] == ["a"]
    code, stderr = cli.fails("ecs", "delete-cluster", "--cluster", "x")
    assert "ClusterNotFoundException" in stderr
    cli.fails("ecs", "delete-cluster", "--cluster", "x")
    assert rec.seen == 3
    bad = rec.take()
    assert [(r["source"], r["op"], r["status"]) for r in bad] == [
        ("aws-cli", "ListClusters", 200), ("aws-cli", "DeleteCluster", 500)]
    assert bad[0]["violations"] == ["$.bogus: unknown member (not in ListClustersResponse)"]
