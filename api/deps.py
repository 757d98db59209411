"""Dependencies: settings, API-key authentication and the query engine."""

from __future__ import annotations

import hashlib
import math
import secrets
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from api.engine import Engine
from api.errors import ApiError
from lakelab.settings import Settings


# The plain accessors below are `async def` although they do not await: FastAPI runs a sync
# dependency in a worker thread, a handover there and back per request for nothing (each a
# wake-up that waits for a core on a busy 2-core machine; docs/bench.md, API).
async def get_app_settings(request: Request) -> Settings:
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


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


EngineDep = Annotated[Engine, Depends(get_engine)]
