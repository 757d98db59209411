"""Fixtures of the query API tests: a client through the Nginx gateway and a small table made in
Trino for the session. Private API / gateway processes (apikit) cover settings the shared stack
does not have (a short timeout, a small row cap, a dead Trino)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from lakelab.settings import Settings
from services.trino.client import query
from tests.api.apikit import LOCATIONS, ROWS, GatewayClient


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
