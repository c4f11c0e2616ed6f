"""A history checker for fault tests, in the manner of Jepsen's.

A fault test records every operation its clients send as two events: an
*invoke* (what was asked, when) and its *completion*: ``ok`` (acknowledged),
``fail`` (refused: certainly not done) or ``info`` (unknown: a timeout or a
cut connection, so it may or may not have taken effect). At the end it reads
the final state and asks :func:`check` whether the two can be reconciled:

- **lost acknowledged writes**: every task an acknowledged RunTask returned
  exists; every acknowledged StopTask's task is stopping or stopped; every
  acknowledged CreateService's service exists unless a later delete may have
  removed it;
- **duplicates**: one ``clientToken`` made at most ``count`` tasks (however
  many servers it was sent to, however many times), and every acknowledged
  answer for it named the same tasks;
- **services**: each service's final task definition is the value of an
  update that no acknowledged update strictly follows (the last
  acknowledged update, or one whose outcome is unknown and that may have
  landed after it), and its running count equals its desired count;
- **orphans**: every live task belongs to a RunTask the history shows (by
  its token) or to a service.

The checker is pure: it reads plain dicts, so it is tested on its own
(``test_history.py``) with histories that are and are not valid.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional


@dataclass
class Op:
    """One operation: invoked at ``start``, completed at ``end`` (None while
    unknown) with ``outcome`` ``ok``, ``fail`` or ``info``."""

    id: int
    process: str
    f: str
    args: dict[str, Any]
    start: float
    end: Optional[float] = None
    outcome: str = "info"
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def maybe(self) -> bool:
        """Did it possibly take effect (acknowledged, or unknown)?"""
        return self.outcome in ("ok", "info")


class History:
    """Thread-safe recorder of operations."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self.ops: list[Op] = []

    def invoke(self, process: str, f: str, **args: Any) -> Op:
        op = Op(next(self._ids), process, f, args, self._clock())
        with self._lock:
            self.ops.append(op)
        return op

    def complete(self, op: Op, outcome: str, result: Optional[dict] = None,
                 error: str = "") -> Op:
        assert outcome in ("ok", "fail", "info"), outcome
        op.end = self._clock()
        op.outcome = outcome
        op.result = result or {}
        op.error = error
        return op


@dataclass
class FinalState:
    """What the cluster holds at the end, read after the faults healed.

    ``tasks``: task ARN → ``{"lastStatus", "desiredStatus", "startedBy",
    "group", "tags"}`` for every task the servers still know (stopped ones
    included while retained). ``services``: service name →
    ``{"taskDefinition", "desiredCount", "runningCount", "status"}``.
    """

    tasks: dict[str, dict[str, Any]]
    services: dict[str, dict[str, Any]]


def _token_of(task: dict[str, Any]) -> Optional[str]:
    for tag in task.get("tags") or []:
        if tag.get("key") == "client-token":
            return tag.get("value")
    return None


def _service_of(task: dict[str, Any]) -> Optional[str]:
    group = task.get("group") or ""
    return group[len("service:"):] if group.startswith("service:") else None


def check(ops: Iterable[Op], final: FinalState) -> list[str]:
    """Every anomaly found, as sentences; an empty list is a valid history."""
    ops = sorted(ops, key=lambda o: o.start)
    problems: list[str] = []
    problems += _lost_tasks(ops, final)
    problems += _duplicates(ops, final)
    problems += _lost_stops(ops, final)
    problems += _services(ops, final)
    problems += _orphans(ops, final)
    return problems


def _lost_tasks(ops: list[Op], final: FinalState) -> list[str]:
    out = []
    for op in ops:
        if op.f == "run_task" and op.ok:
            for arn in op.result.get("tasks", []):
                if arn not in final.tasks:
                    out.append(f"lost write: RunTask {op.args.get('clientToken')} "
                               f"(op {op.id}) acknowledged task {arn}, which no server has")
    return out


