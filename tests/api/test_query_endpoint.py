"""`/query` through the Nginx gateway against the real Trino."""

from __future__ import annotations

import uuid

import httpx
import pytest

from services.trino.client import query
from tests.api.apikit import LOCATIONS, ROWS, kill_queries, private_api, slow_sql, trino_query_state

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def _table(name: str) -> str:
    return f"hive.default.{name}"


def test_get_returns_columns_and_rows_keyed_by_column(gateway, sales_table):
    sql = f"SELECT location, count(*) AS n, sum(total_sales) AS sales FROM {_table(sales_table)} GROUP BY location ORDER BY location"
    response = gateway.get("/query", params={"query": sql})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == sql
    assert body["statement_type"] == "SELECT"
    assert body["columns"] == [{"name": "location", "type": "varchar(6)"}, {"name": "n", "type": "bigint"},
                               {"name": "sales", "type": "decimal(38, 2)"}]
    assert [row["location"] for row in body["results"]] == LOCATIONS
    assert sum(row["n"] for row in body["results"]) == ROWS
    # decimals keep their exact value: Trino's JSON encoding, a string
    expected = sum(n * 10 + 0.5 for n in range(1, ROWS + 1))
    assert sum(float(row["sales"]) for row in body["results"]) == pytest.approx(expected)
    assert body["next_token"] is None and body["row_count"] == 3 and body["query_id"]


def test_post_takes_long_sql_in_a_json_body(gateway, sales_table):
    ids = ", ".join(str(i) for i in range(1, 3000))  # ~14 KB of SQL, more than a URL should carry
    sql = f"SELECT count(*) AS n FROM {_table(sales_table)} WHERE id IN ({ids})"
    response = gateway.post("/query", json={"query": sql})
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [{"n": ROWS}]


@pytest.mark.parametrize("sql", ["SHOW TABLES FROM hive.default", "DESCRIBE {t}", "EXPLAIN SELECT * FROM {t}",
                                 "WITH x AS (SELECT 1 AS a) SELECT a FROM x", "VALUES 1, 2"])
def test_read_only_statements_run(gateway, sales_table, sql):
    response = gateway.get("/query", params={"query": sql.format(t=_table(sales_table))})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("sql", "statement_type"), [
    ("DROP TABLE {t}", "DROP TABLE"),
    ("INSERT INTO {t} VALUES (99, 1.0, 'london')", "INSERT"),
    ("DELETE FROM {t}", "DELETE"),
    ("CREATE TABLE {t}_copy AS SELECT * FROM {t}", "CREATE TABLE AS SELECT"),
    ("ALTER TABLE {t} ADD COLUMN c integer", "ALTER TABLE"),
    ("CALL system.sync_partition_metadata('default', 'x', 'FULL')", "CALL"),
    ("EXPLAIN ANALYZE INSERT INTO {t} VALUES (99, 1.0, 'london')", "EXPLAIN INSERT"),
    ("SELECT 1; DROP TABLE {t}", "MULTIPLE STATEMENTS"),
])
def test_writes_are_refused_naming_the_statement_type(gateway, sales_table, settings, sql, statement_type):
    response = gateway.get("/query", params={"query": sql.format(t=_table(sales_table))})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "read_only"
    assert body["statement_type"] == statement_type
    assert "read-only" in body["message"] or "one statement" in body["message"]
    # and nothing ran: the table is still there, unchanged
    assert query(settings, f"SELECT count(*) FROM {_table(sales_table)}") == [[ROWS]]


def test_post_refuses_writes_too(gateway, sales_table):
    response = gateway.post("/query", json={"query": f"DROP TABLE {_table(sales_table)}"})
    assert response.status_code == 400
    assert response.json()["statement_type"] == "DROP TABLE"


def test_bad_sql_gets_trinos_message_and_position(gateway, sales_table):
    response = gateway.get("/query", params={"query": f"SELECT id,\n  no_such_column\nFROM {_table(sales_table)}"})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "bad_sql"
    assert body["trino_error"] == "COLUMN_NOT_FOUND"
    assert body["position"] == {"line": 2, "column": 3}
    assert "no_such_column" in body["message"] and body["message"].startswith("line 2:3:")
    assert "Traceback" not in response.text and "at io.trino" not in response.text


def test_syntax_error_sqlglot_cannot_parse_still_gets_trinos_position(gateway):
    response = gateway.get("/query", params={"query": "SELEC 1"})
    assert response.status_code == 400
    body = response.json()
    assert body["trino_error"] == "SYNTAX_ERROR"
    assert body["position"] == {"line": 1, "column": 1}
    assert "mismatched input 'SELEC'" in body["message"]


def test_missing_table_is_a_bad_request_with_position(gateway):
    response = gateway.get("/query", params={"query": "SELECT * FROM hive.default.no_such_table_anywhere"})
    assert response.status_code == 400
    assert response.json()["trino_error"] == "TABLE_NOT_FOUND"
    assert response.json()["position"] == {"line": 1, "column": 15}


