"""A Parquet table written to S3, registered in the metastore, read through Trino."""

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.metastore import client as metastore
from services.s3.client import get_client as s3_client
from services.trino.client import query

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
