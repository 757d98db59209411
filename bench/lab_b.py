"""Lab B on the running stack (nothing is started or stopped; everything it creates carries a
unique suffix and is removed at the end):

- delivery, side by side: records/s of the Firehose stand-in draining a pre-filled topic into
  durable 1 MB objects (validated JSON lines, exactly-once markers, committed offsets) against a
  plain consumer writing the same bytes to S3 as 1 MB objects with no parsing (each object put,
  then its offsets committed); the two take turns on the same records, each with its own group.
  Goal: the Firehose at least 0.7 of the plain consumer;
- Lambda: seconds per MB of raw JSON converted to partitioned snappy Parquet;
- alerts: latency from a trade's production (its message timestamp) to its alert being on the
  alerts topic (the topic stamps LogAppendTime), p50 / p95, at a steady replay rate.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from aws.firehose.delivery import DeliveryConfig, Firehose
from bench.cli import Bench
from bench.percentiles import percentile
from labs.lab_b.alerts import AlertConfig
from labs.lab_b.alerts import run as run_alerts
from labs.lab_b.stockdata_lambda import process_object
from labs.probes import group_committed_the_end, topic_values
from lakelab.resources import resources
from lakelab.settings import Settings
from producers.lab_b import replay, sample_trades
from services.kafka.client import get_client as kafka_admin
from services.s3.client import delete_prefix
from services.s3.client import get_client as s3_client

LAB = resources().labs.lab_b
PARTITIONS = 3
ALERTS_CATCH_UP_S = 60.0


@dataclass
class Delivered:
    records: int = 0
    objects: list[int] = field(default_factory=list)  # sizes in bytes
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def deliver_with_firehose(settings: Settings, topic: str, prefix: str, total: int) -> Delivered:
    config = DeliveryConfig(topic=topic, bucket=LAB.bucket, prefix=prefix, error_prefix=f"{prefix.rstrip('/')}_errors/",
                            buffer_bytes=settings.firehose_buffer_bytes, buffer_seconds=settings.firehose_buffer_seconds,
                            group_id=f"bench-firehose-{uuid.uuid4().hex[:8]}",
                            # the stop below is seen within 50 ms instead of after an idle 0.5 s wait:
                            # the plain consumer stops at its last record too
                            poll_seconds=0.05)
    firehose, stop = Firehose(settings, config), threading.Event()
    began = time.monotonic()
    worker = threading.Thread(target=firehose.run, args=(stop,))
    worker.start()
    while firehose.stats.records + sum(len(b.good) for b in firehose.batches.values()) < total and worker.is_alive():
        time.sleep(0.005)
    stop.set()  # the last partial buffers flush now instead of after buffer_seconds
    worker.join()
    assert firehose.stats.records == total, f"the Firehose delivered {firehose.stats.records} of {total} records"
    return Delivered(firehose.stats.records, [size for _, size in firehose.stats.objects], time.monotonic() - began)


def deliver_plainly(settings: Settings, topic: str, prefix: str, total: int) -> Delivered:
    """The standard alternative: a consumer that appends each value and a line end to its
    partition's buffer and puts it as an object when it reaches the buffer size, then commits."""
    s3 = s3_client(settings)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"bench-plain-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    buffers: dict[int, list[bytes]] = {}
    sizes: dict[int, int] = {}
    last: dict[int, int] = {}
    result = Delivered()
    began = time.monotonic()

    def put(partition: int) -> None:
        body = b"".join(buffers.pop(partition))
        s3.put_object(Bucket=LAB.bucket, Key=f"{prefix}{topic}-{partition}-{last[partition]:020d}.json", Body=body)
        consumer.commit(offsets=[TopicPartition(topic, partition, last[partition] + 1)], asynchronous=False)
        result.objects.append(len(body))
        sizes[partition] = 0

    try:
        seen = 0
        while seen < total:
            for message in consumer.consume(num_messages=500, timeout=0.5):
                if message.error():
                    continue
                partition = message.partition()
                buffers.setdefault(partition, []).append(message.value() + b"\n")
                sizes[partition] = sizes.get(partition, 0) + len(message.value()) + 1
                last[partition] = message.offset()
                seen += 1
                if sizes[partition] >= settings.firehose_buffer_bytes:
                    put(partition)
        for partition in list(buffers):
            put(partition)
    finally:
        consumer.close()
    result.records, result.seconds = seen, time.monotonic() - began
    return result


