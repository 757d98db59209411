"""Lab A end to end on the real stack: generator -> Kafka -> Spark Structured Streaming -> Hudi on
S3 -> hive sync -> Trino (`hive` and `hudi` catalogs), read back a second way with hudi-rs.

The tests are steps of one scenario and run in file order on one table: 4 fields, upserts,
2 fields, 10 fields (new columns), 4 fields again, dead letters, then a crash and restart.
Every run uses its own topics, table, path and checkpoint, so reruns never collide.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from lakelab.settings import ROOT
from producers.kdg import Generator, device_pool
from services.kafka.client import get_client as admin
from services.trino.client import get_client as connect
from spark_jobs.lab_a import IotHudiJob, JobConfig, drop_table, session, storage_options
from tests.clikit import LAKELAB

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

FOUR = ["temperature", "humidity", "pressure", "battery"]
NEW_COLUMNS = ["co2_ppm", "noise_db", "light_lux", "vibration", "voltage", "firmware"]


class Lab:
    """One Lab A run: its topics, table and checkpoint, the records sent, the expected table."""

    def __init__(self, settings, spark, workdir) -> None:
        run = uuid.uuid4().hex[:8]
        self.settings, self.spark = settings, spark
        self.config = JobConfig(
            topic=f"lab-a-{run}", dead_letter_topic=f"lab-a-dlq-{run}", table=f"lab_a_{run}",
            path=f"s3a://warehouse/lab_a_tests/lab_a_{run}", checkpoint=str(workdir / "checkpoint"),
            metrics_file=workdir / "metrics.jsonl", once=True,
        )
        self.expected: dict[str, dict] = {}
        # Unique, increasing event times (1 ms apart) so the latest event per device is unambiguous,
        # from noon today: the table is partitioned by event date, and a test's event an hour older
        # must stay on its row's date (run just after midnight, it moved the row to the day
        # before, which Hudi's global index does by rewriting it with a new commit time).
        start = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
        self._clock = (start + timedelta(milliseconds=n) for n in itertools.count())

    def create_topics(self) -> None:
        client = admin(self.settings)   # keep the client alive until the futures resolve
        futures = client.create_topics([
            NewTopic(self.config.topic, num_partitions=3, replication_factor=1),
            NewTopic(self.config.dead_letter_topic, num_partitions=1, replication_factor=1)])
        for future in futures.values():
            future.result()

    def delete_topics(self) -> None:
        client = admin(self.settings)
        for future in client.delete_topics([self.config.topic, self.config.dead_letter_topic]).values():
            future.result()

    def send(self, profile: str, first: int, devices: int, events_per_device: int = 1,
             rate: float = 0, batch: int = 100) -> list[dict]:
        generator = Generator(self.settings.kafka_bootstrap, topic=self.config.topic, profile=profile,
                              devices=device_pool(devices, first), device_order="cycle", rate=rate,
                              batch=batch, seed=first)
        generator.ctx.now = lambda: next(self._clock)
        sent: list[dict] = []
        generator.run(count=devices * events_per_device, on_batch=lambda records, _at: sent.extend(records))
        for record in sent:
            self.expected[record["device_id"]] = record
        return sent

    def send_raw(self, values: list[str], key: bytes = b"raw") -> None:
        producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap})
        for value in values:
            producer.produce(self.config.topic, value=value.encode(), key=key)
        assert producer.flush(15) == 0

    def run_job(self) -> IotHudiJob:
        """One availableNow run of the streaming job: what the topic holds, then stop."""
        job = IotHudiJob(self.spark, self.config, self.settings)
        job.run()
        return job

    # ---- reading the table back ----------------------------------------------------------

    def trino(self, catalog: str, sql: str) -> tuple[list[str], list[list]]:
        cursor = connect(self.settings, catalog, "default").cursor()
        cursor.execute(sql.format(table=self.config.table))
        rows = cursor.fetchall()
        return [d[0] for d in cursor.description], rows

    def trino_table(self, catalog: str) -> dict[str, dict]:
        columns, rows = self.trino(catalog, "SELECT * FROM {table}")
        return {row[columns.index("device_id")]: _normalize(dict(zip(columns, row))) for row in rows}

    def hudi_rs_table(self) -> dict[str, dict]:
        from hudi import HudiTableBuilder

        table = (HudiTableBuilder.from_base_uri(self.config.path)
                 .with_storage_options(storage_options(self.settings)).build())
        rows = pa.Table.from_batches(table.read()).to_pylist()
        return {row["device_id"]: _normalize(row) for row in rows}

    def columns(self, catalog: str) -> list[str]:
        return [row[0] for row in self.trino(catalog, "DESCRIBE {table}")[1]]

    def expected_row(self, record: dict, columns: list[str]) -> dict:
        event_time = _utc_naive(datetime.fromisoformat(record["event_time"]))
        row = {c: record.get(c) for c in columns if not c.startswith("_hoodie_")}
        row.update(event_time=event_time, event_date=event_time.date().isoformat())
        return row

    def assert_table(self, catalog: str = "hudi") -> dict[str, dict]:
        """The table equals the latest event of every device sent: one row per device, each
        column the record's value or NULL when the record had no such field."""
        rows = self.trino_table(catalog)
        assert sorted(rows) == sorted(self.expected), f"{catalog}: devices differ"
        for device, record in self.expected.items():
            actual = rows[device]
            expected = self.expected_row(record, [c for c in actual if not c.startswith("_hoodie_")])
            assert {k: actual[k] for k in expected} == expected, f"{catalog}: row of {device}"
            assert actual["_hoodie_record_key"] == device
        return rows

    def assert_readers_agree(self) -> None:
        """Trino's hudi catalog, Trino's hive catalog (redirected) and hudi-rs read the same rows."""
        by_hudi = self.trino_table("hudi")
        assert self.hudi_rs_table() == by_hudi, "hudi-rs and Trino disagree"
        try:
            by_hive = self.trino_table("hive")
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"hive.default.{self.config.table} unreadable ({str(exc)[:200]}); Trino must run with "
                        "hive.hudi-catalog-name=hudi (trino/catalog/hive.properties): restart Trino")
        assert by_hive == by_hudi, "hive and hudi catalogs disagree"

    def commit_times(self) -> dict[str, str]:
        return {d: r["_hoodie_commit_time"] for d, r in self.trino_table("hudi").items()}

    def dead_letters(self, expected: int, timeout: float = 30) -> list[dict]:
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": f"test-{uuid.uuid4()}",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([self.config.dead_letter_topic])
        found: list[dict] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is not None and message.error() is None:
                    found.append(json.loads(message.value()))
                elif len(found) >= expected:
                    break
        finally:
            consumer.close()
        return found


