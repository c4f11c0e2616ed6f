"""A berth cluster of several hosts on one Docker Engine, for tests that
need hosts with their own addresses that can be stopped or cut off.

One private network (unique name); one ``berth server`` container on it
(``--no-agent``: every task runs on an agent) with its port published on
127.0.0.1 for the test's boto3 clients; N ``berth agent`` containers, each a
host of its own (own address, own data dir), joining one cluster through
the server container's name. Images are built locally (``build_images``);
nothing is pulled.

Everything created carries the label ``berth.test-harness`` and the
creating process's pid, and ``teardown`` removes it all, including the task
containers the Docker runtime started for the cluster (label
``berth.cluster``). A run that was killed before its teardown leaves
containers whose creator is gone: ``reap_orphans`` (called by ``start``)
removes those.

Agents run with ``--runtime`` = ``runtime``: ``process`` (tasks are
processes inside the agent container, using the busybox in berth:local) or
``docker`` (the host's Docker socket is mounted; tasks are sibling
containers on the host daemon, image ``berth-test/busybox:latest``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import harness

BERTH_IMAGE = "berth:local"
TASK_IMAGE = "berth-test/busybox:latest"
SERVER_PORT = 8450
#: Every container and network this module creates carries these labels.
HARNESS_LABEL = "berth.test-harness"
HARNESS_PID_LABEL = "berth.test-harness.pid"
HARNESS_CLUSTER_LABEL = "berth.test-harness.cluster"
#: The Docker runtime's ownership labels on task containers.
LABEL_CLUSTER = "berth.cluster"
LABEL_TASK_ARN = "berth.task-arn"
LABEL_CONTAINER = "berth.container"
#: The agent (its id, in DATA_DIR/owner-id) whose container this is.
LABEL_OWNER = "berth.owner"
#: berth logs in colour even to a pipe.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class DockerError(RuntimeError):
    pass


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Runs the docker CLI; raises DockerError (with its stderr) on failure."""
    try:
        r = subprocess.run(["docker", *args], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError as e:
        raise DockerError("the docker CLI is not installed") from e
    if check and r.returncode != 0:
        raise DockerError(f"docker {shlex.join(args)} exited {r.returncode}: "
                          f"{r.stderr.strip()[-2000:]}")
    return r


def engine_problem() -> Optional[str]:
    """Why no Docker Engine can be used, or None when one answers."""
    try:
        r = docker("version", "--format", "{{.Server.Version}}", check=False, timeout=30)
    except DockerError as e:
        return str(e)
    except subprocess.TimeoutExpired:
        return "docker version did not answer within 30 s"
    if r.returncode != 0 or not r.stdout.strip():
        return f"no Docker Engine answers: {r.stderr.strip()[-500:]}"
    return None


def build_images(berth_bin: Optional[Path] = None) -> None:
    """Builds berth-test/busybox:latest and berth:local (quick when current)."""
    env = dict(os.environ, BERTH_BIN=str(berth_bin or harness.berth_bin()),
               BERTH_IMAGE=BERTH_IMAGE)
    for script in ("test-images.sh", "berth-image.sh"):
        r = subprocess.run([str(harness.REPO / "scripts" / script)], env=env,
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise DockerError(f"scripts/{script} failed ({r.returncode}):\n"
                              f"{r.stdout}{r.stderr}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ids(*filters: str, kind: str = "container") -> list[str]:
    args = ["ps", "-aq"] if kind == "container" else ["network", "ls", "-q"]
    for f in filters:
        args += ["--filter", f]
    return docker(*args).stdout.split()


def _labels(ref: str, kind: str = "container") -> dict[str, str]:
    r = docker(kind, "inspect", "--format", "{{json .Labels}}", ref, check=False) \
        if kind == "network" else \
        docker("inspect", "--format", "{{json .Config.Labels}}", ref, check=False)
    if r.returncode != 0:
        return {}
    return json.loads(r.stdout or "null") or {}


def remove_cluster_resources(run_id: str, cluster: Optional[str],
                             owners: tuple[str, ...] = ()) -> list[str]:
    """Removes every container and network of one harness run, and what the
    Docker runtime made for its cluster and its agents (task containers,
    awsvpc namespace holders, task volumes); returns what could not be
    removed."""
    problems = []
    containers = _ids(f"label={HARNESS_LABEL}={run_id}")
    if cluster:
        containers += _ids(f"label={LABEL_CLUSTER}={cluster}")
    for owner in owners:
        containers += _ids(f"label={LABEL_OWNER}={owner}")
    if containers:
        r = docker("rm", "-f", "-v", *sorted(set(containers)), check=False)
        if r.returncode != 0:
            problems.append(r.stderr.strip())
    for owner in owners:
        vols = docker("volume", "ls", "-q", "--filter", f"label={LABEL_OWNER}={owner}",
                      check=False).stdout.split()
        if vols:
            r = docker("volume", "rm", "-f", *vols, check=False)
            if r.returncode != 0:
                problems.append(r.stderr.strip())
    for net in _ids(f"label={HARNESS_LABEL}={run_id}", kind="network"):
        r = docker("network", "rm", net, check=False)
        if r.returncode != 0:
            problems.append(r.stderr.strip())
    return problems


def reap_orphans() -> None:
    """Removes what earlier runs left behind when they were killed before
    their teardown (their creating process is gone)."""
    runs: dict[str, tuple[Optional[str], set[str]]] = {}
    for kind in ("container", "network"):
        for ref in _ids(f"label={HARNESS_LABEL}", kind=kind):
            labels = _labels(ref, kind)
            pid = labels.get(HARNESS_PID_LABEL, "")
            if pid.isdigit() and _pid_alive(int(pid)):
                continue
            run = labels.get(HARNESS_LABEL)
            if not run:
                continue
            cluster, owners = runs.setdefault(run, (labels.get(HARNESS_CLUSTER_LABEL), set()))
            if kind == "container":
                owner = _agent_owner(ref)
                if owner:
                    owners.add(owner)
    for run, (cluster, owners) in runs.items():
        remove_cluster_resources(run, cluster, tuple(sorted(owners)))


def _agent_owner(container: str) -> Optional[str]:
    """The owner id of an agent container's Docker runtime, from the data
    dir it was given (a host path: see ``DockerCluster._start_agent``)."""
    r = docker("inspect", "--format", "{{json .Args}}", container, check=False)
    try:
        args = json.loads(r.stdout) if r.returncode == 0 else []
        data_dir = Path(args[args.index("--data-dir") + 1])
        return (data_dir / "owner-id").read_text().strip() or None
    except (ValueError, IndexError, AttributeError, OSError):
        return None


@dataclass
class Agent:
    """One `berth agent` container: a host of the cluster."""
    cluster: "DockerCluster"
    index: int
    name: str
    data_dir: Path
    availability_zone: str
    #: Learnt from the agent's data dir once it registered.
    instance_arn: Optional[str] = None
    #: Its addresses on the network, oldest first.
    ips: list[Optional[str]] = field(default_factory=list)

    # -- state -----------------------------------------------------------
    def ip(self) -> Optional[str]:
        """Its address on the cluster network (None when cut off)."""
        r = docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", self.name)
        nets = json.loads(r.stdout) or {}
        net = nets.get(self.cluster.network)
        return (net or {}).get("IPAddress") or None

    def running(self) -> bool:
        r = docker("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return r.returncode == 0 and r.stdout.strip() == "true"

    def owner_id(self) -> Optional[str]:
        """The id the Docker runtime labels this agent's containers with."""
        try:
            return (self.data_dir / "owner-id").read_text().strip() or None
        except OSError:
            return None

    def registered_arn(self) -> Optional[str]:
        """The container instance ARN the agent saved in its data dir."""
        try:
            saved = json.loads((self.data_dir / "instance.json").read_text())
        except (OSError, ValueError):
            return None
        return saved.get("container_instance_arn")

    def logs(self, tail: int = 80) -> str:
        return self.cluster.container_logs(self.name, tail)

    def exec(self, script: str, timeout: float = 30) -> str:
        """Runs a shell script inside the agent container (its busybox)."""
        return docker("exec", self.name, "/bin/sh", "-c", script, timeout=timeout).stdout

    # -- faults ----------------------------------------------------------
    def stop(self, timeout: int = 10) -> None:
        """`docker stop`: SIGTERM to the agent, SIGKILL after `timeout` s."""
        docker("stop", "-t", str(timeout), self.name)

    def kill(self) -> None:
        """`docker kill`: SIGKILL, no goodbye."""
        docker("kill", self.name)

    def start(self) -> None:
        """Starts the stopped container again (same data dir, same ARN)."""
        docker("start", self.name)

    def disconnect(self) -> None:
        """Cuts the host off the network (the control plane cannot reach
        it, nor it the control plane); its processes go on."""
        self.ips.append(self.ip())
        docker("network", "disconnect", self.cluster.network, self.name)

    def reconnect(self, same_address: bool = True) -> None:
        """Ends the cut. With ``same_address`` (a partition that heals) the
        host gets the address it had, so its open TCP connections live on;
        without, Docker picks one (a host that came back renumbered)."""
        args = ["network", "connect"]
        if same_address and self.ips and self.ips[-1]:
            args += ["--ip", self.ips[-1]]
        docker(*args, self.cluster.network, self.name)


class DockerServer(harness.Server):
    """The `berth server` container, as the suite's Server (so clients are
    built, and validated, exactly as for the local server)."""

    name = "berth-docker"

    def __init__(self, cluster: "DockerCluster", creds: harness.Creds):
        self.cluster = cluster
        self.creds = [creds]
        self.endpoint = ""
        self.log_path = Path("/nonexistent")

    def tail_log(self, n: int = 60) -> str:
        return self.cluster.container_logs(self.cluster.server_name, n)

    def alive(self) -> bool:
        r = docker("inspect", "--format", "{{.State.Running}}", self.cluster.server_name,
                   check=False)
        return r.returncode == 0 and r.stdout.strip() == "true"


class DockerCluster:
    """A server and `agents` agent containers on a private network.

    ``runtime``: the agents' ``--runtime``. ``workdir``: a host directory
    for the agents' data dirs. The server's liveness timings are short, for
    tests (see ``berth server --help``).
    """

    def __init__(self, workdir: Path, *, agents: int = 3, runtime: str = "docker",
                 disconnect_grace: int = 25, lost_timeout: int = 5,
                 image: str = BERTH_IMAGE, cluster: Optional[str] = None):
        self.run_id = f"bmh-{uuid.uuid4().hex[:10]}"
        self.workdir = Path(workdir)
        self.network = self.run_id
        self.server_name = f"{self.run_id}-server"
        self.cluster_name = cluster or f"mh-{self.run_id[4:]}"
        self.runtime = runtime
        self.image = image
        self.disconnect_grace = disconnect_grace
        self.lost_timeout = lost_timeout
        self.creds = harness.Creds("AKIABERTHMULTIHOST01", "mh/" + uuid.uuid4().hex + "x" * 8,
                                   "000000000000")
        self.server = DockerServer(self, self.creds)
        self.agents = [self._new_agent(i) for i in range(agents)]
        self.started = False

    def _new_agent(self, i: int) -> Agent:
        return Agent(self, i, f"{self.run_id}-agent{i + 1}",
                     self.workdir / f"agent{i + 1}", f"{harness.REGION}{'abcdefgh'[i % 8]}")

    # -- lifecycle -------------------------------------------------------
    def _labels(self) -> list[str]:
        out = []
        for k, v in ((HARNESS_LABEL, self.run_id), (HARNESS_PID_LABEL, str(os.getpid())),
                     (HARNESS_CLUSTER_LABEL, self.cluster_name)):
            out += ["--label", f"{k}={v}"]
        return out

    def start(self, timeout: float = 60) -> "DockerCluster":
        reap_orphans()
        self.started = True
        self._create_network()
        self._start_server(timeout)
        # The agent joins an existing cluster (only `default` is created
        # on demand), and exits if the server cannot be reached: the
        # cluster exists and the server answers before any agent starts.
        self.server.client().create_cluster(clusterName=self.cluster_name)
        for a in self.agents:
            self._start_agent(a)
        self.wait_registered(timeout)
        return self

    def _create_network(self) -> None:
        """A bridge network on a subnet of Docker's choosing, but pinned
        (created again with that subnet given), so that a host reconnected
        after a cut gets its own address back, as after a real partition
        (Docker accepts a fixed address only on a network with a
        user-configured subnet)."""
        docker("network", "create", *self._labels(), self.network)
        ipam = json.loads(docker("network", "inspect", "--format", "{{json .IPAM.Config}}",
                                 self.network).stdout)[0]
        docker("network", "rm", self.network)
        pinned = ["--subnet", ipam["Subnet"]]
        if ipam.get("Gateway"):
            pinned += ["--gateway", ipam["Gateway"]]
        docker("network", "create", *self._labels(), *pinned, self.network)

    def _start_server(self, timeout: float) -> None:
        docker("run", "-d", "--init", "--name", self.server_name, "--hostname", "server",
               *self._labels(), "--network", self.network,
               "--publish", f"127.0.0.1::{SERVER_PORT}",
               "-e", f"BERTH_ACCESS_KEY_ID={self.creds.access_key_id}",
               "-e", f"BERTH_SECRET_ACCESS_KEY={self.creds.secret_access_key}",
               "-e", f"BERTH_ACCOUNT_ID={self.creds.account_id}",
               "-e", "RUST_BACKTRACE=1",
               self.image, "berth", "server", "--listen", f"0.0.0.0:{SERVER_PORT}",
               "--data-dir", "/data", "--no-agent",
               "--agent-disconnect-grace", str(self.disconnect_grace),
               "--agent-lost-timeout", str(self.lost_timeout))
        port = docker("port", self.server_name, f"{SERVER_PORT}/tcp").stdout.split()[0]
        host, _, p = port.rpartition(":")
        self.server.endpoint = f"http://{host}:{p}"
        client = self.server.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.list_clusters()
                return
            except Exception as e:  # noqa: BLE001 - not up yet, or dead
                if not self.server.alive():
                    raise DockerError(f"berth server container exited:\n"
                                      f"{self.server.tail_log()}") from e
                if time.monotonic() > deadline:
                    raise DockerError(f"berth server did not answer within {timeout}s: "
                                      f"{e}\n{self.server.tail_log()}") from e
                time.sleep(0.2)

    def _start_agent(self, a: Agent) -> None:
        a.data_dir.mkdir(parents=True, exist_ok=True)
        args = ["run", "-d", "--init", "--name", a.name, "--hostname", f"agent{a.index + 1}",
                *self._labels(), "--network", self.network,
                # Same path inside and out: the Docker runtime may pass
                # paths under its data dir to the host daemon.
                "-v", f"{a.data_dir}:{a.data_dir}",
                "-e", f"AWS_ACCESS_KEY_ID={self.creds.access_key_id}",
                "-e", f"AWS_SECRET_ACCESS_KEY={self.creds.secret_access_key}",
                "-e", f"AWS_DEFAULT_REGION={harness.REGION}",
                "-e", "RUST_BACKTRACE=1"]
        if self.runtime in ("docker", "auto"):
            args += ["-v", "/var/run/docker.sock:/var/run/docker.sock"]
        args += [self.image, "berth", "agent",
                 "--endpoint", f"http://{self.server_name}:{SERVER_PORT}",
                 "--cluster", self.cluster_name, "--runtime", self.runtime,
                 "--data-dir", str(a.data_dir),
                 "--availability-zone", a.availability_zone]
        docker(*args)

    def add_agent(self, timeout: float = 60) -> Agent:
        """Starts one more agent (a host that joins the running cluster,
        with the next index, address and zone) and waits until it
        registered; it is torn down with the others."""
        assert self.started, "add_agent() needs a started cluster"
        a = self._new_agent(len(self.agents))
        self.agents.append(a)
        self._start_agent(a)
        self.wait_registered(timeout, agents=[a])
        return a

    def wait_registered(self, timeout: float = 60,
                        agents: Optional[list[Agent]] = None) -> None:
        """Waits until each of ``agents`` (default: all) registered."""
        deadline = time.monotonic() + timeout
        for a in self.agents if agents is None else agents:
            while (arn := a.registered_arn()) is None:
                if not a.running():
                    raise DockerError(f"agent {a.name} exited before registering:\n"
                                      f"{a.logs()}")
                if time.monotonic() > deadline:
                    raise DockerError(f"agent {a.name} did not register within {timeout}s:\n"
                                      f"{a.logs()}")
                time.sleep(0.2)
            a.instance_arn = arn
            a.ips = [a.ip()]

    def teardown(self) -> list[str]:
        """Removes everything this cluster created; returns what failed."""
        if not self.started:
            return []
        self.started = False
        owners = tuple(o for a in self.agents if (o := a.owner_id()))
        return remove_cluster_resources(self.run_id, self.cluster_name, owners)

    def leftovers(self) -> list[str]:
        """What of this cluster is still on the Engine (after teardown:
        nothing): containers, task containers, volumes, the network."""
        left = _ids(f"label={HARNESS_LABEL}={self.run_id}")
        left += _ids(f"label={LABEL_CLUSTER}={self.cluster_name}")
        for owner in (o for a in self.agents if (o := a.owner_id())):
            left += _ids(f"label={LABEL_OWNER}={owner}")
            left += docker("volume", "ls", "-q", "--filter",
                           f"label={LABEL_OWNER}={owner}").stdout.split()
        left += _ids(f"label={HARNESS_LABEL}={self.run_id}", kind="network")
        return sorted(set(left))

    def __enter__(self) -> "DockerCluster":
        try:
            return self.start()
        except BaseException:
            self.teardown()
            raise

    def __exit__(self, *exc) -> None:
        self.teardown()

    # -- lookups ---------------------------------------------------------
    def agent_for(self, instance_arn: str) -> Agent:
        return next(a for a in self.agents if a.instance_arn == instance_arn)

    def container_logs(self, name: str, tail: int = 80) -> str:
        r = docker("logs", "--tail", str(tail), name, check=False)
        return ANSI.sub("", (r.stdout + r.stderr).rstrip()) or "(no output)"

    def diagnostics(self, tail: int = 60) -> str:
        """Every berth container's state and last log lines."""
        parts = []
        for name in [self.server_name] + [a.name for a in self.agents]:
            r = docker("inspect", "--format", "{{.State.Status}} (exit {{.State.ExitCode}})",
                       name, check=False)
            parts.append(f"----- {name}: {r.stdout.strip() or r.stderr.strip()}\n"
                         f"{self.container_logs(name, tail)}")
        r = docker("ps", "-a", "--filter", f"label={LABEL_CLUSTER}={self.cluster_name}",
                   "--format", "{{.ID}} {{.Status}} {{.Labels}}", check=False)
        if r.stdout.strip():
            parts.append(f"----- task containers\n{r.stdout.rstrip()}")
        return "\n".join(parts)

    @contextlib.contextmanager
    def explain(self) -> Iterator[None]:
        """Adds the containers' logs to any failure raised inside."""
        try:
            yield
        except BaseException as e:
            if self.started:
                try:
                    e.add_note(f"docker cluster {self.run_id}:\n{self.diagnostics()}")
                except Exception as diag:  # noqa: BLE001 - keep the first error
                    e.add_note(f"(diagnostics failed: {diag})")
            raise

    # -- task containers, as the host sees them ---------------------------
    def task_containers(self, agent: Agent) -> dict[tuple[str, str], list[dict]]:
        """What really runs for the tasks on ``agent``'s host, by (task ARN
        or id, container name): each entry ``{"id": runtime id, "running":
        bool}``. Read from the host, not from berth's API."""
        if self.runtime == "process":
            return _process_containers(agent)
        owner = agent.owner_id()
        assert owner, f"{agent.name} has no owner-id in {agent.data_dir}"
        return self.docker_task_containers(f"label={LABEL_OWNER}={owner}")

    def still_running_for(self, agent: Agent) -> list[str]:
        """Whatever still runs on behalf of ``agent`` (ids): with the Docker
        runtime, its running containers on the host's Engine (task
        containers and namespace holders alike); with the process runtime,
        its tasks' live processes (none once its container stopped)."""
        if self.runtime == "process":
            return [c["id"] for v in _process_containers(agent).values()
                    for c in v if c["running"]]
        owner = agent.owner_id()
        assert owner, f"{agent.name} has no owner-id in {agent.data_dir}"
        return docker("ps", "-q", "--no-trunc", "--filter", f"label={LABEL_OWNER}={owner}",
                      "--filter", "status=running").stdout.split()

    def host_goes_away(self, agent: Agent) -> list[str]:
        """Plays the rest of a host failure after its agent was stopped:
        the Docker runtime's containers are siblings of the agent on the
        host's Engine and outlive it, so they are killed (by the agent's
        owner label); the process runtime's died with the agent's
        container. Returns the ids killed."""
        ids = self.still_running_for(agent) if self.runtime != "process" else []
        if ids:
            docker("kill", *ids)
        return ids

    def docker_task_containers(self, *filters: str) -> dict[tuple[str, str], list[dict]]:
        """Containers on the host's Engine matching ``filters``, by (task
        ARN, container name); awsvpc namespace holders are left out (they
        are no container of the task definition)."""
        args = ["ps", "-a", "--no-trunc", "--format", "{{.ID}}"]
        for f in filters:
            args += ["--filter", f]
        ids = docker(*args).stdout.split()
        out: dict[tuple[str, str], list[dict]] = {}
        if not ids:
            return out
        r = docker("inspect", "--format",
                   "{{json .Id}} {{json .State.Running}} {{json .Config.Labels}}", *ids,
                   check=False)
        for line in r.stdout.splitlines():
            cid, running, labels = line.split(" ", 2)
            labels = json.loads(labels) or {}
            if LABEL_CONTAINER not in labels:
                continue
            key = (labels.get(LABEL_TASK_ARN, "?"), labels[LABEL_CONTAINER])
            out.setdefault(key, []).append({"id": json.loads(cid),
                                            "running": json.loads(running),
                                            "labels": labels})
        return out


def _process_containers(agent: Agent) -> dict[tuple[str, str], list[dict]]:
    """The process runtime's containers on ``agent``: its state directories
    (``containers/<task id>/<name>/``, spec.json holds the runtime id) and
    whether the recorded process is alive (by pid and start time, as the
    runtime itself checks), read inside the agent container."""
    if not agent.running():
        return {}
    base = agent.data_dir / "containers"
    out: dict[tuple[str, str], list[dict]] = {}
    if not base.is_dir():
        return out

    def read_json(path: Path):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    # (dir, stored spec, the process's record, whether its exit is recorded)
    records = [(spec.parent, read_json(spec) or {}, read_json(spec.parent / "pid"),
                (spec.parent / "exit").exists())
               for spec in sorted(base.glob("*/*/spec.json"))]
    stats: dict[int, str] = {}
    pids = sorted({p["pid"] for _, _, p, _ in records if p})
    if pids:
        script = "; ".join(f"echo {p} $(cat /proc/{p}/stat 2>/dev/null)" for p in pids)
        for line in agent.exec(script).splitlines():
            pid, _, stat = line.partition(" ")
            stats[int(pid)] = stat
    for d, spec, pid, exited in records:
        alive = False
        if pid and not exited:
            stat = stats.get(pid["pid"], "")
            rest = stat[stat.rfind(")") + 1:].split() if ")" in stat else []
            alive = (len(rest) > 19 and rest[0] not in ("Z", "X")
                     and int(rest[19]) == pid["start_ticks"])
        labels = (spec.get("spec") or {}).get("labels") or {}
        key = (labels.get(LABEL_TASK_ARN, d.parent.name), d.name)
        out.setdefault(key, []).append({"id": spec.get("id"), "running": alive,
                                        "labels": labels})
    return out
