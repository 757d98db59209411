"""`lakelab lab-a check` (and `lakelab lab check A`): the steps of the course's Lab A (seed 000,
"Mise à jour de données dynamiques en place") in its task order, each done or not yet, read from
the stack: the topic and what the generator sent to it, the Hudi table's commits, and what Trino
answers."""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated

import typer
from hudi import HudiTableBuilder

from labs.probes import bucket_exists, topic_records, topic_values, trino_rows
from labs.report import Step, check_or_fail
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings

LAB = resources().labs.lab_a
ENVELOPE = {"device_id", "event_time", "owner", "ip"}   # every profile has these besides its readings
NEW_COLUMN = "co2_ppm"                                   # the first of the 10-field profile's new readings


def profiles_sent(settings: Settings, topic: str) -> list[tuple[int, int]]:
    """(timestamp ms, number of readings) of each record the topic holds, oldest first."""
    sent = []
    for timestamp, value in topic_values(settings, topic):
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if isinstance(record, dict):
            sent.append((timestamp, len(set(record) - ENVELOPE)))
    return sorted(sent)


def hudi_commits(settings: Settings, path: str) -> int:
    """Completed commits on the table's Hudi timeline (0: no table yet), read with hudi-rs."""
    options = {"aws_endpoint_url": settings.s3_endpoint, "aws_access_key_id": settings.s3_access_key,
               "aws_secret_access_key": settings.s3_secret_key.get_secret_value(),
               "aws_region": settings.s3_region, "aws_allow_http": "true"}
    try:
        table = HudiTableBuilder.from_base_uri(path).with_storage_options(options).build()
        return len(table.get_timeline().get_completed_commits())
    except Exception:  # noqa: BLE001 - no table at that path (hudi-rs raises its own error types)
        return 0


def steps(settings: Settings, topic: str = LAB.topic, table: str = LAB.table, database: str = LAB.database,
          path: str | None = None) -> list[Step]:
    path = path or f"s3a://{LAB.bucket}/{table}"
    records = topic_records(settings, topic)
    sent = profiles_sent(settings, topic) if records else []
    by_size = Counter(size for _, size in sent)
    first_ten = next((at for at, size in sent if size == 10), None)
    four_after_ten = sum(1 for at, size in sent if size == 4 and first_ten is not None and at > first_ten)
    commits = hudi_commits(settings, path)
    rows = trino_rows(settings, f'SELECT count(*) FROM "{table}"', database)
    with_new_column = trino_rows(settings, f'SELECT count({NEW_COLUMN}) FROM "{table}"', database)
    null_after = trino_rows(settings, f"""
        SELECT count(*) FROM "{table}" WHERE {NEW_COLUMN} IS NULL AND _hoodie_commit_time >
          (SELECT min(_hoodie_commit_time) FROM "{table}" WHERE {NEW_COLUMN} IS NOT NULL)""", database)
    row_count = rows[0][0] if rows else 0
    new_column_values = with_new_column[0][0] if with_new_column else 0
    nulls_written_after = null_after[0][0] if null_after else 0
    generate = f"lakelab lab-a generate --topic {topic} --rate 50 --count 200 --devices 20"
    return [
        Step("Tâche 1", "the environment: Kinesis stream and S3 bucket", records is not None and bucket_exists(
            settings, LAB.bucket), f"topic {topic}: {'missing' if records is None else 'ok'}, bucket {LAB.bucket}",
             "lakelab up (creates the topic and buckets of resources.yaml), or lakelab apply"),
        Step("Tâche 5", "Kinesis Data Generator sends 4 readings (iot_4)", by_size[4] > 0,
             f"{records or 0} records, {by_size[4]} with 4 readings", f"{generate} --profile iot_4"),
        Step("Tâche 4", "the Glue streaming job upserts into Hudi", commits > 0,
             f"{commits} Hudi commits at {path}", f"lakelab lab-a stream --topic {topic} --table {table} --trigger 5 "
             "(leave it running in its own terminal)"),
        Step("Tâche 6", f'Athena: SELECT * FROM "{table}" LIMIT 10', row_count > 0,
             f"{row_count} rows in hive.{database}.{table}" if rows is not None else "no table in the catalog yet",
             f"""echo 'SELECT * FROM "{table}" LIMIT 10' | lakelab sql - --schema {database}"""),
        Step("Tâche 7", "the generator switches to 2 readings (iot_2)", by_size[2] > 0,
             f"{by_size[2]} records with 2 readings", f"{generate} --profile iot_2"),
        Step("Tâche 7", "then to 10 readings (iot_10): a new column", by_size[10] > 0,
             f"{by_size[10]} records with 10 readings", f"{generate} --profile iot_10"),
        Step("Tâche 7", f"Athena shows the new column {NEW_COLUMN}, nobody edited Glue", new_column_values > 0,
             f"{new_column_values} rows with {NEW_COLUMN}" if with_new_column is not None else f"no {NEW_COLUMN} column yet",
             f"keep `lakelab lab-a stream` running, then: echo 'SELECT device_id, {NEW_COLUMN} FROM \"{table}\"' "
             f"| lakelab sql - --schema {database}"),
        Step("Tâche 8", "back to the initial schema (iot_4): the new column reads NULL for rows written now",
             four_after_ten > 0 and nulls_written_after > 0,
             f"{four_after_ten} records of 4 readings after the 10-reading ones, {nulls_written_after} rows NULL "
             f"in {NEW_COLUMN} since", f"{generate} --profile iot_4 --first-device 11 (then query {NEW_COLUMN} again)"),
    ]


def check(
    topic: Annotated[str, typer.Option(help="the lab's topic")] = LAB.topic,
    table: Annotated[str, typer.Option(help="the lab's Hudi table")] = LAB.table,
) -> None:
    """Which steps of Lab A are done, read from the stack; the hint for the next one."""
    check_or_fail("Lab A (seed 000): dynamic schema, in-place updates", lambda: steps(get_settings(), topic, table))
