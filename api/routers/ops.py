"""Operations: `/health` (open) and `/metrics` (Prometheus, behind the API key)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import SettingsDep, require_api_key
from api.errors import RATE_LIMITED, UNAUTHORIZED
from api.models import Health
from api.probes import metastore_databases, probe, trino_info

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health, summary="Health of the API and of each backing service",
            description="Open (no API key). Always 200 while the API answers; `status` is `degraded` and the "
                        "service says `down` when Trino or the Hive Metastore does not answer within 2 s.")
async def health(settings: SettingsDep) -> Health:
    trino_health, metastore_health = await asyncio.gather(probe(trino_info, settings),
                                                          probe(metastore_databases, settings))
    services = {"trino": trino_health, "metastore": metastore_health}
    status = "ok" if all(s.status == "up" for s in services.values()) else "degraded"
    return Health(status=status, services=services)


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(require_api_key)],
            response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                                                       "description": "Prometheus text format"},
                                                 **UNAUTHORIZED, **RATE_LIMITED})
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