def _utc_naive(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _normalize(row: dict) -> dict:
    """Same Python values whichever reader: naive UTC datetimes truncated to the millisecond."""
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            value = _utc_naive(value)
            value = value.replace(microsecond=value.microsecond // 1000 * 1000)
        out[key] = value
    return out


@pytest.fixture(scope="module")
def lab(stack, tmp_path_factory):
    spark = session(stack, "test-lab-a")
    spark.sparkContext.setLogLevel("ERROR")
    lab = Lab(stack, spark, tmp_path_factory.mktemp("lab_a"))
    lab.create_topics()
    try:
        yield lab
    finally:
        try:
            drop_table(spark, lab.config, stack)
            lab.delete_topics()
        finally:
            spark.stop()


def test_four_fields_create_a_registered_table(lab):
    lab.send("iot_4", first=1, devices=20, events_per_device=2)
    job = lab.run_job()
    assert job.totals.upserted == 40 and not job.totals.dead_letter
    rows = lab.assert_table("hudi")
    assert len(rows) == 20
    assert lab.trino("hudi", "SELECT count(*) FROM {table}")[1] == [[20]]
    assert set(FOUR) <= set(lab.columns("hudi"))
    assert not set(NEW_COLUMNS) & set(lab.columns("hudi"))
    lab.assert_readers_agree()


def test_upsert_replaces_seen_keys_only(lab):
    before = lab.commit_times()
    older = dict(lab.expected["sensor-0006"])
    lab.send("iot_4", first=1, devices=5)                       # newer events for sensors 1-5
    stale = {**older, "temperature": -99, "event_time": (datetime.fromisoformat(older["event_time"])
                                                         - timedelta(hours=1)).isoformat()}
    lab.send_raw([json.dumps(stale)], key=b"sensor-0006")       # an older event never wins
    lab.run_job()
    after = lab.commit_times()
    lab.assert_table("hudi")
    changed = {d for d in after if after[d] != before[d]}
    assert changed == {f"sensor-{n:04d}" for n in range(1, 6)}, "only the updated rows get a new commit time"
    assert len(after) == 20


def test_two_fields_write_null_for_missing_columns(lab):
    columns_before = lab.columns("hudi")
    lab.send("iot_2", first=21, devices=5)
    job = lab.run_job()
    assert job.totals.upserted == 5 and not job.totals.dead_letter
    rows = lab.assert_table("hudi")
    assert len(rows) == 25
    assert lab.columns("hudi") == columns_before, "a write with fewer fields changed the schema"
    for n in range(21, 26):
        assert rows[f"sensor-{n:04d}"]["pressure"] is None and rows[f"sensor-{n:04d}"]["battery"] is None


def test_ten_fields_add_columns_visible_in_trino(lab):
    lab.send("iot_10", first=11, devices=10)
    job = lab.run_job()
    assert job.totals.upserted == 10
    for catalog in ("hudi", "hive"):
        try:
            columns = lab.columns(catalog)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"DESCRIBE through {catalog} failed: {str(exc)[:200]}")
        assert set(NEW_COLUMNS) <= set(columns), f"{catalog} lacks the new columns: {columns}"
        assert columns.index("firmware") > columns.index("battery"), "new columns must come last"
    rows = lab.assert_table("hudi")
    assert rows["sensor-0011"]["co2_ppm"] is not None and rows["sensor-0001"]["co2_ppm"] is None
    lab.assert_readers_agree()


def test_back_to_four_fields_keeps_and_nulls_new_columns(lab):
    lab.send("iot_4", first=16, devices=5)      # rows that had the new columns
    lab.send("iot_4", first=26, devices=5)      # new rows
    job = lab.run_job()
    assert job.totals.upserted == 10 and not job.totals.dead_letter
    rows = lab.assert_table("hudi")
    assert len(rows) == 30
    assert set(NEW_COLUMNS) <= set(lab.columns("hudi")), "columns must not disappear"
    for n in range(11, 16):                     # written with 10 fields, untouched since
        assert all(rows[f"sensor-{n:04d}"][c] is not None for c in NEW_COLUMNS)
    for n in [*range(16, 21), *range(26, 31)]:  # written now with 4 fields
        assert all(rows[f"sensor-{n:04d}"][c] is None for c in NEW_COLUMNS)
    lab.assert_readers_agree()


def test_malformed_records_go_to_the_dead_letter_topic(lab):
    now = next(lab._clock).isoformat()
    bad = {
        "not_json": "this is not JSON",
        "not_json_array": json.dumps([{"device_id": "sensor-0040", "event_time": now}]),
        "missing_key": json.dumps({"event_time": now, "temperature": 20}),
        "type_mismatch": json.dumps({"device_id": "sensor-0041", "event_time": now, "temperature": "hot"}),
        "bad_event_time": json.dumps({"device_id": "sensor-0042", "event_time": "yesterday"}),
        "invalid_field_name": json.dumps({"device_id": "sensor-0043", "event_time": now, "bad name": 1}),
    }
    lab.send_raw(list(bad.values()), key=b"bad")
    lab.send("iot_4", first=31, devices=3)
    job = lab.run_job()
    assert job.totals.upserted == 3
    assert job.totals.dead_letter == {"not_json": 2, "missing_key": 1, "type_mismatch": 1,
                                      "bad_event_time": 1, "invalid_field_name": 1}
    letters = lab.dead_letters(expected=len(bad))
    assert sorted(letter["value"] for letter in letters) == sorted(bad.values())
    by_value = {letter["value"]: letter for letter in letters}
    for kind, value in bad.items():
        assert by_value[value]["reason"] == kind.removesuffix("_array")
        assert by_value[value]["source"]["topic"] == lab.config.topic
        assert by_value[value]["source"]["offset"] >= 0
    assert "temperature" in by_value[bad["type_mismatch"]]["detail"]
    assert len(lab.assert_table("hudi")) == 33


def test_restart_after_a_crash_loses_and_duplicates_nothing(lab, tmp_path):
    """The job runs as `lakelab lab-a stream`, is killed (SIGKILL) mid-stream, and is
    started again on the same checkpoint: every record lands exactly once."""
    metrics = tmp_path / "crash-metrics.jsonl"
    cfg = lab.config
    command = [*LAKELAB, "lab-a", "stream", "--topic", cfg.topic, "--table", cfg.table,
               "--path", cfg.path, "--dlq-topic", cfg.dead_letter_topic, "--checkpoint", cfg.checkpoint,
               "--trigger", "2", "--max-offsets", "300", "--metrics-file", str(metrics)]
    log = tmp_path / "crash-job.log"
    with open(log, "wb") as stderr:
        job = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sender = threading.Thread(target=lab.send, args=("iot_4", 1001, 1500), kwargs={"rate": 300, "batch": 50})
    sender.start()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and job.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
                break
            time.sleep(0.5)
        assert job.poll() is None, f"job exited early: {log.read_text()[-2000:]}"
        time.sleep(1.5)                          # inside a later micro-batch
        job.send_signal(signal.SIGKILL)
        job.wait(30)
    finally:
        if job.poll() is None:
            job.kill()
        sender.join(60)
    committed_before_crash = sum(json.loads(line)["upserted"] for line in metrics.read_text().splitlines())
    assert committed_before_crash < 1500, "the crash came too late to test anything"

    restarted = lab.run_job()
    assert restarted.totals.upserted > 0
    count, distinct = lab.trino("hudi", "SELECT count(*), count(DISTINCT device_id) FROM {table}")[1][0]
    assert count == distinct == 33 + 1500
    lab.assert_table("hudi")
    lab.assert_readers_agree()
