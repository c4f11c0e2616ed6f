"""A DAG of Airflow's ECS operators, unchanged, for berth: create a
cluster, register two FARGATE task definitions, run one that succeeds
(reattach, its last awslogs line as XCom) and one that exits 3 (the
operator must fail the task), deregister both; and create and delete a
second cluster (`-scratch`), so the tasks' cluster stays to be looked at.

Run by tests/conformance/test_airflow.py with `airflow dags test berth_ecs
-f airflow_ecs.py` in a virtualenv with apache-airflow and
apache-airflow-providers-amazon. The environment names berth only as AWS
clients know it: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION (the operators use `aws_conn_id=None`: boto3's own
credential chain); BERTH_AF_CLUSTER, BERTH_AF_FAMILY, BERTH_AF_GROUP and
BERTH_AF_SUBNET name what it creates.
"""

import os
from datetime import datetime, timedelta

from airflow.providers.amazon.aws.operators.ecs import (
    EcsCreateClusterOperator,
    EcsDeleteClusterOperator,
    EcsDeregisterTaskDefinitionOperator,
    EcsRegisterTaskDefinitionOperator,
    EcsRunTaskOperator,
)
from airflow.sdk import DAG

CLUSTER, FAMILY, GROUP, SUBNET = (
    os.environ[f"BERTH_AF_{k}"] for k in ("CLUSTER", "FAMILY", "GROUP", "SUBNET"))
COMMON = {"aws_conn_id": None}


def register(task_id, script):
    return EcsRegisterTaskDefinitionOperator(
        task_id=task_id, family=FAMILY, **COMMON,
        container_definitions=[{
            "name": "main", "image": "host", "entryPoint": ["/bin/sh", "-c"],
            "command": [script], "essential": True,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": GROUP, "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "airflow", "awslogs-create-group": "true"}}}],
        register_task_kwargs={"cpu": "256", "memory": "512", "networkMode": "awsvpc",
                              "requiresCompatibilities": ["FARGATE"]})


def run_task(task_id, registered, **extra):
    return EcsRunTaskOperator(
        task_id=task_id, cluster=CLUSTER, launch_type="FARGATE", overrides={},
        task_definition=f"{{{{ ti.xcom_pull(task_ids='{registered}', key='task_definition_arn') }}}}",
        network_configuration={"awsvpcConfiguration": {"subnets": [SUBNET]}},
        awslogs_group=GROUP, awslogs_stream_prefix="airflow/main",
        awslogs_fetch_interval=timedelta(seconds=1), waiter_delay=1, do_xcom_push=True,
        **COMMON, **extra)


def deregister(task_id, registered):
    return EcsDeregisterTaskDefinitionOperator(
        task_id=task_id, trigger_rule="all_done", **COMMON,
        task_definition=f"{{{{ ti.xcom_pull(task_ids='{registered}', key='task_definition_arn') }}}}")


with DAG("berth_ecs", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as dag:
    create = EcsCreateClusterOperator(task_id="create_cluster", cluster_name=CLUSTER,
                                      waiter_delay=1, **COMMON)
    ok = register("register_ok", "echo hello from airflow; echo last line")
    bad = register("register_bad", "echo about to fail; exit 3")
    run_ok = run_task("run_ok", "register_ok", reattach=True)
    run_bad = run_task("run_bad", "register_bad")
    create >> ok >> run_ok >> deregister("deregister_ok", "register_ok")
    create >> bad >> run_bad >> deregister("deregister_bad", "register_bad")
    scratch = f"{CLUSTER}-scratch"
    EcsCreateClusterOperator(
        task_id="create_scratch", cluster_name=scratch, waiter_delay=1, **COMMON
    ) >> EcsDeleteClusterOperator(
        task_id="delete_scratch", cluster_name=scratch, waiter_delay=1, **COMMON)

