"""`lakelab`: bring the lake up, look at it, take it down."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Annotated, Optional

import httpx
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
def run(service: str) -> None:
    """Run one service in the foreground with its native command (the compose images' entrypoint)."""
    settings = get_settings()
    try:
        target = by_name(service)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    target.prepare(settings)
    command = target.command(settings)
    if not command:
        _fail(f"{target.name} has no long-running process")
    os.chdir(ROOT)
    os.execvpe(command[0], command, {**settings.child_env(), **target.env(settings)})


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


connectors_app = typer.Typer(help="Kafka Connect connectors kept as JSON files in services/connect/connectors/.",
                              no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")


def _key_values(pairs: list[str]) -> dict[str, str]:
    bad = [p for p in pairs if "=" not in p]
    if bad:
        _fail(f"expected key=value, got {', '.join(bad)}")
    return dict(p.split("=", 1) for p in pairs)


@connectors_app.command("register")
def connectors_register(
    spec: Annotated[str, typer.Argument(help="a file in services/connect/connectors/ (name) or a path")] = "shop-postgres",
    name: Annotated[Optional[str], typer.Option(help="register under this name instead of the file's")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="config override key=value (repeatable)")] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for RUNNING (0: do not wait)")] = 90.0,
) -> None:
    """Create or update a connector from its JSON file and wait until it runs."""
    from services.connect import connectors

    try:
        result = connectors.register(get_settings(), spec, _key_values(set_ or []), name, wait)
    except (connectors.ConnectorError, FileNotFoundError, httpx.HTTPError) as exc:
        _fail(str(exc))
    console.print(f"[green]registered[/] {result['name']}: {result['connector']['state']}")


@connectors_app.command("status")
def connectors_status(name: Annotated[Optional[str], typer.Argument(help="one connector (default: all)")] = None) -> None:
    """State of the connectors and their tasks; exits 1 if one is not RUNNING."""
    from services.connect import connectors

    try:
        found = connectors.status(get_settings(), name)
    except (connectors.ConnectorError, httpx.HTTPError) as exc:
        _fail(str(exc))
    table = Table("connector", "class", "state", "tasks", "topic prefix", "slot", "worker")
    for item in found:
        config = item["config"]
        tasks = ", ".join(f"{t['id']}:{t['state']}" for t in item.get("tasks", [])) or "-"
        table.add_row(item["name"], config.get("connector.class", "?").rsplit(".", 1)[-1], item["connector"]["state"],
                      tasks, config.get("topic.prefix", "-"), config.get("slot.name", "-"),
                      item["connector"].get("worker_id", "-"))
        for task in item.get("tasks", []):
            if task.get("trace"):
                console.print(f"[red]{item['name']} task {task['id']}:[/] {task['trace'].splitlines()[0]}")
    console.print(table if found else "no connectors registered")
    healthy = all(i["connector"]["state"] == "RUNNING" and all(t["state"] == "RUNNING" for t in i.get("tasks", []))
                  for i in found)
    if not healthy:
        raise typer.Exit(1)


@connectors_app.command("remove")
def connectors_remove(
    name: str,
    purge: Annotated[bool, typer.Option(help="also reset offsets, drop the replication slot and publication, "
                                             "and delete the connector's topics")] = False,
) -> None:
    """Delete a connector (optionally everything it left behind)."""
    from services.connect import connectors

    try:
        removed = connectors.remove(get_settings(), name, purge)
    except (connectors.ConnectorError, httpx.HTTPError) as exc:
        _fail(str(exc))
    console.print(f"removed: {', '.join(removed)}")


@app.command("services")
def list_services() -> None:
    """List the services of the stack."""
    settings = get_settings()
    table = Table("service", "what", "endpoint", "needs")
    for service in SERVICES:
        table.add_row(service.name, service.summary, service.endpoint(settings), ", ".join(service.depends_on))
    console.print(table)


@app.command()
def demo(
    keep: Annotated[bool, typer.Option("--keep", help="continue the existing table and checkpoint")] = False,
    rate: Annotated[float, typer.Option(help="generator records per second")] = 50.0,
    trigger: Annotated[float, typer.Option(help="streaming micro-batch interval, seconds")] = 5.0,
) -> None:
    """Lab A on the running stack: IoT records with a changing schema upserted into Hudi, read in Trino."""
    from lakelab.commands import lab_a

    lab_a.run(get_settings(), keep=keep, rate=rate, trigger=trigger, console=console)


from lakelab.commands import lab_b  # noqa: E402  (Lab B's commands and the SQL entry point)

app.add_typer(lab_b.app, name="lab-b")
app.command("sql")(lab_b.sql_command)

from lakelab.commands import lab_c as cli_lab_c  # noqa: E402  (Lab C: ingest, workflow, runs, versions, quality, catalog)

cli_lab_c.register(app)


if __name__ == "__main__":
    app()
