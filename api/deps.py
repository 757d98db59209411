"""Dependencies: settings, API-key authentication, the Trino connection and the query engine."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterator
from typing import Annotated

import trino
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from api.engine import Engine
from api.errors import ApiError
from lakelab.settings import Settings
from services.trino.client import get_client

TRINO_SOURCE = "lakelab-api"


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (override in tests with `dependency_overrides`)."""
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKey",
                              description="one of the keys in `LAKELAB_API_KEYS` (comma-separated)")


async def require_api_key(request: Request, settings: SettingsDep,
                          key: Annotated[str | None, Security(api_key_header)]) -> str:
    """The caller's key if it is a configured one (401 otherwise) and within its rate (429
    otherwise). Async, so that it runs on the event loop, where the rate buckets live. Returns a
    digest, not the key."""
    if key:
        for known in settings.api_key_list:
            if secrets.compare_digest(key.encode(), known.encode()):
                owner = hashlib.sha256(key.encode()).hexdigest()[:16]
                wait = request.app.state.rate_limits.take(owner)
                if wait:
                    raise ApiError(429, "rate_limited", f"over {settings.api_rate_per_s:g} requests/s for this "
                                                        f"API key; slow down and retry",
                                   headers={"Retry-After": str(max(1, math.ceil(wait)))})
                return owner
    raise ApiError(401, "unauthorized", "missing or unknown API key: send one of the configured keys in "
                                        "the X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})


ApiKeyDep = Annotated[str, Security(require_api_key)]


class TrinoHandle:
    """A Trino connection made on first use and closed after the response, unless something
    that outlives the request (an open result cursor, a query being cancelled) took it over."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._conn: trino.dbapi.Connection | None = None
        self._detached = False

    @property
    def conn(self) -> trino.dbapi.Connection:
        if self._conn is None:
            self._conn = get_client(
                self._settings, request_timeout=self._settings.api_query_timeout_s + 5,
                user=self._settings.trino_api_user, password=self._settings.trino_api_password,
                source=TRINO_SOURCE, legacy_primitive_types=True, max_attempts=1,
            )
        return self._conn

    def detach(self) -> trino.dbapi.Connection:
        self._detached = True
        return self.conn

    def close(self) -> None:
        if self._conn is not None and not self._detached:
            self._conn.close()


def trino_connection(settings: SettingsDep) -> Iterator[TrinoHandle]:
    handle = TrinoHandle(settings)
    try:
        yield handle
    finally:
        handle.close()


TrinoDep = Annotated[TrinoHandle, Depends(trino_connection)]


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]
