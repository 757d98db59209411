"""Health probes of the stack's services for `/health` and the lake console: each one real call
through the service's client (as the services' readiness checks make), in a worker thread,
bounded by CHECK_TIMEOUT_S. A probe returns a short detail when the service answers and raises
when it does not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from api.models import ServiceHealth
from lakelab import tls
from lakelab.settings import Settings
from services.connect.client import connector_plugins
from services.kafka import client as kafka
from services.metastore import client as metastore
from services.postgres import client as postgres
from services.s3 import client as s3

CHECK_TIMEOUT_S = 2.0
CONSOLE_USER = "console"  # the S3 identity (resources.yaml) the API lists the lake as: it reads no object


def s3_buckets(settings: Settings) -> str:
    return f"{len(s3.get_client(settings, CONSOLE_USER).list_buckets()['Buckets'])} buckets"


def kafka_metadata(settings: Settings) -> str:
    metadata = kafka.get_client(settings).list_topics(timeout=CHECK_TIMEOUT_S)
    if not metadata.brokers:
        raise RuntimeError("Kafka answered with no brokers")
    return f"{len(metadata.brokers)} broker(s), {len(metadata.topics)} topics"


def postgres_version(settings: Settings) -> str:
    with postgres.get_client(settings) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    return f"PostgreSQL {version.split()[0]}"


def metastore_databases(settings: Settings) -> str:
    return f"{len(metastore.get_client(settings).list_databases())} databases"


def trino_info(settings: Settings) -> str:
    response = httpx.get(f"{settings.trino_url}/v1/info", timeout=CHECK_TIMEOUT_S, verify=tls.client_context(settings))
    info = response.json() if response.status_code == 200 else {}
    if response.status_code != 200 or info.get("starting", True):
        raise RuntimeError("starting" if info.get("starting") else f"HTTP {response.status_code}")
    version = (info.get("nodeVersion") or {}).get("version")
    return f"Trino {version}" if version else ""


def connect_plugins(settings: Settings) -> str:
    return f"{len(connector_plugins(settings))} connector plugins"


def gateway_health(settings: Settings) -> str:
    response = httpx.get(f"{settings.gateway_url}/health", timeout=CHECK_TIMEOUT_S,
                         verify=tls.public_context())
    if response.status_code != 200:
        raise RuntimeError(f"/health through the gateway answered HTTP {response.status_code}")
    return "forwards to the API"


async def probe(check: Callable[[Settings], str], settings: Settings) -> ServiceHealth:
    began = time.perf_counter()
    try:
        detail = await asyncio.wait_for(asyncio.to_thread(check, settings), CHECK_TIMEOUT_S)
        return ServiceHealth(status="up", latency_ms=_ms(began), detail=detail or None)
    except Exception as exc:  # noqa: BLE001 - any failure means down, and says why
        detail = "no answer" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {str(exc)[:150]}"
        return ServiceHealth(status="down", latency_ms=_ms(began), detail=detail)


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 1)
