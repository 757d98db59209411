"""Prometheus metrics of the API (prometheus-client's default registry, served at /metrics)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics
from starlette.types import ASGIApp, Message, Receive, Scope, Send

disable_created_metrics()  # no *_created series: they double the output for nothing here
OPEN_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/"}
REQUESTS = Counter("lakelab_api_requests_total", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram("lakelab_api_request_duration_seconds", "HTTP request duration", ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
TRINO_QUERIES = Counter("lakelab_api_trino_queries_total", "Trino queries started by the API", ["outcome"])
TRINO_CANCELLED = Counter("lakelab_api_trino_cancelled_total", "Trino queries cancelled by the API", ["reason"])
REJECTED = Counter("lakelab_api_rejected_statements_total", "statements refused by the read-only check",
                   ["statement_type"])
ROWS_RETURNED = Counter("lakelab_api_rows_returned_total", "result rows sent to clients")
OPEN_CURSORS = Gauge("lakelab_api_open_cursors", "paged results holding an open Trino query")


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (not raw path: bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is None:
                route = scope["path"] if scope["path"] in OPEN_ROUTES else "unmatched"
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - began)
