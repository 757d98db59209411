"""Fixtures of the query API tests: a client through the Nginx gateway, lake state made for the
session (a small table in Trino, workflow runs, objects with versions, a topic with messages), and
the runner of the dashboard's browser tests. Private API / gateway processes (apikit) cover
settings the shared stack does not have (a short timeout, a small row cap, a dead Trino)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from aws.stepfunctions import engine, runs
from lakelab.install import ensure_debian_packages
from lakelab.settings import ROOT, Settings
from services.kafka.client import get_client as kafka_admin
from services.s3.client import get_client as s3_client
from services.trino.client import query
from tests.api.apikit import LOCATIONS, ROWS, GatewayClient

DASHBOARD = ROOT / "dashboard"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def api_key(settings: Settings) -> str:
    return settings.api_key_list[0]


@pytest.fixture(scope="session")
def gateway(stack: Settings, api_key: str) -> Iterator[httpx.Client]:
    """Through Nginx, with a valid key."""
    with GatewayClient(base_url=stack.gateway_url, headers={"X-API-Key": api_key}, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def sales_table(stack: Settings) -> Iterator[str]:
    """`hive.default.api_test_<random>`: ROWS rows of sales, partitioned by location."""
    name = f"api_test_{uuid.uuid4().hex[:8]}"
    query(stack, f"""
        CREATE TABLE hive.default.{name} WITH (partitioned_by = ARRAY['location']) AS
        SELECT CAST(n AS integer) AS id,
               CAST(n * 10 + 0.5 AS decimal(10, 2)) AS total_sales,
               element_at(ARRAY{LOCATIONS!r}, CAST(n % 3 + 1 AS integer)) AS location
        FROM UNNEST(sequence(1, {ROWS})) AS t(n)""")
    try:
        yield name
    finally:
        query(stack, f"DROP TABLE IF EXISTS hive.default.{name}")


@pytest.fixture(scope="session")
def recorded_runs(tmp_path_factory, stack: Settings):
    """One succeeded and one failed run of a throw-away two-state workflow."""
    name = f"api_runs_test_{uuid.uuid4().hex[:8]}"
    path = tmp_path_factory.mktemp("wf") / "wf.yaml"
    path.write_text(json.dumps({
        "Name": name, "StartAt": "Check",
        "States": {
            "Check": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Done"}],
                      "Default": "Broken"},
            "Broken": {"Type": "Fail", "Error": "NotOk", "Cause": "input said no"},
            "Done": {"Type": "Succeed"}}}))
    workflow = engine.load(path)
    succeeded = engine.execute(workflow, {"ok": True}, runs.RunStore(stack), stack)
    failed = engine.execute(workflow, {"ok": False}, runs.RunStore(stack), stack)
    return name, succeeded, failed


@pytest.fixture
def lake_objects(stack: Settings) -> Iterator[str]:
    """Under a prefix of its own, in the versioned `raw`: a/x.csv written twice, a/y.csv, b.csv
    deleted; in `datalake`: c.json. Yields the prefix."""
    s3 = s3_client(stack)
    base = f"tests/console-{uuid.uuid4().hex[:8]}/"
    s3.put_object(Bucket="raw", Key=f"{base}a/x.csv", Body=b"1")
    s3.put_object(Bucket="raw", Key=f"{base}a/x.csv", Body=b"22")
    s3.put_object(Bucket="raw", Key=f"{base}a/y.csv", Body=b"333")
    s3.put_object(Bucket="raw", Key=f"{base}b.csv", Body=b"4444")
    s3.delete_object(Bucket="raw", Key=f"{base}b.csv")
    s3.put_object(Bucket="datalake", Key=f"{base}c.json", Body=b"{}\n")
    try:
        yield base
    finally:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket="raw", Prefix=base):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                s3.delete_object(Bucket="raw", Key=entry["Key"], VersionId=entry["VersionId"])
        s3.delete_object(Bucket="datalake", Key=f"{base}c.json")


@pytest.fixture
def busy_topic(stack: Settings) -> Iterator[str]:
    """A topic of two partitions: one message from ten minutes ago, then 30 now."""
    name = f"console-test-{uuid.uuid4().hex[:8]}"
    admin = kafka_admin(stack)
    for future in admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    producer.produce(name, value=b"old", partition=0, timestamp=int((time.time() - 600) * 1000))
    for n in range(30):
        producer.produce(name, value=b"new", partition=n % 2)
    assert producer.flush(30) == 0
    try:
        yield name
    finally:
        for future in admin.delete_topics([name]).values():
            future.result()


@pytest.fixture(scope="session")
def browser_test(stack: Settings, api_key: str) -> Callable[..., None]:
    """Runs one of dashboard/test/*.test.mjs (node's test runner; playwright-core drives Debian's
    chromium) against the gateway; keyword arguments become its environment."""
    ensure_debian_packages({CHROMIUM: "chromium"})
    if shutil.which("npm") is None:
        ensure_debian_packages({"/usr/bin/npm": "npm"})
    if not (DASHBOARD / "node_modules" / "playwright-core").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=DASHBOARD, check=True, timeout=300)

    def run(test_file: str, **env: str) -> None:
        result = subprocess.run(["node", "--test", f"test/{test_file}"], cwd=DASHBOARD, capture_output=True,
                                text=True, timeout=600,
                                env={**os.environ, "LAKELAB_GATEWAY_URL": stack.gateway_url,
                                     "LAKELAB_API_KEYS": api_key, "CHROMIUM": CHROMIUM, **env})
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        assert "# skipped 0" in result.stdout, result.stdout[-2000:]

    return run
