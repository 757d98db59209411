"""`lakelab`: bring the lake up, look at it, take it down."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from lakelab import supervisor
from lakelab.install import InstallError
from lakelab.resources import load_resources
from lakelab.settings import ROOT, Settings, get_settings
from lakelab.stack import SERVICES, by_name

app = typer.Typer(help="A local-first AWS data lake: S3, Kafka, Spark + Hudi, Hive Metastore, Trino, Debezium.",
                  no_args_is_help=True)
console = Console()

ServiceNames = Annotated[Optional[list[str]], typer.Argument(help="services (default: all)")]


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _compose(settings: Settings, *args: str) -> None:
    result = subprocess.run(["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), *args])
    if result.returncode != 0:
        _fail(f"docker compose {' '.join(args)} failed (exit {result.returncode})")


@app.command()
def install(services: ServiceNames = None) -> None:
    """Download and install what the services need (idempotent; cached in LAKELAB_CACHE_DIR)."""
    settings = get_settings()
    try:
        supervisor.install(settings, services)
    except (InstallError, FileNotFoundError, KeyError) as exc:
        _fail(str(exc))
    console.print(f"[green]installed[/] (cache: {settings.cache_dir})")


@app.command()
def up(services: ServiceNames = None) -> None:
    """Install on first use, start the services, wait until each really answers, apply resources."""
    settings = get_settings()
    began = time.monotonic()
    if settings.mode == "compose":
        _compose(settings, "up", "-d", "--wait", *(services or []))
        supervisor.apply_resources(settings)
    else:
        try:
            supervisor.up(settings, services)
        except (supervisor.StackError, InstallError, FileNotFoundError, KeyError) as exc:
            _fail(str(exc))
    console.print(f"[bold green]stack up[/] in {time.monotonic() - began:.1f} s")
    _print_status(settings)


@app.command()
def down(services: ServiceNames = None) -> None:
    """Stop the services this stack started (by PID); data is kept."""
    settings = get_settings()
    if settings.mode == "compose":
        _compose(settings, "stop", *(services or []))
        return
    stopped = supervisor.down(settings, services)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status() -> None:
    """Health of every service: mode, endpoint, health, PID, RSS."""
    settings = get_settings()
    if not _print_status(settings):
        raise typer.Exit(1)


def _print_status(settings: Settings) -> bool:
    table = Table("service", "mode", "endpoint", "health", "PID", "RSS")
    statuses = supervisor.status(settings)
    for s in statuses:
        health = "[green]healthy[/]" if s.healthy else f"[red]down[/] {s.detail}"
        rss = f"{s.rss_bytes / 2**20:.0f} MiB" if s.rss_bytes else "-"
        table.add_row(s.name, settings.mode, s.endpoint, health, str(s.pid or "-"), rss)
    total = sum(s.rss_bytes for s in statuses)
    table.caption = f"total RSS {total / 2**30:.2f} GiB"
    console.print(table)
    return all(s.healthy for s in statuses)


@app.command()
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
        _fail(str(exc.args[0]))
    if settings.mode == "compose":
        _compose(settings, "logs", f"--tail={lines}", *(["-f"] if follow else []), name)
        return
    path = supervisor.log_file(settings, name)
    if not path.exists():
        _fail(f"no log for {name} yet ({path})")
    command = ["tail", f"-n{lines}", *(["-f"] if follow else []), str(path)]
    sys.exit(subprocess.call(command))


@app.command()
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


@app.command()
def apply() -> None:
    """Apply the declared resources (resources.yaml) to the running stack, idempotently."""
    settings = get_settings()
    supervisor.apply_resources(settings)
    resources = load_resources()
    console.print(
        f"applied {len(resources.buckets)} buckets, {len(resources.topics)} topics, "
        f"{len(resources.postgres_databases)} PostgreSQL and {len(resources.metastore_databases)} metastore databases"
    )


@app.command("services")
def list_services() -> None:
    """List the services of the stack."""
    settings = get_settings()
    table = Table("service", "what", "endpoint", "needs")
    for service in SERVICES:
        table.add_row(service.name, service.summary, service.endpoint(settings), ", ".join(service.depends_on))
    console.print(table)


if __name__ == "__main__":
    app()
