"""Lab D: change data capture from PostgreSQL into Hudi tables, lossless across restarts.

Real stack, no mocks: a seeded `shop` schema (own name per session), the Debezium connector
registered from services/connect/connectors/shop-postgres.json through Connect's REST API, the
Spark/Hudi sink job as a separate process, and row-for-row comparisons of PostgreSQL with Trino.
The tests run in file order and share one pipeline; each ends with the lake equal to the source.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Self

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from labs.lab_d.pipeline import Pipeline
from labs.lab_d.verify import wait_equal
from producers.lab_d import Shop, run_workload
from services.connect import client as connectors
from services.kafka.client import get_client as admin
from services.postgres.client import get_client as pg_connect
from services.trino.client import get_client as trino_connect
from tests.clikit import LAKELAB

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

CONVERGE_S = 240.0


@pytest.fixture(scope="module")
def lab(stack, settings):
    pipeline = Pipeline(settings)
    try:
        pipeline.seed(customers=200, products=50, orders=1000)
        pipeline.register()
        pipeline.sink.start()
        yield pipeline
    finally:
        pipeline.cleanup()


def assert_lake_equals_source(lab: Pipeline, catalog: str = "hudi", timeout_s: float = CONVERGE_S) -> None:
    diffs = wait_equal(lab.settings, lab.schema, list(lab.tables), lab.suffix, catalog, timeout_s)
    assert all(d.equal for d in diffs), (
        "lake differs from source:\n" + "\n".join(map(str, diffs))
        + f"\nsink alive: {lab.sink.alive}; last sink lines:\n{lab.sink.tail()}")


class Workload:
    """The faker workload in a background thread while something else happens."""

    def __init__(self, lab: Pipeline, rate: float, seed: int):
        self.shop = Shop(lab.settings, lab.schema, seed)
        self.rate = rate
        self.stop = threading.Event()
        self.stats = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.stats = run_workload(self.shop, self.rate, stop=self.stop)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(60)
        self.shop.close()


def sync_point(lab: Pipeline, timeout_s: float = CONVERGE_S) -> None:
    """Change one source row and wait until Trino shows it. Every batch reads all topics up to
    offsets taken when it starts, so once the change is in the lake, so is every message that
    reached Kafka before it (e.g. replayed duplicates)."""
    marker = f"sync-{time.time_ns()}"
    with pg_connect(lab.settings, "shop", autocommit=True) as conn:
        conn.execute(f'UPDATE "{lab.schema}".customers SET full_name = %s '
                     f'WHERE id = (SELECT min(id) FROM "{lab.schema}".customers)', (marker,))
    cursor = trino_connect(lab.settings, "hudi", "cdc").cursor()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cursor.execute(f'SELECT count(*) FROM hudi.cdc."{lab.lake_table("customers")}" WHERE full_name = \'{marker}\'')
        if cursor.fetchall()[0][0] == 1:
            return
        time.sleep(1)
    raise AssertionError(f"marker {marker} never reached the lake; sink:\n{lab.sink.tail()}")


def events_applied(lab: Pipeline) -> int:
    return sum(int(line.split(": ", 1)[1].split(" ", 1)[0]) for line in lab.sink.batches())


def lakelab(*args: str) -> None:
    """The CLI, as an operator would run it (`lakelab down connect`)."""
    result = subprocess.run([*LAKELAB, *args], capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, f"lakelab {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def read_topic(settings, topic: str, start: int = 0) -> list:
    """Every message of a one-partition topic from `start` to its current end."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"lab-d-read-{time.time()}",
                         "enable.auto.commit": False, "log_level": 0})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, max(start, low))])
        messages = []
        while messages[-1:] == [] or messages[-1].offset() < high - 1:
            message = consumer.poll(10)
            if message is None:
                break
            if not message.error():
                messages.append(message)
        return messages
    finally:
        consumer.close()


