#!/usr/bin/env python3
"""A managed scaling hook for tests: `scaling_hook.py PROVIDER CURRENT DESIRED`
with the request as JSON on stdin (what berth's command hooks get).

Scaling out starts `berth agent --capacity-provider PROVIDER` processes;
scaling in stops the agents whose container instances it is told to
remove (each agent's log names its instance). Every call is appended to
$HOOK_DIR/calls.log. Needs HOOK_DIR, BERTH_BIN, ENDPOINT_FILE and the
agents' AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in its environment (the
server passes only what its config gives)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def agents(root: Path):
    for d in sorted(root.glob("agent-*")):
        pid = d / "pid"
        if pid.exists() and not (d / "stopped").exists():
            yield d, int(pid.read_text())


def main() -> int:
    provider, current, desired = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    request = json.load(sys.stdin)
    root = Path(os.environ["HOOK_DIR"])
    with open(root / "calls.log", "a") as log:
        log.write(json.dumps(request) + "\n")
    assert request["capacityProvider"] == provider
    for host in request["remove"]:
        arn = host["containerInstanceArn"]
        for d, pid in agents(root):
            if arn in (d / "agent.log").read_text(errors="replace"):
                os.kill(pid, signal.SIGTERM)
                (d / "stopped").write_text(arn)
    if not request["remove"]:
        endpoint = Path(os.environ["ENDPOINT_FILE"]).read_text().strip()
        for _ in range(desired - current):
            n = len(list(root.glob("agent-*")))
            d = root / f"agent-{n}"
            d.mkdir()
            env = {"PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": endpoint,
                   "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
                   "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
                   "AWS_DEFAULT_REGION": request["region"]}
            proc = subprocess.Popen(
                [os.environ["BERTH_BIN"], "agent", "--cluster", request["cluster"],
                 "--data-dir", str(d / "data"), "--runtime", "process",
                 "--capacity-provider", provider],
                env=env, stdout=open(d / "agent.log", "ab"), stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
            (d / "pid").write_text(str(proc.pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
