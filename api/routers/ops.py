"""Operations: `/health` (open) and `/metrics` (Prometheus, behind the API key)."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import EngineDep, SettingsDep, require_api_key
from api.engine import Engine
from api.errors import RATE_LIMITED, UNAUTHORIZED
from api.models import Health, ServiceHealth
from lakelab.settings import Settings
from services.metastore import client as metastore

router = APIRouter(tags=["operations"])
CHECK_TIMEOUT_S = 2.0


async def _trino(engine: Engine, settings: Settings) -> ServiceHealth:
    began = time.perf_counter()
    try:
        response = await engine.http.get(f"{settings.trino_url}/v1/info", timeout=CHECK_TIMEOUT_S)
        info = response.json() if response.status_code == 200 else {}
        if response.status_code != 200 or info.get("starting", True):
            detail = "starting" if info.get("starting") else f"HTTP {response.status_code}"
            return ServiceHealth(status="down", latency_ms=_ms(began), detail=detail)
        version = (info.get("nodeVersion") or {}).get("version")
        return ServiceHealth(status="up", latency_ms=_ms(began), detail=f"Trino {version}" if version else None)
    except Exception as exc:  # noqa: BLE001 - any failure means down
        return ServiceHealth(status="down", latency_ms=_ms(began), detail=f"{type(exc).__name__}: {str(exc)[:150]}")


async def _metastore(engine: Engine, settings: Settings) -> ServiceHealth:
    began = time.perf_counter()
    try:
        databases = await asyncio.wait_for(asyncio.to_thread(metastore.get_client(settings).list_databases),
                                           CHECK_TIMEOUT_S)
        return ServiceHealth(status="up", latency_ms=_ms(began), detail=f"{len(databases)} databases")
    except Exception as exc:  # noqa: BLE001
        detail = "no answer" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {str(exc)[:150]}"
        return ServiceHealth(status="down", latency_ms=_ms(began), detail=detail)


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 1)


@router.get("/health", response_model=Health, summary="Health of the API and of each backing service",
            description="Open (no API key). Always 200 while the API answers; `status` is `degraded` and the "
                        "service says `down` when Trino or the Hive Metastore does not answer within 2 s.")
async def health(settings: SettingsDep, engine: EngineDep) -> Health:
    trino_health, metastore_health = await asyncio.gather(_trino(engine, settings), _metastore(engine, settings))
    services = {"trino": trino_health, "metastore": metastore_health}
    status = "ok" if all(s.status == "up" for s in services.values()) else "degraded"
    return Health(status=status, services=services)


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(require_api_key)],
            response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                                                       "description": "Prometheus text format"},
                                                 **UNAUTHORIZED, **RATE_LIMITED})
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
