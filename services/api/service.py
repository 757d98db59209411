"""The FastAPI app (`api/`) under uvicorn; Nginx fronts it."""

from __future__ import annotations

import sys

from lakelab.settings import Settings
from services.base import NotReady, Service, http_get


def _command(settings: Settings) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "api.main:app", "--host", settings.bind_host,
            "--port", str(settings.port_of(settings.api_url)), "--no-access-log",
            "--http", "api.server:JsonErrorsProtocol"]


def _check(settings: Settings) -> None:
    response = http_get(f"{settings.api_url}/health", "API")
    if response.status_code != 200:
        raise NotReady(f"API /health answered {response.status_code}")


SERVICE = Service(
    name="api",
    summary="FastAPI under uvicorn",
    endpoint=lambda s: s.api_url,
    command=_command,
    check=_check,
    # the console lists the lake as its own read-nothing S3 user (resources.yaml), not as the admin
    secrets=("api_keys", "trino_api_password", "pg_password", "console_secret_key"),
)
