"""One stack per test session, shared by every integration test.

Every test is marked `unit` (needs no running service: `pytest -m unit` runs without the stack)
or `integration` (talks to the stack through the `stack` fixture); collection refuses a test
that is neither, or whose marker does not match its use of the stack.

Native mode: the fixture brings the stack up (reusing services that already run, e.g. after
`make demo`) and at the end stops only the services it started itself. Compose mode
(LAKELAB_MODE=compose): the stack is brought up by `docker compose up --wait` beforehand and
the fixture only checks it is healthy.
"""

from __future__ import annotations

import uuid

import pytest

from lakelab.secrets import ensure_env_file
from lakelab.settings import Settings, get_settings
from services import supervisor


def pytest_configure(config: pytest.Config) -> None:
    ensure_env_file()  # on a fresh clone, the stack's random credentials, as `lakelab up` makes them


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    wrong = []
    for item in items:
        uses_stack = "stack" in getattr(item, "fixturenames", ())
        unit, integration = item.get_closest_marker("unit"), item.get_closest_marker("integration")
        if bool(unit) == bool(integration) or bool(integration) != uses_stack:
            wrong.append(f"{item.nodeid}: {'uses' if uses_stack else 'does not use'} the stack, marked "
                         f"{'unit and integration' if unit and integration else 'unit' if unit else 'integration' if integration else 'neither'}")
    if wrong:
        raise pytest.UsageError("mark each test `unit` (no stack) or `integration` (uses the `stack` fixture):\n  "
                                + "\n  ".join(wrong))


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
    # `up` without names starts no optional service (JupyterLab): only those it starts are ours to stop
    already_running = {s.name for s in supervisor.SERVICES if supervisor.running_pid(settings, s.name)}
    started_here = [s.name for s in supervisor.SERVICES if s.name not in already_running and not s.optional]
    try:
        supervisor.up(settings)
        yield settings
    finally:
        supervisor.down(settings, started_here)


@pytest.fixture
def unique() -> str:
    """A short unique suffix so reruns against the same stack never collide."""
    return uuid.uuid4().hex[:8]
