"""Probes of the query API and its Nginx gateway: every failure of the read-only check is a JSON
400 that leaves the API serving others, pages and cursors are bounded per key, the rate limit
follows the API key wherever a request comes from, and every error either server can produce is
the API's JSON shape."""

from __future__ import annotations

import concurrent.futures
import socket
import time

import httpx
import pytest

from tests.api.apikit import private_api

pytestmark = [pytest.mark.integration]

NESTED = {
    "60 parentheses": "SELECT " + "(" * 60 + "1" + ")" * 60,
    "45 nested calls": "SELECT " + "abs(" * 45 + "1" + ")" * 45,
    "200 nested subqueries": "SELECT * FROM " + "(SELECT * FROM " * 200 + "(VALUES 1)" + ") t" * 200,
}


@pytest.fixture(scope="module")
def key(stack) -> str:
    return stack.api_key_list[0]


def _query(base: str, key: str, sql: str | None, **params) -> httpx.Response:
    return httpx.post(f"{base}/query", json={"query": sql, **params}, headers={"X-API-Key": key}, timeout=120)


def _until_not_limited(send) -> httpx.Response:
    for _ in range(20):
        response = send()
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))
    return response


@pytest.mark.parametrize("label", NESTED)
def test_deeply_nested_sql_is_a_400_and_the_next_query_still_runs(stack, key, label):
    for base in (stack.gateway_url, stack.api_url):
        refused = _until_not_limited(lambda: _query(base, key, NESTED[label]))
        assert refused.status_code == 400, refused.text[:300]
        assert refused.json()["error"] == "too_complex" and "nested too deeply" in refused.json()["message"]
        following = _until_not_limited(lambda: _query(base, key, "SELECT 42 AS answer"))
        assert following.status_code == 200 and following.json()["results"] == [{"answer": 42}]


def test_a_huge_statement_is_checked_off_the_event_loop(stack, key):
    """While a 94,000-character statement is parsed, other requests are answered."""
    huge = "SELECT " + " + ".join("1" for _ in range(23_500))
    assert len(huge) > 94_000
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(_query, stack.api_url, key, huge)
        answered_meanwhile = []
        while not pending.done():
            health = httpx.get(f"{stack.api_url}/health", timeout=30)
            if not pending.done():
                answered_meanwhile.append(health.status_code)
            time.sleep(0.05)
        response = pending.result()
    assert response.status_code in (200, 400), response.text[:300]
    if response.status_code == 400:
        assert response.json()["error"] in ("too_complex", "bad_sql")
    assert answered_meanwhile, f"no /health answer during the {time.monotonic() - started:.1f} s check"


def test_over_the_size_budget_is_a_400_naming_the_limit(stack, key):
    text = "SELECT 1 AS x /* " + "y" * stack.api_max_sql_chars + " */"
    response = _until_not_limited(lambda: _query(stack.api_url, key, text))
    assert response.status_code == 400
    assert response.json()["error"] == "too_complex" and f"{stack.api_max_sql_chars:,}" in response.json()["message"]


def test_a_row_over_the_page_byte_limit_is_a_400_not_a_40_mb_page(stack, key):
    response = _until_not_limited(lambda: _query(stack.gateway_url, key, "SELECT lpad('', 40000000, 'x') AS big"))
    assert response.status_code == 400, response.status_code
    assert response.json()["error"] == "result_too_large"
    assert len(response.content) < 10_000


def test_pages_stop_at_the_byte_limit_and_carry_on_with_a_token(stack, key, tmp_path):
    with private_api(tmp_path, api_page_bytes="100000") as url:
        sql = "SELECT n, lpad('', 1000, 'x') AS filler FROM UNNEST(sequence(1, 500)) AS t(n) ORDER BY n"
        first = _query(url, key, sql, page_size=1000)
        assert first.status_code == 200, first.text[:300]
        page = first.json()
        seen, sizes = [row["n"] for row in page["results"]], [len(first.content)]
        while page["next_token"]:
            response = _query(url, key, None, token=page["next_token"])
            assert response.status_code == 200, response.text[:300]
            page = response.json()
            seen += [row["n"] for row in page["results"]]
            sizes.append(len(response.content))
    assert seen == list(range(1, 501))
    assert len(sizes) >= 5 and max(sizes) <= 100_000 + 2_000  # rows up to the limit, plus the page's envelope


