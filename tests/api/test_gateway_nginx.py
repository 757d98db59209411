"""What the Nginx gateway adds in front of the API: forwarding headers, gzip, size limit, rate
limit, the GET /query cache, security headers, JSON errors and the dashboard's files."""

from __future__ import annotations

import concurrent.futures
import uuid

import httpx
import pytest

from tests.api.apikit import private_gateway

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]

SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def _has_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    assert "content-security-policy" in response.headers


def test_requests_are_forwarded_with_a_request_id(gateway):
    response = gateway.get("/health")
    assert response.headers["server"] == "nginx"  # no version
    assert len(response.headers["x-request-id"]) == 32  # nginx's $request_id, seen by the API
    _has_security_headers(response)


def test_identical_get_query_is_served_from_the_cache(gateway, sales_table):
    sql = f"SELECT count(*) AS n /* {uuid.uuid4().hex} */ FROM hive.default.{sales_table}"
    first = gateway.get("/query", params={"query": sql})
    second = gateway.get("/query", params={"query": sql})
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.headers["x-cache-status"] == "MISS"
    assert second.headers["x-cache-status"] == "HIT"
    assert second.json() == first.json()
    _has_security_headers(second)


def test_the_cache_never_serves_one_key_to_another_nor_post(gateway, settings):
    sql = f"SELECT 1 AS one /* {uuid.uuid4().hex} */"
    assert gateway.get("/query", params={"query": sql}).status_code == 200
    other = httpx.get(f"{settings.gateway_url}/query", params={"query": sql}, headers={"X-API-Key": "not-a-key"})
    assert other.status_code == 401 and other.headers["x-cache-status"] == "MISS"
    posted = [gateway.post("/query", json={"query": sql}) for _ in range(2)]
    assert all(p.status_code == 200 and p.headers.get("x-cache-status") != "HIT" for p in posted)


def test_json_is_gzipped(gateway):
    response = gateway.get("/query", params={"query": "SELECT x FROM UNNEST(sequence(1, 500)) t(x)"},
                           headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["results"]) == 500  # httpx inflates it


def test_oversized_body_is_413_json(gateway):
    response = gateway.post("/query", content=b'{"query": "' + b"x" * 1_500_000 + b'"}',
                            headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    _has_security_headers(response)


def test_oversized_body_is_413_at_the_api_too(settings, api_key):
    response = httpx.post(f"{settings.api_url}/query", content=b"x" * (settings.api_max_body_bytes + 1),
                          headers={"X-API-Key": api_key, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_a_burst_gets_429(settings):
    # A key of its own: the limit is per key, so other tests keep their quota.
    headers = {"X-API-Key": f"burst-{uuid.uuid4().hex}"}
    with httpx.Client(base_url=settings.gateway_url, headers=headers) as client:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: client.get("/query", params={"query": "SELECT 1"}), range(100)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(429) >= 20 and statuses.count(401) >= 40  # burst of 40 passes, then 20/s
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["error"] == "rate_limited"
    assert limited.headers["retry-after"] == "1"


def test_dashboard_files_are_served(settings):
    root = httpx.get(f"{settings.gateway_url}/")
    assert root.status_code == 302 and root.headers["location"] == "/dashboard/"
    page = httpx.get(f"{settings.gateway_url}/dashboard/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    _has_security_headers(page)


def test_api_down_is_a_json_503_naming_the_api(tmp_path):
    with private_gateway(tmp_path, "http://127.0.0.1:9") as url:
        response = httpx.get(f"{url}/query", params={"query": "SELECT 1"}, headers={"X-API-Key": "k"})
    assert response.status_code == 503
    assert response.json() == {"error": "service_unavailable", "message": "the query API is not answering",
                               "service": "api"}
