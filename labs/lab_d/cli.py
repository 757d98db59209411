"""`lakelab lab-d ...`: change data capture from PostgreSQL into Hudi tables.

    lakelab lab-d workload init                # the shop tables, seeded
    lakelab lab-d connector register           # Debezium on Kafka Connect, from its JSON file
    lakelab lab-d sink                         # the Spark job: change topics -> Hudi tables (long-running)
    lakelab lab-d workload run --rate 200      # inserts, updates and deletes at a rate
    lakelab lab-d verify                       # every source row equals its lake row
    lakelab lab-d check                        # which steps are done, the hint for the next
    lakelab lab-d reset                        # the lab back to its start (connector, topics, tables)
"""

from __future__ import annotations

from typing import Annotated, Optional

import httpx
import typer
from rich.table import Table

from labs.lab_d.check import check
from labs.lab_d.reset import reset_command
from labs.lab_d.verify import wait_equal
from lakelab.cli import lazy_commands
from lakelab.console import console, fail
from lakelab.resources import resources
from lakelab.settings import get_settings
from producers.lab_d import workload_init, workload_run
from services.connect import client as connect

LAB = resources().labs.lab_d

# The Spark job loads pyspark, which takes seconds: it is imported only when it runs.
app = typer.Typer(cls=lazy_commands({"sink": "spark_jobs.lab_d:sink"}), no_args_is_help=True,
                  help="Lab D: PostgreSQL -> Debezium -> Kafka -> Spark -> Hudi tables mirroring the source.")
workload_app = typer.Typer(help="The shop's tables and a workload of inserts, updates and deletes.",
                           no_args_is_help=True)
workload_app.command("init")(workload_init)
workload_app.command("run")(workload_run)
app.add_typer(workload_app, name="workload")
app.command("check")(check)
app.command("reset")(reset_command)


@app.command()
def verify(
    schema: Annotated[str, typer.Option(help="source schema")] = "public",
    tables: Annotated[str, typer.Option(help="comma-separated source tables")] = ",".join(LAB.source_tables),
    table_suffix: Annotated[str, typer.Option(help="appended to each lake table name")] = "",
    catalog: Annotated[str, typer.Option(help="hudi or hive")] = "hudi",
    wait: Annotated[float, typer.Option(help="poll up to this many seconds for equality")] = 0.0,
) -> None:
    """Compare every source table with its lake copy, row for row; exit 1 on any difference."""
    diffs = wait_equal(get_settings(), schema, [t for t in tables.split(",") if t], table_suffix, catalog, wait)
    for diff in diffs:
        console.print(str(diff), highlight=False)
    if not all(d.equal for d in diffs):
        raise typer.Exit(1)


connector_app = typer.Typer(help="The Debezium connector, kept as JSON in services/connect/connectors/.",
                            no_args_is_help=True)
app.add_typer(connector_app, name="connector")


def _key_values(pairs: list[str]) -> dict[str, str]:
    bad = [p for p in pairs if "=" not in p]
    if bad:
        fail(f"expected key=value, got {', '.join(bad)}")
    return dict(p.split("=", 1) for p in pairs)


@connector_app.command("register")
def connector_register(
    spec: Annotated[str, typer.Argument(help="a file in services/connect/connectors/ (name) or a path")] = LAB.connector,
    name: Annotated[Optional[str], typer.Option(help="register under this name instead of the file's")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="config override key=value (repeatable)")] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for RUNNING (0: do not wait)")] = 90.0,
) -> None:
    """Create or update a connector from its JSON file and wait until it runs."""
    try:
        result = connect.register(get_settings(), spec, _key_values(set_ or []), name, wait)
    except (connect.ConnectorError, FileNotFoundError, httpx.HTTPError) as exc:
        fail(str(exc))
    console.print(f"[green]registered[/] {result['name']}: {result['connector']['state']}")


@connector_app.command("status")
def connector_status(name: Annotated[Optional[str], typer.Argument(help="one connector (default: all)")] = None) -> None:
    """State of the connectors and their tasks; exits 1 if one is not RUNNING."""
    try:
        found = connect.status(get_settings(), name)
    except (connect.ConnectorError, httpx.HTTPError) as exc:
        fail(str(exc))
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


@connector_app.command("remove")
def connector_remove(
    name: str,
    purge: Annotated[bool, typer.Option(help="also reset offsets, drop the replication slot and publication, "
                                             "and delete the connector's topics")] = False,
) -> None:
    """Delete a connector (optionally everything it left behind)."""
    try:
        removed = connect.remove(get_settings(), name, purge)
    except (connect.ConnectorError, httpx.HTTPError) as exc:
        fail(str(exc))
    console.print(f"removed: {', '.join(removed)}")
