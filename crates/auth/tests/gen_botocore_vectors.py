#!/usr/bin/env python3
"""Writes tests/vectors/botocore.json: ECS-style requests signed by botocore.

botocore's SigV4Auth is an independent implementation, so berth-auth verifying
these proves interoperability with the AWS CLI / boto3 for the JSON 1.1 shape
berth serves (POST /, X-Amz-Target, JSON body, service "ecs").

Usage: python3 crates/auth/tests/gen_botocore_vectors.py  (writes next to this script)
"""
import datetime
import json
import os
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-west-2"
SERVICE = "ecs"
NOW = datetime.datetime(2024, 3, 1, 9, 30, 15)

CASES = [
    ("list-clusters", "ListClusters", {}),
    ("describe-clusters", "DescribeClusters", {"clusters": ["default", "prod"], "include": ["TAGS"]}),
    ("register-task-definition", "RegisterTaskDefinition", {
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": "nginx:1.25", "memory": 512,
                                  "environment": [{"name": "GREETING", "value": "h\u00e9llo w\u00f6rld"}]}],
    }),
    ("run-task", "RunTask", {"cluster": "default", "taskDefinition": "web:1", "count": 2}),
]


def sign(target, payload):
    body = json.dumps(payload).encode("utf-8")
    req = AWSRequest(
        method="POST",
        url=f"https://ecs.{REGION}.amazonaws.com/",
        data=body,
        headers={
            "X-Amz-Target": f"AmazonEC2ContainerServiceV20141113.{target}",
            "Content-Type": "application/x-amz-json-1.1",
            "User-Agent": "aws-cli/2 botocore",
        },
    )
    # Pin the signing time so the file is reproducible.
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        SigV4Auth(Credentials(ACCESS_KEY, SECRET), SERVICE, REGION).add_auth(req)
    headers = [[k, v] for k, v in req.headers.items()]
    # The Host header is added by the HTTP client, from the URL.
    headers.append(["Host", f"ecs.{REGION}.amazonaws.com"])
    return {"method": "POST", "path": "/", "query": "", "headers": headers,
            "body": body.decode("utf-8")}


def main():
    out = {
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
        "region": REGION,
        "service": SERVICE,
        "now_unix": int(NOW.replace(tzinfo=datetime.timezone.utc).timestamp()),
        "requests": [dict(name=n, **sign(t, p)) for n, t, p in CASES],
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors", "botocore.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(CASES)} requests to {path}")


if __name__ == "__main__":
    main()
