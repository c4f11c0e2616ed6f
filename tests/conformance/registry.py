"""A private Docker registry on this machine, for repositoryCredentials:
Debian's ``docker-registry`` (the CNCF distribution) on 127.0.0.1 with
htpasswd auth. The Engine talks plain HTTP to registries on loopback, so
no certificate is needed. Images get in by ``docker push`` from a
throw-away client config, so the machine's own Docker login is untouched.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import bcrypt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, username: str, password: str):
        self.username, self.password = username, password
        self.dir = Path(tempfile.mkdtemp(prefix="berth-registry-"))
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> "Registry":
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt()).decode()
        (self.dir / "htpasswd").write_text(f"{self.username}:{hashed}\n")
        (self.dir / "config.yml").write_text(f"""version: 0.1
storage:
  filesystem:
    rootdirectory: {self.dir / "data"}
http:
  addr: {self.host}
auth:
  htpasswd:
    realm: berth-test
    path: {self.dir / "htpasswd"}
""")
        self.log = open(self.dir / "registry.log", "wb")
        self.proc = subprocess.Popen([binary, "serve", str(self.dir / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.dir / "registry.log").read_text())
                time.sleep(0.1)

    def push(self, local: str, name: str) -> str:
        """Pushes ``local`` as ``name`` and removes the tag from the Engine,
        so a task can only get it by pulling."""
        ref = f"{self.host}/{name}"
        config = self.dir / "docker-client"
        config.mkdir(exist_ok=True)
        docker = ["docker", "--config", str(config)]
        subprocess.run(docker + ["login", self.host, "-u", self.username, "--password-stdin"],
                       input=self.password.encode(), check=True, capture_output=True)
        subprocess.run(["docker", "tag", local, ref], check=True, capture_output=True)
        subprocess.run(docker + ["push", ref], check=True, capture_output=True)
        subprocess.run(["docker", "rmi", ref], check=True, capture_output=True)
        return ref

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
