"""Lab B's reconciliation: per symbol and hour of event time, the raw zone's trade count against
the processed zone's (the crawled raw table and the processed Parquet table)."""

from __future__ import annotations

from aws.athena.sql import run
from lakelab.resources import resources
from lakelab.settings import Settings
from services.trino.client import query, quote_identifier, quote_literal

LAB = resources().labs.lab_b
COUNTS_SQL = """
-- name: raw
SELECT symbol, date_format(from_unixtime(transaction_ts), '%Y-%m-%dT%H') AS hour, count(*) AS n
FROM ${raw_table} GROUP BY 1, 2;
-- name: processed
SELECT symbol, format('%04d-%02d-%02dT%02d', year, month, day, hour) AS hour, count(*) AS n
FROM ${processed_table} GROUP BY 1, 2
"""


def reconcile_counts(settings: Settings, raw_table: str = LAB.raw_table, processed_table: str = LAB.processed_table,
                     database: str = LAB.database, sync: bool = True) -> list[tuple[str, str, int, int]]:
    """(symbol, hour, raw count, processed count) for every symbol and event hour of either zone."""
    if sync:
        for table in (raw_table, processed_table):
            query(settings, f"CALL hive.system.sync_partition_metadata({quote_literal(database)}, "
                            f"{quote_literal(table)}, 'FULL')")
    raw, processed = run(settings, COUNTS_SQL, database, {"raw_table": quote_identifier(raw_table),
                                                          "processed_table": quote_identifier(processed_table)})
    counts_raw = {(s, h): n for s, h, n in raw.rows}
    counts_processed = {(s, h): n for s, h, n in processed.rows}
    return [(s, h, counts_raw.get((s, h), 0), counts_processed.get((s, h), 0))
            for s, h in sorted(counts_raw.keys() | counts_processed.keys())]
