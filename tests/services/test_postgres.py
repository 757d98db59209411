import pytest

from services.postgres.client import get_client as connect

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_logical_wal_and_declared_databases(settings):
    with connect(settings) as conn:
        assert conn.execute("SHOW wal_level").fetchone()[0] == "logical"
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert {"metastore", "shop"} <= names


def test_write_read_roundtrip(settings, unique):
    table = f"roundtrip_{unique}"
    with connect(settings, dbname="shop") as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, note text, amount numeric(10,2))")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'first', 9.99), (2, 'second', 0.01)")
        conn.commit()
    with connect(settings, dbname="shop") as conn:
        rows = conn.execute(f"SELECT id, note, amount::text FROM {table} ORDER BY id").fetchall()
        conn.execute(f"DROP TABLE {table}")
    assert rows == [(1, "first", "9.99"), (2, "second", "0.01")]