def test_empty_or_missing_query_is_400(gateway):
    assert gateway.get("/query").status_code == 400
    assert gateway.get("/query", params={"query": "  ;  "}).status_code == 400


def test_wrong_or_missing_key_is_401(settings):
    for headers in ({"X-API-Key": "not-a-key"}, {}):
        response = httpx.get(f"{settings.gateway_url}/query", params={"query": "SELECT 1"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"


def test_paging_with_a_continuation_token(gateway, sales_table):
    sql = f"SELECT id FROM {_table(sales_table)} ORDER BY id"
    first = gateway.get("/query", params={"query": sql, "page_size": 10})
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"  # an open cursor is never cached
    pages = [first.json()]
    while pages[-1]["next_token"]:
        response = gateway.get("/query", params={"token": pages[-1]["next_token"]})
        assert response.status_code == 200, response.text
        pages.append(response.json())
    assert [p["page"] for p in pages] == [0, 1, 2]
    assert [p["row_count"] for p in pages] == [10, 10, 5]
    assert [r["id"] for p in pages for r in p["results"]] == list(range(1, ROWS + 1))
    assert all(p["columns"] == [{"name": "id", "type": "integer"}] for p in pages)
    # the newest page can be asked for again (a retried request); older ones are gone
    last_token = pages[1]["next_token"]
    assert gateway.get("/query", params={"token": last_token}).json()["results"] == pages[2]["results"]
    stale = gateway.get("/query", params={"token": pages[0]["next_token"]})
    assert stale.status_code == 410 and stale.json()["error"] == "cursor_gone"
    assert gateway.get("/query", params={"token": "not a token"}).status_code == 400


def test_post_pages_too(gateway, sales_table):
    first = gateway.post("/query", json={"query": f"SELECT id FROM {_table(sales_table)} ORDER BY id", "page_size": 20})
    second = gateway.post("/query", json={"token": first.json()["next_token"]})
    assert [r["id"] for r in first.json()["results"] + second.json()["results"]] == list(range(1, ROWS + 1))


def test_a_token_is_bound_to_its_api_key(gateway, sales_table, settings):
    first = gateway.get("/query", params={"query": f"SELECT id FROM {_table(sales_table)}", "page_size": 5})
    # another client without the key cannot read it (401 before the token is even looked at)
    response = httpx.get(f"{settings.gateway_url}/query", params={"token": first.json()["next_token"]},
                         headers={"X-API-Key": "someone-else"})
    assert response.status_code == 401


def test_row_cap_and_page_cap(tmp_path, sales_table):
    with private_api(tmp_path, api_page_rows="10", api_max_rows="15") as url:
        with httpx.Client(base_url=url, headers={"X-API-Key": _key()}) as client:
            first = client.get("/query", params={"query": f"SELECT id FROM {_table(sales_table)} ORDER BY id",
                                                 "page_size": 500}).json()
            assert first["row_count"] == 10  # page_size is capped by api_page_rows
            second = client.get("/query", params={"token": first["next_token"]}).json()
            assert second["row_count"] == 5 and second["truncated"] is True and second["next_token"] is None


def _key() -> str:
    from lakelab.settings import get_settings

    return get_settings().api_key_list[0]


def test_timeout_cancels_the_trino_query(tmp_path, settings):
    marker = f"timeout_{uuid.uuid4().hex[:8]}"
    try:
        with private_api(tmp_path, api_query_timeout_s="2") as url:
            response = httpx.get(f"{url}/query", params={"query": slow_sql(marker)},
                                 headers={"X-API-Key": _key()}, timeout=30)
            assert response.status_code == 504
            assert response.json()["error"] == "timeout" and response.json()["query_id"]
            assert trino_query_state(settings, marker) == ("FAILED", "USER_CANCELED")
    finally:
        kill_queries(settings, marker)


def test_client_going_away_cancels_the_trino_query(settings, api_key):
    # POST: nginx hands a client's abort on to the API (a cacheable GET it finishes, to fill its cache).
    marker = f"gone_{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{settings.gateway_url}/query", json={"query": slow_sql(marker)},
                       headers={"X-API-Key": api_key}, timeout=2)
        assert trino_query_state(settings, marker) == ("FAILED", "USER_CANCELED")
    finally:
        kill_queries(settings, marker)


def test_trino_down_is_503_naming_trino(tmp_path):
    with private_api(tmp_path, trino_url="https://127.0.0.1:9") as url:
        response = httpx.get(f"{url}/query", params={"query": "SELECT 1"}, headers={"X-API-Key": _key()}, timeout=30)
    assert response.status_code == 503
    assert response.json()["error"] == "service_unavailable" and response.json()["service"] == "trino"
    assert "Traceback" not in response.text
