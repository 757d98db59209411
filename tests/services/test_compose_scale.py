"""Compose's `scale` profile really scales: Lab A's streaming job runs on the standalone Spark
cluster (its executors on the worker's container, not in local mode), and a second Trino node
is active and runs part of a query."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import NewTopic

from lakelab.settings import Settings
from producers.kdg import Generator, device_pool
from services import compose
from services.kafka.client import get_client as kafka_admin
from services.metastore.client import get_client as metastore
from services.s3.client import delete_prefix
from services.trino.client import get_client as trino, query

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(Settings().mode != "compose", reason="the scale profile of compose mode")]

SCALE = ["spark-master", "spark-worker", "trino-worker"]
DEVICES = 20


@pytest.fixture(scope="module")
def scaled(stack):
    """The scale profile's containers beside the stack, removed afterwards (they hold 4.5 GiB of limits)."""
    compose.up(stack, SCALE)
    yield stack
    compose.down(stack, SCALE)


# run in the worker's container, with its settings: its web UI is not published
WORKER_STATE = """
import urllib.request
from lakelab.settings import get_settings
from services.spark.service import own_address
settings = get_settings()
url = f"http://{own_address(settings)}:{settings.spark_worker_ui_port}/json/"
print(urllib.request.urlopen(url, timeout=10).read().decode())
"""


def _worker_state(settings: Settings) -> dict:
    """The Spark worker's own account of the executors it ran (its web UI's JSON)."""
    read = compose.exec_in(settings, "spark-worker", "python", "-c", WORKER_STATE)
    assert read.returncode == 0, read.stderr
    return json.loads(read.stdout)


def test_lab_a_streams_into_hudi_with_executors_on_the_worker(scaled, unique):
    topic, dead_letters, table = f"lab-a-scale-{unique}", f"lab-a-scale-dlq-{unique}", f"lab_a_scale_{unique}"
    path = f"s3a://warehouse/lab_a_tests/{table}"
    admin = kafka_admin(scaled)
    for future in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1),
                                       NewTopic(dead_letters, num_partitions=1, replication_factor=1)]).values():
        future.result()
    try:
        Generator(scaled.kafka_bootstrap, topic=topic, profile="iot_4", devices=device_pool(DEVICES, 1),
                  device_order="cycle", rate=0, seed=1).run(count=DEVICES * 2)
        # the job as a user starts it, in the cluster's container: its driver there, executors on the worker
        job = compose.exec_in(scaled, "spark-worker", "lakelab", "lab-a", "stream", "--topic", topic,
                              "--dlq-topic", dead_letters, "--table", table, "--path", path, "--once")
        assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]

        assert query(scaled, f'SELECT count(*) FROM hudi.default."{table}"') == [[DEVICES]]
        executors = [e for e in _worker_state(scaled)["finishedexecutors"] if e["appdesc"]["name"] == "lab_a"]
        assert executors, "no executor of the job ran on the worker"
    finally:
        metastore(scaled).drop_table("default", table)
        delete_prefix(scaled, path + "/")
        for future in admin.delete_topics([topic, dead_letters]).values():
            future.result()


def test_two_trino_nodes_are_active_and_share_a_query(scaled, unique):
    nodes = query(scaled, "SELECT node_id, coordinator FROM system.runtime.nodes WHERE state = 'active'")
    assert sorted(coordinator for _, coordinator in nodes) == [False, True], nodes
    table = f"hive.default.scale_{unique}"  # four files: four splits to share out
    query(scaled, f"CREATE TABLE {table} AS SELECT x FROM UNNEST(sequence(1, 10000)) AS t(x)")
    try:
        for part in range(1, 4):
            query(scaled, f"INSERT INTO {table} SELECT x + {part * 10000} FROM UNNEST(sequence(1, 10000)) AS t(x)")
        cursor = trino(scaled).cursor()
        cursor.execute(f"SELECT x % 7, count(*) FROM {table} GROUP BY 1")
        assert sum(count for _, count in cursor.fetchall()) == 40000
        tasks = query(scaled, f"SELECT DISTINCT node_id FROM system.runtime.tasks WHERE query_id = '{cursor.query_id}'")
        assert {node for (node,) in tasks} == {node for node, _ in nodes}
    finally:
        query(scaled, f"DROP TABLE IF EXISTS {table}")
