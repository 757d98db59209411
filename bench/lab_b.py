"""Lab B benchmark on the running stack (nothing is started or stopped; everything it creates
carries a unique suffix and is removed at the end):

- delivery: records/s of the Firehose stand-in draining a pre-filled topic into 1 MB / 60 s
  objects, and the sizes of those objects;
- Lambda: seconds per MB of raw JSON converted to partitioned snappy Parquet;
- alerts: latency from a trade's production (its message timestamp) to its alert being on the
  alerts topic (the topic stamps LogAppendTime), p50 / p95, at a steady replay rate.

    .venv/bin/python bench/lab_b.py [--records 60000] [--rate 400] [--seconds 15]
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import threading
import time
import uuid

import typer
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic
from percentiles import percentile
from rich.console import Console
from rich.table import Table

from aws.firehose.delivery import DeliveryConfig, Firehose
from labs.lab_b.alerts import AlertConfig
from labs.lab_b.alerts import run as run_alerts
from labs.lab_b.stockdata_lambda import process_object
from lakelab.settings import get_settings
from producers.lab_b import replay, sample_trades
from services.kafka.client import get_client as admin
from services.s3.client import get_client as s3_client

console = Console()


def _drained(settings, config: DeliveryConfig) -> bool:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": config.group})
    try:
        tps = [TopicPartition(config.topic, p) for p in range(3)]
        committed = consumer.committed(tps, timeout=10)
        return all(consumer.get_watermark_offsets(tp, timeout=10)[1] in (c.offset, 0) for tp, c in zip(tps, committed))
    finally:
        consumer.close()


def main(records: int = typer.Option(60_000, help="trades to deliver"),
         rate: float = typer.Option(400.0, help="replay rate for the alert latency, records/s"),
         seconds: float = typer.Option(15.0, help="replay duration for the alert latency")) -> None:
    logging.getLogger("analytics.trade_alerts").setLevel(logging.ERROR)  # no line per alert here
    settings = get_settings()
    u = uuid.uuid4().hex[:8]
    topic, alerts_topic, dataset = f"bench-stockdata-{u}", f"bench-alerts-{u}", f"stockdata_bench_{u}"
    kafka = admin(settings)
    for future in kafka.create_topics([NewTopic(topic, 3, 1), NewTopic(f"{topic}-live", 3, 1),
                                       NewTopic(alerts_topic, 1, 1, config={"message.timestamp.type": "LogAppendTime"})]).values():
        future.result()
    s3 = s3_client(settings)
    trades = sample_trades(hours=24)
    try:
        # --- delivery ---------------------------------------------------------------------
        loops = max(1, -(-records // len(trades)))
        replay(settings.kafka_bootstrap, topic, trades, batch=5000, loops=loops, progress=False)
        total = len(trades) * loops
        config = DeliveryConfig(topic=topic, bucket="datalake", prefix=f"raw-zone/{dataset}/",
                                error_prefix=f"raw-zone/{dataset}_errors/", buffer_bytes=settings.firehose_buffer_bytes,
                                buffer_seconds=settings.firehose_buffer_seconds)
        firehose, stop = Firehose(settings, config), threading.Event()
        began = time.monotonic()
        worker = threading.Thread(target=firehose.run, args=(stop,))
        worker.start()
        while firehose.stats.records + sum(len(b.good) for b in firehose.batches.values()) < total:
            time.sleep(0.05)
        read_s = time.monotonic() - began
        stop.set()  # the last partial buffers flush now instead of after 60 s
        worker.join()
        delivered_s = time.monotonic() - began
        assert _drained(settings, config) and firehose.stats.records == total
        sizes = sorted(size for _, size in firehose.stats.objects)

        # --- Lambda -----------------------------------------------------------------------
        convert_s, outputs = [], 0
        for key, _ in firehose.stats.objects:
            t0 = time.perf_counter()
            outputs += len(process_object("datalake", key, [dataset])["new_keys"])
            convert_s.append(time.perf_counter() - t0)
        megabytes = sum(sizes) / 2**20

        # --- alert latency ------------------------------------------------------------------
        live = f"{topic}-live"
        stop_alerts = threading.Event()
        job = threading.Thread(target=run_alerts, args=(settings, AlertConfig(live, alerts_topic), stop_alerts))
        job.start()
        time.sleep(3)  # the job joins its group
        count = int(rate * seconds)
        replay(settings.kafka_bootstrap, live, trades[:count], rate=rate, batch=1, progress=False)
        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"bench-{u}",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([alerts_topic])
        latencies: list[float] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for message in consumer.consume(500, 0.5):
                if not message.error():
                    alert = json.loads(message.value())
                    latencies.append(message.timestamp()[1] - alert["trade_produced_ms"])
        consumer.close()
        stop_alerts.set()
        job.join()
    finally:
        kafka.delete_topics([topic, f"{topic}-live", alerts_topic])
        for prefix in (f"raw-zone/{dataset}", f"processed-zone/{dataset}", f"processed-zone/_manifests/{dataset}/",
                       f"_firehose/firehose-{topic}-"):
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket="datalake", Prefix=prefix)
            keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
            for i in range(0, len(keys), 500):
                s3.delete_objects(Bucket="datalake", Delete={"Objects": [{"Key": k} for k in keys[i:i + 500]]})

    table = Table("measure", "value", title=f"Lab B on the native stack ({os.cpu_count()} cores)")
    table.add_row("delivery: records", f"{total:,} ({sum(sizes) / 2**20:.1f} MiB of JSON lines)")
    table.add_row("delivery: records/s (read + buffered)", f"{total / read_s:,.0f}")
    table.add_row("delivery: records/s (until last object written)", f"{total / delivered_s:,.0f}")
    table.add_row("delivery: objects", f"{len(sizes)}: min {sizes[0] / 1024:.0f} KiB, median "
                  f"{statistics.median(sizes) / 1024:.0f} KiB, max {sizes[-1] / 1024:.0f} KiB")
    table.add_row("Lambda: seconds per MB of raw JSON", f"{sum(convert_s) / megabytes:.3f} "
                  f"({len(convert_s)} objects -> {outputs} Parquet files, p50 {statistics.median(convert_s):.3f} s/object)")
    table.add_row("alerts: trades replayed", f"{count} at {rate:g}/s, {len(latencies)} alerts")
    if latencies:
        table.add_row("alerts: latency p50 / p95 (ms)", f"{percentile(latencies, 0.5):.0f} / {percentile(latencies, 0.95):.0f}")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