def test_connector_registered_from_the_repo_file(lab, settings):
    (status,) = connectors.status(settings, lab.connector)
    assert status["connector"]["state"] == "RUNNING"
    assert [t["state"] for t in status["tasks"]] == ["RUNNING"]
    config = status["config"]
    assert config["plugin.name"] == "pgoutput"
    assert config["snapshot.mode"] == "initial"
    # Credentials stay references resolved by the worker's EnvVarConfigProvider.
    assert config["database.password"] == "${env:LAKELAB_PG_PASSWORD}"
    assert config["database.hostname"] == "${env:LAKELAB_PG_HOST}"
    with pg_connect(settings, "shop") as conn:
        identities = dict(conn.execute(
            "SELECT c.relname, c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'", (lab.schema,)).fetchall())
    assert identities == {t: "f" for t in lab.tables}  # REPLICA IDENTITY FULL
    # A table's topic appears with the first snapshot record Connect writes for it, which can be
    # a moment after the connector reports RUNNING.
    wanted, deadline = {lab.topic(t) for t in lab.tables}, time.monotonic() + 60
    while not wanted <= (topics := set(admin(settings).list_topics(timeout=10).topics)) and time.monotonic() < deadline:
        time.sleep(1)
    assert wanted <= topics  # one topic per table

    cli = subprocess.run([*LAKELAB, "lab-d", "connector", "status", lab.connector],
                         capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 0 and "RUNNING" in cli.stdout, cli.stdout + cli.stderr


def test_snapshot_loads_the_initial_state(lab, settings):
    assert_lake_equals_source(lab)
    rows = trino_connect(settings, "hudi", "cdc").cursor()
    rows.execute(f'SELECT count(*) FROM hudi.cdc."{lab.lake_table("orders")}" WHERE _cdc_op = \'r\'')
    assert rows.fetchall()[0][0] == 1000  # all from the snapshot


def test_inserts_updates_and_deletes_stream_through(lab, settings):
    shop = Shop(settings, lab.schema, seed=2)
    try:
        stats = run_workload(shop, rate=100, ops=1500)
    finally:
        shop.close()
    assert stats.by_op["delete_order"] > 0 and stats.by_op["update_order"] > 0
    assert_lake_equals_source(lab)
    # Deletes left tombstones in the topic; the sink skipped them.
    assert any(m.value() is None for m in read_topic(settings, lab.topic("orders")))


def test_hive_catalog_shows_the_same_rows(lab, settings):
    """`hive.cdc.<table>` redirects to the hudi catalog (hive.hudi-catalog-name in
    trino/catalog/hive.properties; a Trino started before that line was added must be restarted)."""
    assert_lake_equals_source(lab, catalog="hive", timeout_s=30)


def test_added_column_reaches_trino_without_a_restart(lab, settings):
    sink_pid = lab.sink.pid
    with pg_connect(settings, "shop", autocommit=True) as conn:
        orders = f'"{lab.schema}".orders'
        conn.execute(f"ALTER TABLE {orders} ADD COLUMN coupon_code text, ADD COLUMN discount numeric(6,2)")
        conn.execute(f"UPDATE {orders} SET coupon_code = 'SPRING-' || id, discount = mod(id, 50) + 0.25, "
                     "updated_at = now() WHERE id IN (SELECT id FROM " + orders + " ORDER BY id DESC LIMIT 25)")
    shop = Shop(settings, lab.schema, seed=3)
    try:
        run_workload(shop, rate=100, ops=300)
    finally:
        shop.close()
    assert_lake_equals_source(lab)  # compares every source column, the new ones included
    cursor = trino_connect(settings, "hudi", "cdc").cursor()
    cursor.execute(f'SHOW COLUMNS FROM hudi.cdc."{lab.lake_table("orders")}"')
    types = {row[0]: row[1] for row in cursor.fetchall()}
    assert types["coupon_code"] == "varchar" and types["discount"] == "decimal(6,2)"
    counts = ("SELECT count(*) FILTER (WHERE coupon_code IS NULL), count(*) FILTER (WHERE coupon_code LIKE 'SPRING-%') "
              "FROM {}")
    cursor.execute(counts.format(f'hudi.cdc."{lab.lake_table("orders")}"'))
    lake_null, lake_coupons = cursor.fetchall()[0]
    with pg_connect(settings, "shop") as conn:
        source_null, source_coupons = conn.execute(counts.format(orders)).fetchone()
    assert (lake_null, lake_coupons) == (source_null, source_coupons)
    assert lake_null > 900 and 0 < lake_coupons <= 25  # older rows read NULL (the workload deletes some)
    assert lab.sink.pid == sink_pid and lab.sink.alive  # no restart, no hand edit


@pytest.mark.parametrize("service", ["connect", "kafka"])
def test_service_restart_during_the_workload_loses_nothing(lab, settings, service):
    with Workload(lab, rate=50, seed=10 + len(service)) as workload:
        time.sleep(5)
        lakelab("down", service)
        time.sleep(5)
        lakelab("up", service)
        connectors.wait_running(settings, lab.connector, wait_s=120)
        time.sleep(10)
    assert workload.stats.ops > 500
    assert_lake_equals_source(lab)
    assert lab.sink.alive, lab.sink.tail()


def test_sink_crash_during_the_workload_loses_nothing(lab, settings):
    with Workload(lab, rate=50, seed=20) as workload:
        time.sleep(8)
        lab.sink.kill()  # SIGKILL mid-stream: no clean shutdown, maybe mid-commit
        time.sleep(3)
        lab.sink.start()
        time.sleep(10)
    assert workload.stats.ops > 500
    assert_lake_equals_source(lab)


def test_duplicate_deliveries_are_harmless(lab, settings):
    """At-least-once delivery replays a suffix of a topic (Connect resumes from its last committed
    offset, Spark from its checkpoint): deliver the second half of every table's events again."""
    sync_point(lab)
    before = events_applied(lab)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    replayed = tombstones = 0
    for table in lab.tables:
        messages = read_topic(settings, lab.topic(table))
        for message in messages[len(messages) // 2:]:
            producer.produce(message.topic(), key=message.key(), value=message.value())
            replayed += 1
            tombstones += message.value() is None
    assert producer.flush(30) == 0
    assert replayed > 1000
    sync_point(lab)
    # The sink read them all (tombstones are not counted as events; a batch is logged once all
    # its tables are committed, the marker's table may be visible a little earlier)...
    deadline = time.monotonic() + 60
    while events_applied(lab) - before < replayed - tombstones and time.monotonic() < deadline:
        time.sleep(1)
    assert events_applied(lab) - before >= replayed - tombstones
    # ... and the lake did not move.
    assert_lake_equals_source(lab, timeout_s=10)


def test_bad_events_go_to_the_dead_letter_topic(lab, settings):
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    unknown = f"{lab.topic_prefix}.{lab.schema}.invoices"
    envelope = {"schema": {"type": "struct", "fields": []},
                "payload": {"op": "c", "after": {"id": 1}, "source": {"lsn": 1, "table": "invoices"}}}
    producer.produce(lab.topic("orders"), key=b'{"id": -1}', value=b"this is {not json")
    producer.produce(unknown, key=b'{"id": 1}', value=json.dumps(envelope).encode())
    assert producer.flush(30) == 0
    shop = Shop(settings, lab.schema, seed=30)
    try:
        run_workload(shop, rate=100, ops=200)
    finally:
        shop.close()
    assert_lake_equals_source(lab)  # the job carried on

    deadline = time.monotonic() + 60
    letters: list[dict] = []
    while time.monotonic() < deadline and len(letters) < 2:
        letters = [json.loads(m.value()) for m in read_topic(settings, "cdc-dlq")
                   if m.value() and json.loads(m.value()).get("source_topic", "").startswith(f"{lab.topic_prefix}.")]
        time.sleep(2)
    reasons = {letter["source_topic"]: letter["reason"] for letter in letters}
    assert reasons[lab.topic("orders")].startswith("unparseable payload")
    assert reasons[unknown] == "unknown table: invoices"
    garbage = next(letter for letter in letters if letter["source_topic"] == lab.topic("orders"))
    assert garbage["value"] == "this is {not json" and garbage["offset"] >= 0
    assert lab.sink.alive
