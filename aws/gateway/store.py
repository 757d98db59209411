"""Where providers keep what must outlive the endpoint process (delivery streams, crawlers, Athena
query executions and workgroups): the stack's PostgreSQL, database `lakelab` (declared in
resources.yaml, which aws/stepfunctions/runs.py uses too). PostgreSQL rather than S3 because these
are small rows read and updated by key many times a second (GetQueryExecution polling), and an
update must be atomic (a crawler's state, a query's final state)."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from lakelab.settings import Settings
from services.postgres.client import get_client

DATABASE = "lakelab"


class Store:
    """One autocommit connection, shared by a provider's threads one statement at a time; it is
    opened again once if the server dropped it. `schema` (CREATE TABLE IF NOT EXISTS ...) runs on
    the first connection."""

    def __init__(self, settings: Settings, schema: str) -> None:
        self._settings = settings
        self._schema = schema
        self._lock = threading.Lock()
        self._connection: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        connection = get_client(self._settings, DATABASE, autocommit=True)
        connection.execute(self._schema)
        return connection

    def rows(self, statement: str, params: tuple | dict = ()) -> list[tuple]:
        """Run one statement; its rows (empty for statements without results)."""
        with self._lock:
            for attempt in (1, 2):
                if self._connection is None or self._connection.closed:
                    self._connection = self._connect()
                try:
                    cursor = self._connection.execute(statement, params)
                    return cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError:
                    self._connection.close()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value)