def _duplicates(ops: list[Op], final: FinalState) -> list[str]:
    out = []
    by_token: dict[str, list[Op]] = {}
    for op in ops:
        if op.f == "run_task" and op.args.get("clientToken"):
            by_token.setdefault(op.args["clientToken"], []).append(op)
    made: dict[str, list[str]] = {}
    for arn, task in final.tasks.items():
        token = _token_of(task)
        if token is not None:
            made.setdefault(token, []).append(arn)
    for token, calls in by_token.items():
        count = max(int(c.args.get("count", 1)) for c in calls)
        arns = sorted(made.get(token, []))
        if len(arns) > count:
            out.append(f"duplicate: clientToken {token} (count {count}) made "
                       f"{len(arns)} tasks: {arns}")
        answers = {tuple(sorted(c.result.get("tasks", []))) for c in calls if c.ok}
        if len(answers) > 1:
            out.append(f"duplicate: clientToken {token} was answered with different "
                       f"tasks: {sorted(answers)}")
    return out


def _lost_stops(ops: list[Op], final: FinalState) -> list[str]:
    out = []
    for op in ops:
        if op.f == "stop_task" and op.ok:
            arn = op.args["task"]
            task = final.tasks.get(arn)
            if task is not None and task.get("desiredStatus") != "STOPPED":
                out.append(f"lost write: StopTask of {arn} (op {op.id}) was acknowledged "
                           f"but its desired status is {task.get('desiredStatus')}")
    return out


def _services(ops: list[Op], final: FinalState) -> list[str]:
    out = []
    names = {op.args["service"] for op in ops
             if op.f in ("create_service", "update_service", "delete_service")}
    for name in sorted(names):
        mine = [op for op in ops if op.args.get("service") == name]
        created = [op for op in mine if op.f == "create_service" and op.ok]
        deletes = [op for op in mine if op.f == "delete_service" and op.maybe]
        svc = final.services.get(name)
        if created and (svc is None or svc.get("status") != "ACTIVE"):
            if not deletes:
                out.append(f"lost write: service {name} was created (op {created[0].id}) "
                           f"but is {'gone' if svc is None else svc.get('status')}")
            continue
        if svc is None or svc.get("status") != "ACTIVE":
            continue
        writes = [op for op in mine if op.f in ("create_service", "update_service")
                  and op.maybe and op.args.get("taskDefinition")]
        if writes:
            out += _last_write(name, "taskDefinition", writes, svc)
        counts = [op for op in mine if op.f in ("create_service", "update_service")
                  and op.maybe and op.args.get("desiredCount") is not None]
        if counts:
            out += _last_write(name, "desiredCount", counts, svc)
        if svc.get("runningCount") != svc.get("desiredCount"):
            out.append(f"service {name} runs {svc.get('runningCount')} tasks, "
                       f"desired {svc.get('desiredCount')}")
    return out


def _last_write(name: str, key: str, writes: list[Op], svc: dict) -> list[str]:
    """The final value must come from a write that no acknowledged write
    strictly follows (started after it completed)."""
    acked = [w for w in writes if w.ok]
    candidates = []
    for w in writes:
        end = w.end if w.ok else float("inf")
        superseded = any(a.start > end for a in acked if a is not w)
        if not superseded:
            candidates.append(w)
    allowed = {w.args[key] for w in candidates}
    if svc.get(key) not in allowed:
        return [f"service {name}: final {key} {svc.get(key)!r} is not the last acknowledged "
                f"write (allowed: {sorted(map(str, allowed))})"]
    return []


def _orphans(ops: list[Op], final: FinalState) -> list[str]:
    tokens = {op.args.get("clientToken") for op in ops if op.f == "run_task" and op.maybe}
    services = {op.args.get("service") for op in ops if op.f == "create_service" and op.maybe}
    out = []
    for arn, task in final.tasks.items():
        if task.get("desiredStatus") == "STOPPED":
            continue
        token, service = _token_of(task), _service_of(task)
        if token is not None and token in tokens:
            continue
        if service is not None and service in services:
            continue
        out.append(f"orphan: task {arn} (group {task.get('group')}) belongs to no operation")
    return out
