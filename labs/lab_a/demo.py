"""Lab A played on the running stack (`lakelab lab-a demo`, the README's main demo).

The streaming job (spark_jobs/lab_a.py) runs in the background of this process while the
generator sends 4-field records, then 2, then 10 (new columns), then 4 again, and a few
malformed ones; after each step the demo waits until the job has committed what was sent and
prints what Trino answers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Producer
from rich import box
from rich.console import Console
from rich.table import Table

from lakelab.settings import Settings
from producers.kdg import Generator, device_pool
from services.trino.client import get_client
from spark_jobs.lab_a import LAB, IotHudiJob, JobConfig, drop_table, session

HIDDEN = {"_hoodie_commit_seqno", "_hoodie_record_key", "_hoodie_partition_path", "_hoodie_file_name"}


@dataclass
class Step:
    profile: str
    first_device: int
    devices: int
    story: str
    focus: str | None = None   # a query showing what the step changed


FOCUS_11_30 = ("SELECT device_id, _hoodie_commit_time, temperature, battery, co2_ppm, firmware FROM {table} "
               "WHERE device_id BETWEEN 'sensor-0011' AND 'sensor-0030' ORDER BY device_id")
STEPS = [
    Step("iot_4", 1, 20, "4 readings from sensors 1-20: the table is created and registered"),
    Step("iot_2", 21, 5, "2 readings from sensors 21-25: the missing columns are NULL, nothing fails",
         "SELECT device_id, temperature, humidity, pressure, battery FROM {table} "
         "WHERE device_id >= 'sensor-0019' ORDER BY device_id"),
    Step("iot_10", 11, 10, "10 readings from sensors 11-20: new columns appear in Trino, nobody edits the catalog",
         FOCUS_11_30),
    Step("iot_4", 16, 15, "back to 4 readings from sensors 16-30: new columns NULL for rows written now, "
                          "kept for sensors 11-15", FOCUS_11_30),
]


def trino_rows(settings: Settings, sql: str, table: str) -> tuple[list[str], list[list]]:
    """Run through the `hive` catalog, as Athena would through Glue (Trino redirects Hudi tables to
    its `hudi` catalog)."""
    cursor = get_client(settings, "hive", LAB.database).cursor()
    cursor.execute(sql.format(table=table))
    rows = cursor.fetchall()
    return [d[0] for d in cursor.description], rows


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def show(console: Console, settings: Settings, sql: str, table: str) -> None:
    columns, rows = trino_rows(settings, sql, table)
    shown = [i for i, c in enumerate(columns) if c not in HIDDEN]
    hidden = sorted(HIDDEN & set(columns))
    console.print(f"[bold cyan]trino:hive>[/] {sql.format(table=table)}", highlight=False)
    grid = Table(*[columns[i] for i in shown], caption=f"{len(rows)} rows" + (
                 f"; not shown: {', '.join(hidden)}" if hidden else ""),
                 caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for row in rows:
        grid.add_row(*[_cell(row[i]) for i in shown])
    # A wide table keeps its natural width (one line per row) rather than squeezing into 80 columns.
    Console(width=max(console.width, 240), file=console.file, force_terminal=console.is_terminal).print(grid)


def run(settings: Settings, table: str = LAB.table, topic: str = LAB.topic,
        dead_letter_topic: str = LAB.dead_letter_topic, keep: bool = False, rate: float = 50.0,
        trigger: float = 5.0, console: Console | None = None) -> dict:
    console = console or Console()
    began = time.monotonic()
    console.rule("[bold]Lab A: dynamic schema, in-place updates")
    console.print("starting Spark and the streaming job (Kafka -> Hudi) ...")
    spark = session(settings, "lakelab-demo")
    spark.sparkContext.setLogLevel("ERROR")
    config = JobConfig(topic=topic, dead_letter_topic=dead_letter_topic, table=table, trigger_seconds=trigger,
                       starting_offsets="earliest" if keep else "latest")
    try:
        if not keep:
            console.print(f"fresh start: dropping table [bold]{table}[/], its files and the job's checkpoint")
            drop_table(spark, config, settings)
        job = IotHudiJob(spark, config, settings)
        query = job.start()
        _wait_started(query)
        for number, step in enumerate(STEPS, 1):
            console.rule(f"step {number}: {step.story}")
            generator = Generator(settings.kafka_bootstrap, topic=topic, profile=step.profile,
                                  devices=device_pool(step.devices, step.first_device), device_order="cycle",
                                  rate=rate, batch=10)
            stats = generator.run(count=step.devices * 2)
            console.print(f"generator: {stats.sent} records of profile [bold]{step.profile}[/] "
                          f"({step.devices} sensors, 2 events each) in {stats.elapsed:.1f} s")
            _wait_processed(query, job)
            show(console, settings, "SELECT * FROM {table} LIMIT 10", table)
            show(console, settings, "SELECT count(*) AS row_count, count(DISTINCT device_id) AS devices FROM {table}",
                 table)
            if step.focus:
                show(console, settings, step.focus, table)
        console.rule("step 5: malformed records go to the dead-letter topic, the job keeps running")
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        bad = ["this is not JSON",
               json.dumps({"event_time": "2025-01-01T00:00:00Z", "temperature": 20}),
               json.dumps({"device_id": "sensor-0001", "event_time": "2025-01-01T00:00:00Z", "temperature": "hot"})]
        for value in bad:
            producer.produce(topic, value=value.encode(), key=b"demo-bad")
        producer.flush(10)
        _wait_processed(query, job)
        console.print(f"dead letters so far: {dict(job.totals.dead_letter)} -> topic [bold]{dead_letter_topic}[/]")
        show(console, settings, "SELECT count(*) AS row_count FROM {table}", table)
        summary = {"batches": job.totals.batches, "upserted": job.totals.upserted,
                   "dead_letter": dict(job.totals.dead_letter), "seconds": round(time.monotonic() - began, 1)}
        console.rule(f"done in {summary['seconds']} s: {summary['batches']} micro-batches, "
                     f"{summary['upserted']} records upserted, dead letters {summary['dead_letter']}")
        query.stop()
        return summary
    finally:
        spark.stop()


def _wait_started(query, timeout: float = 60) -> None:
    """With startingOffsets=latest the first micro-batch fixes the starting offsets: wait for it,
    or the first records sent could fall before them."""
    deadline = time.monotonic() + timeout
    while query.lastProgress is None and time.monotonic() < deadline:
        if query.exception() is not None:
            raise RuntimeError(f"streaming job failed: {query.exception()}")
        time.sleep(0.5)


def _wait_processed(query, job) -> None:
    query.processAllAvailable()
    if query.exception() is not None:
        raise RuntimeError(f"streaming job failed: {query.exception()}")
