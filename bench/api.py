"""Query API latency side by side: the same SQL through Nginx + the API, straight to the API, and
with the Trino Python client directly (the standard way), for an uncached query at 1 and 8
concurrent clients and a cached one at 1; each client sends over the three paths in turn, so all
see the same machine.

Both of our paths are private processes started here from the project's own code and config on
free ports with the per-key rate limits raised (the stack's gateway and API allow 20 requests/s
per key, so they would measure their limiters; their defaults stay as they are): an API as
`lakelab up` runs it and, in front of it, an Nginx from nginx/lakelab.conf.template. The cached
query is the same URL every time (Nginx answers from its cache after the first); the uncached one
differs per request (a counter in an SQL comment), so every request goes to the API and Trino.
The Trino client runs both on Trino, as the API's own user, over one kept-alive connection per
client.

Goals: at most 3 ms added at p50 through Nginx over the client direct (uncached, 1 client);
cached p50 through Nginx under 2 ms at 1 client.
"""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.cli import Bench  # noqa: E402
from bench.percentiles import percentile  # noqa: E402
from bench.report import Load  # noqa: E402
from lakelab.settings import Settings  # noqa: E402
from services.api.service import SERVICE as API  # noqa: E402
from services.nginx.service import SERVICE as NGINX  # noqa: E402
from services.trino.client import get_client  # noqa: E402

CACHED_SQL = "SELECT count(*) AS n, sum(x) AS s FROM UNNEST(sequence(1, 100)) AS t(x)"
UNCACHED_SQL = "SELECT count(*) AS n, sum(x) AS s /* {i} */ FROM UNNEST(sequence(1, 100)) AS t(x)"
PATHS = ("nginx", "api", "trino")
LABELS = {"nginx": "Nginx + API", "api": "API direct", "trino": "Trino client direct"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/health", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private {what} did not start")
            time.sleep(0.1)


@contextmanager
def private_api(settings: Settings):
    """The project's API on a free loopback port with its per-key rate limit raised, stopped on exit."""
    url = f"http://127.0.0.1:{_free_port()}"
    env = {**settings.child_env(API.secrets), "LAKELAB_API_RATE_PER_S": "1000000", "LAKELAB_API_RATE_BURST": "1000000"}
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


class Client:
    """One client of one path: an HTTP connection to the API (or the gateway), or a Trino connection."""

    def __init__(self, settings: Settings, path: str, url: str | None, key: str) -> None:
        self.path = path
        if path == "trino":
            self.cursor = get_client(settings, user=settings.trino_api_user,
                                     password=settings.trino_api_password).cursor()
        else:
            self.http = httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60)

    def query(self, sql: str) -> None:
        if self.path == "trino":
            self.cursor.execute(sql)
            self.cursor.fetchall()
        else:
            response = self.http.get("/query", params={"query": sql})
            response.raise_for_status()


# (query, clients, paths, seconds): the cached query is answered by Nginx's cache, so only that
# path is timed, back to back; the Trino client has no cache (its figure is the uncached one's)
CELLS = (("uncached", 1, PATHS, 30.0), ("uncached", 8, PATHS, 20.0), ("cached", 1, ("nginx",), 10.0))


def run_cell(clients: list[dict[str, Client]], sql: str, paths: tuple[str, ...],
             seconds: float) -> dict[str, list[float]]:
    """Each client (its own thread, with a connection on every path) sends the query over each
    path in turn, the order rotating, until the time is up: both sides of each comparison see the
    same moments of the machine. The latencies in seconds, per path."""
    tag = uuid.uuid4().hex[:8]  # uncached SQL never repeats, across cells and runs
    latencies: dict[str, list[float]] = {path: [] for path in paths}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(number: int, client: dict[str, Client]) -> None:
        turn = number
        while time.monotonic() < deadline:
            for path in paths[turn % len(paths):] + paths[:turn % len(paths)]:
                began = time.perf_counter()
                client[path].query(sql.format(i=f"{tag}-{number}-{turn}-{path}"))
                elapsed = time.perf_counter() - began
                with lock:
                    latencies[path].append(elapsed)
            turn += 1

    threads = [threading.Thread(target=loop, args=(n, c)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def run(bench: Bench) -> None:
    settings = bench.settings
    key = settings.api_key_list[0]
    cells = [(query, n, paths, 1.0) for query, n, paths, _ in CELLS if n == 1] if bench.smoke else CELLS
    bench.step("starting a private API and gateway")
    with private_api(settings) as api_url, private_gateway(settings, api_url) as gateway_url:
        urls = {"nginx": gateway_url, "api": api_url, "trino": None}
        clients = [{path: Client(settings, path, urls[path], key) for path in PATHS}
                   for _ in range(max(n for _, n, _, _ in cells))]
        for paths in clients:  # warm-up: connections, and the gateway's cache
            for client in paths.values():
                client.query(CACHED_SQL)
                client.query(UNCACHED_SQL.format(i=f"warm-{uuid.uuid4().hex}"))
        latencies: dict[tuple[str, int], dict[str, list[float]]] = {}
        for query, n, paths, seconds in cells:
            bench.step(f"{query} query, {n} client(s): {', '.join(LABELS[p] for p in paths)}")
            latencies[(query, n)] = run_cell(clients[:n], CACHED_SQL if query == "cached" else UNCACHED_SQL,
                                             paths, seconds)
            if query == "uncached":
                _report_cell(bench, n, latencies[(query, n)])
    uncached, cached = latencies[("uncached", 1)], latencies[("cached", 1)]
    bench.figure("uncached, 1 client: ms added at p50 by Nginx + API over the Trino client",
                 _p50(uncached["nginx"]) - _p50(uncached["trino"]), "ms", at_most=3)
    bench.figure(f"cached, 1 client: p50 through Nginx ({len(cached['nginx'])} requests, p99 "
                 f"{percentile(cached['nginx'], 0.99) * 1000:.1f} ms)", _p50(cached["nginx"]), "ms", at_most=2)
    _plot(bench, latencies)


def _p50(values: list[float]) -> float:
    return percentile(values, 0.5) * 1000


def _report_cell(bench: Bench, clients: int, latencies: dict[str, list[float]]) -> None:
    for path in ("nginx", "api"):
        values = latencies[path]
        bench.figure(f"uncached, {clients} client(s): p50 {LABELS[path]} ({len(values)} requests, "
                     f"p99 {percentile(values, 0.99) * 1000:.1f} ms)", _p50(values), "ms",
                     standard=_p50(latencies["trino"]), standard_name=LABELS["trino"])


def _plot(bench: Bench, latencies: dict[tuple[str, int], dict[str, list[float]]]) -> None:
    figure, ax = plt.subplots(figsize=(8, 4.5))
    for (query, clients), by_path in latencies.items():
        for path, values in by_path.items():
            ordered = sorted(v * 1000 for v in values)
            ax.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))],
                    label=f"{LABELS[path]}, {query}, {clients} client(s)",
                    linestyle="-" if clients == 1 else "--")
    ax.set_xscale("log")
    ax.set_xlabel("latency, ms (log scale)")
    ax.set_ylabel("fraction of requests at or under")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    figure.suptitle(f"Query API latency distribution ({Load.now()})")
    bench.save_plot(figure, "latency")
