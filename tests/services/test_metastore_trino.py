"""A Parquet table written to S3, registered in the metastore, read through Trino."""

import io
import subprocess
import time

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.base import NotReady
from services.metastore import client as metastore
from services.registry import by_name
from services.s3.client import get_client as s3_client
from services.trino.client import query
from tests.clikit import LAKELAB

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_metastore_lists_declared_databases(settings):
    assert {"default", "cdc", "lab_b"} <= set(metastore.get_client(settings).list_databases())


def test_trino_has_an_active_worker_and_both_catalogs(settings):
    assert query(settings, "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'")[0][0] >= 1
    assert {"hive", "hudi"} <= {row[0] for row in query(settings, "SHOW CATALOGS")}


def test_parquet_on_s3_registered_and_queried(settings, unique):
    table = pa.table({"location": ["London", "Paris", "London"], "total_sales": [10.5, 4.0, 1.5]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    prefix = f"tests/parquet_{unique}/"
    s3_client(settings).put_object(Bucket="processed", Key=f"{prefix}part-0.parquet", Body=buffer.getvalue())

    name = f"hive.default.sales_{unique}"
    query(settings, f"""CREATE TABLE {name} (location varchar, total_sales double)
                        WITH (external_location = 's3a://processed/{prefix}', format = 'PARQUET')""")
    try:
        rows = query(settings, f"SELECT location, sum(total_sales) FROM {name} GROUP BY 1 ORDER BY 1")
        assert rows == [["London", 12.0], ["Paris", 4.0]]
    finally:
        query(settings, f"DROP TABLE {name}")


def _through_the_api(settings, sql: str) -> httpx.Response:
    return httpx.get(f"{settings.api_url}/query", params={"query": sql},
                     headers={"X-API-Key": settings.api_key_list[0]}, timeout=60)


def test_a_scan_runs_the_moment_trino_counts_ready_and_the_api_reconnects(settings, unique):
    """Trino's readiness check, which `lakelab up` and the container's healthcheck wait for, means
    its connectors can run work. With static catalog management, in compose mode, a scan failed with
    NO_NODES_AVAILABLE for 2-3 s after `SELECT 1` first ran (6 restarts out of 6), and this test
    failed 1 run in 4. The running API keeps its connections to Trino open between queries; the
    restart closes them, and its first query afterwards must open a new one, not fail."""
    table = f"hive.default.ready_probe_{unique}"
    query(settings, f"CREATE TABLE {table} AS SELECT 42 AS x")
    try:
        assert _through_the_api(settings, f"SELECT x FROM {table}").json()["results"] == [{"x": 42}]
        subprocess.run([*LAKELAB, "down", "trino"], check=True, capture_output=True, timeout=120)
        starting = subprocess.Popen([*LAKELAB, "up", "trino"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while True:  # as tightly as the supervisor polls
            try:
                by_name("trino").check(settings)
                break
            except NotReady:
                assert time.monotonic() < deadline and starting.poll() in (None, 0), "Trino never became ready"
                time.sleep(0.05)
        assert query(settings, f"SELECT x FROM {table}") == [[42]]
        answer = _through_the_api(settings, f"SELECT x FROM {table}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"] == [{"x": 42}]
        assert starting.wait(timeout=180) == 0, starting.stderr.read().decode()[-2000:]
    finally:
        subprocess.run([*LAKELAB, "up", "trino"], capture_output=True, timeout=300)
        query(settings, f"DROP TABLE IF EXISTS {table}")
