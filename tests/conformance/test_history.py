"""The fault tests' history checker on histories made by hand (no server)."""

from history import FinalState, History, check


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 1.0
        return self.t


def _task(token=None, group=None, desired="RUNNING"):
    tags = [{"key": "client-token", "value": token}] if token else []
    return {"lastStatus": "RUNNING", "desiredStatus": desired, "group": group or "family:x",
            "tags": tags}


def _service(td, desired=2, running=2, status="ACTIVE"):
    return {"taskDefinition": td, "desiredCount": desired, "runningCount": running,
            "status": status}


def test_a_valid_history_has_no_anomalies():
    h = History(Clock())
    a = h.invoke("c1", "run_task", clientToken="t1", count=1)
    b = h.invoke("c2", "run_task", clientToken="t1", count=1)  # the same token, elsewhere
    h.complete(a, "ok", {"tasks": ["arn:1"]})
    h.complete(b, "ok", {"tasks": ["arn:1"]})
    s = h.invoke("c1", "stop_task", task="arn:1")
    h.complete(s, "ok")
    c = h.invoke("c1", "create_service", service="web", taskDefinition="td:1", desiredCount=2)
    h.complete(c, "ok")
    u = h.invoke("c2", "update_service", service="web", taskDefinition="td:2")
    h.complete(u, "ok")
    final = FinalState(
        tasks={"arn:1": _task("t1", desired="STOPPED"),
               "arn:s1": _task(group="service:web"), "arn:s2": _task(group="service:web")},
        services={"web": _service("td:2")})
    assert check(h.ops, final) == []


def test_a_lost_acknowledged_task_is_found():
    h = History(Clock())
    a = h.invoke("c1", "run_task", clientToken="t1", count=1)
    h.complete(a, "ok", {"tasks": ["arn:1"]})
    problems = check(h.ops, FinalState(tasks={}, services={}))
    assert len(problems) == 1 and problems[0].startswith("lost write: RunTask t1")


def test_one_token_that_made_two_tasks_is_a_duplicate():
    h = History(Clock())
    for p in ("c1", "c2"):
        op = h.invoke(p, "run_task", clientToken="t1", count=1)
        h.complete(op, "info", error="timeout")
    final = FinalState(tasks={"arn:1": _task("t1"), "arn:2": _task("t1")}, services={})
    assert any(p.startswith("duplicate: clientToken t1") for p in check(h.ops, final))


def test_two_answers_for_one_token_are_a_duplicate():
    h = History(Clock())
    for p, arn in (("c1", "arn:1"), ("c2", "arn:2")):
        op = h.invoke(p, "run_task", clientToken="t1", count=1)
        h.complete(op, "ok", {"tasks": [arn]})
    final = FinalState(tasks={"arn:1": _task("t1"), "arn:2": _task("t1")}, services={})
    assert any("answered with different tasks" in p for p in check(h.ops, final))


def test_an_acknowledged_stop_that_did_not_stick_is_lost():
    h = History(Clock())
    a = h.invoke("c1", "run_task", clientToken="t1", count=1)
    h.complete(a, "ok", {"tasks": ["arn:1"]})
    s = h.invoke("c1", "stop_task", task="arn:1")
    h.complete(s, "ok")
    problems = check(h.ops, FinalState(tasks={"arn:1": _task("t1")}, services={}))
    assert any(p.startswith("lost write: StopTask") for p in problems)


def test_a_service_must_end_on_its_last_acknowledged_update():
    h = History(Clock())
    c = h.invoke("c1", "create_service", service="web", taskDefinition="td:1", desiredCount=1)
    h.complete(c, "ok")
    u = h.invoke("c1", "update_service", service="web", taskDefinition="td:2")
    h.complete(u, "ok")
    final = FinalState(tasks={"arn:s": _task(group="service:web")},
                       services={"web": _service("td:1", desired=1, running=1)})
    assert any("final taskDefinition 'td:1'" in p for p in check(h.ops, final))


def test_concurrent_or_unknown_updates_may_win():
    h = History(Clock())
    c = h.invoke("c1", "create_service", service="web", taskDefinition="td:1", desiredCount=1)
    h.complete(c, "ok")
    a = h.invoke("c1", "update_service", service="web", taskDefinition="td:2")
    b = h.invoke("c2", "update_service", service="web", taskDefinition="td:3")
    h.complete(a, "ok")
    h.complete(b, "ok")
    t = h.invoke("c3", "update_service", service="web", taskDefinition="td:4")
    h.complete(t, "info", error="connection reset")
    tasks = {"arn:s": _task(group="service:web")}
    for td in ("td:2", "td:3", "td:4"):
        final = FinalState(tasks=tasks, services={"web": _service(td, desired=1, running=1)})
        assert check(h.ops, final) == [], td
    final = FinalState(tasks=tasks, services={"web": _service("td:1", desired=1, running=1)})
    assert check(h.ops, final) != []


def test_a_refused_update_cannot_win():
    h = History(Clock())
    c = h.invoke("c1", "create_service", service="web", taskDefinition="td:1", desiredCount=1)
    h.complete(c, "ok")
    u = h.invoke("c1", "update_service", service="web", taskDefinition="td:2")
    h.complete(u, "fail", error="InvalidParameterException")
    final = FinalState(tasks={"arn:s": _task(group="service:web")},
                       services={"web": _service("td:2", desired=1, running=1)})
    assert check(h.ops, final) != []


def test_a_service_below_its_desired_count_is_reported():
    h = History(Clock())
    c = h.invoke("c1", "create_service", service="web", taskDefinition="td:1", desiredCount=3)
    h.complete(c, "ok")
    final = FinalState(tasks={}, services={"web": _service("td:1", desired=3, running=2)})
    assert any("runs 2 tasks, desired 3" in p for p in check(h.ops, final))


def test_a_task_nobody_asked_for_is_an_orphan():
    h = History(Clock())
    a = h.invoke("c1", "run_task", clientToken="t1", count=1)
    h.complete(a, "fail", error="ClusterNotFoundException")
    final = FinalState(tasks={"arn:1": _task("t1"), "arn:2": _task(group="service:ghost")},
                       services={})
    problems = check(h.ops, final)
    assert sum(p.startswith("orphan:") for p in problems) == 2
