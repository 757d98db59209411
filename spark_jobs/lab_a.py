"""Lab A's streaming job (the Glue streaming job stand-in): IoT topic -> Hudi table, any schema.

    lakelab lab-a stream                      # runs until stopped (Ctrl-C / SIGTERM)
    lakelab lab-a stream --trigger 5 --once   # process what is there, then stop

Spark Structured Streaming reads the topic with the Kafka source; each micro-batch is upserted
into a COPY_ON_WRITE Hudi table: record key = device id, precombine = event time (an older
event never replaces a newer one), partitioned by event date, one row per device.

There is no fixed schema. Each micro-batch's JSON values are parsed with the union of their
fields; a field the table already has is parsed with the table's type, a new field with the
type inferred from the batch and appended at the end of the table schema; a column the batch
lacks is written as NULL. Hudi's hive sync (HMS mode) then adds new columns to the metastore,
so Trino's `hive` and `hudi` catalogs see them without anybody editing the catalog.

Records that cannot go into the table (not JSON, no device id or event time, a field whose
type changed, an unusable field name) go to the dead-letter topic with the reason and their
source offsets; the job keeps running and counts them.

Exactly once into the table across restarts: offsets live in the checkpoint, a replayed
micro-batch is an idempotent upsert, and each Hudi commit records its micro-batch id so a batch
already committed before a crash is not written twice. The dead-letter topic is at least once
(a crash between the two writes can repeat dead letters; they carry their source offsets).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import shutil
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Optional

import typer
from hudi import HudiTableBuilder
from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from aws.glue.hudi import write_options
from lakelab.console import setup_logging
from lakelab.resources import resources
from lakelab.settings import Settings, get_settings
from services.s3.client import delete_prefix
from services.spark.client import get_session

log = logging.getLogger(__name__)
LAB = resources().labs.lab_a

META_COLUMNS = ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key",
                "_hoodie_partition_path", "_hoodie_file_name")
VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CORRUPT = "_corrupt_record"
CHECKPOINT_KEY = "_lakelab.checkpoint"   # commit metadata (Hudi keeps options starting with "_")
BATCH_KEY = "_lakelab.batch_id"
SYNC_EVERY_S = 300.0


@dataclass
class JobConfig:
    topic: str = LAB.topic
    dead_letter_topic: str = LAB.dead_letter_topic
    database: str = LAB.database
    table: str = LAB.table
    path: str | None = None                 # default s3a://<lab bucket>/<table>
    checkpoint: str | None = None           # default <state_dir>/checkpoints/lab_a-<table>
    metrics_file: Path | None = None        # default <state_dir>/metrics/lab_a-<table>.jsonl
    trigger_seconds: float = 10.0
    once: bool = False                      # availableNow: process what is there, then stop
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = None
    key_field: str = "device_id"
    time_field: str = "event_time"
    partition_field: str = "event_date"
    hive_sync: bool = True

    def resolved(self, settings: Settings) -> "JobConfig":
        return replace(
            self,
            path=self.path or f"s3a://{LAB.bucket}/{self.table}",
            checkpoint=self.checkpoint or str(settings.state_dir / "checkpoints" / f"lab_a-{self.table}"),
            metrics_file=self.metrics_file or settings.state_dir / "metrics" / f"lab_a-{self.table}.jsonl",
        )


def hudi_options(config: JobConfig, settings: Settings, hive_sync: bool = True) -> dict[str, str]:
    """Write options of every commit: the shared Hudi options, one row per device."""
    return {
        **write_options(settings, table=config.table, database=config.database, record_key=config.key_field,
                        ordering_field=config.time_field, partition_field=config.partition_field,
                        # one row per device even when its events cross midnight: a global index moves the row
                        index="GLOBAL_SIMPLE", hive_sync=hive_sync and config.hive_sync),
        "hoodie.simple.index.update.partition.path": "true",
        # schema evolution: the job already sends every table column (NULL when missing);
        # these keep a write with fewer columns from failing if it ever does not
        "hoodie.write.set.null.for.missing.columns": "true",
        "hoodie.datasource.write.reconcile.schema": "false",
        "hoodie.clean.max.commits": "5",           # plan cleaning every 5 commits, not every one
        "hoodie.cleaner.commits.retained": "10",
        "hoodie.keep.min.commits": "20",
        "hoodie.keep.max.commits": "30",
    }


def spark_extra() -> dict[str, str]:
    return {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.streaming.kafka.useDeprecatedOffsetFetching": "false",
        "spark.sql.adaptive.enabled": "false",
        "spark.default.parallelism": "2",
        "spark.ui.showConsoleProgress": "false",
    }


def storage_options(settings: Settings) -> dict[str, str]:
    """hudi-rs (PyPI `hudi`) options for the stack's S3."""
    return {
        "aws_endpoint_url": settings.s3_endpoint,
        "aws_access_key_id": settings.s3_access_key,
        "aws_secret_access_key": settings.s3_secret_key.get_secret_value(),
        "aws_region": settings.s3_region,
        "aws_allow_http": "true",
    }


