"""The stack's commands: install, up, down, status, logs, run, reset, apply, services. Each works
in both modes: native processes (services/supervisor.py) or compose containers (services/compose.py)."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import threading
import time
from typing import Annotated, Optional

import typer
from rich.table import Table

from lakelab.console import console, fail
from lakelab.install import InstallError
from lakelab.resources import resources
from lakelab.secrets import SecretsError, refuse_shipped_examples
from lakelab.settings import Settings, environment, get_settings
from services import compose, supervisor
from services.base import Service, write_private
from services.registry import SERVICES, STARTED_BY_DEFAULT, TOOLS, by_name

ServiceNames = Annotated[Optional[list[str]], typer.Argument(help="services (default: all but the optional ones)")]
STACK_ERRORS = (supervisor.StackError, compose.ComposeError, InstallError, SecretsError, FileNotFoundError, KeyError)


def install(services: ServiceNames = None) -> None:
    """Download and install what the services need (idempotent; cached in LAKELAB_CACHE_DIR). In
    compose mode: what jobs run on the host (Spark), then the image every container runs."""
    settings = get_settings()
    try:
        if settings.mode == "compose":
            supervisor.install(settings, services if services else [tool.name for tool in TOOLS])
            seconds = compose.build(settings)
            console.print(f"[green]image[/] {settings.compose_image} built in {seconds:.0f} s")
        else:
            supervisor.install(settings, services)
    except STACK_ERRORS as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    console.print(f"[green]installed[/] (cache: {settings.cache_dir})")


def _running_in_the_other_mode(settings: Settings) -> str | None:
    """What of this checkout runs in the mode it is not set to, and the command that reaches it:
    `LAKELAB_MODE=compose make demo` followed by a plain `lakelab down` would otherwise stop nothing."""
    if settings.mode == "compose":
        processes = [s.name for s in SERVICES if supervisor.running_pid(settings, s.name)]
        return (f"the native stack of this checkout is running ({', '.join(processes)}): "
                "`lakelab down` without LAKELAB_MODE=compose stops it") if processes else None
    containers = compose.running_containers(settings)
    return (f"this checkout's compose stack is running ({len(containers)} containers of project "
            f"{settings.compose_project}): its commands need LAKELAB_MODE=compose, in the environment "
            "or .env (`LAKELAB_MODE=compose lakelab down` stops it)") if containers else None


def up(services: ServiceNames = None) -> None:
    """Install on first use, start the services, wait until each really answers, apply resources."""
    settings = get_settings()
    began = time.monotonic()
    if other := _running_in_the_other_mode(settings):
        fail(f"not started: {other}")
    try:
        if settings.mode == "compose":
            refuse_shipped_examples(environment())
            compose.up(settings, services)  # a named optional service starts its profile's container
        else:
            supervisor.up(settings, services)
    except STACK_ERRORS as exc:
        fail(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    console.print(f"[bold green]stack up[/] in {time.monotonic() - began:.1f} s")
    _print_status(settings)


def down(services: ServiceNames = None) -> None:
    """Stop the services this stack started; data is kept."""
    settings = get_settings()
    if settings.mode == "compose":
        try:
            compose.down(settings, services)
        except compose.ComposeError as exc:
            fail(str(exc))
        console.print(f"stopped: {', '.join(services or ['every container'])}")
    else:
        stopped = supervisor.down(settings, services)
        console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    if other := _running_in_the_other_mode(settings):
        console.print(f"[yellow]{other}[/]")


def status() -> None:
    """Health of every service: mode, endpoint, health, PID, RSS."""
    settings = get_settings()
    if other := _running_in_the_other_mode(settings):
        console.print(f"[yellow]{other}[/]")
    if not _print_status(settings):
        raise typer.Exit(1)


def _print_status(settings: Settings) -> bool:
    if settings.mode == "compose":
        return _print_containers(settings)
    table = Table("service", "mode", "endpoint", "health", "PID", "RSS")
    statuses = supervisor.status(settings)
    for s in statuses:
        health = ("[green]healthy[/]" if s.healthy else f"[dim]not started[/] (lakelab up {s.name})"
                  if s.not_started else f"[red]down[/] {s.detail}")
        rss = f"{s.rss_bytes / 2**20:.0f} MiB" if s.rss_bytes else "-"
        table.add_row(s.name, settings.mode, s.endpoint, health, str(s.pid or "-"), rss)
    total = sum(s.rss_bytes for s in statuses)
    table.caption = f"total RSS {total / 2**30:.2f} GiB"
    console.print(table)
    return all(s.healthy or s.not_started for s in statuses)


def _print_containers(settings: Settings) -> bool:
    """Compose mode: each container's health (its healthcheck) and memory against its limit; a
    service of the default profile without a container counts as down."""
    try:
        compose.require_daemon()
        containers = compose.status_of(settings)
    except compose.ComposeError as exc:
        fail(str(exc))
    table = Table("service", "mode", "endpoint", "health", "container", "memory / limit")
    endpoints = {service.name: service.endpoint(settings) for service in SERVICES}
    for c in containers:
        state = f"{c.state} (exit {c.exit_code})" if c.state == "exited" else c.state
        health = ("[green]healthy[/]" if c.healthy else f"[red]{state} {c.health}[/]".replace(" [/]", "[/]")) + (
            " [red]OOM-killed[/]" if c.oom_killed else "")
        memory = f"{c.memory_bytes / 2**20:.0f} / {c.memory_limit_bytes / 2**20:.0f} MiB" if c.state == "running" else "-"
        table.add_row(c.service, "compose", endpoints.get(c.service, "-"), health, c.container, memory)
    missing = [s.name for s in STARTED_BY_DEFAULT if s.name not in {c.service for c in containers}]
    for name in missing:
        table.add_row(name, "compose", endpoints[name], "[red]no container[/]", "-", "-")
    used = sum(c.memory_bytes for c in containers)
    limits = sum(c.memory_limit_bytes for c in containers if c.state == "running")
    table.caption = f"memory {used / 2**30:.2f} GiB in use, limits {limits / 2**30:.2f} GiB"
    console.print(table)
    return not missing and all(c.healthy and not c.oom_killed for c in containers)


def logs(
    service: str,
    lines: Annotated[int, typer.Option("-n", help="lines to show")] = 50,
    follow: Annotated[bool, typer.Option("-f", help="keep printing new lines")] = False,
) -> None:
    """Show a service's log."""
    settings = get_settings()
    name = _service(service).name
    if settings.mode == "compose":
        sys.exit(compose.logs(settings, name, lines, follow))
    path = supervisor.log_file(settings, name)
    if not path.exists():
        fail(f"no log for {name} yet ({path})")
    command = ["tail", f"-n{lines}", *(["-f"] if follow else []), str(path)]
    sys.exit(subprocess.call(command))


