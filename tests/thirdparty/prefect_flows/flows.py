"""Flows that Prefect's ECS worker runs as berth tasks (process runtime:
the flow run is a host process of the task, started by the worker's
stock command)."""

import os
import sys

from prefect import flow, get_run_logger


@flow
def hello(name: str = "berth") -> str:
    get_run_logger().info("hello, %s, from task %s", name, os.environ.get("ECS_TASK_ARN", "?"))
    return f"hello {name}"


@flow
def fails() -> None:
    raise RuntimeError("this flow fails on purpose")


@flow
def dies() -> None:
    """Never reaches Prefect's engine: the container exits first."""
    sys.exit(0)
