"""Start/stop servers under test and talk to them (boto3, aws-cli, raw HTTP).

Two targets are supported, chosen by ``BERTH_CONFORMANCE_TARGET``:

* ``berth`` (default): the real ``berth server`` binary (``BERTH_BIN`` or
  ``<repo>/target/debug/berth``), each instance on its own data directory.
* ``moto``: ``python3 -m moto.server`` -- only useful to develop the suite and
  to sanity-check the validator against a third-party implementation.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from unittest import mock
from urllib.parse import urlsplit, urlunsplit

import boto3
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from shape_validator import validate_response
from validation_hook import Recorder

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REGION = "us-east-1"
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113"
CONTENT_TYPE = "application/x-amz-json-1.1"
START_TIMEOUT = 30.0


def target_name() -> str:
    return os.environ.get("BERTH_CONFORMANCE_TARGET", "berth").strip().lower()


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def berth_bin() -> Path:
    env = os.environ.get("BERTH_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "berth"


@dataclass(frozen=True)
class Creds:
    access_key_id: str
    secret_access_key: str
    account_id: str = "123456789012"

    def botocore(self) -> Credentials:
        return Credentials(self.access_key_id, self.secret_access_key)


def parse_env_exports(text: str) -> dict[str, str]:
    """Parse ``export K=V`` lines as printed by ``berth env``."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = shlex.split(line)
        if parts and parts[0] == "export":
            parts = parts[1:]
        for part in parts:
            if "=" in part:
                k, v = part.split("=", 1)
                env[k] = v
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(host: str, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not accept connections")


class Server:
    """Common interface of the servers under test."""

    name = "server"
    endpoint: str = ""
    creds: list[Creds]
    log_path: Path

    # -- clients ---------------------------------------------------------
    def default_creds(self) -> Creds:
        return self.creds[0]

    def env(self, creds: Optional[Creds] = None) -> dict[str, str]:
        c = creds or self.default_creds()
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": c.access_key_id,
            "AWS_SECRET_ACCESS_KEY": c.secret_access_key,
            "AWS_DEFAULT_REGION": REGION,
        }

    def client(self, creds: Optional[Creds] = None, recorder: Optional[Recorder] = None,
               service: str = "ecs", **config: Any):
        c = creds or self.default_creds()
        session = boto3.session.Session(
            aws_access_key_id=c.access_key_id,
            aws_secret_access_key=c.secret_access_key,
            region_name=REGION,
        )
        cfg = Config(retries={"total_max_attempts": 1}, connect_timeout=5,
                     read_timeout=60, **config)
        client = session.client(service, endpoint_url=self.endpoint, config=cfg)
        if recorder is not None:
            recorder.attach(client)
        return client

    def tail_log(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def alive(self) -> bool:
        return getattr(self, "proc", None) is not None and self.proc.poll() is None


def _postgres_store() -> Optional[str]:
    """A fresh PostgreSQL database for one server when ``BERTH_TEST_STORE``
    names a PostgreSQL server (``postgres://…``, e.g. the URL that
    scripts/postgres-test.sh prints): the suite then runs on that backend.
    Unset or ``sqlite``: each server keeps its own SQLite file."""
    base = os.environ.get("BERTH_TEST_STORE", "").strip()
    if base in ("", "sqlite"):
        return None
    name = "berth_" + uuid.uuid4().hex[:16]
    r = subprocess.run(["psql", base, "-v", "ON_ERROR_STOP=1", "-qc",
                        f"CREATE DATABASE {name}"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"creating database {name} on BERTH_TEST_STORE failed: {r.stderr}")
    u = urlsplit(base)
    return urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


class BerthServer(Server):
    name = "berth"

    def __init__(self, data_dir: Path, config: Optional[Path] = None,
                 binary: Optional[Path] = None, runtime: Optional[str] = None,
                 extra_args: Optional[list[str]] = None):
        self.binary = Path(binary or berth_bin())
        # More `berth server` flags (timeouts, limits, --tls-cert, ...).
        self.extra_args = list(extra_args or [])
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        # Most suites run host processes; the Docker suites ask for docker.
        self.runtime = runtime or os.environ.get("BERTH_TEST_RUNTIME", "process")
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.server.log"
        self.proc: Optional[subprocess.Popen] = None
        self.creds = []
        self.exported_env: dict[str, str] = {}
        self.starts = 0
        # Its own database, kept across restarts, when the suite runs on PostgreSQL.
        self.store = _postgres_store()

    @property
    def endpoint_file(self) -> Path:
        return self.data_dir / "endpoint"

    def start(self) -> "BerthServer":
        if not self.binary.exists():
            raise FileNotFoundError(
                f"berth binary not found at {self.binary}; build it with "
                "`cargo build -p berth` or set BERTH_BIN")
        # A stale endpoint file from a previous (killed) run must not be
        # mistaken for the new one: the port may change on restart.
        try:
            self.endpoint_file.unlink()
        except FileNotFoundError:
            pass
        cmd = [str(self.binary), "server", "--listen", "127.0.0.1:0",
               "--data-dir", str(self.data_dir), "--runtime", self.runtime,
               # A service's task counts as started once up 2 s (10 s by
               # default), so that deployments finish quickly here.
               "--service-task-settle", "2"]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        if self.store is not None:
            cmd += ["--store", self.store]
        cmd += self.extra_args
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {shlex.join(cmd)}\n".encode())
        log.flush()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.pop("BERTH_STORE", None)  # only --store chooses, above
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"berth server exited with {self.proc.returncode} before "
                    f"listening:\n{self.tail_log()}")
            if self.endpoint_file.exists():
                text = self.endpoint_file.read_text().strip()
                if text.startswith("http"):
                    self.endpoint = text.rstrip("/")
                    break
            if time.monotonic() > deadline:
                self.kill9()
                raise TimeoutError(
                    f"{self.endpoint_file} did not appear within {START_TIMEOUT}s:\n"
                    f"{self.tail_log()}")
            time.sleep(0.05)
        u = urlsplit(self.endpoint)
        _wait_port(u.hostname, u.port, deadline)
        self._load_credentials()
        return self

    def _load_credentials(self) -> None:
        if self.config is not None:
            doc = tomllib.loads(Path(self.config).read_text())
        else:
            doc = tomllib.loads((self.data_dir / "credentials.toml").read_text())
        self.creds = [Creds(c["access_key_id"], c["secret_access_key"],
                            str(c.get("account_id", "123456789012")))
                      for c in doc.get("credentials", [])]
        if self.config is None:
            # The documented way for users: `eval "$(berth env)"`.
            out = self.run_cli("env", "--data-dir", str(self.data_dir))
            self.exported_env = parse_env_exports(out)
            ak = self.exported_env.get("AWS_ACCESS_KEY_ID")
            if ak:
                # put the key `berth env` hands out first
                self.creds.sort(key=lambda c: c.access_key_id != ak)

    def env(self, creds: Optional[Creds] = None) -> dict[str, str]:
        if creds is None and self.exported_env:
            env = dict(self.exported_env)
            env["AWS_ENDPOINT_URL"] = self.endpoint
            return env
        return super().env(creds)

    def run_cli(self, *args: str) -> str:
        r = subprocess.run([str(self.binary), *args], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"berth {shlex.join(args)} failed ({r.returncode}): {r.stderr}")
        return r.stdout

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self) -> "BerthServer":
        self.kill9()
        return self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.proc = None


