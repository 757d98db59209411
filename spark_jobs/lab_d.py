"""Lab D's sink: Debezium change events from Kafka into one Hudi copy-on-write table per source
table, hive-synced into the metastore so Trino reads `hive.cdc.<table>` / `hudi.cdc.<table>`.

    lakelab lab-d sink [--topic-prefix shop] [--tables customers,products,orders]
                       [--table-suffix ""] [--database cdc] [--base-path s3a://warehouse/cdc]

A Structured Streaming query subscribes to every `<prefix>.<schema>.<table>` topic. Each
micro-batch (foreachBatch):

1. drops tombstones (the null value Debezium sends after a delete);
2. sends what cannot be applied (no JSON envelope, unknown table, no key or LSN, an unsupported
   column type) to the dead-letter topic with the reason, and carries on;
3. per table and per distinct Connect schema in the batch, parses the `after` (or, for deletes,
   `before`) row with the types that schema declares (the connector sends schemas:
   `value.converter.schemas.enable=true`), then unions the variants by name, so a column added on
   the source appears in the batch and older events read NULL for it;
4. keeps the last event per primary key (by source LSN, then Kafka offset);
5. upserts it into the Hudi table in one commit: the payload `DefaultHoodieRecordPayload` orders
   by `_cdc_lsn` (an older event, e.g. a duplicate delivered again after a restart, never
   overwrites a newer row) and treats `_cdc_op = 'd'` as a delete marker. Schema reconciliation
   evolves the table with new columns and hive sync publishes them.

Every table carries three extra columns: `_cdc_op` (c/u/r), `_cdc_lsn` (the PostgreSQL LSN of
the change) and `_cdc_ts_ms` (the source commit time). Offsets live in the checkpoint and a
batch is committed only after its Hudi commits, so a crash replays whole batches: a replayed
event rewrites the same row with the same LSN, which changes nothing.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Annotated, Optional

import typer
from pyspark.sql import Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.utils import StreamingQueryException

from aws.glue.hudi import write_options
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings
from services.metastore import client as metastore
from services.s3.client import delete_prefix
from services.spark.client import get_session

LAB = resources().labs.lab_d
OPS = ("c", "u", "d", "r")
META_COLUMNS = ("_cdc_op", "_cdc_lsn", "_cdc_ts_ms")


@dataclass
class SinkConfig:
    topic_prefix: str = LAB.topic_prefix
    tables: tuple[str, ...] = tuple(LAB.source_tables)
    table_suffix: str = ""
    database: str = LAB.database
    base_path: str = resources().metastore_database(LAB.database).location
    checkpoint: str | None = None
    dlq_topic: str = LAB.dead_letter_topic
    trigger_seconds: float = 2.0
    max_offsets_per_trigger: int = 200_000
    parallel_writes: bool = True
    name: str = field(default="")

    def __post_init__(self) -> None:
        self.name = self.name or f"cdc-{self.topic_prefix}{self.table_suffix}"

    def lake_table(self, source_table: str) -> str:
        return f"{source_table}{self.table_suffix}"

    def table_path(self, source_table: str) -> str:
        return f"{self.base_path.rstrip('/')}/{self.lake_table(source_table)}"

    def checkpoint_location(self, settings: Settings) -> str:
        return self.checkpoint or str(settings.data_dir("spark") / "checkpoints" / self.name)

    @property
    def topic_pattern(self) -> str:
        return rf"^{re.escape(self.topic_prefix)}\.[^.]+\.[^.]+$"


# -- Connect schema -> Spark types --------------------------------------------------------

class UnsupportedSchema(ValueError):
    """A column whose Connect type this sink cannot convert; its events go to the dead letters."""


@dataclass(frozen=True)
class Column:
    name: str
    raw: object                      # the Spark type from_json reads the JSON value as
    convert: Callable                # Column -> Column of the lake type


def _column(connect_field: dict) -> Column:
    # JsonConverter's names for Connect types (FLOAT32/FLOAT64 are "float"/"double").
    primitive = {"int8": T.ByteType(), "int16": T.ShortType(), "int32": T.IntegerType(), "int64": T.LongType(),
                 "float": T.FloatType(), "double": T.DoubleType(), "boolean": T.BooleanType(),
                 "string": T.StringType()}
    name = connect_field["field"]
    kind, logical = connect_field["type"], connect_field.get("name")
    params = connect_field.get("parameters") or {}
    def same(c):
        return c

    if logical == "io.debezium.time.ZonedTimestamp":
        return Column(name, T.StringType(), lambda c: c.cast("timestamp"))
    if logical == "io.debezium.time.MicroTimestamp":
        return Column(name, T.LongType(), F.timestamp_micros)
    if logical in ("io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp"):
        return Column(name, T.LongType(), F.timestamp_millis)
    if logical == "io.debezium.time.NanoTimestamp":
        return Column(name, T.LongType(), lambda c: F.timestamp_micros(F.floor(c / 1000).cast("long")))
    if logical in ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date"):
        return Column(name, T.IntegerType(), F.date_from_unix_date)
    if logical in ("org.apache.kafka.connect.data.Decimal", "io.debezium.data.VariableScaleDecimal"):
        raise UnsupportedSchema(f"column {name}: binary decimals; register the connector with "
                                "decimal.handling.mode=string and datatype.propagate.source.type for NUMERIC")
    if kind == "string" and params.get("__debezium.source.column.type", "").upper() in ("NUMERIC", "DECIMAL"):
        precision = int(params.get("__debezium.source.column.length") or 0)
        scale = int(params.get("__debezium.source.column.scale") or 0)
        if 0 < precision <= 38:
            return Column(name, T.StringType(), lambda c: c.cast(T.DecimalType(precision, scale)))
        return Column(name, T.StringType(), same)  # unconstrained numeric: exact as text
    if kind == "bytes":
        return Column(name, T.StringType(), F.unbase64)  # JsonConverter writes bytes as base64
    if kind in primitive:
        return Column(name, primitive[kind], same)
    if kind == "array" and connect_field.get("items", {}).get("type") in primitive \
            and not connect_field["items"].get("name"):
        return Column(name, T.ArrayType(primitive[connect_field["items"]["type"]]), same)
    return Column(name, T.StringType(), same)  # structs, maps, other arrays: their JSON text


def row_columns(schema_json: str) -> list[Column]:
    """The columns of the `after`/`before` row in a Debezium envelope's Connect schema."""
    schema = json.loads(schema_json)
    for part in schema.get("fields", []):
        if part.get("field") in ("after", "before") and part.get("type") == "struct":
            return [_column(f) for f in part["fields"]]
    raise UnsupportedSchema("the envelope schema has no before/after struct")


