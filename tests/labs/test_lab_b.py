"""Lab B end to end on the real stack: generator -> Kafka -> Firehose stand-in -> raw zone ->
(SeaweedFS filer events) -> Lambda -> processed zone; crawler, Athena SQL through Trino,
reconciliation, backfill, real-time alerts. Every name carries a per-session suffix, so reruns
on a shared stack never collide; what a session created is removed at its end
(LAKELAB_KEEP_TEST_DATA=1 keeps it)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from aws.athena import sql as athena
from aws.firehose.delivery import DeliveryConfig
from aws.glue.crawler import CrawlError, crawl
from labs.lab_b.alerts import detect_all
from labs.lab_b.cli import TRADE_FIELDS
from labs.lab_b.lambda_runtime import Invoker
from labs.lab_b.reconcile import reconcile_counts
from labs.lab_b.stockdata_lambda import handler_for
from labs.probes import group_committed_the_end
from producers.lab_b import (
    Trade,
    TradeFileError,
    read_trades,
    replay,
    sample_trades,
    write_csv,
)
from services.kafka.client import get_client as admin
from services.s3 import events as s3events
from services.s3.client import get_client as s3_client
from services.trino.client import query
from tests.clikit import LAKELAB

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]
ROOT = Path(__file__).resolve().parents[2]
QUERIES = ROOT / "trino" / "queries" / "lab_b.sql"
BUCKET = "datalake"
BAD_RECORDS = {  # what the Firehose must file under {error_prefix}{type}/
    "not-json": b"this is not json",
    "missing-fields": b'{"symbol": "BTC_USD", "price": 1.0}',
    "not-an-object": b"[1, 2, 3]",
    "not-utf8": b"\xff\xfe{",
    "empty-record": None,
}


def cli(*args: str) -> list[str]:
    return [*LAKELAB, *args]


def wait_for(check, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def keys_under(s3, prefix: str) -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: o["Size"] for p in pages for o in p.get("Contents", []) if not o["Key"].endswith("/")}


def read_lines(s3, key: str) -> list[dict]:
    return [json.loads(line) for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines()]


def delete_prefix(s3, prefix: str) -> None:
    keys = list(keys_under(s3, prefix))
    for i in range(0, len(keys), 500):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[i:i + 500]], "Quiet": True})


@dataclass
class Lab:
    u: str
    settings: object
    workdir: Path
    trades: list[Trade]
    topic: str
    alerts_topic: str
    dataset: str
    delivery: DeliveryConfig
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    crash_exits: list[int] = field(default_factory=list)
    produced_at: float = 0.0
    extra_rows: list[dict] = field(default_factory=list)

    @property
    def raw_table(self) -> str:
        return f"crawler_{self.dataset}"

    @property
    def processed_table(self) -> str:
        return f"processed_{self.dataset}"

    @property
    def processed_prefix(self) -> str:
        return f"processed-zone/{self.dataset}/"

    def all_rows(self) -> list[dict]:
        return [t.__dict__ for t in self.trades] + self.extra_rows

    def start(self, name: str, *args: str) -> subprocess.Popen:
        return self.spawn(name, cli(*args))

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("w")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text()

    def deliver_args(self, config: DeliveryConfig) -> list[str]:
        return ["lab-b", "deliver", "--topic", config.topic, "--prefix", config.prefix, "--error-prefix",
                config.error_prefix, "--buffer-bytes", str(config.buffer_bytes),
                "--buffer-seconds", str(config.buffer_seconds)]


def crashing_delivery(point: str, config: DeliveryConfig) -> list[str]:
    """The delivery of `config`, killed at `point` of its first flush (tests/labs/firehose_crash.py)."""
    return [sys.executable, "-m", "tests.labs.firehose_crash", point, json.dumps(asdict(config))]


def intents(settings, config: DeliveryConfig) -> list[str]:
    """The metadata of the delivery group's committed offsets: an intent is a batch begun, not finished."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": config.group})
    try:
        partitions = consumer.list_topics(config.topic, timeout=10).topics[config.topic].partitions
        committed = consumer.committed([TopicPartition(config.topic, p) for p in partitions], timeout=10)
        return [tp.metadata for tp in committed if tp.metadata]
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def lab(stack, tmp_path_factory):
    settings = stack
    u = uuid.uuid4().hex[:8]
    dataset = f"stockdata_test_{u}"
    lab = Lab(u, settings, tmp_path_factory.mktemp("lab_b"), sample_trades(), f"stockdata-{u}", f"alerts-{u}", dataset,
              DeliveryConfig(topic=f"stockdata-{u}", bucket=BUCKET, prefix=f"raw-zone/{dataset}/",
                             error_prefix=f"raw-zone/{dataset}_errors/", buffer_bytes=64 * 1024, buffer_seconds=2.0,
                             required_fields=tuple(TRADE_FIELDS.split(","))))
    kafka = admin(settings)
    for future in kafka.create_topics([NewTopic(lab.topic, 3, 1), NewTopic(lab.alerts_topic, 1, 1)]).values():
        future.result()
    s3 = s3_client(settings)
    try:
        # the Lambda trigger first (S3 notifications only see objects created after them)
        watcher = lab.start("lambda", "lab-b", "lambda", "--prefix", f"raw-zone/{dataset}", "--datasets", dataset,
                            "--name", f"test-{u}")
        wait_for(lambda: "watching" in lab.log("lambda") or watcher.poll() is not None, 30, "the Lambda watcher")
        assert watcher.poll() is None, lab.log("lambda")
        time.sleep(1.5)

        lab.produced_at = time.time()
        replay(settings.kafka_bootstrap, lab.topic, lab.trades[:200], batch=1, progress=False)  # put_record
        replay(settings.kafka_bootstrap, lab.topic, lab.trades[200:], batch=250, progress=False)  # put_records
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
        for value in BAD_RECORDS.values():
            producer.produce(lab.topic, key=b"BAD", value=value)
        assert producer.flush(30) == 0

        # Firehose dies after committing its intent, then after writing the data, then runs on
        for crash_at in ("after-intent", "after-data"):
            run = lab.spawn(f"deliver-{crash_at}", crashing_delivery(crash_at, lab.delivery))
            lab.crash_exits.append(run.wait(120))
        lab.start("deliver", *lab.deliver_args(lab.delivery))
        wait_for(lambda: group_committed_the_end(settings, lab.delivery.group, lab.delivery.topic), 120,
                 "the Firehose to commit every record")
        raw = [k for k in keys_under(s3, lab.delivery.prefix)]
        wait_for(lambda: len(keys_under(s3, f"processed-zone/_manifests/{dataset}/")) >= len(raw), 120,
                 "the Lambda to convert every raw object")
        yield lab
    finally:
        for process in lab.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        if not os.environ.get("LAKELAB_KEEP_TEST_DATA"):
            (settings.state_dir / "events" / f"test-{u}.json").unlink(missing_ok=True)  # the watcher's checkpoint
            kafka.delete_topics([lab.topic, lab.alerts_topic])
            for table in (lab.raw_table, lab.processed_table, f"crawler_alerts_test_{u}"):
                query(settings, f'DROP TABLE IF EXISTS hive.lab_b."{table}"')
            for prefix in (f"raw-zone/{dataset}", f"processed-zone/{dataset}", f"processed-zone/_manifests/{dataset}/",
                           f"raw-zone/alerts_test_{u}", f"_firehose/{lab.delivery.group}/", f"_lambda_dlq/test-{u}/"):
                delete_prefix(s3, prefix)


