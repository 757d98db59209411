"""Lab C's Kinesis part on the real stack, through the commands a student runs: the company KDG
template (a CSV line) -> generator -> topic -> Firehose stand-in -> CSV lines in the raw bucket
(bad records under the error prefix) -> crawler -> rows in Trino. Everything lives under its own
topic, prefix and table, removed at the end."""

from __future__ import annotations

import base64
import csv
import json
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from labs.lab_c.stream import COLUMNS
from lakelab.settings import ROOT
from services.kafka.client import get_client as kafka_admin
from services.s3.client import get_client as s3_client
from services.trino.client import query
from tests.clikit import LAKELAB

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

BUCKET = "raw"
SENT = 60
BAD_RECORDS = {  # what the CSV delivery must file under {error_prefix}{type}/
    "not-utf8": b"\xff\xfe,x,1,10.0.0.1",
    "multi-line": b"Ada,Lovelace,36,10.0.0.1\nGrace,Hopper,45,10.0.0.2",
    "field-count": b"Ada,Lovelace,36",
    "empty-record": None,
}


def lakelab(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([*LAKELAB, "lab-c", "stream", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def topic_values(settings, topic: str) -> list[bytes | None]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"test-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values: list[bytes | None] = []
    try:
        while len(values) < SENT + len(BAD_RECORDS):
            message = consumer.poll(10)
            assert message is not None, f"only {len(values)} records in {topic}"
            if message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def objects(s3, prefix: str) -> dict[str, bytes]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
            for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/")}


def versions(s3, prefix: str) -> list[dict]:
    """Every version and delete marker under `prefix` (the raw bucket is versioned)."""
    return [entry for page in s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix=prefix)
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", [])]


def purge(s3, prefix: str) -> None:
    for entry in versions(s3, prefix):
        s3.delete_object(Bucket=BUCKET, Key=entry["Key"], VersionId=entry["VersionId"])


@pytest.fixture
def stream(stack):
    u = uuid.uuid4().hex[:8]
    topic, base, table = f"company-stream-{u}", f"tests/stream-{u}/", f"crawler_people_{u}"
    admin = kafka_admin(stack)
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result()
    try:
        yield topic, f"{base}people/", f"{base}people_errors/", table
    finally:
        query(stack, f"DROP TABLE IF EXISTS hive.default.{table}")
        purge(s3_client(stack), base)
        for future in admin.delete_topics([topic]).values():
            future.result()


def test_csv_lines_from_the_kdg_template_become_rows_in_trino(stack, stream):
    topic, prefix, error_prefix, table = stream
    sent = lakelab("send", "--topic", topic, "--rate", "0", "--count", str(SENT))
    assert f"sending text records of company_people to {topic}" in sent.stdout
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    for value in BAD_RECORDS.values():
        producer.produce(topic, value=value)
    assert producer.flush(30) == 0
    values = topic_values(stack, topic)
    good = [v.decode() for v in values[:SENT]]
    assert all(len(next(csv.reader([line]))) == len(COLUMNS) for line in good), good[:3]

    delivered = lakelab("deliver", "--topic", topic, "--prefix", prefix, "--buffer-seconds", "1", "--idle-exit", "3")
    assert f"delivered {SENT} records and {len(BAD_RECORDS)} errors" in delivered.stdout
    s3 = s3_client(stack)
    data = objects(s3, prefix)
    assert data and all(key.endswith(".csv") and "/year=" in key and "/hour=" in key for key in data)
    assert [line for body in data.values() for line in body.decode().splitlines()] == good, \
        "the lines are delivered as they were sent, in order"
    error_objects = objects(s3, error_prefix)
    assert {v["Key"] for v in versions(s3, prefix) + versions(s3, error_prefix)} == {*data, *error_objects}, \
        "one version per object: the delivery writes nothing else into the versioned bucket"
    errors = {key.removeprefix(error_prefix).split("/", 1)[0]: body for key, body in error_objects.items()}
    assert set(errors) == set(BAD_RECORDS)
    for kind, raw in BAD_RECORDS.items():
        (record,) = [json.loads(line) for line in errors[kind].splitlines()]
        assert record["errorCode"] == kind and record["errorMessage"] and record["topic"] == topic
        assert base64.b64decode(record["rawData"]) == (raw or b"")

    crawled = lakelab("crawl", f"s3://{BUCKET}/{prefix}", "--table", table)
    assert "created" in crawled.stdout
    columns = [row[0] for row in query(stack, f"SHOW COLUMNS FROM hive.default.{table}")]
    assert columns == [*COLUMNS, "year", "month", "day", "hour"]
    rows = query(stack, f"SELECT first_name, last_name, age, ip FROM hive.default.{table}")
    assert sorted(rows) == sorted(next(csv.reader([line])) for line in good)
    assert query(stack, f"SELECT count(*) FROM hive.default.{table} WHERE CAST(age AS integer) BETWEEN 0 AND 70") \
        == [[SENT]]
    assert "unchanged" in lakelab("crawl", f"s3://{BUCKET}/{prefix}", "--table", table).stdout