def run(bench: Bench) -> None:
    settings = bench.settings
    logging.getLogger("labs.lab_b.alerts").setLevel(logging.ERROR)  # no line per alert here
    logging.getLogger("aws.firehose.delivery").setLevel(logging.WARNING)  # no line per object
    records, rounds, rate, seconds = (3000, 1, 50.0, 2.0) if bench.smoke else (300_000, 3, 400.0, 10.0)
    u = uuid.uuid4().hex[:8]
    topic, alerts_topic, dataset = f"bench-stockdata-{u}", f"bench-alerts-{u}", f"stockdata_bench_{u}"
    # every Firehose round writes the same keys (they derive from the offsets); the plain
    # consumer's objects go beside them
    prefixes = {"firehose": f"{LAB.raw_zone}{dataset}/", "plain": f"{LAB.raw_zone}{dataset}_plain/"}
    kafka = kafka_admin(settings)
    stamped = {"message.timestamp.type": "LogAppendTime"}
    for future in kafka.create_topics([NewTopic(topic, PARTITIONS, 1), NewTopic(f"{topic}-live", PARTITIONS, 1),
                                       NewTopic(alerts_topic, 1, 1, config=stamped)]).values():
        future.result()
    trades = sample_trades(hours=24)
    try:
        bench.step(f"filling {topic} with {records:,} trades")
        loops = max(1, -(-records // len(trades)))
        replay(settings.kafka_bootstrap, topic, (trades * loops)[:records], batch=5000, progress=False)
        results: dict[str, list[Delivered]] = {"firehose": [], "plain": []}
        for round_number in range(rounds):
            for way in ("firehose", "plain") if round_number % 2 == 0 else ("plain", "firehose"):
                bench.step(f"delivery round {round_number + 1}/{rounds}: {way}")
                deliver = deliver_with_firehose if way == "firehose" else deliver_plainly
                results[way].append(deliver(settings, topic, prefixes[way], records))
        ours, plain = (statistics.median(d.rate for d in results[w]) for w in ("firehose", "plain"))
        bench.figure(f"delivery to durable 1 MB objects, median of {rounds} rounds", ours, "records/s",
                     standard=plain, standard_name="plain consumer, same bytes, no parsing", at_least=0.7)
        sizes = sorted(s for d in results["firehose"] for s in d.objects)
        bench.note(f"Firehose objects: {len(sizes)}, median {statistics.median(sizes) / 1024:.0f} KiB, "
                   f"max {sizes[-1] / 1024:.0f} KiB; {records:,} records "
                   f"({sum(sizes) / len(results['firehose']) / 2**20:.1f} MiB per round)")

        bench.step("Lambda: raw JSON objects to Parquet")
        convert_s, megabytes = [], 0.0
        keys = [o["Key"] for page in s3_client(settings).get_paginator("list_objects_v2").paginate(
            Bucket=LAB.bucket, Prefix=prefixes["firehose"]) for o in page.get("Contents", [])]
        for key in keys:
            began = time.perf_counter()
            process_object(LAB.bucket, key, [dataset])
            convert_s.append(time.perf_counter() - began)
            megabytes += s3_client(settings).head_object(Bucket=LAB.bucket, Key=key)["ContentLength"] / 2**20
        bench.figure(f"Lambda: seconds per MB of raw JSON to Parquet ({len(keys)} objects)",
                     sum(convert_s) / megabytes if megabytes else None, "s/MB")

        bench.step(f"alerts: {rate:g} trades/s for {seconds:g} s")
        latencies = _alert_latencies(settings, f"{topic}-live", alerts_topic, trades, rate, seconds)
        bench.figure(f"alert latency p50 ({len(latencies)} alerts)", percentile(latencies, 0.5), "ms")
        bench.figure("alert latency p95", percentile(latencies, 0.95), "ms")
    finally:
        kafka.delete_topics([topic, f"{topic}-live", alerts_topic])
        for folder in (*prefixes.values(), f"{LAB.raw_zone}{dataset}_errors/", f"{LAB.processed_zone}{dataset}/",
                       f"{LAB.processed_zone}{dataset}_errors/", f"{LAB.processed_zone}_manifests/{dataset}/"):
            delete_prefix(settings, f"s3a://{LAB.bucket}/{folder}")


def _alert_latencies(settings: Settings, live: str, alerts_topic: str, trades: list, rate: float,
                     seconds: float) -> list[float]:
    """Every alert of the replayed trades, read once the job has committed the end of `live`: it
    commits only offsets whose alerts are acknowledged, so none is still on its way (a read for a
    fixed time waited too long on a quiet machine and left late alerts out on a loaded one)."""
    config = AlertConfig(live, alerts_topic)
    stop = threading.Event()
    job = threading.Thread(target=run_alerts, args=(settings, config, stop))
    job.start()
    try:
        time.sleep(3)  # the job joins its group
        replay(settings.kafka_bootstrap, live, trades[:int(rate * seconds)], rate=rate, batch=1, progress=False)
        _wait_committed_to_the_end(settings, config.group, live, job)
    finally:
        stop.set()
        job.join()
    return [appended - json.loads(value)["trade_produced_ms"] for appended, value in topic_values(settings, alerts_topic)]


def _wait_committed_to_the_end(settings: Settings, group: str, topic: str, job: threading.Thread) -> None:
    deadline = time.monotonic() + ALERTS_CATCH_UP_S
    while time.monotonic() < deadline and job.is_alive():
        if group_committed_the_end(settings, group, topic):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the alerts job did not commit the end of {topic} within {ALERTS_CATCH_UP_S:g} s"
                       if job.is_alive() else "the alerts job stopped before the end of the replayed trades")
