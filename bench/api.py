"""Query API throughput and latency: through the Nginx gateway vs straight to the API, at 1, 8 and
32 concurrent clients, for a cached and an uncached query.

    .venv/bin/python bench/api.py [--seconds 6] [--max-requests 3000] [--gateway private|shared]

Needs the stack up (the API and Trino). Loopback only, bounded in count and time per cell.

By default both paths are private processes started here from the project's own code and config on
free ports, with the per-key rate limits raised: an API (as `lakelab up` runs it) and, in front of
it, an Nginx from nginx/lakelab.conf.template. The stack's gateway and API allow 20 requests/s per
key, so they would measure their limiters (pass `--gateway shared` to see that). The cached query is the same
URL every time (Nginx answers from its cache after the first); the uncached one differs per request
(a counter in an SQL comment), so every request goes to the API and Trino. Straight to the API
nothing is cached: both queries run on Trino each time.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from percentiles import percentile  # noqa: E402

from lakelab.settings import Settings, get_settings  # noqa: E402
from services.api.service import SERVICE as API  # noqa: E402
from services.nginx.service import SERVICE as NGINX  # noqa: E402

CACHED_SQL = "SELECT count(*) AS n, sum(x) AS s FROM UNNEST(sequence(1, 100)) AS t(x)"
UNCACHED_SQL = "SELECT count(*) AS n, sum(x) AS s /* {i} */ FROM UNNEST(sequence(1, 100)) AS t(x)"
LEVELS = (1, 8, 32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/health", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the private {what} did not start")
            time.sleep(0.1)


@contextmanager
def private_api(settings: Settings):
    """The project's API on a free loopback port with its per-key rate limit raised (the stack's
    allows 20 requests/s per key), stopped on exit."""
    url = f"http://127.0.0.1:{_free_port()}"
    env = {**os.environ, "LAKELAB_API_RATE_PER_S": "1000000", "LAKELAB_API_RATE_BURST": "1000000"}
    process = subprocess.Popen(API.command(settings.model_copy(update={"api_url": url})), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(url, process, "API")
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def private_gateway(settings: Settings, api_url: str):
    """The project's gateway config on a free loopback port in front of `api_url`, rate limit
    raised, stopped on exit."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="lakelab-bench-") as tmp:
        private = settings.model_copy(update={"state_dir": Path(tmp), "gateway_url": f"http://127.0.0.1:{port}",
                                              "api_url": api_url})
        private.logs_dir.mkdir(parents=True)
        NGINX.prepare(private)
        conf = private.run_dir("nginx") / "conf.d" / "lakelab.conf"
        text = re.sub(r"rate=\d+r/s", "rate=100000r/s", conf.read_text())
        conf.write_text(re.sub(r"burst=\d+", "burst=100000", text))
        process = subprocess.Popen(NGINX.command(private), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_healthy(private.gateway_url, process, "gateway")
            yield private.gateway_url
        finally:
            process.terminate()
            process.wait(10)


def run_cell(base_url: str, key: str, sql: str, clients: int, seconds: float, max_requests: int) -> dict:
    """`clients` asyncio tasks, each with its own keep-alive connection, sending one request after
    the other until the cell's request or time budget is spent."""
    return asyncio.run(_cell(base_url, key, sql, clients, seconds, max_requests))


async def _cell(base_url: str, key: str, sql: str, clients: int, seconds: float, max_requests: int) -> dict:
    counter = itertools.count()
    cell_id = uuid.uuid4().hex[:8]  # uncached SQL never repeats, across cells and runs
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": key}, timeout=60) as http:
            while time.monotonic() < deadline and (i := next(counter)) < max_requests:
                began = time.perf_counter()
                response = await http.get("/query", params={"query": sql.format(i=f"{cell_id}-{i}")})
                latencies.append(time.perf_counter() - began)
                statuses[str(response.status_code)] += 1
                if response.headers.get("x-cache-status"):
                    statuses[response.headers["x-cache-status"]] += 1

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - began
    def ms(q: float) -> float:
        value = percentile(latencies, q)
        return float("nan") if value is None else value * 1000

    return {"requests": len(latencies), "rps": len(latencies) / wall, "p50": ms(0.5), "p99": ms(0.99),
            "statuses": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="time limit per cell")
    parser.add_argument("--max-requests", type=int, default=3000, help="request limit per cell")
    parser.add_argument("--gateway", choices=("private", "shared"), default="private")
    args = parser.parse_args()
    settings = get_settings()
    key = settings.api_key_list[0]
    httpx.get(f"{settings.api_url}/health", timeout=5).raise_for_status()

    @contextmanager
    def endpoints():
        if args.gateway == "shared":
            yield {"nginx": settings.gateway_url, "direct": settings.api_url}
        else:
            with private_api(settings) as api_url, private_gateway(settings, api_url) as gateway_url:
                yield {"nginx": gateway_url, "direct": api_url}

    with endpoints() as targets:
        print(f"{'query':9} {'path':7} {'clients':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
        for label, sql in (("cached", CACHED_SQL), ("uncached", UNCACHED_SQL)):
            for path, url in targets.items():
                httpx.get(f"{url}/query", params={"query": sql.format(i="warm")}, headers={"X-API-Key": key},
                          timeout=60)  # warm-up (and, through Nginx, fills the cache for the cached query)
                for clients in LEVELS:
                    cell = run_cell(url, key, sql, clients, args.seconds, args.max_requests)
                    statuses = " ".join(f"{k}={v}" for k, v in sorted(cell["statuses"].items()))
                    print(f"{label:9} {path:7} {clients:>7} {cell['requests']:>8} {cell['rps']:>8.1f} "
                          f"{cell['p50']:>8.1f} {cell['p99']:>8.1f}  {statuses}", flush=True)


if __name__ == "__main__":
    main()
