"""Lab D's CDC sink side by side: our sink (spark_jobs/lab_d.py: per-schema parsing, dead letters,
last event per key by LSN, LSN-ordered upserts with delete markers) against a plain Spark job
that applies the same Debezium topics with Hudi's built-in Debezium payload for PostgreSQL
(`PostgresDebeziumAvroPayload`: the change's LSN orders the merge, `d` deletes), each table's
schema fixed in the job. Both run as streaming queries in one SparkSession, each with its own
checkpoint and lake tables, on one source (a PostgreSQL schema with the shop's tables, its own
Debezium connector and topics).

The two take turns. While one side applies a live workload step (`--rate` ops/s for a while, this
process plus a `lakelab lab-d workload run` process), the other is stopped; when the step is over
the stopped side starts again and drains the step's changes (its backlog), timed: changes applied
per second is its sustained throughput. Then the roles swap. Goal: ours at least 0.8 of the
plain job's changes/s, with both lakes equal to the source at the end (exactness kept).

Latency probes: about once a second the workload's next inserted order is a probe; a poller asks
Trino (hudi catalog) every second which probes it sees. A probe's latency is the start of the
first query that returned it minus its commit time. Absolute goal: p95 under 15 s at 1,000 ops/s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from confluent_kafka import Consumer, TopicPartition
from trino.exceptions import TrinoConnectionError, TrinoQueryError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

from aws.glue.hudi import write_options  # noqa: E402
from bench.cli import Bench  # noqa: E402
from bench.percentiles import one_decimal, percentile  # noqa: E402
from bench.report import Load  # noqa: E402
from labs.lab_d.pipeline import Pipeline  # noqa: E402
from labs.lab_d.verify import source_columns, wait_equal  # noqa: E402
from lakelab.settings import ROOT, Settings  # noqa: E402
from producers.lab_d import Shop, run_workload  # noqa: E402
from services.spark.client import get_session  # noqa: E402
from services.trino.client import get_client as trino_connect  # noqa: E402
from spark_jobs.lab_d import SinkConfig, drop_lake_table, row_columns, start_query  # noqa: E402

SIDES = ("ours", "plain")
LABELS = {"ours": "our CDC sink", "plain": "plain job, Hudi's PostgresDebeziumAvroPayload"}
DEBEZIUM_PAYLOAD = "org.apache.hudi.common.model.debezium.PostgresDebeziumAvroPayload"


@dataclass
class Plan:
    rates: tuple[float, ...]
    step_seconds: float
    orders: int
    drain_limit_s: float


FULL = Plan(rates=(500.0, 1000.0), step_seconds=20.0, orders=2000, drain_limit_s=180.0)
SMOKE = Plan(rates=(20.0,), step_seconds=4.0, orders=200, drain_limit_s=180.0)


@dataclass
class Step:
    side: str
    rate: float
    achieved: float = 0.0
    probes: dict[int, float] = field(default_factory=dict)      # order id -> commit time
    visible: dict[int, float] = field(default_factory=dict)     # order id -> first seen in Trino
    caught_up_s: float | None = None                            # after the workload ended

    def latencies(self) -> list[float]:
        return [self.visible[i] - self.probes[i] for i in sorted(self.probes) if i in self.visible]


@dataclass
class Drain:
    side: str
    changes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.changes / self.seconds if self.seconds else 0.0


class PlainDebeziumJob:
    """The standard way: each topic's envelope parsed with its table's fixed schema, flattened with
    Hudi's Debezium columns (`_change_operation_type`, `_event_lsn`), upserted table by table."""

    def __init__(self, spark, settings: Settings, pipeline: Pipeline, config: SinkConfig) -> None:
        self.spark, self.settings, self.pipeline, self.config = spark, settings, pipeline, config
        self.columns = {table: _columns_of(settings, pipeline.topic(table)) for table in pipeline.tables}
        self.keys = {table: source_columns(settings, pipeline.schema, table)[1] for table in pipeline.tables}
        self.synced: set[str] = set()

    def start(self):
        stream = (self.spark.readStream.format("kafka").option("kafka.bootstrap.servers", self.settings.kafka_bootstrap)
                  .option("subscribe", ",".join(self.pipeline.topic(t) for t in self.pipeline.tables))
                  .option("startingOffsets", "earliest").option("maxOffsetsPerTrigger", self.config.max_offsets_per_trigger)
                  .load())
        return (stream.writeStream.queryName(self.config.name)
                .option("checkpointLocation", self.config.checkpoint_location(self.settings))
                .trigger(processingTime=f"{self.config.trigger_seconds} seconds")
                .foreachBatch(self.apply).start())

    def apply(self, batch, _batch_id: int) -> None:
        batch = batch.where(F.col("value").isNotNull()).persist()  # tombstones
        try:
            present = {row.topic for row in batch.select("topic").distinct().collect()}
            for table in self.pipeline.tables:
                if self.pipeline.topic(table) in present:
                    self._write(table, batch.where(F.col("topic") == self.pipeline.topic(table)))
        finally:
            batch.unpersist()

    def _write(self, table: str, events) -> None:
        columns = self.columns[table]
        row = T.StructType([T.StructField(c.name, c.raw) for c in columns])
        envelope = T.StructType([T.StructField("payload", T.StructType([
            T.StructField("before", row), T.StructField("after", row), T.StructField("op", T.StringType()),
            T.StructField("source", T.StructType([T.StructField("lsn", T.LongType())]))]))])
        e = F.from_json(F.col("value").cast("string"), envelope).alias("e")
        image = F.when(F.col("e.payload.op") == "d", F.col("e.payload.before")).otherwise(F.col("e.payload.after"))
        rows = events.select(e).select(
            *[c.convert(image.getField(c.name)).alias(c.name) for c in columns],
            F.col("e.payload.op").alias("_change_operation_type"), F.col("e.payload.source.lsn").alias("_event_lsn"))
        sync = table not in self.synced
        options = {**write_options(self.settings, table=self.config.lake_table(table), database=self.config.database,
                                   record_key=",".join(self.keys[table]), ordering_field="_event_lsn", hive_sync=sync),
                   "hoodie.datasource.write.payload.class": DEBEZIUM_PAYLOAD}
        rows.write.format("hudi").options(**options).mode("append").save(self.config.table_path(table))
        self.synced.add(table)


