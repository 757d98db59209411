"""Probes of the query engine: every client needs a password, and the query API's own Trino user
only reads the lake's catalogs (no DDL, no other users' SQL). The stack's own user (lab jobs,
tools, tests) keeps the rights the labs need."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import SecretStr
from trino.exceptions import HttpError, TrinoUserError

from lakelab import tls
from services.trino.client import get_client, query

pytestmark = [pytest.mark.integration]


def _run(settings, sql: str, user: str, password: str) -> list:
    cursor = get_client(settings, user=user, password=SecretStr(password), max_attempts=1).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def _as_api(settings, sql: str) -> list:
    return _run(settings, sql, settings.trino_api_user, settings.trino_api_password.get_secret_value())


def test_no_client_gets_in_without_the_password(stack):
    https = httpx.Client(verify=tls.client_context(stack), trust_env=False)
    anonymous = https.post(f"{stack.trino_url}/v1/statement", content="SELECT 1", headers={"X-Trino-User": "anyone"})
    assert anonymous.status_code == 401
    for user in ("anyone", stack.trino_user, stack.trino_api_user):
        wrong = https.post(f"{stack.trino_url}/v1/statement", content="SELECT 1", auth=(user, "not-the-password"))
        assert wrong.status_code == 401, user
        with pytest.raises(HttpError, match="401"):
            _run(stack, "SELECT 1", user, "not-the-password")


def test_the_plain_http_port_takes_no_logins(stack):
    """Plain HTTP is the nodes' own port (shared secret); a client sending a password there is refused."""
    plain = f"http://127.0.0.1:{stack.trino_internal_port}/v1/statement"
    for headers in ({"X-Trino-User": stack.trino_user}, {}):
        response = httpx.post(plain, content="SELECT 1", headers=headers,
                              auth=(stack.trino_user, stack.trino_password.get_secret_value()))
        assert response.status_code == 403 and "Authentication over HTTP is not enabled" in response.text


def test_the_api_user_reads_the_lake_but_writes_nothing(stack):
    table = f"security_probe_{uuid.uuid4().hex[:8]}"
    query(stack, f"CREATE TABLE hive.default.{table} AS SELECT 1 AS x")
    try:
        assert _as_api(stack, f"SELECT x FROM hive.default.{table}") == [[1]]
        for statement in (f"CREATE VIEW hive.default.{table}_view AS SELECT 1 AS x",
                          f"CREATE TABLE hive.default.{table}_copy AS SELECT 1 AS x",
                          f"INSERT INTO hive.default.{table} VALUES (2)",
                          f"DROP TABLE hive.default.{table}",
                          f"ALTER TABLE hive.default.{table} ADD COLUMN y integer",
                          "CREATE SCHEMA hive.probe_schema"):
            with pytest.raises(TrinoUserError, match="Access Denied"):
                _as_api(stack, statement)
        assert query(stack, f"SELECT count(*) FROM hive.default.{table}") == [[1]]
    finally:
        query(stack, f"DROP TABLE IF EXISTS hive.default.{table}")


def test_the_api_user_sees_no_other_users_queries_or_other_catalogs(stack):
    marker = f"secret_sql_{uuid.uuid4().hex[:8]}"
    query(stack, f"SELECT '{marker}' AS mine")
    with pytest.raises(TrinoUserError, match="Access Denied"):
        _as_api(stack, "SELECT query FROM system.runtime.queries")
    with pytest.raises(TrinoUserError, match="Access Denied"):
        _as_api(stack, "SELECT * FROM system.runtime.nodes")
    catalogs = {row[0] for row in _as_api(stack, "SHOW CATALOGS")}
    assert catalogs <= {"hive", "hudi", "system"} and {"hive", "hudi"} <= catalogs
    own = [row[0] for row in query(stack, "SELECT query FROM system.runtime.queries")]
    assert any(marker in text for text in own), "the stack's own user still sees its queries"


def test_through_the_api_no_key_reads_the_queries_of_others(stack):
    marker = f"secret_sql_{uuid.uuid4().hex[:8]}"
    query(stack, f"SELECT '{marker}' AS mine")
    response = httpx.get(f"{stack.gateway_url}/query", params={"query": "SELECT query FROM system.runtime.queries"},
                         headers={"X-API-Key": stack.api_key_list[0]}, timeout=60)
    assert response.status_code == 400 and marker not in response.text
    assert "Access Denied" in response.json()["message"]


def test_no_user_creates_or_drops_a_catalog(stack):
    """Trino's catalogs are managed dynamically (see services/trino/config.properties) only for its
    scheduler; the catalogs stay the stack's own: no user, not even the stack's own, adds or drops one."""
    before = query(stack, "SHOW CATALOGS")
    metastore = stack.metastore_uri.replace("'", "''")
    for user, password in ((stack.trino_user, stack.trino_password), (stack.trino_api_user, stack.trino_api_password)):
        for statement in (f"CREATE CATALOG probe_catalog USING hive WITH (\"hive.metastore.uri\" = '{metastore}')",
                          "DROP CATALOG hudi"):
            with pytest.raises(TrinoUserError, match="Access Denied|read.only"):
                _run(stack, statement, user, password.get_secret_value())
    assert query(stack, "SHOW CATALOGS") == before
    assert query(stack, "SELECT count(*) FROM hudi.information_schema.schemata")[0][0] > 0
