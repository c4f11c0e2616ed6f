"""aws-cli (v1) plugin: validate every raw ECS and CloudWatch Logs response the
CLI receives.

The conformance harness writes an ``AWS_CONFIG_FILE`` containing::

    [plugins]
    berth_validator = berth_cli_plugin

and puts this directory on ``PYTHONPATH``.  aws-cli imports the module and
calls :func:`awscli_initialize` with the session's event emitter; every
response (one line of JSON per response, valid or not) is appended to the
file named by ``BERTH_VALIDATION_LOG``.
"""

import os

from validation_hook import EVENTS, Recorder, append_jsonl


def awscli_initialize(event_hooks):
    path = os.environ.get("BERTH_VALIDATION_LOG")
    if not path:
        return
    recorder = Recorder(
        source="aws-cli",
        strict_envelope=os.environ.get("BERTH_STRICT_ENVELOPE", "1") == "1",
        require_request_id=os.environ.get("BERTH_STRICT_ENVELOPE", "1") == "1",
        sink=append_jsonl(path),
    )
    for event in EVENTS:
        event_hooks.register(event, recorder.handler)