def _columns_of(settings: Settings, topic: str):
    """A table's columns from the Connect schema of the first change on its topic (the snapshot)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for message in consumer.consume(10, timeout=1.0):
                if not message.error() and message.value():
                    return row_columns(json.dumps(json.loads(message.value())["schema"]))
        raise RuntimeError(f"no change on {topic} within 120 s")
    finally:
        consumer.close()


class Prober:
    """Polls Trino for a step's pending probe ids in one side's orders table."""

    def __init__(self, settings: Settings, table: str, step: Step):
        self.table = f'hudi.cdc."{table}"'
        self.cursor = trino_connect(settings, "hudi", "cdc", request_timeout=60).cursor()
        self.step = step
        self.lock = threading.Lock()

    def add(self, order_id: int, committed: float) -> None:
        with self.lock:
            self.step.probes[order_id] = committed

    def pending(self) -> list[int]:
        with self.lock:
            return [i for i in self.step.probes if i not in self.step.visible]

    def poll(self) -> None:
        ids = self.pending()
        if not ids:
            return
        asked = time.time()
        try:
            self.cursor.execute(f"SELECT id FROM {self.table} WHERE id IN ({', '.join(map(str, ids))})")
            found = self.cursor.fetchall()
        except (TrinoConnectionError, TrinoQueryError):  # e.g. Trino busy: ask again next second
            return
        for (order_id,) in found:
            self.step.visible.setdefault(order_id, asked)


def _end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}"})
    try:
        return {(t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
                for t in topics for p in consumer.list_topics(t, timeout=10).topics[t].partitions}
    finally:
        consumer.close()


def _processed(query) -> dict[tuple[str, int], int]:
    progress = query.lastProgress
    if not progress or not progress["sources"]:
        return {}
    end = progress["sources"][0]["endOffset"]
    offsets = json.loads(end) if isinstance(end, str) else end
    return {(t, int(p)): o for t, parts in offsets.items() for p, o in parts.items()}


def _wait_caught_up(settings: Settings, query, topics: list[str], limit_s: float) -> float | None:
    """Seconds until the query has processed every change now in the topics; None past the limit."""
    began = time.monotonic()
    target = _end_offsets(settings, topics)
    while time.monotonic() - began < limit_s:
        if query.exception() is not None:
            raise RuntimeError(f"streaming query {query.name} failed: {query.exception()}")
        done = _processed(query)
        if all(done.get(tp, 0) >= offset for tp, offset in target.items() if offset) \
                and not query.status["isTriggerActive"]:
            return time.monotonic() - began
        time.sleep(0.2)
    return None


def run(bench: Bench) -> None:
    settings, plan = bench.settings, SMOKE if bench.smoke else FULL
    pipeline = Pipeline(settings)
    workdir = Path(tempfile.mkdtemp(prefix="lakelab-bench-cdc-"))
    configs = {side: SinkConfig(topic_prefix=pipeline.topic_prefix, tables=pipeline.tables,
                                table_suffix=f"{pipeline.suffix}_{side}", checkpoint=str(workdir / side),
                                name=f"cdc-bench-{side}-{pipeline.run}") for side in SIDES}
    spark = None
    try:
        bench.step(f"seeding {pipeline.schema}, registering {pipeline.connector}")
        pipeline.seed(customers=500, products=100, orders=plan.orders)
        pipeline.register()
        bench.step("starting Spark")
        spark = get_session(settings, "bench-cdc", {"spark.sql.session.timeZone": "UTC",
                                                    "spark.ui.showConsoleProgress": "false"})
        spark.sparkContext.setLogLevel("ERROR")
        starts = {"ours": lambda: start_query(spark, settings, configs["ours"]),
                  "plain": PlainDebeziumJob(spark, settings, pipeline, configs["plain"]).start}
        topics = [pipeline.topic(t) for t in pipeline.tables]
        bench.step("the snapshot into both lakes")
        queries = {side: start() for side, start in starts.items()}
        for side in SIDES:
            if _wait_caught_up(settings, queries[side], topics, 600) is None:
                raise RuntimeError(f"{LABELS[side]} did not apply the snapshot within 600 s")
        queries["plain"].stop()
        steps, drains = _alternate(bench, settings, pipeline, plan, configs, starts, queries, topics)
        bench.step("both sides apply what they have not yet; checking both lakes against the source")
        for side in SIDES:
            if not queries[side].isActive:
                queries[side] = starts[side]()
        for side in SIDES:
            _wait_caught_up(settings, queries[side], topics, 600)
        equal = {side: all(d.equal for d in wait_equal(settings, pipeline.schema, list(pipeline.tables),
                                                       configs[side].table_suffix, timeout_s=300))
                 for side in SIDES}
        _report(bench, plan, steps, drains, equal)
    finally:
        if spark is not None:
            for query in spark.streams.active:
                query.stop()
        for config in configs.values():
            for table in pipeline.tables:
                drop_lake_table(settings, config, table)
        pipeline.cleanup()
        if spark is not None:
            spark.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _alternate(bench: Bench, settings: Settings, pipeline: Pipeline, plan: Plan, configs, starts, queries, topics):
    """Live steps and drains in turn: ours runs a step while the plain job waits, the plain job
    drains that step's changes then runs the next step while ours waits, and so on."""
    steps: list[Step] = []
    drains: list[Drain] = []
    live = "ours"
    for rate in plan.rates:
        for _ in SIDES:
            other = "plain" if live == "ours" else "ours"
            bench.step(f"{rate:g} ops/s for {plan.step_seconds:g} s into {LABELS[live]}")
            steps.append(_live_step(settings, pipeline, plan, live, configs[live], queries[live], rate, topics,
                                    seed=len(steps) + 10))
            queries[live].stop()
            bench.step(f"{LABELS[other]} drains that step's changes")
            began = time.monotonic()
            queries[other] = starts[other]()
            if _wait_caught_up(settings, queries[other], topics, plan.drain_limit_s) is None:
                raise RuntimeError(f"{LABELS[other]} did not drain within {plan.drain_limit_s:g} s")
            seconds = time.monotonic() - began
            drains.append(Drain(other, sum(p["numInputRows"] for p in queries[other].recentProgress), seconds))
            live = other
    return steps, drains


