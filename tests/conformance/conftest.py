"""Fixtures for the berth ECS conformance suite.

* ``server``        session-scoped server shared by most tests
* ``fresh_server``  function-scoped berth server on its own data dir (kill/restart)
* ``two_accounts``  berth server started with ``--config`` holding two accounts
* ``recorder``      collects strict-validation violations of every response of
                    the test; the test fails at teardown if there are any
* ``ecs``           validating boto3 ECS client for ``server``
* ``make_ecs``      factory for more validating clients (other server / creds)
* ``logs``          validating boto3 CloudWatch Logs client for ``server``
* ``make_logs``     factory for more of those (e.g. on ``fresh_server``)
* ``secretsmanager`` / ``ssm``  validating boto3 Secrets Manager / SSM clients
* ``make_client``   factory for a validating client of any service (``service=``)
* ``cli``           the real aws-cli against ``server`` (validated by a plugin)
* ``raw``           hand-signed raw HTTP requests against ``server``
* ``name``          unique-name factory: ``name("cluster")``

Target: ``BERTH_CONFORMANCE_TARGET=berth`` (default) or ``moto``.  Against
moto, violations are reported but do not fail tests unless
``BERTH_CONFORMANCE_STRICT=1``; berth-only tests are skipped.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

import harness
from harness import BerthServer, Cli, RawClient, start_server, target_name, unique
from shape_validator import format_violations
from validation_hook import Recorder


def pytest_collection_modifyitems(config, items):
    if target_name() != "berth":
        skip = pytest.mark.skip(reason=f"berth-only test (target is {target_name()})")
        for item in items:
            if "berth_only" in item.keywords:
                item.add_marker(skip)


def _strict() -> bool:
    if os.environ.get("BERTH_CONFORMANCE_STRICT"):
        return os.environ["BERTH_CONFORMANCE_STRICT"] == "1"
    return target_name() == "berth"


@pytest.fixture(scope="session")
def target() -> str:
    return target_name()


@pytest.fixture(scope="session")
def is_berth(target) -> bool:
    return target == "berth"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("server")
    srv = start_server(workdir)
    yield srv
    alive = srv.alive()
    srv.stop()
    if not alive:
        pytest.fail(f"the shared {srv.name} server died during the run:\n{srv.tail_log()}")


def _new_berth(tmp_path: Path, config: Path | None = None) -> BerthServer:
    if target_name() != "berth":
        pytest.skip("needs a berth server")
    return BerthServer(tmp_path / "data", config=config).start()


@pytest.fixture
def fresh_server(tmp_path):
    srv = _new_berth(tmp_path)
    yield srv
    srv.stop()


ACCOUNT_A = harness.Creds("AKIABERTHTESTAAAAAAA", "secretA/" + "a" * 32, "111111111111")
ACCOUNT_A2 = harness.Creds("AKIABERTHTESTAAAAAA2", "secretA2/" + "c" * 31, "111111111111")
ACCOUNT_B = harness.Creds("AKIABERTHTESTBBBBBBB", "secretB/" + "b" * 32, "222222222222")


@pytest.fixture(scope="session")
def two_accounts(tmp_path_factory):
    """A berth server configured (``--config``) with keys for two accounts.

    ``.creds`` is ``[A, A2, B]``: two keys of account 111111111111 and one
    of account 222222222222.
    """
    if target_name() != "berth":
        pytest.skip("needs a berth server")
    tmp = tmp_path_factory.mktemp("accounts")
    config = tmp / "berth.toml"
    config.write_text("".join(
        f'[[credentials]]\naccess_key_id = "{c.access_key_id}"\n'
        f'secret_access_key = "{c.secret_access_key}"\naccount_id = "{c.account_id}"\n\n'
        for c in (ACCOUNT_A, ACCOUNT_A2, ACCOUNT_B)))
    srv = BerthServer(tmp / "data", config=config).start()
    yield srv
    srv.stop()


def _report(records, exc=None):
    """Fail (strict) or warn (lax) about invalid responses."""
    text = format_violations(records)
    msg = f"{len(records)} response(s) violated the service model:\n{text}"
    if not _strict():
        warnings.warn(f"[{target_name()}] {msg}")
        return
    if exc is not None:
        exc.add_note(msg)
        return
    pytest.fail(msg, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Check the responses seen while the test ran, so that an invalid
    response fails the test itself (not just its teardown)."""
    exc = None
    try:
        result = yield
    except BaseException as e:  # noqa: BLE001 - re-raised below
        exc = e
    rec = item.funcargs.get("recorder")
    records = rec.take() if isinstance(rec, Recorder) else []
    if records:
        _report(records, exc)
    if exc is not None:
        raise exc
    return result


@pytest.fixture
def recorder():
    """Collects model violations of every response of the test (boto3
    clients from ``ecs``/``make_ecs``, the ``cli`` and ``raw`` helpers)."""
    rec = Recorder(strict_envelope=_strict(), require_request_id=_strict())
    yield rec
    records = rec.take()  # responses seen during teardown of other fixtures
    if records:
        _report(records)


@pytest.fixture
def make_ecs(server, recorder):
    def make(srv=None, creds=None, **config):
        return (srv or server).client(creds=creds, recorder=recorder, **config)
    return make


@pytest.fixture
def ecs(make_ecs):
    return make_ecs()


@pytest.fixture
def make_logs(server, recorder):
    def make(srv=None, creds=None, **config):
        return (srv or server).client(creds=creds, recorder=recorder, service="logs", **config)
    return make


@pytest.fixture
def logs(make_logs):
    return make_logs()


@pytest.fixture
def make_client(server, recorder):
    def make(service, srv=None, creds=None, **config):
        return (srv or server).client(creds=creds, recorder=recorder, service=service, **config)
    return make


@pytest.fixture
def secretsmanager(make_client):
    return make_client("secretsmanager")


@pytest.fixture
def ssm(make_client):
    return make_client("ssm")


@pytest.fixture
def raw(server, recorder):
    return RawClient(server, recorder)


@pytest.fixture
def cli(server, recorder, tmp_path):
    return Cli(server, tmp_path / "cli", recorder)


@pytest.fixture
def name():
    return unique


@pytest.fixture(scope="session")
def account_id(server):
    return server.default_creds().account_id


@pytest.fixture(scope="session")
def region():
    return harness.REGION
