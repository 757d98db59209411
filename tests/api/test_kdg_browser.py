"""The Kinesis Data Generator page feeds Lab A: the page (dashboard/test/kdg.test.mjs, headless
Chromium through the gateway) sends Lab A's iot_4 template to a stream, then Lab A's streaming job
upserts what the stream holds into a Hudi table: every record the page sent is in Kafka, and each
device's latest one is its row in Trino. Like tests/labs/test_lab_a.py, the run has its own topic,
table and checkpoint, so it never writes into a shared `hudi_demo_table`. Leaves artifacts/kdg.png."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from services.kafka.client import get_client as kafka_admin
from services.trino.client import query
from spark_jobs.lab_a import IotHudiJob, JobConfig, drop_table, session

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

RECORDS = 60


def everything_in(settings, topic: str) -> list[dict]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        found: list[dict] = []
        while len(found) < sum(ends.values()):
            message = consumer.poll(10)
            assert message is not None, f"{len(found)} of {sum(ends.values())} records read"
            if message.error() is None:
                assert message.key().decode() == json.loads(message.value())["device_id"]
                found.append(json.loads(message.value()))
        return found
    finally:
        consumer.close()


@pytest.fixture
def lab_a_run(stack, tmp_path):
    """Lab A's job configured for a topic (and dead-letter topic), table and checkpoint of this run."""
    run = uuid.uuid4().hex[:8]
    config = JobConfig(topic=f"kdg-browser-{run}", dead_letter_topic=f"kdg-browser-dlq-{run}",
                       table=f"kdg_browser_{run}", path=f"s3a://warehouse/lab_a_tests/kdg_browser_{run}",
                       checkpoint=str(tmp_path / "checkpoint"), metrics_file=tmp_path / "metrics.jsonl", once=True)
    admin = kafka_admin(stack)
    for future in admin.create_topics([NewTopic(config.topic, num_partitions=3, replication_factor=1),
                                       NewTopic(config.dead_letter_topic, num_partitions=1,
                                                replication_factor=1)]).values():
        future.result()
    try:
        yield config
    finally:
        for future in admin.delete_topics([config.topic, config.dead_letter_topic]).values():
            future.result()


def test_records_sent_from_the_page_reach_lab_a_table(browser_test, settings, lab_a_run):
    config = lab_a_run
    browser_test("kdg.test.mjs", KDG_STREAM=config.topic, KDG_RECORDS=str(RECORDS))
    sent = everything_in(settings, config.topic)
    assert len(sent) >= RECORDS + 5, "the bounded job's records and the stopped job's"

    spark = session(settings, "test-kdg-browser")
    try:
        job = IotHudiJob(spark, config, settings)
        job.run()
        assert job.totals.upserted == len(sent) and not job.totals.dead_letter
        rows = query(settings, f"SELECT device_id, to_iso8601(event_time), temperature, humidity, pressure, battery "
                               f"FROM hudi.default.{config.table}")
    finally:
        drop_table(spark, config, settings)
        spark.stop()
    by_device: dict[str, list[dict]] = defaultdict(list)
    for record in sent:
        by_device[record["device_id"]].append(record)
    assert sorted(row[0] for row in rows) == sorted(by_device), "one row per device the page sent"
    for device, event_time, *readings in rows:
        latest = max(r["event_time"] for r in by_device[device])
        assert event_time.replace("Z", "")[:23] == latest.replace("Z", "")[:23]
        assert readings in [[r["temperature"], r["humidity"], r["pressure"], r["battery"]]
                            for r in by_device[device] if r["event_time"] == latest]