def _service(name: str) -> Service:
    try:
        return by_name(name)
    except KeyError as exc:
        fail(str(exc.args[0]))


def health_file(settings: Settings, name: str):
    """Where `lakelab run` keeps a service's readiness: `ready`, or `not ready: <reason>`."""
    return settings.run_dir(name) / "health"


def run(service: str) -> None:
    """Run one service in the foreground with its native start (each compose container's command):
    prepare, then the service's process with only its own secrets, as its parent. Its readiness
    check runs every second until it passes, then every 30 s; the answer is kept in a file that
    the container's healthcheck reads."""
    settings = get_settings()
    target = _service(service)
    try:
        refuse_shipped_examples(environment(), target.container_secrets())
        target.prepare(settings)
        target.remove_temp_files(settings)
    except (SecretsError, InstallError, RuntimeError) as exc:
        fail(f"{target.name}: {exc}")
    command = target.command(settings)
    if not command:
        fail(f"{target.name} has no long-running process")
    health = health_file(settings, target.name)
    write_private(health, "not ready: starting\n")
    user = target.run_as_when_root if os.geteuid() == 0 else None
    process = subprocess.Popen(
        command, cwd=target.workdir(settings), env={**settings.child_env(target.secrets), **target.env(settings)},
        umask=0o077,  # as `lakelab up` starts services: what they write is private
        user=user, group=pwd.getpwnam(user).pw_gid if user else None,
    )
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: process.send_signal(number))
    threading.Thread(target=_keep_checking, args=(settings, target, process, health), daemon=True).start()
    sys.exit(process.wait())


def _keep_checking(settings: Settings, target: Service, process: subprocess.Popen, health) -> None:
    """As the supervisor does natively, a service is ready once it answers and its declared
    resources exist: the services that start after it find their databases, buckets and topics."""
    began, answer, bootstrapped = time.monotonic(), "", False
    while process.poll() is None:
        try:
            target.check(settings)
            if not bootstrapped:
                target.bootstrap(settings, resources())
                bootstrapped = True
            now = "ready"
        except Exception as exc:  # noqa: BLE001 - any failure is "not ready", with its reason
            now = f"not ready: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
        if now != answer:
            write_private(health, now + "\n")
            print(f"lakelab: {target.name} {now} ({time.monotonic() - began:.1f} s)", flush=True)
            answer = now
        time.sleep(30 if answer == "ready" else 1)


def reset(yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Stop everything and delete all data (buckets, topics, tables, databases). Downloads stay cached."""
    settings = get_settings()
    if settings.mode == "native" and (other := _running_in_the_other_mode(settings)):
        fail(f"nothing deleted: {other}; `LAKELAB_MODE=compose lakelab reset --yes` deletes the data of both modes")
    if not yes:
        volumes = "the containers' volumes and " if settings.mode == "compose" else ""
        typer.confirm(f"Delete all lake data ({volumes}{settings.state_dir})?", abort=True)
    if settings.mode == "compose":
        try:
            compose.reset(settings)
        except compose.ComposeError as exc:
            fail(str(exc))
    else:
        supervisor.reset(settings)
    console.print("reset done")


def apply() -> None:
    """Apply the declared resources (resources.yaml) to the running stack, idempotently."""
    settings = get_settings()
    supervisor.apply_resources(settings)
    declared = resources()
    console.print(
        f"applied {len(declared.buckets)} buckets, {len(declared.topics)} topics, "
        f"{len(declared.postgres_databases)} PostgreSQL and {len(declared.metastore_databases)} metastore databases"
    )


def list_services() -> None:
    """List the services of the stack."""
    settings = get_settings()
    table = Table("service", "what", "endpoint", "needs")
    for service in SERVICES:
        table.add_row(service.name, service.summary, service.endpoint(settings), ", ".join(service.depends_on))
    console.print(table)
