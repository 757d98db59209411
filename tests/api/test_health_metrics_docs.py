"""`/health`, `/metrics` and the OpenAPI documentation."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.api.apikit import private_api

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]


def test_health_is_open_fast_and_names_each_service(settings):
    began = time.monotonic()
    response = httpx.get(f"{settings.gateway_url}/health", timeout=5)
    assert time.monotonic() - began < 1.5
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["services"]["trino"]["status"] == "up"
    assert body["services"]["metastore"]["status"] == "up"


def test_health_reports_the_service_that_is_down(tmp_path, settings):
    with private_api(tmp_path, metastore_uri="thrift://127.0.0.1:9") as url:
        began = time.monotonic()
        body = httpx.get(f"{url}/health", timeout=10).json()
        assert time.monotonic() - began < 3
    assert body["status"] == "degraded"
    assert body["services"]["metastore"]["status"] == "down"
    assert body["services"]["trino"]["status"] == "up"


def test_metrics_need_a_key_and_count_requests(gateway, settings):
    assert httpx.get(f"{settings.gateway_url}/metrics").status_code == 401
    gateway.get("/query", params={"query": "SELECT 1"})
    response = gateway.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'lakelab_api_requests_total{method="GET",route="/query",status="200"}' in text
    assert "lakelab_api_request_duration_seconds_bucket" in text
    assert 'lakelab_api_trino_queries_total{outcome="ok"}' in text


def test_docs_page_works_offline_from_the_gateways_own_files(settings):
    page = httpx.get(f"{settings.gateway_url}/docs")
    assert page.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert scripts and all(src.startswith("/static/swagger/") for src in scripts)
    for src in scripts:
        asset = httpx.get(f"{settings.gateway_url}{src}")
        assert asset.status_code == 200 and len(asset.content) > 100_000
    assert "https:" not in page.headers["content-security-policy"]


def test_docs_are_open_and_describe_every_endpoint_and_its_errors(settings):
    assert httpx.get(f"{settings.gateway_url}/docs").status_code == 200
    spec = httpx.get(f"{settings.gateway_url}/openapi.json").json()
    operations = {(method.upper(), path): op for path, item in spec["paths"].items() for method, op in item.items()}
    assert set(operations) == {("GET", "/query"), ("POST", "/query"), ("GET", "/tables"),
                               ("GET", "/tables/{schema}/{table}"), ("GET", "/health"), ("GET", "/metrics"),
                               ("GET", "/runs"), ("GET", "/runs/{run_id}"), ("GET", "/console/services"),
                               ("GET", "/console/buckets"), ("GET", "/console/buckets/{bucket}/objects"),
                               ("GET", "/console/topics"), ("GET", "/kdg/templates"), ("GET", "/kdg/streams"),
                               ("POST", "/kdg/validate"), ("GET", "/kdg/jobs"), ("POST", "/kdg/jobs"),
                               ("GET", "/kdg/jobs/{job_id}"), ("POST", "/kdg/jobs/{job_id}/stop")}
    for (method, path), op in operations.items():
        assert op.get("summary"), (method, path)
        if path != "/health":
            assert op["security"] == [{"ApiKey": []}]
            assert {"401", "429"} <= set(op["responses"]), (method, path)
    for method in ("GET", "POST"):
        assert {"200", "400", "401", "410", "422", "429", "502", "503", "504"} <= set(operations[(method, "/query")]["responses"])
    assert "413" in operations[("POST", "/query")]["responses"]
    assert {"404", "503"} <= set(operations[("GET", "/tables/{schema}/{table}")]["responses"])
    assert {"400", "404", "409", "413", "422", "503"} <= set(operations[("POST", "/kdg/jobs")]["responses"])
    assert {"400", "413", "422"} <= set(operations[("POST", "/kdg/validate")]["responses"])
    assert {"404", "422", "503"} <= set(operations[("GET", "/console/buckets/{bucket}/objects")]["responses"])
    assert "503" in operations[("GET", "/console/topics")]["responses"]
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": spec["components"]["securitySchemes"]["ApiKey"]["description"]}