# --- 1. generator ----------------------------------------------------------------------------
def test_sample_file_is_realistic_and_round_trips(tmp_path):
    trades = sample_trades()
    path = write_csv(trades, tmp_path / "trades.csv")
    assert list(read_trades(path)) == trades
    assert {t.symbol for t in trades} == {"BTC_USD", "ETH_USD", "LTC_USD"}
    assert {t.type for t in trades} == {"buy", "sell"}
    hours = {t.transaction_ts // 3600 for t in trades}
    assert len(hours) >= 3, "several hours of event time"
    assert len({t.trans_id for t in trades}) == len(trades)
    amounts = sorted(t.dollar_amount for t in trades)
    assert amounts[-1] >= 10_000 * amounts[-2], "one hand-made trade 10,000x larger than the rest"
    big = max(trades, key=lambda t: t.dollar_amount)
    assert (big.symbol, big.type) == ("BTC_USD", "buy")


def test_real_bitstamp_formats_are_read(tmp_path):
    lab_file = tmp_path / "crypto_trades_20201001.csv"  # the lab's layout: a `date` column, no header
    lab_file.write_text("1601517611,2020-10-01 2:00,BTC_USD,10853.41,0.003,123456789,buy,124292345\n"
                        "1601517612,2020-10-01 2:00,BTC_USD,10854.31,0.2293378,2489.303576,sell,124292350\n")
    first, second = read_trades(lab_file)
    assert first == Trade(1601517611, "BTC_USD", 10853.41, 0.003, 123456789.0, "buy", 124292345)
    assert second.type == "sell"
    aliased = tmp_path / "aliased.csv"  # other header names, no dollar_amount column
    aliased.write_text("unix,date,symbol,price,amount,type,tid\n1601517611,x,ETH_USD,2.5,4,sell,7\n")
    assert next(read_trades(aliased)) == Trade(1601517611, "ETH_USD", 2.5, 4.0, 10.0, "sell", 7)


def test_bad_csv_rows_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("transaction_ts,symbol,price,amount,dollar_amount,type,trans_id\n"
                   "1601517611,BTC_USD,1,1,1,buy,1\n1601517612,BTC_USD,abc,1,1,buy,2\n")
    with pytest.raises(TradeFileError, match=r"bad.csv:3: .*abc"):
        list(read_trades(bad))
    missing = tmp_path / "missing.csv"
    missing.write_text("transaction_ts,symbol,price\n1,BTC_USD,1\n")
    with pytest.raises(TradeFileError, match=r"missing.csv:1: header lacks amount, trans_id, type"):
        list(read_trades(missing))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TradeFileError, match="empty file"):
        list(read_trades(empty))


