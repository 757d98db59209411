import subprocess
import sysconfig
import textwrap
from pathlib import Path

import pytest

from lakelab.settings import ROOT, Settings
from services import supervisor
from services.start_priority import BACKGROUND_NICE, StartPriority, session_nice

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


@pytest.mark.unit
@autogroups
def test_services_started_beside_the_favoured_one_get_less_cpu_until_it_is_ready(sessions):
    trino, kafka, metastore = sessions(), sessions(), sessions()
    priority = StartPriority(["trino"])
    priority.started("trino", trino)
    priority.started("kafka", kafka)
    priority.started("metastore", metastore)
    assert (session_nice(trino), session_nice(kafka), session_nice(metastore)) == (0, BACKGROUND_NICE, BACKGROUND_NICE)
    priority.ready("kafka")
    assert session_nice(kafka) == BACKGROUND_NICE
    priority.ready("trino")
    assert (session_nice(kafka), session_nice(metastore)) == (0, 0)
    nginx = sessions()
    priority.started("nginx", nginx)  # after the favoured one is ready: normal priority
    assert session_nice(nginx) == 0


@pytest.mark.unit
@autogroups
def test_a_start_that_ends_without_the_favoured_one_ready_gives_the_priority_back(sessions):
    kafka = sessions()
    priority = StartPriority(["trino"])
    priority.started("kafka", kafka)
    assert session_nice(kafka) == BACKGROUND_NICE
    priority.end()  # what `up` does when a service failed to start, or on Ctrl-C
    assert session_nice(kafka) == 0


@pytest.mark.unit
@autogroups
def test_nothing_is_lowered_when_no_favoured_service_starts(sessions):
    kafka = sessions()
    priority = StartPriority([])  # Trino already running
    priority.started("kafka", kafka)
    assert session_nice(kafka) == 0


@pytest.mark.unit
@autogroups
def test_an_unprivileged_user_gets_the_priority_back():
    """The kernel lets any user set their sessions' nice value back to 0, but refuses writes closer
    than 100 ms to the last one (EAGAIN): what a user's `lakelab up` meets."""
    script = textwrap.dedent(f"""
        import subprocess, sys, time
        sys.path[:0] = [{str(ROOT)!r}, {sysconfig.get_paths()["purelib"]!r}]
        from services.start_priority import StartPriority, session_nice
        children = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(4)]
        priority = StartPriority(["trino"])
        time.sleep(0.2)  # the 100 ms since the last write (the other tests', root's, count too)
        for index, child in enumerate(children):
            priority.started(f"service{{index}}", child.pid)
        lowered = sum(session_nice(child.pid) != 0 for child in children)
        priority.ready("trino")
        print(lowered, *[session_nice(child.pid) for child in children])
        for child in children:
            child.kill()
    """)
    # the system's Python: the checkout's venv links to an interpreter only its owner may run
    answer = subprocess.run(["/usr/bin/python3", "-c", script], user="nobody", cwd="/",
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    lowered, *nice = map(int, answer.stdout.split())
    assert lowered >= 1
    assert nice == [0, 0, 0, 0]


@pytest.mark.integration
@autogroups
@pytest.mark.skipif(Settings().mode == "compose", reason="native mode's sessions; containers have CPU cgroups of their own")
def test_after_up_every_service_runs_at_normal_priority(stack):
    running = {s.name: s.pid for s in supervisor.status(stack) if s.pid}
    assert "trino" in running
    assert {name: session_nice(pid) for name, pid in running.items()} == dict.fromkeys(running, 0)
