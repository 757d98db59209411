"""`lakelab lab-d reset` (and `lakelab reset-lab D`): Lab D back to its start, the other labs
untouched: the connector with everything it left (offsets, replication slot, publication, change
topics), the dead-letter topic's records, the lake tables (metastore entries and files), the
sink's checkpoint, and the source tables themselves (the lab starts with `workload init`). Stop
`lakelab lab-d sink` first."""

from __future__ import annotations

import shutil
from typing import Annotated

import typer
from psycopg import sql

from labs.probes import drop_table, empty_prefix, empty_topic
from labs.report import confirm_and_print
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings
from services.connect import client as connect
from services.postgres.client import get_client as postgres
from services.s3.client import parse_uri

LAB = resources().labs.lab_d


def reset(settings: Settings, schema: str = "public", connector: str = LAB.connector,
          topic_prefix: str = LAB.topic_prefix, table_suffix: str = "",
          dead_letter_topic: str = LAB.dead_letter_topic, tables: tuple[str, ...] = tuple(LAB.source_tables)) -> list[str]:
    """What was removed, one line each."""
    # the sink's own naming of its tables and checkpoint; importing it loads pyspark (no JVM starts)
    from spark_jobs.lab_d import SinkConfig

    try:
        removed = connect.remove(settings, connector, purge=True)
    except connect.ConnectorError:
        removed = [f"connector {connector}: none"]
    config = SinkConfig(topic_prefix=topic_prefix, tables=tables, table_suffix=table_suffix)
    removed.append(f"topic {dead_letter_topic}: {empty_topic(settings, dead_letter_topic)} records")
    for table in tables:
        lake_table = config.lake_table(table)
        bucket, key = parse_uri(config.table_path(table))
        dropped = drop_table(settings, config.database, lake_table)
        files = empty_prefix(settings, bucket, key.rstrip("/") + "/")
        removed.append(f"table {config.database}.{lake_table}: {'dropped' if dropped else 'none'}, {files} objects")
    shutil.rmtree(config.checkpoint_location(settings), ignore_errors=True)
    removed.append(f"checkpoint {config.checkpoint_location(settings)}")
    with postgres(settings, LAB.source_database, autocommit=True) as conn:
        for table in reversed(tables):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, table)))
    removed.append(f"source tables {LAB.source_database}.{schema}.{{{','.join(tables)}}}")
    return removed


def reset_command(yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Lab D back to its start: connector, slot, topics, lake tables, checkpoint, source tables."""
    confirm_and_print("Lab D", yes, lambda: reset(get_settings()))
