"""Native mode: start services as local processes, wait for real readiness, stop them by PID."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
from rich.console import Console
from tenacity import RetryError, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from lakelab.install import ensure_prerequisites
from lakelab.resources import resources
from lakelab.secrets import refuse_shipped_examples
from lakelab.settings import Settings, environment
from services.base import NotReady, Service, archives_being_made
from services.registry import SCALE_OUT, SERVICES, STARTED_BY_DEFAULT, TOOLS, by_name
from services.start_priority import StartPriority

console = Console(stderr=True)
GRACE_S = 30.0  # from SIGTERM to SIGKILL
ARCHIVE_GRACE_S = 120.0  # a JVM writing its class archive at exit: on a first stop several do at once


class StackError(RuntimeError):
    """A service could not be started or did not become ready; the message names it."""


class ServiceDied(Exception):
    pass


@dataclass
class ServiceStatus:
    name: str
    endpoint: str
    healthy: bool
    detail: str
    pid: int | None
    rss_bytes: int
    not_started: bool = False   # an optional service nobody started: not a failure


def pid_file(settings: Settings, name: str) -> Path:
    return settings.pids_dir / f"{name}.pid"


def log_file(settings: Settings, name: str) -> Path:
    return settings.logs_dir / f"{name}.log"


def running_pid(settings: Settings, name: str) -> int | None:
    """The PID we recorded for this service, if that process is still alive (not a reused PID)."""
    path = pid_file(settings, name)
    if not path.exists():
        return None
    pid_text, _, started = path.read_text().partition(" ")
    try:
        process = psutil.Process(int(pid_text))
        if process.status() == psutil.STATUS_ZOMBIE or abs(process.create_time() - float(started)) > 1:
            return None
        return process.pid
    except (psutil.NoSuchProcess, ValueError):
        return None


def tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return "(no log yet)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


NO_LISTENER = "no listener: the socket of a connection still closing"
LINGER_S = 5.0  # how long a port held by NO_LISTENER is waited for


def port_owner(port: int) -> str | None:
    """Who listens on 127.0.0.1:`port` (a name and PID when it can be told), NO_LISTENER when the
    port cannot be bound but nothing listens on it, or None when it is free."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return None
        except OSError:
            pass
    listeners = [c for c in psutil.net_connections("tcp")
                 if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN]
    for conn in listeners:
        if conn.pid:
            with suppress(psutil.NoSuchProcess):
                return f"{psutil.Process(conn.pid).name()} (PID {conn.pid})"
    return "another process" if listeners else NO_LISTENER


def held_ports(ports: Iterable[int]) -> list[tuple[int, str]]:
    """The ports of `ports` that cannot be bound, each with its owner (port_owner). A port that only a
    connection of a process that has just exited holds (a service stopped and started again at once:
    SeaweedFS's master port once stayed unbindable so) is waited for, LINGER_S at most."""
    ports = list(ports)
    return Retrying(
        stop=stop_after_delay(LINGER_S), wait=wait_fixed(0.1),
        retry=retry_if_result(lambda held: bool(held) and all(owner == NO_LISTENER for _, owner in held)),
        retry_error_callback=lambda state: state.outcome.result(),
    )(lambda: [(port, owner) for port in ports if (owner := port_owner(port))])


def _require_free_ports(settings: Settings, service: Service) -> None:
    """StackError naming who holds a port of the service."""
    if busy := held_ports(service.ports_of(settings)):
        taken = ", ".join(f"{port} by {owner}" for port, owner in busy)
        raise StackError(f"{service.name}: port already taken: {taken}. Stop it or change the port in .env")


