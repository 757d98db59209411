"""The Trino client of the stack (the Athena stand-in): a DB-API connection, and a one-call query."""

from __future__ import annotations

import requests
import trino
from pydantic import SecretStr
from trino.auth import BasicAuthentication

from lakelab import tls
from lakelab.settings import Settings


def get_client(settings: Settings, catalog: str = "hive", schema: str = "default", request_timeout: float = 30,
               user: str | None = None, password: SecretStr | None = None, **options) -> trino.dbapi.Connection:
    """A DB-API connection to Trino as the stack's own user, or as `user` with `password`;
    `options` go to `trino.dbapi.connect` (e.g. `source`, `legacy_primitive_types`)."""
    user, password = (user, password) if user else (settings.trino_user, settings.trino_password)
    return trino.dbapi.connect(host=settings.host_of(settings.trino_url), port=settings.port_of(settings.trino_url),
                               user=user, auth=BasicAuthentication(user, password.get_secret_value()),
                               catalog=catalog, schema=schema, http_scheme=settings.trino_url.split("://", 1)[0],
                               request_timeout=request_timeout, http_session=_session(settings), **options)


def _session(settings: Settings) -> requests.Session:
    """An HTTP session that trusts the stack's CA, whatever REQUESTS_CA_BUNDLE says (requests
    lets that variable override a session's own `verify`)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(tls.ca_file(settings))
    return session


def query(settings: Settings, sql: str, catalog: str = "hive", schema: str = "default") -> list[list]:
    """Run one statement and fetch all its rows."""
    cursor = get_client(settings, catalog, schema).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def quote_identifier(name: str) -> str:
    """`name` as one SQL identifier, whatever it holds."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """`value` as one SQL string literal, whatever it holds."""
    return "'" + value.replace("'", "''") + "'"
