"""Run the strict shape validator on every raw response a botocore client sees.

The hook is registered on ``response-received.<service>`` (ECS, CloudWatch
Logs, Secrets Manager, SSM, and the XML protocols' EC2, STS and IAM) which botocore emits once per HTTP attempt (so retried attempts are validated too), for successes
and errors alike, with the raw ``response_dict`` (``body`` bytes,
``status_code``, ``headers``) before any ClientError is raised.  It is used
both by the boto3 fixtures and by the aws-cli plugin (``berth_cli_plugin``).
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Optional

from shape_validator import validate_response

EVENT = "response-received.ecs"
#: botocore names the event ``response-received.<hyphenized service id>.<Op>``;
#: the services berth serves, by that id, with their botocore model names.
SERVICES = {"ecs": "ecs", "cloudwatch-logs": "logs", "secrets-manager": "secretsmanager",
            "ssm": "ssm", "sqs": "sqs", "eventbridge": "events", "ec2": "ec2", "sts": "sts",
            "iam": "iam"}
EVENTS = tuple(f"response-received.{service_id}" for service_id in SERVICES)


class Recorder:
    """Collects invalid responses.  ``records`` holds one dict per bad one."""

    def __init__(self, *, strict_envelope: bool = True, require_request_id: bool = True,
                 source: str = "boto3", sink: Optional[Callable[[dict], None]] = None):
        self.strict_envelope = strict_envelope
        self.require_request_id = require_request_id
        self.source = source
        self.sink = sink
        self.records: list[dict[str, Any]] = []
        self.seen = 0
        self._lock = threading.Lock()

    # botocore passes everything as keyword arguments
    def handler(self, event_name: str = "", response_dict=None, exception=None, **_: Any) -> None:
        if response_dict is None:  # connection error: nothing on the wire to check
            return
        parts = event_name.split(".")
        op = parts[-1]
        service = SERVICES.get(parts[1], "ecs") if len(parts) > 2 else "ecs"
        body = response_dict.get("body") or b""
        status = response_dict.get("status_code")
        headers = dict(response_dict.get("headers") or {})
        violations = validate_response(
            op, body, status, headers, service=service,
            strict_envelope=self.strict_envelope,
            require_request_id=self.require_request_id,
        )
        record = {
            "source": self.source,
            "op": op,
            "status": status,
            "violations": violations,
            "body": body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body),
        }
        with self._lock:
            self.seen += 1
            if violations:
                self.records.append(record)
        if self.sink is not None:
            self.sink(record)

    def attach(self, client) -> Any:
        for event in EVENTS:
            client.meta.events.register(event, self.handler)
        return client

    def add(self, record: dict) -> None:
        with self._lock:
            self.seen += 1
            if record.get("violations"):
                self.records.append(record)

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            records, self.records = self.records, []
        return records


def append_jsonl(path: str) -> Callable[[dict], None]:
    def sink(record: dict) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    return sink