def _spawn(settings: Settings, service: Service) -> int:
    _require_free_ports(settings, service)
    settings.make_state_dir()
    for folder in (settings.logs_dir, settings.pids_dir):
        folder.mkdir(exist_ok=True, mode=0o700)
    service.prepare(settings)
    service.remove_temp_files(settings)
    log = os.fdopen(os.open(log_file(settings, service.name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    log.write(f"\n==== lakelab starting {service.name} at {time.ctime()}\n".encode())
    log.flush()
    user = service.run_as_when_root if os.geteuid() == 0 else None
    process = subprocess.Popen(
        service.command(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=service.workdir(settings),
        env={**settings.child_env(service.secrets), **service.env(settings)},
        start_new_session=True,
        umask=0o077,  # what a service writes (logs, data, temp files) is private to the stack's user
        user=user,
        group=pwd.getpwnam(user).pw_gid if user else None,
    )
    log.close()
    started = psutil.Process(process.pid).create_time()
    pid_file(settings, service.name).write_text(f"{process.pid} {started}")
    return process.pid


def _wait_ready(settings: Settings, service: Service, pid: int | None, began: float) -> float:
    def check() -> None:
        if pid is not None and running_pid(settings, service.name) is None:
            raise ServiceDied()
        service.check(settings)

    try:
        for attempt in Retrying(
            stop=stop_after_delay(settings.startup_timeout_s),
            wait=wait_fixed(settings.startup_poll_s),
            retry=retry_if_exception_type((NotReady, OSError)),
        ):
            with attempt:
                check()
    except ServiceDied:
        raise StackError(
            f"{service.name} exited during startup. Last log lines "
            f"({log_file(settings, service.name)}):\n{tail(log_file(settings, service.name))}"
        ) from None
    except RetryError as exc:
        cause = exc.last_attempt.exception()
        raise StackError(
            f"{service.name} not ready after {settings.startup_timeout_s:.0f} s: {cause}\n"
            f"Last log lines ({log_file(settings, service.name)}):\n{tail(log_file(settings, service.name))}"
        ) from None
    return time.monotonic() - began


def install(settings: Settings, names: Iterable[str] | None = None) -> None:
    ensure_prerequisites()
    for service in _selected(names) if names is not None else [*_selected(None), *TOOLS, *SCALE_OUT]:
        service.install(settings)


def apply_resources(settings: Settings) -> None:
    """Create the declared buckets, topics and databases that do not exist yet."""
    for service in SERVICES:
        service.bootstrap(settings, resources())


def up(settings: Settings, names: Iterable[str] | None = None) -> dict[str, float]:
    """Install, start and wait for the selected services and their dependencies.
    Returns seconds from start (config, data folder init, spawn) to ready per service.

    Every service starts as soon as what it needs at start (`Service.needed_to_start`) is ready,
    not in waves: Trino's JVM, for one, starts with PostgreSQL instead of after the metastore. A
    service counts as ready for the others once its readiness check passed, its other
    dependencies are ready and its bootstrap ran."""
    refuse_shipped_examples(environment())
    selected = {s.name for s in _with_dependencies(_selected(names))}
    install(settings, None if names is None else selected)
    services = [s for s in SERVICES + SCALE_OUT if s.name in selected]
    ready = {s.name: threading.Event() for s in services}
    failed = threading.Event()
    priority = StartPriority(s.name for s in services if s.favoured_at_start and not running_pid(settings, s.name))

    def wait_for(service: Service, dependencies: Iterable[str]) -> None:
        for name in dependencies:
            while not ready[name].wait(0.05):
                if failed.is_set():
                    raise StackError(f"{service.name} not started: a service it depends on failed")

    def bring_up(service: Service) -> float:
        try:
            wait_for(service, service.needed_to_start)
            began = time.monotonic()
            pid = running_pid(settings, service.name)
            if pid is None:
                pid = _start(settings, service)
                priority.started(service.name, pid)
            seconds = _wait_ready(settings, service, pid, began)
            priority.ready(service.name)
            wait_for(service, service.depends_on)
            service.bootstrap(settings, resources())
        except BaseException:
            failed.set()
            raise
        console.print(f"[green]ready[/] {service.name} at {service.endpoint(settings)} ({seconds:.1f} s)")
        ready[service.name].set()
        return seconds

    try:
        with console.status(f"starting {', '.join(ready)}"), ThreadPoolExecutor(len(services)) as pool:
            futures = {s.name: pool.submit(bring_up, s) for s in services}
            errors = [f.exception() for f in futures.values() if f.exception() is not None]
    finally:
        priority.end()
    causes = [e for e in errors if "a service it depends on failed" not in str(e)]
    if errors:
        raise (causes or errors)[0]
    return {name: future.result() for name, future in futures.items()}


def _start(settings: Settings, service: Service) -> int:
    console.print(f"starting [bold]{service.name}[/] ({service.summary})")
    return _spawn(settings, service)


def down(settings: Settings, names: Iterable[str] | None = None) -> list[str]:
    """Stop the services we started; returns the names stopped, in the order they stopped."""
    return _stop(settings, [s for s in SERVICES + SCALE_OUT if names is None or s.name in names])


def _stop(settings: Settings, services: list[Service]) -> list[str]:
    """Each service stops once the services among these that depend on it have (Connect before
    Kafka, Trino before the metastore before PostgreSQL), all others at once: one after another,
    a whole stack took 20 s, mostly Connect's and Kafka's own shutdowns."""
    pids = {s.name: pid for s in services if (pid := running_pid(settings, s.name)) is not None}
    gone = {s.name: threading.Event() for s in services}
    stopped: list[str] = []

    def stop(service: Service) -> None:
        try:
            for dependent in services:
                if service.name in dependent.depends_on:
                    gone[dependent.name].wait()
            if service.name in pids:
                began = time.monotonic()
                _terminate(pids[service.name], service.stop_signal)
                stopped.append(service.name)
                console.print(f"[dim]stopped[/] {service.name} ({time.monotonic() - began:.1f} s)")
            pid_file(settings, service.name).unlink(missing_ok=True)
            service.remove_stray_sockets(settings)
        finally:
            gone[service.name].set()

    with console.status(f"stopping {', '.join(pids) or 'nothing'}"), ThreadPoolExecutor(len(services) or 1) as pool:
        list(pool.map(stop, services))
    return stopped


def _terminate(pid: int, stop_signal: signal.Signals = signal.SIGTERM, grace_s: float | None = None) -> None:
    """`stop_signal` to the process group we created for the service, then SIGKILL what is left. A JVM
    writing its class archive at exit gets longer (several write theirs at once on a first stop);
    an archive a killed JVM was writing is removed: the next start makes it again."""
    members = process_tree(pid)
    if not members:
        return
    archives = []
    for member in members:  # a child may be a zombie or just gone (PostgreSQL's backends as clients leave)
        with suppress(psutil.NoSuchProcess):
            archives += archives_being_made(member.cmdline())
    try:
        os.killpg(pid, stop_signal)
    except ProcessLookupError:
        return
    if grace_s is None:
        grace_s = ARCHIVE_GRACE_S if archives else GRACE_S
    alive = _wait_gone(members, grace_s)
    if not alive:
        return
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the group: a JVM's AOT cache is assembled by a child it starts at exit
    for process in alive:
        with suppress(psutil.NoSuchProcess):
            process.kill()
    _wait_gone(alive, 5)
    for archive in archives:
        for path in (archive, archive.with_name(f"{archive.name}.config")):
            path.unlink(missing_ok=True)


def _wait_gone(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Waits until the processes have exited; returns those still running. An exited process its
    parent has not reaped yet (a zombie) is gone: psutil's `wait_procs` waits for a zombie whose
    parent is another process until the timeout, so `lakelab down kafka`, run while the process
    that started Kafka (a test session) lives on, waited the whole grace period after Kafka had exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for process in processes:
            with suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                if not process.is_running():  # gone, its PID maybe taken by another process since
                    continue
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
                elif process.ppid() == os.getpid():
                    process.wait(0)  # our own child: reaped here, as wait_procs did
        if not alive or time.monotonic() >= deadline:
            return alive
        processes = alive
        time.sleep(0.05)


def status(settings: Settings) -> list[ServiceStatus]:
    def one(service: Service) -> ServiceStatus:
        pid = running_pid(settings, service.name)
        try:
            service.check(settings)
            healthy, detail = True, "ok"
        except Exception as exc:  # noqa: BLE001 - any failure is shown as the health column
            healthy, detail = False, str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
        not_started = service.optional and pid is None and not healthy
        return ServiceStatus(service.name, service.endpoint(settings), healthy, detail, pid,
                             rss_bytes(process_tree(pid)), not_started)

    with ThreadPoolExecutor(len(SERVICES)) as pool:
        return list(pool.map(one, SERVICES))


def process_tree(pid: int | None) -> list[psutil.Process]:
    """The process and its descendants; empty when it is gone."""
    if pid is None:
        return []
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_bytes(processes: Iterable[psutil.Process]) -> int:
    total = 0
    for process in processes:  # one may be gone by now
        with suppress(psutil.NoSuchProcess):
            total += process.memory_info().rss
    return total


def reset(settings: Settings) -> None:
    down(settings)
    shutil.rmtree(settings.postgres_data_dir, ignore_errors=True)
    # as root the data lives in /var/lib/lakelab/<state id>/: nothing of it stays, nor /var/lib/lakelab
    # once no other checkout keeps its data there
    for folder in (settings.postgres_data_dir.parent, settings.postgres_data_dir.parent.parent):
        with suppress(OSError):
            folder.rmdir()
    shutil.rmtree(settings.state_dir, ignore_errors=True)


def _selected(names: Iterable[str] | None) -> list[Service]:
    """The named services, or without names every service that is not optional."""
    if names is None:
        return list(STARTED_BY_DEFAULT)
    wanted = {by_name(n).name for n in names}
    return [s for s in SERVICES + TOOLS + SCALE_OUT if s.name in wanted]


def _with_dependencies(services: list[Service]) -> list[Service]:
    needed: set[str] = set()
    stack = [s.name for s in services]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(by_name(name).depends_on)
    return [s for s in SERVICES + SCALE_OUT if s.name in needed]
