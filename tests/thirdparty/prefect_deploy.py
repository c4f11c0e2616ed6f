"""Deploys tests/thirdparty/prefect_flows to an ECS work pool, as a user
does with Prefect's Python API, and prints the deployments' ids as JSON.

Usage: prefect_deploy.py POOL CLUSTER VENV_BIN. The job variables are the
ones a user of the stock ECS pool sets: the cluster, the environment (a
PATH on which the process runtime finds this virtualenv's `python`), and,
for `crashes`, a command that exits before Prefect's engine starts. No
network configuration: the worker finds the default VPC's subnets itself.
"""

import json
import sys
from pathlib import Path

from prefect import flow

pool, cluster, venv_bin = sys.argv[1:4]
source = str(Path(__file__).resolve().parent / "prefect_flows")
common = {"cluster": cluster, "env": {"PATH": f"{venv_bin}:/usr/bin:/bin"}}
ids = {}
for name, entrypoint, extra in [
    ("hello", "flows.py:hello", {}),
    ("fails", "flows.py:fails", {}),
    ("crashes", "flows.py:hello", {"command": "/bin/sh -c 'echo dying early; exit 7'"}),
]:
    ids[name] = str(flow.from_source(source=source, entrypoint=entrypoint).deploy(
        name=name, work_pool_name=pool, image="prefecthq/prefect:3-latest", build=False,
        push=False, job_variables={**common, **extra}, print_next_steps=False))
print(json.dumps(ids))