# -- Hudi ---------------------------------------------------------------------------------

def hudi_options(settings: Settings, config: SinkConfig, source_table: str, keys: list[str],
                 hive_sync: bool = True) -> dict[str, str]:
    """The shared Hudi options, ordered by the source LSN in the batch and against the stored row;
    `_cdc_op = 'd'` marks a delete (one commit holds upserts and deletes)."""
    return {
        **write_options(settings, table=config.lake_table(source_table), database=config.database,
                        record_key=",".join(keys), ordering_field="_cdc_lsn", hive_sync=hive_sync),
        "hoodie.payload.delete.field": "_cdc_op",
        "hoodie.payload.delete.marker": "d",
        "hoodie.combine.before.upsert": "false",  # the batch holds one event per key already
        "hoodie.datasource.write.reconcile.schema": "true",
        "hoodie.clean.max.commits": "10",  # plan cleaning every 10 commits, not after each one
        "hoodie.datasource.meta_sync.condition.sync": "true",
    }


# -- the micro-batch ------------------------------------------------------------------------

class Sink:
    def __init__(self, spark, settings: Settings, config: SinkConfig):
        self.spark = spark
        self.settings = settings
        self.config = config
        self.keys: dict[str, list[str]] = {}
        self.synced: dict[str, set[str]] = {}  # columns the metastore has, per table, as far as we know

    def parse(self, batch):
        """Kafka rows -> one row per change event with `reason` set where it cannot be applied."""
        meta = T.StructType([
            T.StructField("op", T.StringType()),
            T.StructField("ts_ms", T.LongType()),
            T.StructField("source", T.StructType([
                T.StructField("lsn", T.LongType()), T.StructField("ts_ms", T.LongType()),
                T.StructField("table", T.StringType())])),
        ])
        events = (
            batch.where(F.col("value").isNotNull())  # tombstones
            .select(F.col("key").cast("string").alias("k"), F.col("value").cast("string").alias("v"),
                    "topic", "partition", "offset", "timestamp")
            .select("*", F.json_tuple("v", "schema", "payload").alias("schema_json", "payload"))  # one parse of v
            .withColumn("table", F.element_at(F.split("topic", r"\."), -1))
            .withColumn("meta", F.from_json("payload", meta))
            .withColumn("key_map", F.from_json("k", T.MapType(T.StringType(), T.StringType())))
        )
        reason = (
            F.when(F.col("schema_json").isNull() | F.col("meta").isNull(),
                   F.lit("unparseable payload: not a Debezium JSON envelope with schema and payload"))
            .when(~F.col("table").isin(*self.config.tables), F.concat(F.lit("unknown table: "), F.col("table")))
            .when(~F.coalesce(F.col("meta.op").isin(*OPS), F.lit(False)),
                  F.concat(F.lit("unsupported operation: "), F.coalesce(F.col("meta.op"), F.lit("none"))))
            .when(F.col("meta.source.lsn").isNull(), F.lit("no source LSN in the event"))
            .when(F.col("key_map").isNull() | (F.size("key_map") == 0), F.lit("no primary key in the message key"))
        )
        return events.withColumn("reason", reason).withColumn("sid", F.xxhash64(F.coalesce("schema_json", F.lit(""))))

    def dead_letters(self, rows, batch_id: int) -> None:
        record = F.struct(
            F.col("reason"), F.col("topic").alias("source_topic"), "partition", "offset",
            F.col("timestamp").cast("string").alias("kafka_timestamp"), F.col("k").alias("key"),
            F.col("v").alias("value"), F.lit(batch_id).alias("batch_id"), F.lit(self.config.name).alias("job"),
            F.current_timestamp().cast("string").alias("failed_at"))
        (rows.select(F.col("k").alias("key"), F.to_json(record).alias("value"))
         .write.format("kafka").option("kafka.bootstrap.servers", self.settings.kafka_bootstrap)
         .option("topic", self.config.dlq_topic).save())

    def table_changes(self, events, table: str, variants: list[tuple[str, list]]):
        """The batch's events of one table as lake rows, last event per key only."""
        keys = self.keys[table]
        parts = []
        for sid, columns in variants:
            row_type = T.StructType([T.StructField(c.name, c.raw) for c in columns])
            envelope = T.StructType([T.StructField("before", row_type), T.StructField("after", row_type)])
            key_type = T.StructType([T.StructField(c.name, c.raw) for c in columns if c.name in keys])
            parsed = (events.where((F.col("table") == table) & (F.col("sid") == sid))
                      .withColumn("p", F.from_json("payload", envelope))
                      .withColumn("key_row", F.from_json("k", key_type))
                      .withColumn("row", F.when(F.col("meta.op") == "d", F.col("p.before")).otherwise(F.col("p.after"))))
            values = []
            for c in columns:
                raw = F.col("row").getField(c.name)
                if c.name in keys:  # a delete with REPLICA IDENTITY DEFAULT/NOTHING: key from the message key
                    raw = F.coalesce(raw, F.col("key_row").getField(c.name))
                values.append(c.convert(raw).alias(c.name))
            parts.append(parsed.select(
                *values,
                F.col("meta.op").alias("_cdc_op"), F.col("meta.source.lsn").alias("_cdc_lsn"),
                F.col("meta.source.ts_ms").alias("_cdc_ts_ms"),
                F.col("partition").alias("_kafka_partition"), F.col("offset").alias("_kafka_offset")))
        rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)
        latest = Window.partitionBy(*keys).orderBy(F.col("_cdc_lsn").desc(), F.col("_kafka_offset").desc())
        return (rows.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1")
                .drop("_rank", "_kafka_partition", "_kafka_offset"))

    def write(self, table: str, rows, hive_sync: bool) -> float:
        began = time.monotonic()
        options = hudi_options(self.settings, self.config, table, self.keys[table], hive_sync)
        rows.write.format("hudi").options(**options).mode("append").save(self.config.table_path(table))
        if hive_sync:
            self.synced[table] = set(rows.columns)
        return time.monotonic() - began

    def process(self, batch, batch_id: int) -> None:
        began = time.monotonic()
        parsed_events = self.parse(batch)
        # The envelope's text, 5 KB an event, is read again only for dead letters: caching it cost
        # a quarter of the parse (docs/bench.md, CDC)
        events = parsed_events.drop("v").persist()
        try:
            summary = (events.groupBy("table", "sid", "reason")
                       .agg(F.count("*").alias("n"), F.first("schema_json").alias("schema_json"),
                            F.first("k").alias("k"))
                       .collect())
            if not summary:
                return
            unsupported: dict[str, str] = {}
            variants: dict[str, list[tuple[str, list]]] = {}
            counts: dict[str, int] = {}
            for row in summary:
                if row.reason is not None:
                    continue
                try:
                    columns = row_columns(row.schema_json)
                except (UnsupportedSchema, ValueError, KeyError) as exc:
                    unsupported[row.sid] = f"unsupported schema: {exc}"
                    continue
                keys = sorted(json.loads(row.k))
                self.keys.setdefault(row.table, keys)
                variants.setdefault(row.table, []).append((row.sid, columns))
                counts[row.table] = counts.get(row.table, 0) + row.n
            bad = sum(r.n for r in summary if r.reason is not None or r.sid in unsupported)
            if bad:
                reason = F.col("reason")
                for sid, why in unsupported.items():
                    reason = F.when(F.col("sid") == sid, F.lit(why)).otherwise(reason)
                # parses the batch again (Spark reads the same offsets), only when it has dead letters
                self.dead_letters(parsed_events.withColumn("reason", reason).where(F.col("reason").isNotNull()), batch_id)
            writes = {table: self.table_changes(events.where(F.col("reason").isNull()), table, found)
                      for table, found in variants.items()}
            # Hive sync only for a table this run has not synced yet or that gained a column: it
            # is what publishes a new column to the metastore (and so to Trino).
            sync = {t: not set(rows.columns) <= self.synced.get(t, set()) for t, rows in writes.items()}
            parsed = time.monotonic() - began
            if self.config.parallel_writes and len(writes) > 1 and not any(sync.values()):
                # One Hudi commit per table; tables are independent, so they commit concurrently
                # (S3 round trips overlap). Hive sync clients share state across threads, so a
                # batch that syncs writes its tables one after another.
                with ThreadPoolExecutor(len(writes)) as pool:
                    futures = {t: pool.submit(self.write, t, rows, False) for t, rows in writes.items()}
                    seconds = {t: f.result() for t, f in futures.items()}
            else:
                seconds = {t: self.write(t, rows, sync[t]) for t, rows in writes.items()}
            detail = ", ".join(f"{t} {n} in {seconds[t]:.1f} s{' +sync' if sync[t] else ''}"
                               for t, n in sorted(counts.items()))
            print(f"[{self.config.name}] batch {batch_id}: {sum(counts.values())} events ({detail}), "
                  f"{bad} dead letters, parsed in {parsed:.1f} s, total {time.monotonic() - began:.1f} s", flush=True)
        finally:
            events.unpersist()


