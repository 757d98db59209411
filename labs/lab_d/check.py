"""`lakelab lab-d check` (and `lakelab lab check D`): the steps of the course's CDC scenario (seed
002, "Scénario d'Utilisation de Debezium": installation, capture, publication sur Kafka,
consommation) in their order, each done or not yet, read from the stack: the source tables in
PostgreSQL, the connector's state in Kafka Connect, the change topics, the lake tables in Trino."""

from __future__ import annotations

from typing import Annotated

import typer
from psycopg import sql

from labs.lab_d.verify import compare
from labs.probes import topic_records, trino_rows
from labs.report import Step, check_or_fail
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings
from services.connect import client as connect
from services.postgres.client import get_client as postgres

LAB = resources().labs.lab_d


def source_counts(settings: Settings, schema: str, tables: list[str]) -> dict[str, int | None]:
    """Rows of each source table; None for a table that does not exist."""
    counts: dict[str, int | None] = {}
    with postgres(settings, LAB.source_database) as conn:
        for table in tables:
            if conn.execute("SELECT to_regclass(%s)", (f"{schema}.{table}",)).fetchone()[0] is None:
                counts[table] = None
            else:
                counts[table] = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                    sql.Identifier(schema, table))).fetchone()[0]
    return counts


def connector_state(settings: Settings, name: str) -> str:
    """RUNNING when the connector and all its tasks run; else its states, or "not registered"."""
    try:
        found = connect.status(settings, name)[0]
    except connect.ConnectorError:
        return "not registered"
    states = {found["connector"]["state"], *(t["state"] for t in found.get("tasks", []))}
    return "RUNNING" if states == {"RUNNING"} and found.get("tasks") else "/".join(sorted(states))


def steps(settings: Settings, schema: str = "public", connector: str = LAB.connector,
          topic_prefix: str = LAB.topic_prefix, table_suffix: str = "",
          tables: tuple[str, ...] = tuple(LAB.source_tables)) -> list[Step]:
    counts = source_counts(settings, schema, list(tables))
    state = connector_state(settings, connector)
    events = {t: topic_records(settings, f"{topic_prefix}.{schema}.{t}") for t in tables}
    lake = {t: trino_rows(settings, f'SELECT count(*) FROM "{t}{table_suffix}"', LAB.database, "hudi") for t in tables}
    lake_counts = {t: rows[0][0] if rows else None for t, rows in lake.items()}
    diffs = [compare(settings, schema, t, f"{t}{table_suffix}") for t in tables] if all(
        n is not None for n in [*counts.values(), *lake_counts.values()]) else []
    named = "" if connector == LAB.connector else f" --name {connector}"
    return [
        Step("PostgreSQL", "the shop's source tables, seeded", all(counts.values()),
             ", ".join(f"{t} {'missing' if n is None else n}" for t, n in counts.items()),
             "lakelab lab-d workload init"),
        Step("1. Installation de Debezium", "the connector watches the database", state == "RUNNING",
             f"{connector}: {state}", f"lakelab lab-d connector register{named}"),
        Step("2-3. Capture, Publication sur Kafka", "one topic of change events per table",
             all(events.values()), ", ".join(f"{topic_prefix}.{schema}.{t} {n or 0}" for t, n in events.items()),
             "the connector's snapshot fills them; then lakelab lab-d workload run --rate 20 --duration 30"),
        Step("4. Consommation", "the lake tables in Trino (hudi.cdc.*)", all(lake_counts.values()),
             ", ".join(f"{t}{table_suffix} {'missing' if n is None else n}" for t, n in lake_counts.items()),
             "lakelab lab-d sink (leave it running)"),
        Step("4. Consommation", "the lake mirrors the source: updates replace, deletes remove",
             bool(diffs) and all(d.equal for d in diffs),
             "; ".join(str(d).splitlines()[0][:60] for d in diffs) or "needs the lake tables",
             "lakelab lab-d workload run --rate 50 --duration 30, then lakelab lab-d verify --wait 60"),
    ]


def check(schema: Annotated[str, typer.Option(help="source schema")] = "public") -> None:
    """Which steps of Lab D are done, read from the stack; the hint for the next one."""
    check_or_fail("Lab D (seed 002): change data capture", lambda: steps(get_settings(), schema))