def test_replay_one_by_one_and_batched_keeps_records_and_keys(settings, unique):
    topic = f"trades-replay-{unique}"
    kafka = admin(settings)  # keep the client alive until its futures resolve
    kafka.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    trades = sample_trades()[:30]
    try:
        single = replay(settings.kafka_bootstrap, topic, trades[:10], rate=100, batch=1, progress=False)
        batched = replay(settings.kafka_bootstrap, topic, trades[10:], batch=10, loops=2, progress=False)
        assert (single.sent, batched.sent) == (10, 40)
        assert single.seconds >= 0.08, "rate 100/s paces 10 records over ~0.1 s"
        consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{unique}",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        got = []
        wait_for(lambda: got.extend(m for m in consumer.consume(100, 1.0) if not m.error()) or len(got) >= 50, 30,
                 "the replayed records")
        consumer.close()
        assert [json.loads(m.value()) for m in got] == [t.__dict__ for t in trades[:10] + trades[10:] * 2]
        assert all(m.key().decode() == json.loads(m.value())["symbol"] for m in got)
    finally:
        kafka.delete_topics([topic])[topic].result()


# --- 2. delivery (Firehose) ------------------------------------------------------------------
def test_delivery_is_exactly_once_across_crashes(lab):
    assert lab.crash_exits == [70, 70], "both crash runs died at their crash point"
    assert "unfinished batch" in lab.log("deliver-after-data") and "unfinished batch" in lab.log("deliver")
    s3 = s3_client(lab.settings)
    objects = keys_under(s3, lab.delivery.prefix)
    pattern = re.compile(rf"{lab.delivery.prefix}year=(\d{{4}})/month=(\d\d)/day=(\d\d)/hour=(\d\d)/"
                         rf"{lab.topic}-(\d)-(\d{{20}})-(\d{{20}})\.json")
    delivered: list[dict] = []
    arrival_hours = set()
    for key, size in objects.items():
        match = pattern.fullmatch(key)
        assert match, f"unexpected key {key}"
        arrival_hours.add(datetime(*map(int, match.groups()[:4]), tzinfo=timezone.utc))
        start, end = int(match.group(6)), int(match.group(7))
        lines = read_lines(s3, key)
        assert len(lines) <= end - start + 1
        assert size <= lab.delivery.buffer_bytes + 1024, "flushed at the size bound"
        delivered += lines
    assert Counter(r["trans_id"] for r in delivered) == Counter(t.trans_id for t in lab.trades), \
        "every trade delivered exactly once"
    assert sorted(delivered, key=lambda r: r["trans_id"]) == sorted((t.__dict__ for t in lab.trades),
                                                                    key=lambda r: r["trans_id"])
    produced_hour = datetime.fromtimestamp(lab.produced_at, timezone.utc).replace(minute=0, second=0, microsecond=0)
    assert all(produced_hour <= hour <= datetime.now(timezone.utc) for hour in arrival_hours), \
        "partitioned by arrival time, not event time"
    assert not intents(lab.settings, lab.delivery), "no intent left behind"


def test_bad_records_are_filed_under_the_error_prefix(lab):
    s3 = s3_client(lab.settings)
    errors = keys_under(s3, lab.delivery.error_prefix)
    by_type = defaultdict(list)
    for key in errors:
        kind = key[len(lab.delivery.error_prefix):].split("/", 1)[0]
        assert re.search(r"/year=\d{4}/month=\d\d/day=\d\d/hour=\d\d/", key)
        by_type[kind] += read_lines(s3, key)
    assert set(by_type) == set(BAD_RECORDS)
    for kind, raw in BAD_RECORDS.items():
        (record,) = by_type[kind]
        assert record["errorCode"] == kind and record["errorMessage"]
        assert base64.b64decode(record["rawData"]) == (raw or b"")
        assert record["topic"] == lab.topic and record["offset"] >= 0
    assert "missing required field(s): transaction_ts, amount, dollar_amount, type, trans_id" in \
        by_type["missing-fields"][0]["errorMessage"]