def last_commit_metadata(path: str, settings: Settings) -> dict | None:
    """Extra metadata of the table's latest completed commit, read with hudi-rs; None if no table."""
    try:
        table = HudiTableBuilder.from_base_uri(path).with_storage_options(storage_options(settings)).build()
        timeline = table.get_timeline()
        commits = timeline.get_completed_commits(desc=True)
        if not commits:
            return None
        return json.loads(timeline.get_instant_metadata_in_json(commits[0])).get("extraMetadata", {}) | {
            "_instant": commits[0].timestamp}
    except Exception as exc:  # noqa: BLE001 - no table yet (hudi-rs raises its own error types)
        log.debug("no commit metadata at %s: %s", path, exc)
        return None


@dataclass
class Totals:
    batches: int = 0
    records: int = 0
    upserted: int = 0
    dead_letter: Counter = field(default_factory=Counter)
    skipped_batches: int = 0
    sync_failures: int = 0


class IotHudiJob:
    """The foreachBatch logic and the streaming query around it."""

    def __init__(self, spark, config: JobConfig, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.config = config.resolved(self.settings)
        self.spark = spark
        self.totals = Totals()
        self.table_schema = self._load_table_schema()
        committed = last_commit_metadata(self.config.path, self.settings) or {}
        self.last_committed_batch: int | None = (
            int(committed[BATCH_KEY]) if committed.get(CHECKPOINT_KEY) == self.config.checkpoint
            and BATCH_KEY in committed else None)
        self.query = None
        self._stop_requested = threading.Event()
        self.synced_partitions: set[str] = set()
        self.last_sync: float | None = None

    # ---- table schema -------------------------------------------------------------------

    def _load_table_schema(self):
        """The table's data columns (StructType, meta columns dropped), or None if no table yet."""
        if last_commit_metadata(self.config.path, self.settings) is None:
            return None
        schema = (self.spark.read.format("hudi").option("hoodie.metadata.enable", "false")
                  .load(self.config.path).schema)
        return StructType([f for f in schema.fields if f.name not in META_COLUMNS])

    # ---- one micro-batch ------------------------------------------------------------------

    def _infer(self, rows):
        """Union schema of the batch's JSON values, inferred on the JVM (no Python workers)."""
        jvm = self.spark._jvm
        values = rows.where("value IS NOT NULL").select("value")._jdf
        dataset = getattr(values, "as")(jvm.org.apache.spark.sql.Encoders.STRING())
        inferred = DataFrame(self.spark._jsparkSession.read().option("mode", "PERMISSIVE").json(dataset), self.spark)
        return inferred.schema

    def _first_seen_order(self, rows, unseen: list[str]) -> list[str]:
        """New field names in the order records list them (inference sorts them alphabetically):
        by their earliest position within a record."""
        positions = (rows.select(F.posexplode(F.map_keys(F.from_json("value", "map<string,string>"))))
                     .where(F.col("col").isin(unseen)).groupBy("col").agg(F.min("pos").alias("pos")).collect())
        return [r.col for r in sorted(positions, key=lambda r: (r.pos, r.col))]

    def _plan(self, inferred, first_seen: list[str]):
        """Parse schema (original names), output columns (lower-cased names) and invalid names."""
        known = {f.name: f.dataType for f in (self.table_schema.fields if self.table_schema else [])}
        cfg = self.config
        names = [f.name for f in inferred.fields if f.name != CORRUPT]
        rank = {n: i for i, n in enumerate(first_seen)}
        names.sort(key=lambda n: (rank.get(n, len(rank)), n))
        parse_fields, invalid, taken = [], {}, {}
        inferred_types = {f.name: f.dataType for f in inferred.fields}
        for name in names:
            lower = name.lower()
            if not VALID_NAME.match(name) or lower.startswith("_hoodie_"):
                invalid[name] = "not a usable column name (letters, digits, _; no _hoodie_ prefix)"
                continue
            if lower in taken:
                invalid[name] = f"collides with field {taken[lower]!r} (column names are case-insensitive)"
                continue
            taken[lower] = name
            if lower == cfg.partition_field:
                continue  # derived from the event time
            if lower in (cfg.key_field, cfg.time_field):
                parse_type = StringType()
            elif lower in known:
                parse_type = known[lower]
            else:
                parse_type = inferred_types[name]
            parse_fields.append(StructField(name, parse_type, True))
        return StructType(parse_fields), invalid

    def _reason(self, parse_schema, invalid: dict[str, str]):
        """A column: NULL for a good record, else `kind: detail`."""
        cfg = self.config
        value, j = F.col("value"), F.col("j")
        by_lower = {f.name.lower(): f.name for f in parse_schema.fields}
        key = j[by_lower[cfg.key_field]] if cfg.key_field in by_lower else F.lit(None)
        event_time = j[by_lower[cfg.time_field]] if cfg.time_field in by_lower else F.lit(None)
        mismatches = [
            F.when(F.get_json_object(value, f"$.{f.name}").isNotNull() & j[f.name].isNull(),
                   F.concat(F.lit(f"{f.name}: expected {f.dataType.simpleString()}, got "),
                            F.substring(F.get_json_object(value, f"$.{f.name}"), 1, 80)))
            for f in parse_schema.fields
        ]
        type_detail = F.concat_ws("; ", *mismatches) if mismatches else F.lit("")
        is_object = F.from_json(value, "map<string,string>").isNotNull()
        reason = (
            F.when(value.isNull(), F.lit("not_json: empty value"))
            .when(~F.ltrim(value).startswith("{") | ~is_object, F.lit("not_json: not a JSON object"))
            .when(j.isNull() | (j[CORRUPT].isNotNull() & (type_detail == "")),
                  F.lit("type_mismatch: a nested field does not match the table's type"))
            .when(j[CORRUPT].isNotNull(), F.concat(F.lit("type_mismatch: "), type_detail))
        )
        if invalid:
            bad_keys = F.array(*[F.lit(n) for n in invalid])
            keys = F.map_keys(F.from_json(value, "map<string,string>"))
            detail = "; ".join(f"{n!r} {why}" for n, why in invalid.items())
            reason = reason.when(F.arrays_overlap(keys, bad_keys), F.lit(f"invalid_field_name: {detail}"))
        reason = (
            reason.when(key.isNull() | (F.trim(key) == ""), F.lit(f"missing_key: no {cfg.key_field}"))
            .when(event_time.isNull(), F.lit(f"missing_event_time: no {cfg.time_field}"))
            .when(self._timestamp(event_time).isNull(),
                  F.concat(F.lit(f"bad_event_time: {cfg.time_field} is not a timestamp: "), event_time))
        )
        return reason

    @staticmethod
    def _timestamp(column):
        """ISO-8601 (`2025-01-01T10:00:00.123Z`, with or without zone), epoch ms or epoch s."""
        return (F.when(column.rlike(r"^\d{13}$"), F.timestamp_millis(column.cast("long")))
                .when(column.rlike(r"^\d{10}$"), F.timestamp_seconds(column.cast("long")))
                .otherwise(column.cast("timestamp")))

    def _output(self, good, parse_schema):
        """Every table column in table order (NULL where the batch lacks it), then new columns."""
        cfg = self.config
        by_lower = {f.name.lower(): f for f in parse_schema.fields}
        columns, seen = [], set()
        table_fields = list(self.table_schema.fields) if self.table_schema else []
        leading = [] if table_fields else [cfg.key_field, cfg.time_field]
        for name in leading + [f.name for f in table_fields] + list(by_lower):
            if name in seen or name == cfg.partition_field:
                continue
            seen.add(name)
            if name == cfg.time_field:
                source = by_lower.get(name)
                columns.append(self._timestamp(F.col("j")[source.name]).alias(name))
            elif name in by_lower:
                columns.append(F.col("j")[by_lower[name].name].alias(name))
            else:
                columns.append(F.lit(None).cast(self.table_schema[name].dataType).alias(name))
        columns.append(F.date_format(self._timestamp(F.col("j")[by_lower[cfg.time_field].name]), "yyyy-MM-dd")
                       .alias(cfg.partition_field))
        return good.select(*columns)

    def _drop_all_null_new_columns(self, out):
        """A new field that is null in every record of the batch has no type yet: leave it out."""
        known = {f.name for f in self.table_schema.fields} if self.table_schema else set()
        new = [c for c in out.columns if c not in known and c not in (
            self.config.key_field, self.config.time_field, self.config.partition_field)]
        if not new:
            return out, []
        counts = out.agg(*[F.count(F.col(c)).alias(c) for c in new]).first().asDict()
        empty = [c for c, n in counts.items() if n == 0]
        return (out.drop(*empty) if empty else out), [c for c in new if c not in empty]

    def process_batch(self, batch, batch_id: int) -> None:
        began = time.monotonic()
        cfg = self.config
        if self.last_committed_batch is not None and batch_id <= self.last_committed_batch:
            log.info("batch %d already committed to %s before a restart: skipped", batch_id, cfg.table)
            self.totals.skipped_batches += 1
            return
        rows = batch.select(
            F.col("key").cast("string").alias("kafka_key"), F.col("value").cast("string").alias("value"),
            "topic", "partition", "offset", F.col("timestamp").alias("kafka_timestamp"),
        ).persist()
        parsed = None
        try:
            inferred = self._infer(rows)
            known = {f.name for f in self.table_schema.fields} if self.table_schema else set()
            unseen = [f.name for f in inferred.fields if f.name != CORRUPT and f.name.lower() not in known]
            parse_schema, invalid = self._plan(inferred, self._first_seen_order(rows, unseen) if unseen else [])
            with_corrupt = StructType([*parse_schema.fields, StructField(CORRUPT, StringType(), True)])
            parsed = rows.withColumn(
                "j", F.from_json("value", with_corrupt, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}))
            parsed = parsed.withColumn("reason", self._reason(parse_schema, invalid)).persist()
            # one pass: counts per outcome, the Kafka time range, the partitions written
            by_lower = {f.name.lower(): f.name for f in parse_schema.fields}
            partition = (F.date_format(self._timestamp(F.col("j")[by_lower[cfg.time_field]]), "yyyy-MM-dd")
                         if cfg.time_field in by_lower else F.lit(None).cast("string"))
            summary = parsed.groupBy(F.split(F.col("reason"), ":").getItem(0).alias("kind")).agg(
                F.count(F.lit(1)).alias("n"), F.min("kafka_timestamp").alias("first"),
                F.max("kafka_timestamp").alias("last"), F.collect_set(partition).alias("partitions")).collect()
            if not summary:
                return
            kinds = {r.kind: r.n for r in summary}
            total = sum(kinds.values())
            good_count = kinds.pop(None, 0)
            partitions = set(itertools.chain.from_iterable(r.partitions for r in summary if r.kind is None))
            first = min(r.first for r in summary if r.first is not None) if any(r.first for r in summary) else None
            last = max(r.last for r in summary if r.last is not None) if any(r.last for r in summary) else None
            dead = sum(kinds.values())
            if dead:
                self._dead_letter(parsed.where("reason IS NOT NULL"), batch_id)
            new_columns: list[str] = []
            write_s, synced = 0.0, False
            if good_count:
                out = self._output(parsed.where("reason IS NULL"), parse_schema)
                out, new_columns = self._drop_all_null_new_columns(out) if unseen else (out, [])
                sync = cfg.hive_sync and self._needs_sync(new_columns, partitions)
                write_began = time.monotonic()
                synced = self._write(out, batch_id, sync)
                write_s = time.monotonic() - write_began
                self.table_schema = StructType([f for f in out.schema.fields])
                if synced:
                    self.synced_partitions |= partitions
                    self.last_sync = time.monotonic()
            self.totals.batches += 1
            self.totals.records += total
            self.totals.upserted += good_count
            self.totals.dead_letter.update(kinds)
            metrics = {
                "batch_id": batch_id, "at": time.time(), "records": total, "upserted": good_count,
                "dead_letter": dead, "reasons": kinds, "new_columns": new_columns, "hive_sync": synced,
                "kafka_first": first.timestamp() if first else None,
                "kafka_last": last.timestamp() if last else None,
                "write_s": round(write_s, 3), "batch_s": round(time.monotonic() - began, 3),
                "trigger_s": None if cfg.once else cfg.trigger_seconds,
            }
            self._record(metrics)
            log.info("batch %d: %d in, %d upserted, %d dead-lettered%s%s; commit %.1f s%s, batch %.1f s",
                     batch_id, total, good_count, dead,
                     f" ({', '.join(f'{k}: {v}' for k, v in kinds.items())})" if kinds else "",
                     f"; new columns {new_columns}" if new_columns else "", write_s,
                     " with hive sync" if synced else "", metrics["batch_s"])
        finally:
            if parsed is not None:
                parsed.unpersist()
            rows.unpersist()

    def _needs_sync(self, new_columns: list[str], partitions: set[str]) -> bool:
        """Hive sync costs a metastore round trip per commit: run it when the catalog would
        change (first commit of this run, new columns, new partitions) or every `SYNC_EVERY_S`."""
        return (self.last_sync is None or bool(new_columns) or not partitions <= self.synced_partitions
                or time.monotonic() - self.last_sync > SYNC_EVERY_S)

    def _write(self, out, batch_id: int, sync: bool) -> bool:
        """Upsert; returns whether the metastore was synced."""
        options = hudi_options(self.config, self.settings, hive_sync=sync)
        options[CHECKPOINT_KEY] = self.config.checkpoint
        options[BATCH_KEY] = str(batch_id)
        try:
            out.write.format("hudi").options(**options).mode("append").save(self.config.path)
            return sync
        except Py4JJavaError as exc:
            # The commit is done when meta sync runs; a metastore hiccup must not stop the
            # stream. The next commit syncs again (the sync is idempotent).
            if "HoodieMetaSyncException" not in str(exc.java_exception.getClass().getName()) + str(exc):
                raise
            self.totals.sync_failures += 1
            self.last_sync = None
            log.warning("batch %d committed but hive sync failed (retried with the next commit): %s",
                        batch_id, str(exc.java_exception)[:300])
            return False

    def _dead_letter(self, bad, batch_id: int) -> None:
        cfg = self.config
        value = F.to_json(F.struct(
            F.split("reason", ": ", 2).getItem(0).alias("reason"),
            F.split("reason", ": ", 2).getItem(1).alias("detail"),
            F.col("value").alias("value"),
            F.struct("topic", "partition", "offset", F.col("kafka_timestamp").alias("timestamp"),
                     F.col("kafka_key").alias("key")).alias("source"),
            F.lit(cfg.table).alias("table"), F.lit(batch_id).alias("batch_id"),
            F.current_timestamp().alias("detected_at"),
        ))
        (bad.select(F.col("kafka_key").alias("key"), value.alias("value"))
         .write.format("kafka")
         .option("kafka.bootstrap.servers", self.settings.kafka_bootstrap)
         .option("topic", cfg.dead_letter_topic)
         .save())

    def _record(self, metrics: dict) -> None:
        path = Path(self.config.metrics_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(metrics, default=str) + "\n")

    # ---- the streaming query -------------------------------------------------------------

    def start(self):
        cfg = self.config
        reader = (self.spark.readStream.format("kafka")
                  .option("kafka.bootstrap.servers", self.settings.kafka_bootstrap)
                  .option("subscribe", cfg.topic)
                  .option("startingOffsets", cfg.starting_offsets)
                  .option("failOnDataLoss", "false"))
        if cfg.max_offsets_per_trigger:
            reader = reader.option("maxOffsetsPerTrigger", str(cfg.max_offsets_per_trigger))
        writer = (reader.load().writeStream
                  .queryName(f"iot_hudi_{cfg.table}")
                  .foreachBatch(self.process_batch)
                  .option("checkpointLocation", cfg.checkpoint))
        writer = writer.trigger(availableNow=True) if cfg.once else writer.trigger(
            processingTime=f"{cfg.trigger_seconds} seconds")
        self.query = writer.start()
        log.info("streaming %s -> %s (%s), checkpoint %s, trigger %s", cfg.topic, cfg.table, cfg.path,
                 cfg.checkpoint, "availableNow" if cfg.once else f"{cfg.trigger_seconds} s")
        return self.query

    def request_stop(self, *_args) -> None:
        self._stop_requested.set()

    def run(self) -> Totals:
        """Start, then wait: until the data is processed (--once) or a stop is requested; a stop
        waits for the running micro-batch to finish, so no commit is cut in half."""
        query = self.start()
        while query.isActive:
            if self._stop_requested.is_set() and not query.status["isTriggerActive"]:
                query.stop()
                break
            query.awaitTermination(0.5)
        if query.exception() is not None:
            raise RuntimeError(f"streaming query failed: {query.exception()}")
        return self.totals


