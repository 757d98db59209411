"""Lab A ingestion benchmark: the generator at rising rates into the streaming job, on the running stack.

For each rate it reports what reached the Hudi table (records/s), the Kafka backlog left at the
end of the level, freshness (a record's event time -> the moment a Trino query first returns it:
p50/p95/max) and the duration of the Hudi commits (write incl. hive sync) and whole micro-batches.

    .venv/bin/python bench/ingest.py [--rates 20,100,500,2000] [--seconds 40] [--trigger 5]

Uses its own topic, table and checkpoint, removed at the end.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import typer
from confluent_kafka.admin import NewTopic
from percentiles import percentile
from rich.console import Console
from rich.table import Table

from lakelab.settings import get_settings
from producers.kdg import Generator, device_pool
from services.kafka.client import get_client as admin
from services.trino.client import get_client as connect
from spark_jobs.lab_a import IotHudiJob, JobConfig, drop_table, session

console = Console()


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class Freshness:
    """Polls Trino for the newest event time in the table; a produced batch is visible when a
    query returns a watermark at or past the batch's newest event time."""

    def __init__(self, settings, table: str, interval: float = 1.0) -> None:
        self.settings, self.table, self.interval = settings, table, interval
        self.pending: list[tuple[float, str]] = []      # (newest event epoch, level)
        self.latencies: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.polls = 0
        self.poll_seconds: list[float] = []

    def produced(self, records: list[dict], level: str) -> None:
        newest = max(datetime.fromisoformat(r["event_time"]) for r in records).timestamp()
        with self.lock:
            self.pending.append((newest, level))

    def run(self) -> None:
        cursor = connect(self.settings, "hudi", "default").cursor()
        while not self.stop.is_set():
            began = time.time()
            try:
                cursor.execute(f"SELECT max(event_time) FROM {self.table}")
                watermark = cursor.fetchall()[0][0]
            except Exception:  # noqa: BLE001 - the table does not exist before the first commit
                watermark = None
            seen_at = time.time()
            self.polls += 1
            self.poll_seconds.append(seen_at - began)
            if watermark is not None:
                mark = watermark.replace(tzinfo=timezone.utc).timestamp()
                with self.lock:
                    still = []
                    for newest, level in self.pending:
                        if newest <= mark + 0.0005:
                            self.latencies.setdefault(level, []).append(seen_at - newest)
                        else:
                            still.append((newest, level))
                    self.pending = still
            self.stop.wait(max(0.0, self.interval - (time.time() - began)))


