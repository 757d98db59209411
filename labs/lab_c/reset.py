"""`lakelab lab-c reset` (and `lakelab reset-lab C`): Lab C back to its start, the other labs
untouched: every version of what was uploaded to the raw zone (sales, quarantine, events, logs,
SQL exports), the processed table's files and metastore entry, its quality reports, and the
workflow's runs, idempotency ledger and watcher position for those uploads. Stop
`lakelab lab-c workflow watch` first."""

from __future__ import annotations

from typing import Annotated

import typer

from aws.stepfunctions.runs import db
from labs.lab_c.check import OTHER_KINDS, QUARANTINE
from labs.lab_c.quality import QUALITY_PREFIX
from labs.probes import drop_table, empty_prefix
from labs.report import confirm_and_print
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings
from services.s3.client import parse_uri

LAB = resources().labs.lab_c


def reset(settings: Settings, sales_prefix: str = f"{LAB.dataset}/", table: str = LAB.qualified_table,
          location: str = LAB.location, other_kinds: tuple[str, ...] = OTHER_KINDS) -> list[str]:
    """What was removed, one line each."""
    raw, processed = LAB.raw_bucket, LAB.processed_bucket
    removed = [f"s3://{raw}/{prefix}: {empty_prefix(settings, raw, prefix)} objects and versions"
               for prefix in (sales_prefix, f"{QUARANTINE}{sales_prefix}", *other_kinds)]
    bucket, key = parse_uri(location)
    for where, prefix in ((bucket, key.rstrip("/") + "/"), (processed, f"{QUALITY_PREFIX}/{table}/")):
        removed.append(f"s3://{where}/{prefix}: {empty_prefix(settings, where, prefix)} objects and versions")
    database, _, name = table.rpartition(".")
    removed.append(f"table {table}: {'dropped' if drop_table(settings, database, name) else 'none'}")
    with db(settings) as conn:
        runs = conn.execute("DELETE FROM workflow_runs WHERE trigger_key LIKE %s",
                            (f"{raw}/{sales_prefix}%",)).rowcount
        ledger = conn.execute("DELETE FROM processed_sources WHERE table_name = %s", (table,)).rowcount
        conn.execute("DELETE FROM watcher_checkpoints WHERE name LIKE %s", (f"%:{raw}/{sales_prefix}",))
    removed.append(f"workflow: {runs} runs with their events, {ledger} processed sources, the watcher position")
    return removed


def reset_command(yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Lab C back to its start: uploads (all versions), processed table, reports, workflow runs."""
    confirm_and_print("Lab C", yes, lambda: reset(get_settings()))
