"""Prefect's ECS worker, installed from PyPI and unchanged, with a stock
ECS work pool against berth: a Prefect server, the worker and its
observer run with only AWS_ENDPOINT_URL and keys pointing them at berth.
The worker finds the default VPC's subnets through EC2 (no hand-written
network configuration); its observer reads "ECS Task State Change" events
from the SQS queue an EventBridge rule feeds (made here as Prefect's
`ecs-worker deploy-events` template makes it). A flow run COMPLETES, a
failing one FAILS, and a container that exits before the flow starts is
seen by the observer and its run marked CRASHED."""

import json
import os
import socket
import subprocess
import time

import pytest
import requests

import harness
from thirdparty import ROOT, client_env, venv

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, probe, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def events_queue(make_client, name):
    """The queue and rule of prefect-aws's events template: ECS task state
    changes of the cluster into `<pool>-ecs-events`."""
    def make(cluster_arn, queue_name):
        sqs, events = make_client("sqs"), make_client("events")
        url = sqs.create_queue(QueueName=queue_name, Attributes={
            "VisibilityTimeout": "300", "MessageRetentionPeriod": "604800"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        rule = name("prefect-ecs")
        events.put_rule(Name=rule, EventPattern=json.dumps({
            "source": ["aws.ecs"], "detail-type": ["ECS Task State Change"],
            "detail": {"clusterArn": [cluster_arn]}}))
        events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])
        return url
    return make


def test_prefect_ecs_worker_runs_flows(server, ecs, make_client, name, tmp_path, events_queue):
    pf = venv("prefect")
    bin_dir = pf / "bin"
    home = tmp_path / "prefect"
    home.mkdir()
    port = free_port()
    pool, cluster = name("berth-pool"), name("prefect")
    cluster_arn = ecs.create_cluster(clusterName=cluster)["cluster"]["clusterArn"]
    queue = f"{pool}-ecs-events"
    events_queue(cluster_arn, queue)
    env = client_env(server, {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_INTEGRATIONS_AWS_ECS_OBSERVER_SQS_QUEUE_NAME": queue,
        "PREFECT_LOGGING_LEVEL": "INFO",
    })
    logs = {}
    procs = []

    def start(label, *args):
        log = open(tmp_path / f"{label}.log", "w")
        logs[label] = tmp_path / f"{label}.log"
        p = subprocess.Popen([str(bin_dir / "prefect"), *args], env=env, stdout=log,
                             stderr=subprocess.STDOUT, cwd=home)
        procs.append(p)
        return p

    def tail(label, n=4000):
        return logs[label].read_text()[-n:] if label in logs else ""

    try:
        start("server", "server", "start", "--host", "127.0.0.1", "--port", str(port))

        def healthy():
            try:
                return requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).ok
            except requests.RequestException:
                return False
        try:
            wait_for("the Prefect server", healthy, 120)
        except AssertionError:
            pytest.fail(tail("server"))

        r = subprocess.run([str(bin_dir / "prefect"), "work-pool", "create", pool, "--type", "ecs"],
                           env=env, capture_output=True, text=True, timeout=120, cwd=home)
        assert r.returncode == 0, r.stdout + r.stderr
        r = subprocess.run([str(bin_dir / "python"),
                            str(ROOT / "tests" / "thirdparty" / "prefect_deploy.py"),
                            pool, cluster, str(bin_dir)],
                           env=env, capture_output=True, text=True, timeout=120, cwd=home)
        assert r.returncode == 0, r.stdout + r.stderr
        deployments = json.loads(r.stdout.strip().splitlines()[-1])

        start("worker", "worker", "start", "--pool", pool, "--type", "ecs")
        api = f"http://127.0.0.1:{port}/api"
        runs = {}
        for label, dep in deployments.items():
            resp = requests.post(f"{api}/deployments/{dep}/create_flow_run", json={}, timeout=10)
            assert resp.ok, resp.text
            runs[label] = resp.json()["id"]

        def state(run_id):
            return requests.get(f"{api}/flow_runs/{run_id}", timeout=10).json()["state"]["type"]

        def all_final():
            states = {label: state(run_id) for label, run_id in runs.items()}
            return states if set(states.values()) <= FINAL else None
        try:
            states = wait_for("the flow runs' final states", all_final, 240)
        except AssertionError:
            now = {label: state(run_id) for label, run_id in runs.items()}
            pytest.fail(f"{now}\n--- worker ---\n{tail('worker')}")
        assert states == {"hello": "COMPLETED", "fails": "FAILED", "crashes": "CRASHED"}, \
            f"{states}\n--- worker ---\n{tail('worker')}"

        # berth ran them as tasks of the cluster (a run is final in Prefect
        # a moment before its process has exited), in the subnets EC2 showed.
        def listed(desired):
            return [a for page in ecs.get_paginator("list_tasks").paginate(
                cluster=cluster, desiredStatus=desired) for a in page["taskArns"]]

        def stopped():
            arns = listed("STOPPED")
            return arns if len(arns) == 3 and not listed("RUNNING") else None
        try:
            arns = wait_for("3 stopped tasks", stopped, 180)
        except AssertionError:
            arns = listed("STOPPED") + listed("RUNNING")
            seen = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
            pytest.fail("expected the 3 flow runs' tasks, stopped; the cluster has: " + repr(
                [(t["taskArn"], t["lastStatus"], t.get("stoppedReason")) for t in seen])
                + f"\n--- worker ---\n{tail('worker')}")
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
        subnets = {d["value"] for t in tasks for a in t["attachments"]
                   for d in a["details"] if d["name"] == "subnetId"}
        ec2 = make_client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
        vpc_subnets = {s["SubnetId"] for s in ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]}
        assert subnets and subnets <= vpc_subnets, (subnets, vpc_subnets)
        exits = sorted(t["containers"][0].get("exitCode") for t in tasks)
        assert exits == [0, 1, 7] or exits == [0, 0, 7], exits
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