# --- 3. crawler ------------------------------------------------------------------------------
def test_crawler_registers_table_and_partitions_idempotently(lab):
    location = f"s3://{BUCKET}/{lab.delivery.prefix}"
    first = crawl(lab.settings, location, "lab_b", "crawler_")
    assert (first.table, first.action, first.format) == (lab.raw_table, "created", "JSON")
    assert first.columns == [("transaction_ts", "bigint"), ("symbol", "varchar"), ("price", "double"),
                             ("amount", "double"), ("dollar_amount", "double"), ("type", "varchar"),
                             ("trans_id", "bigint")]
    assert first.partition_keys == ["year", "month", "day", "hour"]
    assert first.partitions_after >= 1
    ddl = query(lab.settings, f"SHOW CREATE TABLE hive.lab_b.{lab.raw_table}")[0][0]

    again = crawl(lab.settings, location, "lab_b", "crawler_")
    assert (again.action, again.added_columns, again.partitions_after) == ("unchanged", [], first.partitions_after)
    assert query(lab.settings, f"SHOW CREATE TABLE hive.lab_b.{lab.raw_table}")[0][0] == ddl

    # a file with a new column, in a new partition: the table gains the column and the partition
    lab.extra_rows = [{**lab.trades[0].__dict__, "trans_id": 900_000_000 + i, "dollar_amount": 1.0 + i,
                       "exchange": "bitstamp"} for i in range(2)]
    key = f"{lab.delivery.prefix}year=2020/month=01/day=01/hour=00/manual-upload.json"
    s3_client(lab.settings).put_object(Bucket=BUCKET, Key=key,
                                       Body=b"".join(json.dumps(r).encode() + b"\n" for r in lab.extra_rows))
    updated = crawl(lab.settings, location, "lab_b", "crawler_")
    assert (updated.action, updated.added_columns) == ("updated", ["exchange"])
    assert updated.partitions_after == first.partitions_after + 1
    rows = query(lab.settings, f"SELECT exchange, count(*) FROM hive.lab_b.{lab.raw_table} GROUP BY 1 ORDER BY 1")
    assert rows == [["bitstamp", 2], [None, len(lab.trades)]]
    assert crawl(lab.settings, location, "lab_b", "crawler_").action == "unchanged"


