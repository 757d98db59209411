"""One stack per test session, shared by every integration test.

Every test is marked `unit` (needs no running service: `pytest -m unit` runs without the stack)
or `integration` (talks to the stack through the `stack` fixture); collection refuses a test
that is neither, or whose marker does not match its use of the stack.

Native mode: the fixture brings the stack up (reusing services that already run, e.g. after
`make demo`) and at the end stops only the services it started itself. Compose mode
(LAKELAB_MODE=compose): the same with the containers. A healthy stack (`lakelab up`, or
`make demo`, beforehand) is checked and used; otherwise the fixture starts the containers
(building the image if there is none), and removes them at the end if there were none before.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from lakelab.secrets import ensure_env_file
from lakelab.settings import Settings, get_settings
from services import compose, supervisor
from tests.clikit import LAKELAB


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


# Compose mode: when the suite began to use the containers (see pytest_sessionfinish)
CONTAINERS_USED_SINCE: list[float] = []


# When a failing suite ended: each service's health and the end of the unhealthy ones' logs
FAILED_STACK_REPORTS: list[str] = []


def stack_report(settings: Settings) -> str:
    """`lakelab status`, then the last lines of the log of each service not healthy: a failed run
    (CI's above all) says which service died and why, once its processes or containers are gone."""
    wide = {**os.environ, "COLUMNS": "160"}
    status = subprocess.run([*LAKELAB, "status"], capture_output=True, text=True, timeout=120, env=wide, check=False)
    if settings.mode == "compose":
        unhealthy = [c.service for c in compose.status_of(settings) if not c.healthy]
    else:
        unhealthy = [s.name for s in supervisor.status(settings) if not (s.healthy or s.not_started)]
    parts = [status.stdout + status.stderr]
    for name in unhealthy:
        log = subprocess.run([*LAKELAB, "logs", name, "-n", "40"], capture_output=True, text=True, timeout=60, env=wide,
                             check=False)
        parts.append(f"--- the last 40 lines of {name}'s log\n{log.stdout}{log.stderr}")
    return "\n".join(parts)


def keep_stack_report(request: pytest.FixtureRequest, settings: Settings) -> None:
    """Before the stack fixture stops what it started: the report, when a test failed."""
    if not request.session.testsfailed:
        return
    try:
        FAILED_STACK_REPORTS.append(stack_report(settings))
    except (OSError, subprocess.SubprocessError, compose.ComposeError) as exc:
        FAILED_STACK_REPORTS.append(f"no report of the stack: {exc}")


def pytest_terminal_summary(terminalreporter) -> None:
    for report in FAILED_STACK_REPORTS:
        terminalreporter.write_sep("=", "the stack as the failing suite left it")
        terminalreporter.write_line(report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Compose mode: the suite fails when the kernel killed a container for memory while it ran."""
    if CONTAINERS_USED_SINCE and (killed := compose.oom_kills(get_settings(), CONTAINERS_USED_SINCE[0])):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(f"killed for memory during the suite: {', '.join(killed)}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def stack(settings: Settings, request: pytest.FixtureRequest):
    if settings.mode == "compose":
        CONTAINERS_USED_SINCE.append(time.time())
        containers = {c.service: c for c in compose.status_of(settings)}
        if all(name in containers and containers[name].healthy for name in compose.default_services()):
            supervisor.apply_resources(settings)
        else:
            compose.up(settings)
        try:
            yield settings
        finally:
            keep_stack_report(request, settings)
            if not containers:  # the fixture made them
                compose.down(settings)
        return
    # `up` without names starts no optional service (JupyterLab): only those it starts are ours to stop
    already_running = {s.name for s in supervisor.SERVICES if supervisor.running_pid(settings, s.name)}
    started_here = [s.name for s in supervisor.SERVICES if s.name not in already_running and not s.optional]
    try:
        supervisor.up(settings)
        yield settings
    finally:
        keep_stack_report(request, settings)
        supervisor.down(settings, started_here)


@pytest.fixture
def unique() -> str:
    """A short unique suffix so reruns against the same stack never collide."""
    return uuid.uuid4().hex[:8]
