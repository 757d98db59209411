"""The lake's query API: read-only SQL on Trino over HTTP, table metadata, workflow runs, the lake
console's read-only views, the dashboard's Kinesis Data Generator, health and metrics.

Run natively by `lakelab up api` (uvicorn `api.main:app`), behind the Nginx gateway."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api import errors
from api.engine import Engine
from api.kdg import KdgJobs
from api.metrics import MetricsMiddleware
from api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from api.ratelimit import KeyBuckets
from api.routers import console, kdg, ops, query, runs, tables
from lakelab.settings import Settings, get_settings

SWAGGER_UI = Path(__file__).parent / "static" / "swagger"

DESCRIPTION = """Query the local data lake (Trino over Hudi and Hive tables) over HTTP: the stand-in for the
labs' API Gateway + Athena.

* Authenticate with an `X-API-Key` header (keys from `LAKELAB_API_KEYS`); `/health` and `/docs` are open.
* `GET /query?query=SELECT ...` (or `POST /query` with a JSON body) runs one read-only statement.
* `/console/...` shows the lake as the AWS console does (services, buckets, topics), read-only.
* `/kdg/...` runs the Kinesis Data Generator: a template sent to a stream at a rate, from the API.
* Errors are JSON: `{"error": code, "message": ..., ...}`; bad SQL carries Trino's message and position,
  a bad template the line and column of the problem.
* Each API key is rate limited (429 with `Retry-After`), by the API and by the Nginx gateway; through
  the gateway, identical `GET /query` requests are cached briefly (`X-Cache-Status`)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = Engine(settings)
        app.state.engine = engine
        app.state.kdg_jobs = KdgJobs(settings)
        await engine.start()
        try:
            yield
        finally:
            app.state.kdg_jobs.stop_all()
            await engine.stop()

    app = FastAPI(
        title="lakelab query API",
        version="0.2.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "query", "description": "read-only SQL on Trino"},
            {"name": "tables", "description": "the catalog's tables"},
            {"name": "runs", "description": "workflow runs (Lab C) and their state transitions"},
            {"name": "console", "description": "the lake as the AWS console shows it: services, buckets, topics"},
            {"name": "kdg", "description": "the Kinesis Data Generator: templates sent to streams"},
            {"name": "operations", "description": "health and metrics"},
        ],
    )
    app.state.settings = settings
    app.state.rate_limits = KeyBuckets(settings.api_rate_per_s, settings.api_rate_burst)
    errors.install(app)
    app.include_router(query.router)
    app.include_router(tables.router)
    app.include_router(ops.router)
    app.include_router(runs.router)
    app.include_router(console.router)
    app.include_router(kdg.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    # Swagger UI from files served here (swagger-ui-dist from npm), not from a CDN: the lake runs
    # offline.
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title} - docs",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    app.add_middleware(BodyLimitMiddleware, max_bytes=lambda: settings.api_max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware)
    return app


def _log_to_stderr() -> None:
    log = logging.getLogger("lakelab.api")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


_log_to_stderr()
app = create_app()