def _live_step(settings: Settings, pipeline: Pipeline, plan: Plan, side: str, config: SinkConfig, query,
               rate: float, topics: list[str], seed: int) -> Step:
    """The workload at `rate` for the step's seconds: this process (with the probes) plus one
    `lakelab lab-d workload run` process, each at half the rate."""
    step = Step(side, rate)
    helper = subprocess.Popen([sys.executable, "-m", "lakelab.cli", "lab-d", "workload", "run", "--schema",
                               pipeline.schema, "--rate", str(rate / 2), "--duration", str(plan.step_seconds),
                               "--seed", str(seed * 100)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    prober = Prober(settings, config.lake_table("orders"), step)
    shop = Shop(settings, pipeline.schema, seed)
    last_probe = [0.0]

    def on_commit(op: str, _table: str, row_id: int, committed: float) -> None:
        if op == "insert_order" and committed - last_probe[0] >= 1.0:
            last_probe[0] = committed
            shop.orders.remove(row_id)  # the workload must not delete (or update) a probe
            prober.add(row_id, committed)

    done = threading.Event()

    def work() -> None:
        try:
            step.achieved = run_workload(shop, rate / 2, duration=plan.step_seconds, on_commit=on_commit).rate
        finally:
            done.set()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while not done.is_set():
            began = time.monotonic()
            prober.poll()
            done.wait(max(0.0, 1.0 - (time.monotonic() - began)))
        worker.join()
        out = helper.communicate(timeout=120)[0]  # "<ops> operations in <s> s = <rate> ops/s; ..."
        line = next((x for x in out.splitlines() if " operations in " in x), "0 operations in 1 s")
        step.achieved += int(line.split()[0]) / float(line.split()[3])
    finally:
        if helper.poll() is None:
            helper.kill()
        shop.close()
    ended = time.monotonic()
    step.caught_up_s = _wait_caught_up(settings, query, topics, plan.drain_limit_s)
    deadline = time.monotonic() + 30
    while prober.pending() and time.monotonic() < deadline:
        time.sleep(0.5)
        prober.poll()
    if step.caught_up_s is not None:
        step.caught_up_s = time.monotonic() - ended if prober.pending() else step.caught_up_s
    return step


def _report(bench: Bench, plan: Plan, steps: list[Step], drains: list[Drain], equal: dict[str, bool]) -> None:
    rates = {side: [d.rate for d in drains if d.side == side] for side in SIDES}
    for drain in drains:
        bench.note(f"{LABELS[drain.side]} drained {drain.changes:,} changes in {drain.seconds:.1f} s "
                   f"({drain.rate:,.0f}/s)")
    ours, plain = (percentile(rates[side], 0.5) for side in SIDES)
    bench.figure(f"changes/s applied draining a step's backlog (median of {len(rates['ours'])})", ours,
                 "changes/s", standard=plain, standard_name=LABELS["plain"], at_least=0.8)
    for side in SIDES:
        bench.figure(f"{LABELS[side]}: lake equals the source after the run", 1.0 if equal.get(side) else 0.0,
                     "(1 = yes)", at_least=1)
    for step in steps:
        values = step.latencies()
        bench.note(f"{step.rate:g} ops/s into {LABELS[step.side]}: achieved {step.achieved:.0f}, probes "
                   f"{len(step.visible)}/{len(step.probes)}, p50 {one_decimal(percentile(values, 0.5))} s, p95 "
                   f"{one_decimal(percentile(values, 0.95))} s, caught up {one_decimal(step.caught_up_s)} s after the workload")
    for rate in plan.rates:
        ours_step, plain_step = (next(s for s in steps if s.side == side and s.rate == rate) for side in SIDES)
        p95 = percentile(ours_step.latencies(), 0.95)
        bench.figure(f"{rate:g} ops/s offered: p95 latency", p95, "s",
                     standard=percentile(plain_step.latencies(), 0.95), standard_name=LABELS["plain"])
        if rate == max(plan.rates) and not bench.smoke:
            bench.figure(f"{rate:g} ops/s offered (achieved {ours_step.achieved:.0f}): our p95 latency", p95, "s",
                         at_most=15)
    _plot(bench, steps)


def _plot(bench: Bench, steps: list[Step]) -> None:
    figure, ax = plt.subplots(figsize=(8, 4.5))
    for side, color in zip(SIDES, ("tab:blue", "tab:orange")):
        mine = sorted((s for s in steps if s.side == side), key=lambda s: s.achieved)
        for q, style in ((0.5, "--"), (0.95, "-")):
            ax.plot([s.achieved for s in mine], [percentile(s.latencies(), q) for s in mine], style, marker="o",
                    color=color, label=f"{LABELS[side]}, p{int(q * 100)}")
    ax.set_xlabel("source operations/s (achieved)")
    ax.set_ylabel("latency, s (source commit -> visible in Trino)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Lab D CDC latency against ops/s ({Load.now()})")
    bench.save_plot(figure, "latency")
