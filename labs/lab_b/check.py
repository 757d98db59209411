"""`lakelab lab-b check` (and `lakelab lab check B`): the exercises of the course's Lab B (seed
003, "Przetwarzanie Danych w Chmurze Publicznej", Ćwiczenie 1-5) in their order, each done or not
yet, read from the stack: the topics, the raw and processed zones, the catalog, Trino's answers."""

from __future__ import annotations

from typing import Annotated

import typer

from aws.athena.sql import run
from labs.lab_b.reconcile import reconcile_counts
from labs.probes import bucket_exists, object_count, topic_records, trino_rows
from labs.report import Step, check_or_fail
from lakelab.resources import resources
from lakelab.settings import ROOT, Settings, get_settings

LAB = resources().labs.lab_b
QUERIES = ROOT / "trino" / "queries" / "lab_b.sql"
ALERTS_PREFIX = f"{LAB.raw_zone}alerts/"


def hourly_buckets(settings: Settings, raw_table: str) -> int | None:
    """Rows of the lab's hourly top-trades query (Ćwiczenie 3) on the raw table; None: no table."""
    try:
        statement, = run(settings, QUERIES.read_text(), LAB.database, {"raw_table": raw_table},
                         only=["hourly_top_trades"])
    except Exception:  # noqa: BLE001 - Trino refuses the query: no raw table (yet)
        return None
    return len(statement.rows)


def steps(settings: Settings, topic: str = LAB.topic, alerts_topic: str = LAB.alerts_topic,
          dataset: str = LAB.dataset, raw_table: str = LAB.raw_table,
          processed_table: str = LAB.processed_table, alerts_prefix: str = ALERTS_PREFIX) -> list[Step]:
    bucket, db = LAB.bucket, LAB.database
    trades = topic_records(settings, topic)
    raw_objects = object_count(settings, bucket, f"{LAB.raw_zone}{dataset}/year=")
    raw_partitions = trino_rows(settings, f'SELECT count(*) FROM "{raw_table}$partitions"', db)
    buckets = hourly_buckets(settings, raw_table)
    parquet = object_count(settings, bucket, f"{LAB.processed_zone}{dataset}/symbol=")
    processed_partitions = trino_rows(settings, f'SELECT count(*) FROM "{processed_table}$partitions"', db)
    try:
        counts = reconcile_counts(settings, raw_table, processed_table, db, sync=False)
    except Exception:  # noqa: BLE001 - one of the two tables is not there yet
        counts = []
    differing = [c for c in counts if c[2] != c[3]]
    alerts = topic_records(settings, alerts_topic)
    delivered_alerts = object_count(settings, bucket, f"{alerts_prefix}year=")
    sql = "lakelab sql trino/queries/lab_b.sql"
    names = "" if (raw_table, processed_table) == (LAB.raw_table, LAB.processed_table) else (
        f" --var raw_table={raw_table} --var processed_table={processed_table} "
        f"--var processed_location=s3://{bucket}/{LAB.processed_zone}{dataset}/")
    return [
        Step("Ćwiczenie 1.1-1.2", "S3 bucket and Kinesis Data Stream (terraform apply)",
             trades is not None and bucket_exists(settings, bucket),
             f"bucket {bucket}, topic {topic}: {'missing' if trades is None else 'ok'}", "lakelab apply"),
        Step("Ćwiczenie 1.3", "the generator sends trades (put_record)", bool(trades),
             f"{trades or 0} trades in {topic}",
             f"lakelab lab-b sample && lakelab lab-b replay .lakelab/lab_b/trades_sample.csv --rate 50 --topic {topic}"),
        Step("Ćwiczenie 2", "Kinesis Firehose delivers to raw-zone/ (year=/month=/day=/hour=)", raw_objects > 0,
             f"{raw_objects} objects under s3://{bucket}/{LAB.raw_zone}{dataset}/",
             f"lakelab lab-b deliver --topic {topic} --prefix {LAB.raw_zone}{dataset}/ "
             "(LAKELAB_FIREHOSE_BUFFER_SECONDS=5 for quick flushes)"),
        Step("Ćwiczenie 3.2", f"Glue crawler registers {raw_table} with its partitions",
             bool(raw_partitions and raw_partitions[0][0]),
             f"{raw_partitions[0][0]} partitions" if raw_partitions else f"no table {db}.{raw_table}",
             f"lakelab lab-b crawl s3://{bucket}/{LAB.raw_zone}{dataset}/" + (
                 f" --table {raw_table}" if raw_table != LAB.raw_table else "")),
        Step("Ćwiczenie 3.3", "Athena: the highest buy/sell per HourlyBucket", bool(buckets),
             f"{buckets} rows" if buckets is not None else "the query fails: no raw table",
             f"{sql} --name hourly_top_trades{names}"),
        Step("Ćwiczenie 4.1", "the Lambda writes Parquet to processed-zone/ (symbol=/year=/.../hour=)", parquet > 0,
             f"{parquet} Parquet objects", f"lakelab lab-b lambda --datasets {dataset} (running), "
             f"or lakelab lab-b backfill --prefix {LAB.raw_zone}{dataset}/ --datasets {dataset}"),
        Step("Ćwiczenie 4.2", f"CREATE EXTERNAL TABLE {processed_table} + MSCK REPAIR TABLE",
             bool(processed_partitions and processed_partitions[0][0]),
             f"{processed_partitions[0][0]} partitions" if processed_partitions else f"no table {db}.{processed_table}",
             f"{sql} --name create_processed --name repair_processed{names}"),
        Step("Ćwiczenie 4.3", "reconciliation: RAW and PROCESSED counts agree per symbol and hour",
             bool(counts) and not differing,
             f"{len(counts)} symbol-hours, {len(differing)} differ" if counts else "needs both tables",
             f"lakelab lab-b backfill, {sql} --name repair_processed, then lakelab lab-b reconcile"),
        Step("Ćwiczenie 5", "Kinesis Analytics flags trades > 4 x the 30 s average", bool(alerts),
             f"{alerts or 0} alerts in {alerts_topic}",
             f"lakelab lab-b alerts --source-topic {topic} --alerts-topic {alerts_topic} --symbols BTC_USD "
             "(running while the generator replays)"),
        Step("Ćwiczenie 5h", "a second Firehose lands the alerts in the lake", delivered_alerts > 0,
             f"{delivered_alerts} objects under s3://{bucket}/{alerts_prefix}",
             f"lakelab lab-b deliver --topic {alerts_topic} --prefix {alerts_prefix}"),
    ]


def check(topic: Annotated[str, typer.Option(help="the trades topic")] = LAB.topic) -> None:
    """Which exercises of Lab B are done, read from the stack; the hint for the next one."""
    check_or_fail("Lab B (seed 003): near-real-time crypto trades", lambda: steps(get_settings(), topic))
