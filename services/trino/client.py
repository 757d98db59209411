"""The Trino client of the stack (the Athena stand-in): a DB-API connection, and a one-call query."""

from __future__ import annotations

import trino
from lakelab.settings import Settings


def get_client(settings: Settings, catalog: str = "hive", schema: str = "default",
               request_timeout: float = 30, **options) -> trino.dbapi.Connection:
    """A DB-API connection to Trino; `options` go to `trino.dbapi.connect` (e.g. `source`,
    `legacy_primitive_types`, `max_attempts`, `session_properties`)."""
    return trino.dbapi.connect(host=settings.host_of(settings.trino_url), port=settings.port_of(settings.trino_url),
                               user="lakelab", catalog=catalog, schema=schema,
                               http_scheme=settings.trino_url.split("://", 1)[0], request_timeout=request_timeout,
                               **options)


def query(settings: Settings, sql: str, catalog: str = "hive", schema: str = "default") -> list[list]:
    """Run one statement and fetch all its rows."""
    cursor = get_client(settings, catalog, schema).cursor()
    cursor.execute(sql)
    return cursor.fetchall()
