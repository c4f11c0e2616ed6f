"""Airflow's ECS operators, installed from PyPI and unchanged, against
berth: `airflow dags test` runs tests/thirdparty/airflow_ecs.py (create a
cluster, register FARGATE task definitions, run one that succeeds and one
that exits 3, deregister; create and delete another cluster) with a real metadata database, and only
AWS_ENDPOINT_URL and keys pointing it at berth."""

import json
import shutil
import sqlite3
import subprocess

import pytest

import harness
from thirdparty import ROOT, client_env, venv

pytestmark = pytest.mark.skipif(harness.target_name() != "berth", reason="needs berth")


def test_airflow_ecs_operators_run_a_dag(server, ecs, logs, name, tmp_path):
    af = venv("airflow")
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "thirdparty" / "airflow_ecs.py", home / "dags")
    cluster, group = name("airflow"), name("/airflow/logs")
    env = client_env(server, {
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "BERTH_AF_CLUSTER": cluster, "BERTH_AF_FAMILY": cluster,
        "BERTH_AF_GROUP": group, "BERTH_AF_SUBNET": "subnet-berth"})
    airflow = str(af / "bin" / "airflow")
    r = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([airflow, "dags", "test", "berth_ecs", "-f",
                        str(home / "dags" / "airflow_ecs.py")],
                       env=env, capture_output=True, text=True, timeout=300, cwd=home)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-5000:]

    db = sqlite3.connect(home / "airflow.db")
    states = dict(db.execute(
        "select task_id, state from task_instance where dag_id='berth_ecs'").fetchall())
    assert states == {
        "create_cluster": "success", "register_ok": "success", "register_bad": "success",
        "run_ok": "success", "run_bad": "failed", "deregister_ok": "success",
        "deregister_bad": "success", "create_scratch": "success",
        "delete_scratch": "success"}, out[-5000:]
    xcom = {(t, k): json.loads(v) for t, k, v in db.execute(
        "select task_id, key, value from xcom where dag_id='berth_ecs'").fetchall()}
    # The operator's XCom is the task's last awslogs line.
    assert xcom[("run_ok", "return_value")] == "last line"
    # A failed ECS task fails the Airflow task with its logs.
    assert "This task is not in success state" in out and "about to fail" in out

    # What berth ran: real processes, their exit codes, their output.
    ok_arn, bad_arn = xcom[("run_ok", "ecs_task_arn")], xcom[("run_bad", "ecs_task_arn")]
    tasks = {t["taskArn"]: t for t in ecs.describe_tasks(
        cluster=cluster, tasks=[ok_arn, bad_arn])["tasks"]}
    assert tasks[ok_arn]["containers"][0]["exitCode"] == 0
    assert tasks[bad_arn]["containers"][0]["exitCode"] == 3
    assert tasks[ok_arn]["startedBy"] and tasks[ok_arn]["lastStatus"] == "STOPPED"
    events = logs.get_log_events(logGroupName=group, startFromHead=True,
                                 logStreamName=f"airflow/main/{ok_arn.rsplit('/', 1)[1]}")
    assert [e["message"] for e in events["events"]] == ["hello from airflow", "last line"]
    scratch = ecs.describe_clusters(clusters=[f"{cluster}-scratch"])["clusters"][0]
    assert scratch["status"] == "INACTIVE"
    for arn in (ok_arn, bad_arn):
        td = tasks[arn]["taskDefinitionArn"]
        assert ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]["status"] == \
            "INACTIVE"