def test_one_key_cannot_evict_the_cursors_of_another(stack, tmp_path):
    paged = "SELECT n FROM UNNEST(sequence(1, 100)) AS t(n) ORDER BY n"
    with private_api(tmp_path, api_keys="key-of-alice-0123456789,key-of-bob-0123456789", api_cursors_per_key="3",
                     api_max_open_cursors="8") as url:
        bob = _query(url, "key-of-bob-0123456789", paged, page_size=10).json()
        alice = [_query(url, "key-of-alice-0123456789", paged, page_size=10).json() for _ in range(10)]
        time.sleep(0.5)  # evictions cancel in the background
        assert _query(url, "key-of-bob-0123456789", None, token=bob["next_token"]).status_code == 200
        alice_statuses = [_query(url, "key-of-alice-0123456789", None, token=page["next_token"]).status_code
                          for page in alice]
    assert alice_statuses[-3:] == [200, 200, 200] and alice_statuses[:7] == [410] * 7


def test_the_rate_limit_follows_the_key_not_the_address(stack, key):
    """Requests from 127.0.0.2, .3 and .4 share the key's one bucket, through Nginx and at the API:
    what passes is bounded by one bucket's burst and rate, not three."""
    for base in (stack.gateway_url, stack.api_url):
        port = stack.port_of(base)
        aliases = [httpx.Client(transport=httpx.HTTPTransport(local_address=f"127.0.0.{n}"), timeout=60,
                                base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}) for n in (2, 3, 4)]
        time.sleep(stack.api_rate_burst / stack.api_rate_per_s)  # a full bucket to start with
        began = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(lambda i: aliases[i % 3].get("/metrics").status_code, range(300)))
        elapsed = time.monotonic() - began
        for client in aliases:
            client.close()
        one_bucket = stack.api_rate_burst + stack.api_rate_per_s * elapsed
        assert set(statuses) <= {200, 429}, (base, set(statuses))
        assert statuses.count(200) <= one_bucket + 10, (base, statuses.count(200), f"{elapsed:.1f} s")
        assert statuses.count(429) > 0, base
    time.sleep(stack.api_rate_burst / stack.api_rate_per_s)


def test_an_api_429_is_json_with_retry_after(stack, key):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        with httpx.Client(base_url=stack.api_url, headers={"X-API-Key": key}, timeout=60) as client:
            responses = list(pool.map(lambda _: client.get("/metrics"), range(150)))
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    assert limited[0].json()["error"] == "rate_limited" and int(limited[0].headers["retry-after"]) >= 1
    time.sleep(stack.api_rate_burst / stack.api_rate_per_s)


def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        decoded, rest = b"", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            if int(size, 16) == 0:
                break
            decoded, rest = decoded + rest[:int(size, 16)], rest[int(size, 16) + 2:]
        body = decoded
    return int(lines[0].split()[1]), headers, body


BAD_REQUESTS = {
    "TRACE": b"TRACE /query HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "bad HTTP version": b"GET /health HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
    "0xFF in the URL": b"GET /query?query=\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "Content-Length abc": b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n",
    "no Host": b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n",
    "unknown transfer encoding": b"POST /query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n",
}


@pytest.mark.parametrize("label", BAD_REQUESTS)
@pytest.mark.parametrize("server", ["gateway", "api"])
def test_every_error_is_the_json_shape(stack, server, label):
    port = stack.port_of(stack.gateway_url if server == "gateway" else stack.api_url)
    status, headers, body = _raw(port, BAD_REQUESTS[label])
    assert headers.get("content-type", "").startswith("application/json"), (status, headers, body[:200])
    answer = httpx.Response(status, content=body).json()
    if status >= 400:
        assert set(answer) >= {"error", "message"}
    else:  # uvicorn serves HTTP/9.9 as if it were 1.1: a JSON answer is all that is asked
        assert label == "bad HTTP version" and server == "api"