def main(
    rates: str = typer.Option("20,100,500,2000", help="records/s per level, comma separated"),
    seconds: float = typer.Option(40.0, help="duration of each level"),
    trigger: float = typer.Option(5.0, help="micro-batch interval of the streaming job, seconds"),
    devices: int = typer.Option(2000, help="device pool (upsert key space)"),
    batch: int = typer.Option(100, help="generator put_records batch size"),
    drain: float = typer.Option(60.0, help="max seconds to wait for the job to catch up at the end"),
) -> None:
    settings = get_settings()
    run = uuid.uuid4().hex[:6]
    workdir = Path(tempfile.mkdtemp(prefix="lakelab-bench-ingest-"))
    config = JobConfig(topic=f"bench-iot-{run}", dead_letter_topic=f"bench-iot-dlq-{run}", table=f"bench_iot_{run}",
                       path=f"s3a://warehouse/bench/bench_iot_{run}", checkpoint=str(workdir / "checkpoint"),
                       metrics_file=workdir / "metrics.jsonl", trigger_seconds=trigger)
    client = admin(settings)
    for future in client.create_topics([NewTopic(config.topic, 3, 1), NewTopic(config.dead_letter_topic, 1, 1)]).values():
        future.result()
    console.print(f"bench: topic {config.topic} -> table {config.table}, trigger {trigger} s, "
                  f"levels {rates} rec/s x {seconds:.0f} s, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    spark = session(settings, "bench-ingest")
    spark.sparkContext.setLogLevel("ERROR")
    job = IotHudiJob(spark, config, settings)
    query = job.start()
    fresh = Freshness(settings, config.table)
    poller = threading.Thread(target=fresh.run, daemon=True)
    poller.start()
    results = []
    warm_batches = 0
    try:
        # warm-up, not measured: the first commit creates the table and warms the JVM (~10-30 s)
        warmup = Generator(settings.kafka_bootstrap, topic=config.topic, profile="iot_4",
                           devices=device_pool(devices), rate=0, batch=100)
        produced_total = warmup.run(count=100).sent
        deadline = time.monotonic() + 180
        while job.totals.records < produced_total and time.monotonic() < deadline:
            time.sleep(0.5)
        console.print(f"warm-up: first commit after {time.monotonic() - deadline + 180:.1f} s")
        warm_batches = job.totals.batches      # batch ids of a new checkpoint start at 0
        for rate in [float(r) for r in rates.split(",")]:
            level = f"{rate:g}"
            generator = Generator(settings.kafka_bootstrap, topic=config.topic, profile="iot_4",
                                  devices=device_pool(devices), rate=rate, batch=min(batch, max(1, int(rate))))
            ingested_before, began = job.totals.records, time.monotonic()
            batches_before = job.totals.batches
            stats = generator.run(duration=seconds, on_batch=lambda records, _at, level=level: fresh.produced(records, level))
            elapsed = time.monotonic() - began
            produced_total += stats.sent
            ingested = job.totals.records - ingested_before
            results.append({
                "level": level, "produced_rate": stats.sent / elapsed, "ingested_rate": ingested / elapsed,
                "backlog": produced_total - job.totals.records, "batches": job.totals.batches - batches_before,
            })
            console.print(f"level {level} rec/s: produced {stats.sent} ({stats.sent / elapsed:.0f}/s), "
                          f"ingested {ingested} ({ingested / elapsed:.0f}/s), backlog {results[-1]['backlog']}")
        deadline = time.monotonic() + drain
        while job.totals.records < produced_total and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(3 * fresh.interval)
    finally:
        fresh.stop.set()
        poller.join(10)
        query.stop()
        metrics = [json.loads(line) for line in Path(config.metrics_file).read_text().splitlines()] \
            if Path(config.metrics_file).exists() else []
        try:
            drop_table(spark, config, settings)
            for future in client.delete_topics([config.topic, config.dead_letter_topic]).values():
                future.result()
        finally:
            spark.stop()

    table = Table("rate target", "produced/s", "into Hudi/s", "backlog at end", "fresh p50 s", "fresh p95 s",
                  "fresh max s", "batches", title=f"Lab A ingest, trigger {trigger} s")
    for r in results:
        lat = fresh.latencies.get(r["level"], [])
        table.add_row(r["level"], _fmt(r["produced_rate"], 0), _fmt(r["ingested_rate"], 0), str(r["backlog"]),
                      _fmt(percentile(lat, 0.5)), _fmt(percentile(lat, 0.95)), _fmt(max(lat) if lat else None),
                      str(r["batches"]))
    console.print(table)
    metrics = [m for m in metrics if m["batch_id"] >= warm_batches]   # the measured levels only
    writes = [m["write_s"] for m in metrics if m["upserted"]]
    batches_s = [m["batch_s"] for m in metrics if m["upserted"]]
    sizes = [m["records"] for m in metrics]
    rates_per_batch = [m["records"] / m["batch_s"] for m in metrics if m["batch_s"] > 0 and m["records"] >= 1000]
    syncs = sum(1 for m in metrics if m.get("hive_sync"))
    console.print(
        f"peak micro-batch throughput (batches of >= 1000 records): "
        f"{_fmt(max(rates_per_batch) if rates_per_batch else None, 0)} records/s; hive sync ran in {syncs} commits")
    console.print(
        f"commits: {len(writes)}; Hudi commit (write + hive sync when needed) p50 {_fmt(percentile(writes, 0.5))} s, "
        f"p95 {_fmt(percentile(writes, 0.95))} s, max {_fmt(max(writes) if writes else None)} s; "
        f"whole micro-batch p50 {_fmt(percentile(batches_s, 0.5))} s, max {_fmt(max(batches_s) if batches_s else None)} s; "
        f"records per batch median {_fmt(statistics.median(sizes) if sizes else None, 0)}, max {max(sizes) if sizes else '-'}")
    console.print(f"freshness measured by {fresh.polls} Trino polls (query p50 {_fmt(percentile(fresh.poll_seconds, 0.5), 2)} s); "
                  f"unmatched batches {len(fresh.pending)}; trigger interval {trigger} s; load now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    typer.run(main)
