"""Compose mode keeps the lake in named volumes: after `docker compose down` (every container gone)
and `up` (new ones), a Hudi table, a Kafka topic and a workflow run are still there."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from aws.stepfunctions.engine import Workflow, execute
from aws.stepfunctions.runs import RunStore
from lakelab.settings import ROOT, Settings
from services import compose
from services.kafka.client import get_client as kafka_admin
from services.metastore.client import get_client as metastore
from services.s3.client import delete_prefix
from services.trino.client import query

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(Settings().mode != "compose", reason="the volumes of compose mode")]

ROWS = [(1, "ada"), (2, "grace"), (3, "edsger")]
HUDI_TABLE = """
import sys
from aws.glue.hudi import write_options
from lakelab.settings import get_settings
from services.spark.client import get_session
settings, table = get_settings(), sys.argv[1]
spark = get_session(settings, "compose-volumes")
frame = spark.createDataFrame({rows!r}, "id int, name string").selectExpr("id", "name", "id AS ts")
frame.write.format("hudi").options(**write_options(settings, table=table, database="default", record_key="id",
                                                   ordering_field="ts")).mode("append").save(f"s3a://warehouse/{{table}}")
spark.stop()
""".format(rows=ROWS)


def _consume(settings: Settings, topic: str, count: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"volumes-{topic}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(60):
            message = consumer.poll(1)
            if message is not None and not message.error():
                values.append(message.value())
            if len(values) == count:
                break
    finally:
        consumer.close()
    return values


def test_a_hudi_table_a_topic_and_a_workflow_run_survive_down_and_up(stack, unique, tmp_path):
    table, topic = f"volumes_{unique}", f"volumes-{unique}"
    script = tmp_path / "hudi_table.py"
    script.write_text(HUDI_TABLE)
    written = subprocess.run([sys.executable, str(script), table], cwd=ROOT, capture_output=True, text=True,
                             timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert written.returncode == 0, written.stderr[-3000:]
    admin = kafka_admin(stack)  # alive until its futures resolve
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "acks": "all"})
    for n in range(3):
        producer.produce(topic, value=f"event {n}".encode())
    assert producer.flush(30) == 0
    workflow = Workflow.model_validate({"Name": f"volumes-{unique}", "StartAt": "Done",
                                        "States": {"Done": {"Type": "Pass", "End": True}}})
    run = execute(workflow, {"survives": True}, RunStore(stack), stack)
    assert run.status == "SUCCEEDED"
    try:
        compose.down(stack)
        assert compose.status_of(stack) == []
        compose.up(stack)

        assert sorted(tuple(row) for row in query(stack, f'SELECT id, name FROM hudi.default."{table}"')) == ROWS
        assert _consume(stack, topic, 3) == [b"event 0", b"event 1", b"event 2"]
        key = stack.api_key_list[0]
        answer = httpx.get(f"{stack.gateway_url}/runs/{run.run_id}", headers={"X-API-Key": key}, timeout=30)
        assert answer.status_code == 200 and answer.json()["status"] == "SUCCEEDED", answer.text
    finally:
        metastore(stack).drop_table("default", table)
        delete_prefix(stack, f"s3a://warehouse/{table}/")
        admin = kafka_admin(stack)
        for future in admin.delete_topics([topic]).values():
            future.result()
