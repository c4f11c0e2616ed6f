"""`berth agent --endpoint A,B`: an agent given several servers moves to the
next when one does not answer (issue 12's failover, the agent's half): here
the first is a port nothing listens on, and the agent registers and runs its
task through the second."""

import os
import socket
import subprocess
import time

import pytest

import harness

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")


def _dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}"


def test_an_agent_moves_past_a_server_that_does_not_answer(ecs, server, name, tmp_path):
    cluster = name("eps")
    ecs.create_cluster(clusterName=cluster)
    env = dict(os.environ, **server.env())
    live = env["AWS_ENDPOINT_URL"]
    log = tmp_path / "agent.log"
    agent = subprocess.Popen(
        [str(harness.berth_bin()), "agent", "--cluster", cluster, "--endpoint", f"{_dead_url()},{live}",
         "--data-dir", str(tmp_path / "agent"), "--runtime", "process"],
        env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]:
            assert agent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the agent did not register:\n" + log.read_text()
            time.sleep(0.3)
        fam = name("eps")
        ecs.register_task_definition(family=fam, containerDefinitions=[{
            "name": "main", "image": "host", "memory": 16,
            "entryPoint": ["/bin/sh", "-c"], "command": ["exec sleep 600"]}])
        task = ecs.run_task(cluster=cluster, taskDefinition=fam)["tasks"][0]["taskArn"]
        ecs.get_waiter("tasks_running").wait(cluster=cluster, tasks=[task],
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        assert "trying the next server" in log.read_text()
        ecs.stop_task(cluster=cluster, task=task)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
