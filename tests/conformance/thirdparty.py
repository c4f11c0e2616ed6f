"""Where the third-party tools' virtualenvs are (made by
scripts/thirdparty-venvs.sh), and the environment that points a tool at a
berth server the way a user would: AWS_ENDPOINT_URL, keys and region, and
nothing else of the harness's."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENVS = Path(os.environ.get("BERTH_THIRDPARTY_DIR", ROOT / "target" / "thirdparty"))


def venv(tool: str) -> Path:
    """The tool's virtualenv. Missing: a failure when the test command asks
    for the third-party suites (BERTH_THIRDPARTY=required, as scripts/test.sh
    does), else a skip that says how to make it."""
    path = VENVS / tool
    if (path / "bin" / "python").exists():
        return path
    message = f"no {tool} virtualenv at {path}: run scripts/thirdparty-venvs.sh"
    if os.environ.get("BERTH_THIRDPARTY") == "required":
        pytest.fail(message)
    pytest.skip(message)


def client_env(server, extra=None) -> dict:
    """What a user exports to use berth: the endpoint, a key, a region."""
    creds = server.default_creds()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.update(extra or {})
    return env