# -- the streaming query ------------------------------------------------------------------

def start_query(spark, settings: Settings, config: SinkConfig):
    sink = Sink(spark, settings, config)
    stream = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribePattern", config.topic_pattern)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", config.max_offsets_per_trigger)
        # New topics (a table's first event) are found within seconds, not the 5 minute default.
        .option("kafka.metadata.max.age.ms", "5000")
        # While Kafka restarts: fail the batch fast (the loop in `run` restarts the query).
        .option("kafkaConsumer.pollTimeoutMs", "20000")
        .option("fetchOffset.numRetries", "10")
        .load()
    )
    return (stream.writeStream.queryName(config.name)
            .option("checkpointLocation", config.checkpoint_location(settings))
            .trigger(processingTime=f"{config.trigger_seconds} seconds")
            .foreachBatch(sink.process)
            .start())


def run(config: SinkConfig, settings: Settings | None = None, stop: threading.Event | None = None) -> None:
    """Run the query until `stop` is set (SIGTERM/SIGINT when run as a program); a failed query
    (Kafka away, the metastore busy) is started again from its checkpoint."""
    settings = settings or get_settings()
    stop = stop or threading.Event()
    if "://" not in config.checkpoint_location(settings):
        Path(config.checkpoint_location(settings)).parent.mkdir(parents=True, exist_ok=True)
    spark = get_session(settings, config.name, {"spark.sql.session.timeZone": "UTC",
                                            "spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("WARN")
    print(f"[{config.name}] topics /{config.topic_pattern}/ -> {config.database}.* at {config.base_path} "
          f"(checkpoint {config.checkpoint_location(settings)})", flush=True)
    failures = 0
    try:
        while not stop.is_set():
            query = start_query(spark, settings, config)
            try:
                while not stop.is_set() and query.isActive:
                    query.awaitTermination(1)
                if stop.is_set():
                    query.stop()
                    break
            except StreamingQueryException as exc:
                failures += 1
                message = str(exc).splitlines()[0][:300]
                print(f"[{config.name}] query failed ({failures}): {message}; restarting from the checkpoint",
                      flush=True)
                stop.wait(min(5 * failures, 30))
                continue
            failures = 0
    finally:
        try:
            spark.stop()
        except Exception as exc:  # noqa: BLE001 - e.g. the JVM went first (Ctrl-C reaches the whole group)
            print(f"[{config.name}] stopping Spark: {type(exc).__name__}", flush=True)


def drop_lake_table(settings: Settings, config: SinkConfig, source_table: str) -> None:
    """Remove a lake table: its metastore entry and its files."""
    metastore.get_client(settings).drop_table(config.database, config.lake_table(source_table))
    delete_prefix(settings, config.table_path(source_table))


def sink(
    topic_prefix: Annotated[str, typer.Option(help="Debezium topic.prefix")] = LAB.topic_prefix,
    tables: Annotated[str, typer.Option(help="source tables to apply (others: dead letters)")] = ",".join(LAB.source_tables),
    table_suffix: Annotated[str, typer.Option(help="appended to each lake table name")] = "",
    database: Annotated[str, typer.Option(help="metastore database")] = LAB.database,
    base_path: Annotated[str, typer.Option(help="where the tables live")] = SinkConfig.base_path,
    checkpoint: Annotated[Optional[str], typer.Option(help="default: <state dir>/data/spark/checkpoints/<name>")] = None,
    dlq_topic: Annotated[str, typer.Option(help="dead-letter topic")] = LAB.dead_letter_topic,
    trigger_seconds: Annotated[float, typer.Option(help="micro-batch interval")] = 2.0,
    sequential_writes: Annotated[bool, typer.Option(help="write tables one after another")] = False,
) -> None:
    """Apply Debezium change events to Hudi tables that mirror the source (runs until SIGTERM)."""
    config = SinkConfig(topic_prefix=topic_prefix, tables=tuple(t for t in tables.split(",") if t),
                        table_suffix=table_suffix, database=database, base_path=base_path, checkpoint=checkpoint,
                        dlq_topic=dlq_topic, trigger_seconds=trigger_seconds, parallel_writes=not sequential_writes)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(config, stop=stop)


if __name__ == "__main__":
    typer.run(sink)
