"""The Kinesis Firehose stand-in: deliver a topic to S3 as objects of one record per line.

A delivery stream is declared for JSON records (the default: newline-delimited JSON objects,
`.json`) or for CSV records (`record_format="csv"`: each record is one CSV line, written as it
came, `.csv`; the Kinesis Data Generator's CSV templates make such streams).

Objects go under `{prefix}year=YYYY/month=MM/day=DD/hour=HH/` (or another `time_folder`) of the
records' *arrival* time (the Kafka message timestamp, like Firehose's ApproximateArrivalTimestamp);
a buffer is flushed when it holds `buffer_bytes`, is `buffer_seconds` old, or the arrival hour
changes. Bad records go to `{error_prefix}{error-type}/year=.../` as Firehose-style error records
with the raw data: for JSON streams, records that are not UTF-8 JSON objects or lack a required
field; for CSV streams, records that are not UTF-8, empty, span several lines, are not readable
CSV, or do not have the declared number of fields.

Exactly once, per partition: a batch is the offset range [start, end] of one partition, its
object keys derive from (topic, partition, start, end). Before writing, the intent is committed to
Kafka: offset `start` again, with `{"end": end}` as the commit's metadata; then the objects are
written, then offset end+1 is committed (no metadata). A process that dies anywhere in between
restarts at `start`, finds the intent and re-reads exactly [start, end] into the same keys:
nothing is lost, nothing is duplicated. (The intent was an S3 marker object, written and deleted
per batch: two S3 round trips of the four per object, about half of a flush, bench/lab_b.py.)
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from tenacity import retry, stop_after_attempt, wait_exponential

from lakelab.settings import Settings
from services.s3 import client as s3

log = logging.getLogger(__name__)


CONTENT_TYPES = {"json": "application/x-ndjson", "csv": "text/csv"}
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class DeliveryConfig:
    """One delivery stream: a topic to s3://bucket/prefix, errors under error_prefix. JSON
    records must have `required_fields`; CSV records `csv_fields` fields (0: any number)."""

    topic: str
    bucket: str
    prefix: str
    error_prefix: str
    buffer_bytes: int
    buffer_seconds: float
    required_fields: tuple[str, ...] = ()
    group_id: str = ""
    # The folder of an arrival hour, formatted with that hour (Firehose's !{timestamp:...} prefix)
    time_folder: str = "year={0:%Y}/month={0:%m}/day={0:%d}/hour={0:%H}/"
    record_format: Literal["json", "csv"] = "json"
    csv_fields: int = 0
    # How long one consume waits for records: also how late a stop is seen when the topic is idle
    poll_seconds: float = 0.5

    @classmethod
    def declared(cls, settings: Settings, topic: str, bucket: str, prefix: str, error_prefix: str = "",
                 buffer_bytes: int = 0, buffer_seconds: float = 0.0, **options) -> DeliveryConfig:
        """A stream as the CLI declares it: the prefix ends with /, errors default to
        PREFIX-without-/ + `_errors/`, and buffering hints left at 0 come from the settings."""
        prefix = prefix.rstrip("/") + "/"
        return cls(topic=topic, bucket=bucket, prefix=prefix, error_prefix=error_prefix or prefix.rstrip("/") + "_errors/",
                   buffer_bytes=buffer_bytes or settings.firehose_buffer_bytes,
                   buffer_seconds=buffer_seconds or settings.firehose_buffer_seconds, **options)

    @property
    def group(self) -> str:
        digest = hashlib.sha1(f"{self.bucket}/{self.prefix}".encode()).hexdigest()[:8]
        return self.group_id or f"firehose-{self.topic}-{digest}"


def classify(value: bytes | None, required: tuple[str, ...] = ()) -> tuple[dict | None, str, str]:
    """(record, "", "") for a good record, else (None, error type, message)."""
    if value is None:
        return None, "empty-record", "the record has no value"
    try:
        # orjson parses well-formed UTF-8 JSON several times faster than `json` (the delivery's
        # main cost per record); what it refuses (and what `json` accepts beyond it, such as NaN
        # or integers over 64 bits) is judged by `json` below, as before
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return _classify_slowly(value, required)
    if not isinstance(record, dict):
        return None, "not-an-object", f"JSON {type(record).__name__} where an object was expected"
    return _with_required(record, required)


def _classify_slowly(value: bytes, required: tuple[str, ...]) -> tuple[dict | None, str, str]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "not-utf8", f"not UTF-8: {exc}"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, "not-json", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if not isinstance(record, dict):
        return None, "not-an-object", f"JSON {type(record).__name__} where an object was expected"
    return _with_required(record, required)


def _with_required(record: dict, required: tuple[str, ...]) -> tuple[dict | None, str, str]:
    missing = [name for name in required if record.get(name) is None]
    if missing:
        return None, "missing-fields", f"missing required field(s): {', '.join(missing)}"
    return record, "", ""


def csv_line(value: bytes | None, fields: int = 0) -> tuple[bytes | None, str, str]:
    """(the line to write, "", "") for a good CSV record, else (None, error type, message). The
    record is kept as it came, one line end added (a record's own final line end is not doubled)."""
    if not value or not value.strip():
        return None, "empty-record", "the record is empty"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "not-utf8", f"not UTF-8: {exc}"
    text = text.removesuffix("\n").removesuffix("\r")
    if "\n" in text or "\r" in text:
        return None, "multi-line", f"{len(text.splitlines())} lines in one record; a CSV record is one line"
    try:
        found = len(next(csv.reader([text], strict=True)))
    except csv.Error as exc:
        return None, "not-csv", f"not a CSV line: {exc}"
    if fields and found != fields:
        return None, "field-count", f"{found} fields where the stream declares {fields}"
    return text.encode() + b"\n", "", ""


@dataclass
class Batch:
    """The buffered records of one partition: offsets [start, end] of one arrival hour."""

    partition: int
    start: int = -1
    end: int = -1
    hour: datetime | None = None
    hour_ms: int = -1  # the arrival hour as epoch milliseconds (compared per record)
    opened: float = 0.0
    size: int = 0
    good: list[bytes] = field(default_factory=list)
    errors: dict[str, list[bytes]] = field(default_factory=dict)
    until: int | None = None  # recovery: re-read exactly up to this offset

    @property
    def empty(self) -> bool:
        return self.start < 0


@dataclass
class DeliveryStats:
    records: int = 0
    errors: int = 0
    objects: list[tuple[str, int]] = field(default_factory=list)  # (key, bytes)


class Firehose:
    """One delivery stream. `run()` consumes until `stop` is set (or SIGTERM/SIGINT in the CLI)."""

    def __init__(self, settings: Settings, config: DeliveryConfig) -> None:
        self.settings, self.config = settings, config
        self.s3 = s3.get_client(settings)
        self.batches: dict[int, Batch] = {}
        self.stats = DeliveryStats()
        self.consumer = None
        self.last_activity = time.monotonic()

    # --- S3 -------------------------------------------------------------------------------
    @retry(stop=stop_after_attempt(6), wait=wait_exponential(0.2, max=5), reraise=True)
    def _put(self, key: str, body: bytes) -> None:
        """An object: the content type follows the key's extension (.json or .csv)."""
        self.s3.put_object(Bucket=self.config.bucket, Key=key, Body=body,
                           ContentType=CONTENT_TYPES[key.rsplit(".", 1)[-1]])

    # --- Kafka ----------------------------------------------------------------------------
    def _on_assign(self, consumer, partitions) -> None:
        self.last_activity = time.monotonic()
        for tp in consumer.committed(partitions, timeout=30):
            batch = Batch(tp.partition)
            if tp.offset >= 0 and tp.metadata:  # an intent: the run before died within this batch
                batch.until = json.loads(tp.metadata)["end"]
                log.warning("partition %s: unfinished batch [%s, %s] from an earlier run; re-delivering it "
                            "to the same keys", tp.partition, tp.offset, batch.until)
            self.batches[tp.partition] = batch

    def _on_revoke(self, _consumer, partitions) -> None:
        for tp in partitions:  # not committed: the next owner re-reads them
            self.batches.pop(tp.partition, None)

    def _add(self, message) -> None:
        partition, offset = message.partition(), message.offset()
        batch = self.batches.get(partition)
        if batch is None:
            batch = self.batches[partition] = Batch(partition)
        kind, ms = message.timestamp()
        arrived_ms = ms if kind and ms > 0 else int(time.time() * 1000)
        hour_ms = arrived_ms - arrived_ms % HOUR_MS
        if not batch.empty and hour_ms != batch.hour_ms and batch.until is None:
            self._flush(batch, "hour")
        if batch.empty:
            batch.start, batch.hour_ms, batch.opened = offset, hour_ms, time.monotonic()
            batch.hour = datetime.fromtimestamp(hour_ms / 1000, timezone.utc)
        batch.end = offset
        line, error, reason = self._line(message.value())
        if line is not None:
            batch.good.append(line)
        else:
            line = json.dumps({
                "errorCode": error, "errorMessage": reason, "topic": message.topic(), "partition": partition,
                "offset": offset, "arrivalTimestamp": arrived_ms,
                "rawData": base64.b64encode(message.value() or b"").decode(),
            }).encode() + b"\n"
            batch.errors.setdefault(error, []).append(line)
        batch.size += len(line)
        if batch.until is not None:
            if offset >= batch.until:
                self._flush(batch, "recovery")
        elif batch.size >= self.config.buffer_bytes:
            self._flush(batch, "size")

    def _line(self, value: bytes | None) -> tuple[bytes | None, str, str]:
        """The record as the line to deliver, or (None, error type, message)."""
        if self.config.record_format == "csv":
            return csv_line(value, self.config.csv_fields)
        record, error, reason = classify(value, self.config.required_fields)
        if record is None:
            return None, error, reason
        assert value is not None
        # The record as it came (as Firehose delivers it), one line end added; a line break inside
        # it can only be whitespace between JSON tokens, and such a record is written compactly.
        text = value.rstrip(b"\r\n")
        if b"\n" not in text and b"\r" not in text:
            return text + b"\n", "", ""
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n", "", ""

    def _keys(self, batch: Batch) -> dict[str, list[bytes]]:
        """Data and error objects of a batch; error records are JSON whatever the stream's format."""
        c, h = self.config, batch.hour
        assert h is not None
        folder = c.time_folder.format(h)
        name = f"{c.topic}-{batch.partition}-{batch.start:020d}-{batch.end:020d}"
        keys = {f"{c.prefix}{folder}{name}.{c.record_format}": batch.good} if batch.good else {}
        keys.update({f"{c.error_prefix}{kind}/{folder}{name}.json": lines for kind, lines in sorted(batch.errors.items())})
        return keys

    def _flush(self, batch: Batch, reason: str) -> None:
        if batch.empty:
            return
        c, objects = self.config, self._keys(batch)
        self._intent(batch)
        for key, lines in objects.items():
            body = b"".join(lines)
            self._put(key, body)
            self.stats.objects.append((key, len(body)))
            log.info("s3://%s/%s: %d records, %d bytes (%s)", c.bucket, key, len(lines), len(body), reason)
        self._commit(batch)
        self.stats.records += len(batch.good)
        self.stats.errors += sum(len(v) for v in batch.errors.values())
        self.batches[batch.partition] = Batch(batch.partition)

    def _intent(self, batch: Batch) -> None:
        """Before the batch's objects are written: its range, as the metadata of a commit of its
        first offset (where the group already is)."""
        offset = TopicPartition(self.config.topic, batch.partition, batch.start,
                                metadata=json.dumps({"end": batch.end}))
        self.consumer.commit(offsets=[offset], asynchronous=False)

    def _commit(self, batch: Batch) -> None:
        """The batch's data is durable: the group moves past it (and the intent is gone)."""
        offset = TopicPartition(self.config.topic, batch.partition, batch.end + 1)
        self.consumer.commit(offsets=[offset], asynchronous=False)

    def flush_all(self, reason: str) -> None:
        for batch in list(self.batches.values()):
            if batch.until is None:
                self._flush(batch, reason)

    def run(self, stop: threading.Event | None = None, idle_exit_s: float | None = None) -> DeliveryStats:
        """Deliver until `stop` is set, or until nothing arrived for `idle_exit_s` (then flush)."""
        stop = stop or threading.Event()
        self.consumer = Consumer({
            "bootstrap.servers": self.settings.kafka_bootstrap, "group.id": self.config.group,
            # static membership: a restarted (or crashed) process takes its partitions back at
            # once instead of waiting out the session; a second process of the same stream fences the first
            "group.instance.id": f"{self.config.group}-0",
            "enable.auto.commit": False, "auto.offset.reset": "earliest", "isolation.level": "read_committed",
        })
        self.consumer.subscribe([self.config.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while not stop.is_set():
                for message in self.consumer.consume(num_messages=500, timeout=self.config.poll_seconds):
                    if message.error():
                        if message.error().fatal():
                            raise KafkaException(message.error())
                        log.warning("%s", message.error())
                        continue
                    self.last_activity = time.monotonic()
                    self._add(message)
                now = time.monotonic()
                for batch in list(self.batches.values()):
                    if not batch.empty and batch.until is None and now - batch.opened >= self.config.buffer_seconds:
                        self._flush(batch, "interval")
                if (idle_exit_s is not None and now - self.last_activity >= idle_exit_s and self.batches
                        and all(b.until is None for b in self.batches.values())):
                    break
            self.flush_all("stop")
        finally:
            self.consumer.close()
        return self.stats


def run_until_signalled(settings: Settings, config: DeliveryConfig, idle_exit_s: float | None = None) -> DeliveryStats:
    """The CLI's entry: SIGTERM / SIGINT flush the buffers, commit and exit."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return Firehose(settings, config).run(stop, idle_exit_s)
