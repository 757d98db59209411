"""Helpers of the query API tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from lakelab.settings import ROOT, Settings
from services.api.service import SERVICE as API
from services.trino.client import query

ROWS = 25  # rows of the test table; pages of 10 make 3 pages
LOCATIONS = ["london", "paris", "warsaw"]


class GatewayClient(httpx.Client):
    """An httpx client that waits and retries when the gateway answers 429: the gateway's rate
    limit is per client address and key, and other suites may share both."""

    def send(self, request: httpx.Request, **kwargs) -> httpx.Response:  # type: ignore[override]
        for _ in range(10):
            response = super().send(request, **kwargs)
            if response.status_code != 429 or request.headers.get("X-No-Retry"):
                return response
            response.close()
            time.sleep(float(response.headers.get("Retry-After", "1")))
        return response


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s: {log.read_text()[-2000:]}")


@contextmanager
def private_api(tmp: Path, **overrides: str) -> Iterator[str]:
    """The API under uvicorn on a free port with LAKELAB_* overrides; stopped on exit."""
    port = free_port()
    env = {**os.environ, **{f"LAKELAB_{k.upper()}": v for k, v in overrides.items()}}
    log = tmp / f"api-{port}.log"
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        process = subprocess.Popen(API.command(Settings(api_url=url)), cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        _wait(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def private_gateway(tmp: Path, api_url: str) -> Iterator[str]:
    """The project's Nginx config (rendered as `lakelab up` does) in front of `api_url`."""
    from services.nginx.service import SERVICE

    port = free_port()
    settings = Settings(state_dir=tmp / "state", gateway_url=f"http://127.0.0.1:{port}", api_url=api_url)
    SERVICE.install(settings)  # Debian's nginx, also where the stack's own runs in a container
    SERVICE.prepare(settings)
    process = subprocess.Popen(SERVICE.command(settings), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = settings.gateway_url
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/dashboard/", timeout=2)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private nginx did not start: {(settings.logs_dir / 'nginx-error.log').read_text()}")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def trino_query_state(settings: Settings, marker: str, timeout: float = 15) -> tuple[str, str | None]:
    """State and error code of the newest Trino query whose text contains `marker`, once it ended."""
    deadline = time.monotonic() + timeout
    state: tuple[str, str | None] = ("UNKNOWN", None)
    while time.monotonic() < deadline:
        rows = query(settings, "SELECT state, error_code FROM system.runtime.queries "
                               f"WHERE query LIKE '%{marker}%' AND query NOT LIKE '%system.runtime.queries%' "
                               "ORDER BY created DESC LIMIT 1")
        if rows:
            state = (rows[0][0], rows[0][1])
            if state[0] in ("FINISHED", "FAILED"):
                return state
        time.sleep(0.3)
    return state


def kill_queries(settings: Settings, marker: str) -> None:
    """Safety net: kill anything still running with `marker` in its text."""
    for (query_id,) in query(settings, "SELECT query_id FROM system.runtime.queries WHERE state NOT IN "
                                       f"('FINISHED', 'FAILED') AND query LIKE '%{marker}%' "
                                       "AND query NOT LIKE '%system.runtime.queries%'"):
        query(settings, f"CALL system.runtime.kill_query(query_id => '{query_id}', message => 'test cleanup')")


def slow_sql(marker: str) -> str:
    """A CPU-bound query that runs far longer than any test waits (about 10^9 rows)."""
    return (f"SELECT count(*) AS n /* {marker} */ FROM UNNEST(sequence(1, 10000)) a(x) "
            "CROSS JOIN UNNEST(sequence(1, 10000)) b(y) CROSS JOIN UNNEST(sequence(1, 10)) c(z) WHERE x + y + z < 0")