class MotoServer(Server):
    name = "moto"

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "moto.log"
        self.creds = [Creds("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                            "123456789012")]
        self.proc = None

    def start(self) -> "MotoServer":
        port = _free_port()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        _wait_port("127.0.0.1", port, time.monotonic() + START_TIMEOUT)
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill9()

    def restart(self):
        raise NotImplementedError("moto keeps no state across restarts")


def start_server(workdir: Path, config: Optional[Path] = None) -> Server:
    if target_name() == "moto":
        return MotoServer(workdir).start()
    return BerthServer(workdir / "data", config=config).start()


# --------------------------------------------------------------------------
# Raw HTTP
# --------------------------------------------------------------------------

class RawResponse:
    def __init__(self, resp: requests.Response):
        self.status = resp.status_code
        self.headers = resp.headers
        self.content = resp.content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def error_code(self) -> Optional[str]:
        try:
            body = self.json()
        except ValueError:
            return None
        code = body.get("__type") if isinstance(body, dict) else None
        return code.split("#")[-1].split(":")[0] if isinstance(code, str) else None

    def __repr__(self) -> str:
        return f"<RawResponse {self.status} {self.text[:300]!r}>"


class JsonBodySigV4QueryAuth(SigV4QueryAuth):
    """Presigned (query-string) SigV4 that leaves the JSON body in the body.

    botocore's SigV4QueryAuth moves body parameters into the query string,
    which is meaningless for AWS JSON 1.1; here the body stays where it is
    and its SHA-256 is part of the canonical request, as for header auth.
    """

    def _modify_request_before_signing(self, request):
        data = request.data
        request.data = b""
        try:
            super()._modify_request_before_signing(request)
        finally:
            request.data = data


class RawClient:
    """Hand-built, hand-signed AWS JSON 1.1 requests.

    Every response is also run through the strict validator and recorded in
    ``recorder`` (if given) -- unless ``validate=False``.
    """

    def __init__(self, server: Server, recorder: Optional[Recorder] = None):
        self.server = server
        self.recorder = recorder

    def build(self, op: Optional[str], body: bytes | str | dict = b"{}", *,
              target: Optional[str] = None, headers: Optional[dict] = None,
              content_type: str = CONTENT_TYPE) -> AWSRequest:
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": content_type,
             "X-Amz-Target": target if target is not None else f"{TARGET_PREFIX}.{op}"}
        if headers:
            h.update(headers)
        return AWSRequest(method="POST", url=self.server.endpoint + "/", data=body, headers=h)

    def sign(self, req: AWSRequest, creds: Optional[Creds] = None, *, service: str = "ecs",
             region: str = REGION, query: bool = False, expires: int = 300,
             at: Optional[datetime.datetime] = None) -> AWSRequest:
        """SigV4-sign ``req`` (header auth, or query auth when ``query``),
        optionally pretending the clock says ``at`` (naive UTC)."""
        c = (creds or self.server.default_creds()).botocore()
        auth = JsonBodySigV4QueryAuth(c, service, region, expires=expires) if query \
            else SigV4Auth(c, service, region)
        if at is None:
            auth.add_auth(req)
        else:
            with mock.patch("botocore.auth.get_current_datetime", return_value=at):
                auth.add_auth(req)
        return req

    def send(self, req: AWSRequest, op: Optional[str] = None, *, validate: bool = True,
             body_override: Optional[bytes] = None) -> RawResponse:
        prepared = req.prepare()
        body = prepared.body if body_override is None else body_override
        resp = requests.post(prepared.url, data=body, headers=dict(prepared.headers),
                             timeout=60)
        raw = RawResponse(resp)
        if validate and self.recorder is not None:
            violations = validate_response(
                op, raw.content, raw.status, dict(raw.headers),
                strict_envelope=self.recorder.strict_envelope,
                require_request_id=self.recorder.require_request_id)
            self.recorder.add({"source": "raw", "op": op or "?", "status": raw.status,
                               "violations": violations,
                               "body": raw.text[:2000]})
        return raw

    def call(self, op: str, body: bytes | str | dict = b"{}", *,
             creds: Optional[Creds] = None, validate: bool = True, **build_kw) -> RawResponse:
        """Build, sign (header auth) and send one request."""
        req = self.sign(self.build(op, body, **build_kw), creds)
        return self.send(req, op, validate=validate)


# --------------------------------------------------------------------------
# aws-cli
# --------------------------------------------------------------------------

class CliError(Exception):
    def __init__(self, args, returncode: int, stdout: str, stderr: str):
        super().__init__(f"aws {shlex.join(args)} exited {returncode}: {stderr.strip()[-2000:]}")
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class Cli:
    """Runs the real ``aws`` command against a server.

    The CLI loads ``berth_cli_plugin`` (via a ``[plugins]`` section in a
    private ``AWS_CONFIG_FILE``) which validates every raw response it
    receives; the results are merged into ``recorder``.
    """

    def __init__(self, server: Server, workdir: Path, recorder: Optional[Recorder] = None,
                 creds: Optional[Creds] = None):
        self.server = server
        self.recorder = recorder
        self.creds = creds
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_file = self.workdir / "aws-config"
        self.config_file.write_text(
            "[default]\nregion = us-east-1\noutput = json\n\n"
            "[plugins]\nberth_validator = berth_cli_plugin\n")
        self.log_file = self.workdir / "aws-cli-responses.jsonl"
        self.calls = 0

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_CONFIG_FILE": str(self.config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.workdir / "no-credentials"),
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "AWS_PAGER": "",
            "BERTH_VALIDATION_LOG": str(self.log_file),
            "BERTH_STRICT_ENVELOPE": "1" if (self.recorder is None or
                                             self.recorder.strict_envelope) else "0",
            "PYTHONPATH": os.pathsep.join(
                [str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
        })
        return env

    def env(self) -> dict[str, str]:
        env = self.base_env()
        env.update(self.server.env(self.creds))
        return env

    def _collect(self) -> int:
        n = 0
        if self.log_file.exists():
            lines = self.log_file.read_text().splitlines()
            self.log_file.unlink()
            for line in lines:
                rec = json.loads(line)
                n += 1
                if self.recorder is not None:
                    self.recorder.add(rec)
        return n

    def run(self, *args: str, check: bool = True, shell: Optional[str] = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``aws <args>`` (or a bash script when ``shell`` is given)."""
        self.calls += 1
        if shell is not None:
            cmd = ["bash", "-c", shell]
        else:
            cmd = ["aws", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env(),
                           timeout=timeout, cwd=self.workdir)
        seen = self._collect()
        if shell is None and seen == 0 and r.returncode in (0, 254, 255) and \
                args[:1] in (("ecs",), ("logs",), ("secretsmanager",), ("ssm",), ("sqs",), ("events",)):
            # the plugin must have seen at least one response of a call to a berth service
            if self.recorder is not None and "Could not connect" not in r.stderr:
                self.recorder.add({"source": "aws-cli", "op": " ".join(args[:2]),
                                   "status": 0, "violations": [
                                       "validator plugin saw no response (plugin not loaded?)"],
                                   "body": r.stderr[-500:]})
        if check and r.returncode != 0:
            raise CliError(list(args) or [shell], r.returncode, r.stdout, r.stderr)
        return r

    def __call__(self, *args: str) -> Any:
        """``aws ecs ... --output json``: parsed JSON (None for empty output)."""
        r = self.run(*args, "--output", "json")
        return json.loads(r.stdout) if r.stdout.strip() else None

    def fails(self, *args: str) -> tuple[int, str]:
        """Run a command that must fail; return (exit code, stderr)."""
        r = self.run(*args, "--output", "json", check=False)
        assert r.returncode != 0, f"aws {shlex.join(args)} unexpectedly succeeded: {r.stdout}"
        return r.returncode, r.stderr
