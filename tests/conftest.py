"""One stack per test session, shared by every integration test.

Native mode: the fixture brings the stack up (reusing services that already run, e.g. after
`make demo`) and at the end stops only the services it started itself. Compose mode
(LAKELAB_MODE=compose): the stack is brought up by `docker compose up --wait` beforehand and
the fixture only checks it is healthy.
"""

from __future__ import annotations

import uuid

import pytest

from lakelab import supervisor
from lakelab.settings import Settings, get_settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings):
    if settings.mode == "compose":
        unhealthy = [s.name for s in supervisor.status(settings) if not s.healthy]
        assert not unhealthy, f"compose stack not healthy: {unhealthy}"
        supervisor.apply_resources(settings)
        yield settings
        return
    already_running = {s.name for s in supervisor.SERVICES if supervisor.running_pid(settings, s.name)}
    started_here = [s.name for s in supervisor.SERVICES if s.name not in already_running]
    try:
        supervisor.up(settings)
        yield settings
    finally:
        supervisor.down(settings, started_here)


@pytest.fixture
def unique() -> str:
    """A short unique suffix so reruns against the same stack never collide."""
    return uuid.uuid4().hex[:8]
