"""The PostgreSQL client of the stack: a psycopg connection as the stack's superuser."""

from __future__ import annotations

import psycopg

from lakelab.settings import Settings


def get_client(settings: Settings, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
    """A connection to `dbname`; `kwargs` go to psycopg.connect (e.g. autocommit=True)."""
    return psycopg.connect(
        host=settings.pg_host, port=settings.pg_port, user=settings.pg_user,
        password=settings.pg_password.get_secret_value(), dbname=dbname, connect_timeout=3, **kwargs,
    )
