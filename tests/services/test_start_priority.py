import os
import subprocess
import time
from pathlib import Path

import pytest

from lakelab.settings import Settings
from services import supervisor
from services.start_priority import BACKGROUND_NICE, StartPriority, session_nice
from tests.userkit import run_as_nobody

autogroups = pytest.mark.skipif(not Path("/proc/self/autogroup").exists(),
                                reason="a kernel without autogroup scheduling: there is no session priority to set")


@pytest.fixture
def sessions():
    """Processes in sessions of their own, as the supervisor starts services."""
    started = []

    def start() -> int:
        process = subprocess.Popen(["sleep", "60"], start_new_session=True)
        started.append(process)
        return process.pid

    yield start
    for process in started:
        process.kill()
        process.wait()


def eventually(read, expected, timeout_s: float = 2.0):
    """What `read` gives once it gives `expected`, or at the timeout: root's writes are made at
    once, an unprivileged user's refused as too soon are retried a tenth of a second later."""
    deadline = time.monotonic() + timeout_s
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def settle() -> None:
    time.sleep(0.3)  # longer than a refused write waits for its retry


@pytest.mark.unit
@autogroups
def test_services_started_beside_the_favoured_one_get_less_cpu_until_it_is_ready(sessions):
    trino, kafka, metastore = sessions(), sessions(), sessions()
    priority = StartPriority(["trino"])
    priority.started("trino", trino)
    priority.started("kafka", kafka)
    priority.started("metastore", metastore)
    lowered = (0, BACKGROUND_NICE, BACKGROUND_NICE)
    assert eventually(lambda: (session_nice(trino), session_nice(kafka), session_nice(metastore)), lowered) == lowered
    priority.ready("kafka")
    settle()
    assert session_nice(kafka) == BACKGROUND_NICE
    priority.ready("trino")
    assert eventually(lambda: (session_nice(kafka), session_nice(metastore)), (0, 0)) == (0, 0)
    nginx = sessions()
    priority.started("nginx", nginx)  # after the favoured one is ready: normal priority
    settle()
    assert session_nice(nginx) == 0


@pytest.mark.unit
@autogroups
def test_a_start_that_ends_without_the_favoured_one_ready_gives_the_priority_back(sessions):
    kafka = sessions()
    priority = StartPriority(["trino"])
    priority.started("kafka", kafka)
    assert eventually(lambda: session_nice(kafka), BACKGROUND_NICE) == BACKGROUND_NICE
    priority.end()  # what `up` does when a service failed to start, or on Ctrl-C; waits for its writes
    assert session_nice(kafka) == 0


@pytest.mark.unit
@autogroups
def test_nothing_is_lowered_when_no_favoured_service_starts(sessions):
    kafka = sessions()
    priority = StartPriority([])  # Trino already running
    priority.started("kafka", kafka)
    settle()
    assert session_nice(kafka) == 0


@pytest.mark.unit
@autogroups
@pytest.mark.skipif(os.geteuid() != 0, reason="runs its check as `nobody`: switching user needs root")
def test_an_unprivileged_user_lowers_every_service_and_gets_the_priority_back():
    """The kernel lets any user set their sessions' nice value back to 0, but refuses writes closer
    than 100 ms to the last one (EAGAIN): what a user's `lakelab up` meets when its services start
    at once."""
    answer = run_as_nobody("""
        import subprocess, time
        from services.start_priority import StartPriority, session_nice

        def sessions(count):
            return [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(count)]

        def nice(children):
            return [session_nice(child.pid) for child in children]

        children = sessions(6)
        priority = StartPriority(["trino"])
        began = time.monotonic()
        for index, child in enumerate(children):
            priority.started(f"service{index}", child.pid)
        calls = time.monotonic() - began
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(n != 10 for n in nice(children)):
            time.sleep(0.05)
        lowered = nice(children)
        priority.ready("trino")
        priority.end()
        restored = nice(children)

        # the start ends while most lowerings still wait their turn: none of them happens later
        early = sessions(6)
        priority = StartPriority(["trino"])
        for index, child in enumerate(early):
            priority.started(f"service{index}", child.pid)
        priority.end()
        time.sleep(1)
        print(f"{calls:.3f}", *lowered, *restored, *nice(early))
        for child in children + early:
            child.kill()
    """)
    assert answer.returncode == 0, answer.stderr
    calls, *nice = answer.stdout.split()
    assert float(calls) < 0.25  # six starts do not wait out five refusals of 100 ms each
    lowered, restored, ended_early = (list(map(int, nice[i:i + 6])) for i in (0, 6, 12))
    assert lowered == [BACKGROUND_NICE] * 6
    assert restored == [0] * 6
    assert ended_early == [0] * 6


@pytest.mark.integration
@autogroups
@pytest.mark.skipif(Settings().mode == "compose", reason="native mode's sessions; containers have CPU cgroups of their own")
def test_after_up_every_service_runs_at_normal_priority(stack):
    running = {s.name: s.pid for s in supervisor.status(stack) if s.pid}
    assert "trino" in running
    assert {name: session_nice(pid) for name, pid in running.items()} == dict.fromkeys(running, 0)
