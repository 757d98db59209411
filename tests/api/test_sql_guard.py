"""The read-only check (api/sql.py) on its own: what passes, what is refused and how it is named."""

from __future__ import annotations

import threading

import pytest

from api.sql import NotReadOnly, TooComplex, Unparsable, check

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("sql", "kind"), [
    ("SELECT 1", "SELECT"),
    ("select * from hive.default.t where x = '; DROP TABLE t'", "SELECT"),
    ("WITH a AS (SELECT 1 AS x) SELECT x FROM a", "WITH"),
    ("SELECT 1 UNION ALL SELECT 2", "SELECT"),
    ("(SELECT 1)", "SELECT"),
    ("VALUES 1, 2", "VALUES"),
    ("SHOW TABLES FROM hive.default", "SHOW"),
    ("show create table t", "SHOW"),
    ("DESCRIBE hive.default.t", "DESCRIBE"),
    ("DESC t", "DESCRIBE"),
    ("EXPLAIN SELECT 1", "EXPLAIN SELECT"),
    ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN SELECT"),
    ("EXPLAIN (TYPE DISTRIBUTED, FORMAT JSON) SELECT 1", "EXPLAIN SELECT"),
    ("SELECT 1;", "SELECT"),
    ("-- a comment\nSELECT 1", "SELECT"),
])
def test_read_only_statements_pass(sql, kind):
    assert check(sql).statement_type == kind


def test_trailing_semicolons_are_dropped():
    assert check("SELECT 1 ;; ").sql == "SELECT 1"


@pytest.mark.parametrize(("sql", "kind"), [
    ("DROP TABLE t", "DROP TABLE"),
    ("DROP SCHEMA s", "DROP SCHEMA"),
    ("INSERT INTO t VALUES (1)", "INSERT"),
    ("WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a", "INSERT"),
    ("UPDATE t SET a = 1", "UPDATE"),
    ("DELETE FROM t", "DELETE"),
    ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "MERGE"),
    ("CREATE TABLE t AS SELECT 1 AS a", "CREATE TABLE AS SELECT"),
    ("CREATE TABLE t (a integer)", "CREATE TABLE"),
    ("CREATE VIEW v AS SELECT 1 AS a", "CREATE VIEW"),
    ("ALTER TABLE t ADD COLUMN c integer", "ALTER TABLE"),
    ("ALTER TABLE t EXECUTE optimize", "ALTER TABLE"),
    ("TRUNCATE TABLE t", "TRUNCATE TABLE"),
    ("CALL system.sync_partition_metadata('default', 't', 'FULL')", "CALL"),
    ("GRANT SELECT ON t TO u", "GRANT"),
    ("USE hive.default", "USE"),
    ("SET SESSION query_max_run_time = '1h'", "SET SESSION"),
    ("PREPARE p FROM SELECT 1", "PREPARE"),
    ("EXECUTE IMMEDIATE 'DROP TABLE t'", "EXECUTE"),
    ("START TRANSACTION", "START TRANSACTION"),
    ("COMMENT ON TABLE t IS 'x'", "COMMENT"),
    ("ANALYZE t", "ANALYZE"),
    ("SELECT 1 INTO t2", "SELECT INTO"),
    ("EXPLAIN ANALYZE INSERT INTO t VALUES 1", "EXPLAIN INSERT"),
    ("EXPLAIN DROP TABLE t", "EXPLAIN DROP TABLE"),
    ("SELECT 1; DROP TABLE t", "MULTIPLE STATEMENTS"),
])
def test_everything_else_is_refused_by_name(sql, kind):
    with pytest.raises(NotReadOnly) as refused:
        check(sql)
    assert refused.value.statement_type == kind
    assert kind in str(refused.value) or "one statement" in str(refused.value)


def test_text_the_parser_cannot_read_is_left_to_trino_for_its_message():
    with pytest.raises(Unparsable):
        check("SELEC 1")


@pytest.mark.parametrize("sql", ["", "   ", ";", "-- only a comment"])
def test_empty_is_refused(sql):
    with pytest.raises(ValueError, match="empty"):
        check(sql)


def _nested(opening: str, core: str, closing: str, size: int = 99_000) -> str:
    depth = (size - len(core)) // (len(opening) + len(closing))
    return opening * depth + core + closing * depth


@pytest.mark.parametrize("sql", [
    "SELECT*FROM" + _nested("(SELECT*FROM", "(VALUES 1)", ")"),
    "SELECT " + _nested("ROW(", "1", ")"),
], ids=["7,600 nested subqueries", "24,700 nested ROWs"])
def test_nesting_up_to_the_size_limit_is_refused_not_a_crash(sql):
    """Statements under the 100,000-character limit, nested as deep as it allows, in a worker thread
    as the API checks long ones. sqlglot's mypyc build (`sqlglotc`, 4x faster) overflows the C stack
    on these and kills the process; pure sqlglot raises RecursionError, which the check refuses."""
    outcome: list[BaseException | str] = []

    def run() -> None:
        try:
            outcome.append(check(sql).statement_type)
        except BaseException as exc:  # noqa: BLE001 - the outcome is asserted below
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert len(sql) < 100_000 and isinstance(outcome[0], TooComplex), outcome
