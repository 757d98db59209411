"""The stack's commands: install, up, down, status, logs, run, reset, apply, services."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Annotated, Optional

import typer
from rich.table import Table

from lakelab.console import console, fail
from lakelab.install import InstallError
from lakelab.resources import resources
from lakelab.secrets import SecretsError
from lakelab.settings import ROOT, Settings, get_settings
from services import supervisor
from services.registry import SERVICES, by_name

ServiceNames = Annotated[Optional[list[str]], typer.Argument(help="services (default: all but the optional ones)")]


def _compose(settings: Settings, *args: str) -> None:
    result = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), *args])
    if result.returncode != 0:
        fail(f"docker compose {' '.join(args)} failed (exit {result.returncode})")


def install(services: ServiceNames = None) -> None:
    """Download and install what the services need (idempotent; cached in LAKELAB_CACHE_DIR)."""
    settings = get_settings()
    try:
        supervisor.install(settings, services)
    except (InstallError, FileNotFoundError, KeyError) as exc:
        fail(str(exc))
    console.print(f"[green]installed[/] (cache: {settings.cache_dir})")


def up(services: ServiceNames = None) -> None:
    """Install on first use, start the services, wait until each really answers, apply resources."""
    settings = get_settings()
    began = time.monotonic()
    if settings.mode == "compose":
        # optional services (JupyterLab) have no container: they run natively beside the containers
        native = [name for name in services or [] if by_name(name).optional]
        containers = [name for name in services or [] if name not in native]
        if containers or not services:
            _compose(settings, "up", "-d", "--wait", *containers)
            supervisor.apply_resources(settings)
        if native:
            try:
                supervisor.up(settings, native)
            except (supervisor.StackError, InstallError, FileNotFoundError) as exc:
                fail(str(exc))
    else:
        try:
            supervisor.up(settings, services)
        except (supervisor.StackError, InstallError, SecretsError, FileNotFoundError, KeyError) as exc:
            fail(str(exc))
    console.print(f"[bold green]stack up[/] in {time.monotonic() - began:.1f} s")
    _print_status(settings)


def down(services: ServiceNames = None) -> None:
    """Stop the services this stack started (by PID); data is kept."""
    settings = get_settings()
    if settings.mode == "compose":
        native = [s.name for s in SERVICES if s.optional and (not services or s.name in services)]
        containers = [name for name in services or [] if name not in native]
        if containers or not services:
            _compose(settings, "stop", *containers)
        stopped = supervisor.down(settings, native)
        console.print(f"stopped natively: {', '.join(stopped) or 'nothing'}")
        return
    stopped = supervisor.down(settings, services)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def status() -> None:
    """Health of every service: mode, endpoint, health, PID, RSS."""
    settings = get_settings()
    if not _print_status(settings):
        raise typer.Exit(1)


def _print_status(settings: Settings) -> bool:
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


def logs(
    service: str,
    lines: Annotated[int, typer.Option("-n", help="lines to show")] = 50,
    follow: Annotated[bool, typer.Option("-f", help="keep printing new lines")] = False,
) -> None:
    """Show a service's log."""
    settings = get_settings()
    try:
        name = by_name(service).name
    except KeyError as exc:
        fail(str(exc.args[0]))
    if settings.mode == "compose":
        _compose(settings, "logs", f"--tail={lines}", *(["-f"] if follow else []), name)
        return
    path = supervisor.log_file(settings, name)
    if not path.exists():
        fail(f"no log for {name} yet ({path})")
    command = ["tail", f"-n{lines}", *(["-f"] if follow else []), str(path)]
    sys.exit(subprocess.call(command))


def run(service: str) -> None:
    """Run one service in the foreground with its native command (the compose images' entrypoint)."""
    settings = get_settings()
    try:
        target = by_name(service)
    except KeyError as exc:
        fail(str(exc.args[0]))
    target.prepare(settings)
    command = target.command(settings)
    if not command:
        fail(f"{target.name} has no long-running process")
    os.chdir(ROOT)
    os.umask(0o077)  # as `lakelab up` starts services: what they write is private
    os.execvpe(command[0], command, {**settings.child_env(target.secrets), **target.env(settings)})


def reset(yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Stop everything and delete all data (buckets, topics, tables, databases). Downloads stay cached."""
    settings = get_settings()
    if not yes:
        typer.confirm(f"Delete all lake data under {settings.state_dir}?", abort=True)
    if settings.mode == "compose":
        _compose(settings, "down", "--volumes")
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
