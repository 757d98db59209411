import secrets
import time

import psycopg
import pytest
from pydantic import SecretStr

from lakelab.settings import Settings
from services.postgres.client import get_client as connect
from services.postgres.service import SERVICE as POSTGRES
from services.supervisor import _spawn, _stop, _wait_ready, log_file, reset, running_pid
from tests.api.apikit import free_port

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


@pytest.mark.skipif(Settings().mode == "compose", reason="the native supervisor's PostgreSQL; compose mode sends "
                                                         "the container's stop_signal (test_compose.py)")
def test_down_stops_postgresql_at_once_and_cleanly_while_clients_are_connected(tmp_path):
    """On SIGTERM PostgreSQL waits for every client to leave, so `lakelab down postgres` with the
    metastore connected took its 30 s grace and then killed it (crash recovery at the next start)."""
    settings = Settings(state_dir=tmp_path / "state", pg_port=free_port(),
                        pg_password=SecretStr(secrets.token_urlsafe(16)))
    try:
        _wait_ready(settings, POSTGRES, _spawn(settings, POSTGRES), time.monotonic())
        client = connect(settings, autocommit=True)
        began = time.monotonic()
        assert _stop(settings, [POSTGRES]) == ["postgres"]
        seconds = time.monotonic() - began
        with pytest.raises(psycopg.OperationalError):
            client.execute("SELECT 1")
        log = log_file(settings, "postgres").read_text()
        assert seconds < 10, f"down took {seconds:.1f} s"
        assert "received fast shutdown request" in log and "database system is shut down" in log, log[-2000:]
        assert running_pid(settings, "postgres") is None
    finally:
        reset(settings)
    assert not settings.postgres_data_dir.parent.exists()  # as root /var/lib/lakelab/<state id>/ is gone too

