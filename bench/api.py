"""Query API throughput and latency: through the Nginx gateway vs straight to the API, at 1, 8 and
32 concurrent clients, for a cached and an uncached query.

    .venv/bin/python bench/api.py [--seconds 6] [--max-requests 3000] [--gateway private|shared]

Needs the stack up (the API and Trino). Loopback only, bounded in count and time per cell.

"Through Nginx" is by default a private Nginx started here from the project's own gateway config
(nginx/lakelab.conf.template, rendered as `lakelab up` does) on a free port, in front of the same
API, with the per-client rate limit raised: the shared gateway allows 20 requests/s per client, so
it would measure its limiter (pass `--gateway shared` to see that). The cached query is the same
URL every time (Nginx answers from its cache after the first); the uncached one differs per request
(a counter in an SQL comment), so every request goes to the API and Trino. Straight to the API
nothing is cached: both queries run on Trino each time.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
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

CACHED_SQL = "SELECT count(*) AS n, sum(x) AS s FROM UNNEST(sequence(1, 100)) AS t(x)"
UNCACHED_SQL = "SELECT count(*) AS n, sum(x) AS s /* {i} */ FROM UNNEST(sequence(1, 100)) AS t(x)"
LEVELS = (1, 8, 32)


@contextmanager
def private_gateway(settings: Settings):
    """The project's gateway config on a free loopback port, rate limit raised, stopped on exit."""
    import socket

    from services.nginx.service import SERVICE

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="lakelab-bench-") as tmp:
        private = settings.model_copy(update={"state_dir": Path(tmp), "gateway_url": f"http://127.0.0.1:{port}"})
        private.logs_dir.mkdir(parents=True)
        SERVICE.prepare(private)
        conf = private.run_dir("nginx") / "conf.d" / "lakelab.conf"
        text = re.sub(r"rate=\d+r/s", "rate=100000r/s", conf.read_text())
        conf.write_text(re.sub(r"burst=\d+", "burst=100000", text))
        process = subprocess.Popen(SERVICE.command(private), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    httpx.get(f"{private.gateway_url}/health", timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("the private gateway did not start")
                    time.sleep(0.1)
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
    def gateway():
        if args.gateway == "shared":
            yield settings.gateway_url
        else:
            with private_gateway(settings) as url:
                yield url

    with gateway() as gateway_url:
        targets = {"nginx": gateway_url, "direct": settings.api_url}
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