def session(settings: Settings | None = None, app_name: str = "lab_a"):
    return get_session(settings or get_settings(), app_name, spark_extra())


def drop_table(spark, config: JobConfig, settings: Settings | None = None) -> None:
    """Remove the table everywhere: metastore entry, files on S3, the job's checkpoint."""
    settings = settings or get_settings()
    config = config.resolved(settings)
    spark.sql(f"DROP TABLE IF EXISTS `{config.database}`.`{config.table}`")
    delete_prefix(settings, config.path)
    if "://" not in config.checkpoint or config.checkpoint.startswith("file:"):
        shutil.rmtree(config.checkpoint.removeprefix("file:"), ignore_errors=True)
    Path(config.metrics_file).unlink(missing_ok=True)


def stream(
    topic: Annotated[str, typer.Option(help="source topic")] = LAB.topic,
    table: Annotated[str, typer.Option(help="Hudi table (and metastore table) name")] = LAB.table,
    database: Annotated[str, typer.Option(help="metastore database")] = LAB.database,
    path: Annotated[Optional[str], typer.Option(help="table location (default s3a://<lab bucket>/<table>)")] = None,
    dlq_topic: Annotated[str, typer.Option("--dlq-topic", help="dead-letter topic")] = LAB.dead_letter_topic,
    trigger: Annotated[float, typer.Option(help="micro-batch interval, seconds")] = 10.0,
    once: Annotated[bool, typer.Option("--once", help="process what the topic holds (availableNow), then stop")] = False,
    checkpoint: Annotated[Optional[str], typer.Option(help="checkpoint folder (default under the state dir)")] = None,
    starting_offsets: Annotated[str, typer.Option(help="earliest or latest, for a new checkpoint")] = "earliest",
    max_offsets: Annotated[Optional[int], typer.Option(help="max records per micro-batch")] = None,
    hive_sync: Annotated[bool, typer.Option(help="register the table in the metastore")] = True,
    metrics_file: Annotated[Optional[Path], typer.Option(help="JSON line per micro-batch (default under the state dir)")] = None,
    verbose: Annotated[bool, typer.Option("-v", help="Spark and Hudi warnings too")] = False,
) -> None:
    """Stream IoT records from Kafka into a Hudi table whose schema follows the records."""
    setup_logging()
    settings = get_settings()
    config = JobConfig(topic=topic, dead_letter_topic=dlq_topic, database=database, table=table, path=path,
                       checkpoint=checkpoint, trigger_seconds=trigger, once=once, starting_offsets=starting_offsets,
                       max_offsets_per_trigger=max_offsets, hive_sync=hive_sync, metrics_file=metrics_file)
    spark = session(settings)
    spark.sparkContext.setLogLevel("WARN" if verbose else "ERROR")
    try:
        job = IotHudiJob(spark, config, settings)
        signal.signal(signal.SIGTERM, job.request_stop)
        signal.signal(signal.SIGINT, job.request_stop)
        totals = job.run()
        log.info("stopped: %d batches, %d records, %d upserted, dead letters %s, skipped %d, sync failures %d",
                 totals.batches, totals.records, totals.upserted, dict(totals.dead_letter),
                 totals.skipped_batches, totals.sync_failures)
    finally:
        spark.stop()


if __name__ == "__main__":
    typer.run(stream)
