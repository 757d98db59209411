"""`/tables` through the gateway: what the metastore knows, read through Trino."""

from __future__ import annotations

import httpx
import pytest

from tests.api.apikit import LOCATIONS, ROWS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_list_has_the_table(gateway, sales_table):
    response = gateway.get("/tables", params={"schema": "default"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["catalog"] == "hive"
    assert {"catalog": "hive", "schema": "default", "table": sales_table, "type": "BASE TABLE"} in body["tables"]


def test_detail_has_columns_partitions_location_format_and_row_count(gateway, sales_table):
    response = gateway.get(f"/tables/default/{sales_table}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["catalog"] == "hive" and body["schema"] == "default" and body["table"] == sales_table
    assert [(c["name"], c["type"], c["partition_key"]) for c in body["columns"]] == [
        ("id", "integer", False), ("total_sales", "decimal(10,2)", False), ("location", "varchar(6)", True)]
    assert body["partition_keys"] == ["location"]
    assert body["partitions"] == [{"location": loc} for loc in LOCATIONS]
    assert body["partition_count"] == len(LOCATIONS)
    assert body["location"] == f"s3a://warehouse/{sales_table}"
    assert body["format"] == "PARQUET"
    assert body["row_count"] == ROWS
    assert body["warnings"] == []


def test_missing_table_or_schema_is_404(gateway):
    for path in ("/tables/default/no_such_table_here", "/tables/no_such_schema_here/t"):
        response = gateway.get(path)
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
    assert gateway.get("/tables", params={"catalog": "no_such_catalog"}).status_code == 404


def test_names_are_validated_before_reaching_trino(gateway):
    response = gateway.get('/tables/default/x"; DROP TABLE y; --')
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_tables_need_a_key(settings, sales_table):
    assert httpx.get(f"{settings.gateway_url}/tables").status_code == 401
    assert httpx.get(f"{settings.gateway_url}/tables/default/{sales_table}").status_code == 401