def test_crawler_reads_csv_and_parquet_and_explains_bad_input(settings, unique):
    s3 = s3_client(settings)
    base = f"test-zone/crawl_{unique}"
    s3.put_object(Bucket=BUCKET, Key=f"{base}/csv/dt=2020-10-01/a.csv", Body=b"Symbol,Price\nBTC_USD,10800.5\n")
    table = pa.table({"id": pa.array([1, 2], pa.int64()), "price": [1.5, 2.5], "name": ["a", "b"],
                      "at": pa.array([0, 1000], pa.timestamp("ms"))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    s3.put_object(Bucket=BUCKET, Key=f"{base}/pq/part-0.parquet", Body=buffer.getvalue())
    s3.put_object(Bucket=BUCKET, Key=f"{base}/bad_json/x.json", Body=b'{"a": 1}\nnot json\n')
    s3.put_object(Bucket=BUCKET, Key=f"{base}/mixed/a.json", Body=b'{"a": 1}\n')
    s3.put_object(Bucket=BUCKET, Key=f"{base}/mixed/b.csv", Body=b"a\n1\n")
    s3.put_object(Bucket=BUCKET, Key=f"{base}/layout/2020/a.json", Body=b'{"a": 1}\n')
    s3.put_object(Bucket=BUCKET, Key=f"{base}/empty/a.json", Body=b"")
    tables = [f"crawl_csv_{unique}", f"crawl_pq_{unique}"]
    try:
        csv_result = crawl(settings, f"s3://{BUCKET}/{base}/csv/", "lab_b", table=tables[0])
        assert (csv_result.format, csv_result.columns, csv_result.partition_keys) == \
            ("CSV", [("symbol", "varchar"), ("price", "varchar")], ["dt"])
        assert query(settings, f"SELECT * FROM hive.lab_b.{tables[0]}") == [["BTC_USD", "10800.5", "2020-10-01"]]
        pq_result = crawl(settings, f"s3://{BUCKET}/{base}/pq/", "lab_b", table=tables[1])
        assert pq_result.columns == [("id", "bigint"), ("price", "double"), ("name", "varchar"), ("at", "timestamp")]
        assert query(settings, f"SELECT id, name FROM hive.lab_b.{tables[1]} ORDER BY id") == [[1, "a"], [2, "b"]]

        for folder, message in [("bad_json", r"bad_json/x.json line 2: not JSON"),
                                ("mixed", r"mixed formats: JSON .*CSV"),
                                ("layout", r"layout/2020/a.json: folder '2020' is not a key=value partition"),
                                ("empty", r"no data files under .*empty/ \(1 empty\)"),
                                ("nothing-here", r"no data files under")]:
            with pytest.raises(CrawlError, match=message):
                crawl(settings, f"s3://{BUCKET}/{base}/{folder}/", "lab_b", table=f"crawl_bad_{unique}")
    finally:
        for name in tables:
            query(settings, f"DROP TABLE IF EXISTS hive.lab_b.{name}")
        delete_prefix(s3, base + "/")


# --- 4. Athena-style SQL ---------------------------------------------------------------------
def test_hourly_top_trades_query_matches_the_data(lab):
    (result,) = athena.run(lab.settings, QUERIES.read_text(), "lab_b", {"raw_table": lab.raw_table},
                           only=["hourly_top_trades"])
    assert result.columns[:3] == ["HourlyBucket", "rnk", "transaction_ts"]
    best: dict[tuple, float] = {}
    for r in lab.all_rows():
        bucket = datetime.fromtimestamp(r["transaction_ts"], timezone.utc).strftime("%Y-%m-%dT%H")
        best[(bucket, r["symbol"], r["type"])] = max(best.get((bucket, r["symbol"], r["type"]), 0), r["dollar_amount"])
    expected = sorted((datetime.fromtimestamp(r["transaction_ts"], timezone.utc).strftime("%Y-%m-%dT%H"),
                       r["symbol"], r["type"], r["trans_id"]) for r in lab.all_rows()
                      if r["dollar_amount"] == best[(datetime.fromtimestamp(r["transaction_ts"], timezone.utc)
                                                     .strftime("%Y-%m-%dT%H"), r["symbol"], r["type"])])
    got = [(row[0], row[3], row[7], row[8]) for row in result.rows]
    assert sorted(got) == expected
    assert [row[0] for row in result.rows] == sorted(row[0] for row in result.rows), "oldest bucket first"
    assert {row[1] for row in result.rows} == {1}
    assert result.rows[0][0] == "2020-10-01T00"


# --- 5. Lambda on object-created --------------------------------------------------------------
def test_lambda_wrote_snappy_parquet_by_event_time(lab):
    s3 = s3_client(lab.settings)
    wait_for(lambda: len(keys_under(s3, f"processed-zone/_manifests/{lab.dataset}/")) >= len(keys_under(s3, lab.delivery.prefix)),
             60, "the Lambda to convert the manually uploaded file too")
    objects = keys_under(s3, lab.processed_prefix)
    layout = re.compile(rf"{lab.processed_prefix}symbol=(\w+)/year=(\d+)/month=(\d+)/day=(\d+)/hour=(\d+)/[\w.-]+\.parquet")
    total = 0
    for key in objects:
        match = layout.fullmatch(key)
        assert match, key
        symbol, *when = match.groups()
        parquet = pq.ParquetFile(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
        assert parquet.schema_arrow.names == ["transaction_date", "price", "amount", "dollar_amount", "type", "trans_id"]
        assert parquet.metadata.row_group(0).column(0).compression == "SNAPPY"
        rows = parquet.read().to_pylist()
        assert {(r["transaction_date"].year, r["transaction_date"].month, r["transaction_date"].day,
                 r["transaction_date"].hour) for r in rows} == {tuple(map(int, when))}, "event-time partitions"
        total += len(rows)
    assert total == len(lab.all_rows())
    assert "ignored" in lab.log("lambda"), "error objects under raw-zone are not converted"
    assert keys_under(s3, f"processed-zone/{lab.dataset}_errors/") == {}


# --- 6. processed table through the SQL entry point -------------------------------------------
def test_create_external_table_and_msck_repair_through_lakelab_sql(lab):
    variables = ["--var", f"raw_table={lab.raw_table}", "--var", f"processed_table={lab.processed_table}",
                 "--var", f"processed_location=s3://{BUCKET}/{lab.processed_prefix}"]
    run = subprocess.run(cli("sql", str(QUERIES), *variables, "--name", "create_processed", "--name",
                             "repair_processed"), capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "CREATE TABLE IF NOT EXISTS" in run.stderr and "system.sync_partition_metadata" in run.stderr
    hours = {(r["symbol"], datetime.fromtimestamp(r["transaction_ts"], timezone.utc).strftime("%Y%m%d%H"))
             for r in lab.all_rows()}
    partitions = query(lab.settings, f'SELECT count(*) FROM hive.lab_b."{lab.processed_table}$partitions"')[0][0]
    assert partitions == len(hours)
    columns = query(lab.settings, f"SHOW COLUMNS FROM hive.lab_b.{lab.processed_table}")
    assert [c[0] for c in columns] == ["transaction_date", "price", "amount", "dollar_amount", "type", "trans_id",
                                       "symbol", "year", "month", "day", "hour"]
    # the lab's reconciliation of the first hourly bucket, from the same file
    raw, processed = athena.run(lab.settings, QUERIES.read_text(), "lab_b",
                                {"raw_table": lab.raw_table, "processed_table": lab.processed_table},
                                only=["raw_btc_first_hour", "processed_btc_first_hour"])
    expected = sum(1 for r in lab.all_rows() if r["symbol"] == "BTC_USD" and r["transaction_ts"] < 1_601_514_000)
    assert raw.rows == processed.rows == [[expected]]
    # running the DDL again is harmless (IF NOT EXISTS; MSCK adds nothing)
    again = subprocess.run(cli("sql", "-", "--schema", "lab_b", *variables), input="MSCK REPAIR TABLE ${processed_table};",
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert again.returncode == 0, again.stderr


def test_sql_entry_point_reports_bad_statements():
    with pytest.raises(athena.TranslationError, match="needs a LOCATION"):
        athena.translate(athena.Statement("CREATE EXTERNAL TABLE t (a string)"), "lab_b")
    with pytest.raises(athena.TranslationError, match=r"no value for \$\{missing\}"):
        athena.split("SELECT * FROM ${missing}")
    csv_ddl = athena.translate(athena.Statement(
        "CREATE EXTERNAL TABLE `t` (`a` string, b int) PARTITIONED BY (dt string) ROW FORMAT DELIMITED "
        "FIELDS TERMINATED BY ',' LOCATION 's3://b/p/' TBLPROPERTIES ('skip.header.line.count'='1')"), "lab_b")
    assert re.sub(r"\s+", " ", csv_ddl.translated) == (
        "CREATE TABLE \"t\" ( \"a\" VARCHAR, b INTEGER, dt VARCHAR ) WITH ( external_location = 's3://b/p/', "
        "format = 'TEXTFILE', partitioned_by = ARRAY['dt'], textfile_field_separator = ',', skip_header_line_count = 1 )")


# --- 7. reconciliation, re-delivery, backfill --------------------------------------------------
def test_reconciliation_counts_agree_and_redelivery_is_idempotent(lab):
    rows = reconcile_counts(lab.settings, lab.raw_table, lab.processed_table)
    expected = Counter((r["symbol"], datetime.fromtimestamp(r["transaction_ts"], timezone.utc).strftime("%Y-%m-%dT%H"))
                       for r in lab.all_rows())
    assert {(s, h): (raw, processed) for s, h, raw, processed in rows} == {k: (n, n) for k, n in expected.items()}
    command = subprocess.run(cli("lab-b", "reconcile", "--raw-table", lab.raw_table, "--processed-table",
                                 lab.processed_table), capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert command.returncode == 0 and f"{len(expected)} symbol-hours, 0 differ" in command.stderr, command.stderr

    s3 = s3_client(lab.settings)
    before = {k: s3.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys_under(s3, lab.processed_prefix)}
    key = sorted(keys_under(s3, lab.delivery.prefix))[0]
    handler = handler_for([lab.dataset])
    record = s3events.s3_record(BUCKET, key, "ObjectCreated:Put")
    assert handler({"Records": [record]})["skipped"] is True  # the same event again
    # forget the manifest: the file is converted again, into the same objects
    s3.delete_object(Bucket=BUCKET, Key=f"processed-zone/_manifests/{lab.dataset}/{key.split('/', 2)[2]}.json")
    assert handler({"Records": [record]}).get("skipped") is None
    assert set(keys_under(s3, lab.processed_prefix)) == set(before)
    rows = reconcile_counts(lab.settings, lab.raw_table, lab.processed_table)
    assert all(raw == processed for _, _, raw, processed in rows)


def test_backfill_converts_existing_files_once(settings, unique):
    s3 = s3_client(settings)
    dataset = f"stockdata_bf_{unique}"
    trades = sample_trades()[:50]
    for i in range(2):
        s3.put_object(Bucket=BUCKET, Key=f"raw-zone/{dataset}/year=2020/month=10/day=01/hour=00/old-{i}.json",
                      Body=b"".join(t.to_json() for t in trades[i * 25:(i + 1) * 25]))
    args = cli("lab-b", "backfill", "--prefix", f"raw-zone/{dataset}/", "--datasets", dataset)
    try:
        first = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert first.returncode == 0, first.stderr
        assert "2 objects: 0 already processed, 2 converted" in first.stderr
        outputs = {k: s3.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys_under(s3, f"processed-zone/{dataset}/")}
        rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())).num_rows for k in outputs)
        assert rows == 50
        second = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert "2 objects: 2 already processed, 0 converted" in second.stderr
        assert {k: s3.head_object(Bucket=BUCKET, Key=k)["ETag"] for k in keys_under(s3, f"processed-zone/{dataset}/")} == outputs
    finally:
        for prefix in (f"raw-zone/{dataset}/", f"processed-zone/{dataset}/", f"processed-zone/_manifests/{dataset}/"):
            delete_prefix(s3, prefix)


def test_lambda_explains_bad_input(settings, unique):
    s3 = s3_client(settings)
    dataset = f"stockdata_bad_{unique}"
    handler = handler_for([dataset])
    good = sample_trades()[0]
    mixed = (good.to_json() + b"not json at all\n" + b'{"symbol": "BTC_USD"}\n'
             + json.dumps({**good.__dict__, "price": "abc"}).encode() + b"\n\n[1]\n")
    keys = {name: f"raw-zone/{dataset}/year=2026/month=01/day=01/hour=00/{name}.json"
            for name in ("mixed", "empty", "deleted")}
    s3.put_object(Bucket=BUCKET, Key=keys["mixed"], Body=mixed)
    s3.put_object(Bucket=BUCKET, Key=keys["empty"], Body=b"")
    try:
        result = handler({"Records": [s3events.s3_record(BUCKET, keys["mixed"])]})
        assert result["records"] == 1 and len(result["new_keys"]) == 1
        assert result["rejected"] == {"parse-failed": 2, "missing-fields": 1, "bad-value": 1}
        errors = {kind: read_lines(s3, key) for kind, key in result["error_keys"].items()}
        assert [(e["line"], e["errorMessage"][:8]) for e in errors["parse-failed"]] == [(2, "not JSON"), (6, "JSON lis")]
        assert errors["missing-fields"][0]["line"] == 3 and "price" in errors["missing-fields"][0]["errorMessage"]
        assert errors["bad-value"][0]["line"] == 4 and "abc" in errors["bad-value"][0]["errorMessage"]
        assert all(e["source"] == f"s3://{BUCKET}/{keys['mixed']}" for e in errors["parse-failed"])

        empty = handler({"Records": [s3events.s3_record(BUCKET, keys["empty"])]})
        assert empty["rejected"] == {"empty-file": 1} and empty["new_keys"] == []
        assert read_lines(s3, empty["error_keys"]["empty-file"])[0]["errorMessage"].startswith("the object is empty")

        gone = handler({"Records": [s3events.s3_record(BUCKET, keys["deleted"])]})
        assert (gone["statusCode"], gone["error"]) == (404, "object-missing")
        assert "no longer exists" in read_lines(s3, gone["error_key"])[0]["errorMessage"]

        removed = handler({"Records": [s3events.s3_record(BUCKET, keys["mixed"], "ObjectRemoved:Delete")]})
        assert removed["ignored"] == "ObjectRemoved:Delete"
        other = handler({"Records": [s3events.s3_record(BUCKET, "raw-zone/elsewhere/x.json")]})
        assert other["statusCode"] == 204

        # a handler that keeps failing: retried, then the event is kept in the dead-letter folder
        def broken(event, context):
            raise RuntimeError("boom")

        invoke = Invoker(settings, broken, f"broken-{unique}", attempts=2)
        assert invoke(s3events.s3_record(BUCKET, keys["mixed"])) is None
        (dlq_key,) = keys_under(s3, f"_lambda_dlq/broken-{unique}/")
        dead = json.loads(s3.get_object(Bucket=BUCKET, Key=dlq_key)["Body"].read())
        assert dead["responsePayload"]["errorMessage"] == "boom"
        assert dead["requestPayload"]["Records"][0]["s3"]["object"]["key"].endswith("mixed.json")
    finally:
        for prefix in (f"raw-zone/{dataset}/", f"processed-zone/{dataset}", f"processed-zone/_manifests/{dataset}/",
                       f"_lambda_dlq/broken-{unique}/"):
            delete_prefix(s3, prefix)


def test_live_filer_events_become_s3_records(settings, unique):
    """Live filer events (create, delete) read as S3 event records."""
    s3 = s3_client(settings)
    key = f"test-zone/events_{unique}/year=2020/a b.json"
    began = time.time_ns()
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=b'{"a": 1}\n')
    s3.delete_object(Bucket=BUCKET, Key=key)
    stop = threading.Event()
    give_up = threading.Timer(30, stop.set)  # (and fail below) when the events do not come
    give_up.start()
    events, records = [], []
    for event in s3events.meta_tail_events(settings, f"/buckets/{BUCKET}/test-zone/events_{unique}", began - 10**9, stop):
        events.append(event)
        records = [s3events.change_record(c) for e in events for c in s3events.object_changes(e)]
        if len(records) >= 2:
            stop.set()
            break
    stop.set()
    give_up.cancel()
    created, removed = records
    assert created["eventName"] == "ObjectCreated:Put" and removed["eventName"] == "ObjectRemoved:Delete"
    assert created["s3"]["object"]["key"] == "test-zone/events_%s/year%%3D2020/a+b.json" % unique
    assert s3events.object_of(created) == (BUCKET, key)
    assert created["s3"]["object"]["size"] == 9 and created["s3"]["object"]["eTag"] == put["ETag"].strip('"')
    assert created["eventTime"].endswith("Z") and created["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{BUCKET}"


# --- 8. real-time alerts ----------------------------------------------------------------------
class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        _Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_alerts_flag_the_outsized_trade_and_reach_topic_lake_and_handler(lab):
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    expected = detect_all([t.__dict__ for t in lab.trades])
    big = max(lab.trades, key=lambda t: t.dollar_amount)
    assert big.trans_id in {a["trans_id"] for a in expected}
    assert len(expected) < 0.1 * len(lab.trades), "ordinary trades are mostly not flagged"
    job = lab.start("alerts", "lab-b", "alerts", "--source-topic", lab.topic, "--alerts-topic", lab.alerts_topic,
                    "--webhook", f"http://127.0.0.1:{hook.server_address[1]}/")
    try:
        consumer = Consumer({"bootstrap.servers": lab.settings.kafka_bootstrap, "group.id": f"check-{lab.u}",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe([lab.alerts_topic])
        alerts: list[dict] = []
        wait_for(lambda: alerts.extend(json.loads(m.value()) for m in consumer.consume(500, 1.0) if not m.error())
                 or len(alerts) >= len(expected), 90, f"{len(expected)} alerts")
        consumer.close()
        assert sorted(a["trans_id"] for a in alerts) == sorted(a["trans_id"] for a in expected)
        flagged = next(a for a in alerts if a["trans_id"] == big.trans_id)
        assert flagged["dollar_amount"] > 4 * flagged["avg_last_30_seconds"] and flagged["cnt_last_30_seconds"] >= 3
        assert flagged["trade_produced_ms"] <= flagged["detected_ms"]
        wait_for(lambda: any(a["trans_id"] == big.trans_id for a in _Hook.received), 30, "the webhook call")
        assert f"ALERT BTC_USD buy trans_id={big.trans_id}" in lab.log("alerts")
    finally:
        job.send_signal(signal.SIGTERM)
        job.wait(30)
        hook.shutdown()
    assert f"{len(lab.trades)} trades, {len(expected)} alerts, {len(BAD_RECORDS)} rejected" in lab.log("alerts")

    # alerts to the lake, like the trades
    prefix = f"raw-zone/alerts_test_{lab.u}/"
    delivered = subprocess.run(cli("lab-b", "deliver", "--topic", lab.alerts_topic, "--prefix", prefix,
                                   "--buffer-seconds", "1", "--idle-exit", "3"), capture_output=True, text=True,
                               cwd=ROOT, timeout=120)
    assert delivered.returncode == 0, delivered.stderr
    s3 = s3_client(lab.settings)
    lines = [r for key in keys_under(s3, prefix) for r in read_lines(s3, key)]
    assert sorted(r["trans_id"] for r in lines) == sorted(a["trans_id"] for a in expected)
    table = crawl(lab.settings, f"s3://{BUCKET}/{prefix}", "lab_b", "crawler_")
    assert "avg_last_30_seconds" in dict(table.columns)
    top = query(lab.settings, f"SELECT trans_id FROM hive.lab_b.{table.table} ORDER BY dollar_amount DESC LIMIT 1")
    assert top == [[big.trans_id]]
