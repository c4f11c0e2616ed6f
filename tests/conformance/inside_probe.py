"""What a task sees inside (issue 10): run *in* a task, by the host's python
(process runtime) or the image's (Docker), with only the environment the
task was given. Prints one JSON line: the environment ECS sets, what the
metadata endpoint answers, and what boto3 can do as the task's role.

``argv[1]``: the cluster to list tasks of; ``argv[2]``, optional: a metadata
URI of another task, which this one must not be able to read.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

KEYS = ["ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI", "ECS_AGENT_URI",
        "AWS_EXECUTION_ENV", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CA_BUNDLE"]


def get(url):
    # A bridge-mode Docker container may start a moment before the agent
    # listens in its network: retry a refused connection, as botocore does.
    for attempt in range(20):
        try:
            with urllib.request.urlopen(url, timeout=20) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, None
        except OSError as e:
            if attempt == 19 or "refused" not in str(e):
                return str(e), None
            time.sleep(0.1)


def main():
    out = {"env": {k: os.environ.get(k) for k in KEYS},
           "has_auth_token": bool(os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"))}
    md = os.environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if md:
        for name, path in [("container", ""), ("task", "/task"), ("stats", "/stats"),
                           ("task_stats", "/task/stats"), ("v3_task", "/task")]:
            base = os.environ["ECS_CONTAINER_METADATA_URI"] if name.startswith("v3") else md
            out[name] = get(base + path)
        out["guessed"] = get(md.rsplit("/", 1)[0] + "/" + "0" * 64 + "/task")
    if len(sys.argv) > 2:
        out["other_task"] = get(sys.argv[2] + "/task")
    try:
        import boto3
        ecs = boto3.client("ecs")
        out["list_tasks"] = ecs.list_tasks(cluster=sys.argv[1])["taskArns"]
        creds = boto3.Session().get_credentials()
        out["credential_method"] = creds.method
        out["access_key_prefix"] = creds.access_key[:4]
        try:
            out["caller"] = boto3.client("sts").get_caller_identity()["Arn"]
        except Exception as e:  # STS arrives with another change
            out["caller_error"] = getattr(e, "response", {}).get("Error", {}).get("Code", str(e))
        try:
            ecs.run_task(cluster=sys.argv[1], taskDefinition="no-such-family")
            out["run_task"] = "allowed"
        except Exception as e:
            out["run_task"] = getattr(e, "response", {}).get("Error", {}).get("Code", str(e))
    except Exception as e:
        out["boto3_error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out), flush=True)


main()
