"""`lakelab lab-a reset` (and `lakelab reset-lab A`): Lab A back to its start, the other labs
untouched: the records of its topic and dead-letter topic, its Hudi table (metastore entry and
files), the streaming job's checkpoint and metrics. Stop `lakelab lab-a stream` first."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from labs.probes import drop_table, empty_prefix, empty_topic
from labs.report import confirm_and_print
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings

LAB = resources().labs.lab_a


def reset(settings: Settings, topic: str = LAB.topic, dead_letter_topic: str = LAB.dead_letter_topic,
          table: str = LAB.table, database: str = LAB.database) -> list[str]:
    """What was removed, one line each."""
    # the job's own naming of its checkpoint and metrics; importing it loads pyspark (no JVM starts)
    from spark_jobs.lab_a import JobConfig

    config = JobConfig(topic=topic, dead_letter_topic=dead_letter_topic, database=database, table=table).resolved(settings)
    removed = [f"topic {name}: {empty_topic(settings, name)} records" for name in (topic, dead_letter_topic)]
    removed.append(f"table {database}.{table}: {'dropped' if drop_table(settings, database, table) else 'none'}")
    removed.append(f"s3://{LAB.bucket}/{table}/: {empty_prefix(settings, LAB.bucket, f'{table}/')} objects")
    shutil.rmtree(config.checkpoint, ignore_errors=True)
    Path(config.metrics_file).unlink(missing_ok=True)
    removed.append(f"checkpoint {config.checkpoint} and metrics")
    return removed


def reset_command(yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Lab A back to its start: its topics' records, its Hudi table, the job's checkpoint."""
    confirm_and_print("Lab A", yes, lambda: reset(get_settings()))
