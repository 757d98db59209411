import os
import socket
import stat
import subprocess
import sys
import threading
import time

import psutil
import pytest

from lakelab.settings import ROOT, Settings
from services.base import Service
from services.supervisor import GRACE_S, LINGER_S, StackError, _spawn, _stop, running_pid

pytestmark = pytest.mark.unit


def test_port_already_taken_is_reported_with_its_owner(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        service = Service(name="demo", summary="", endpoint=lambda s: "", ports=lambda s: [port],
                          command=lambda s: ["true"], check=lambda s: None)
        with pytest.raises(StackError) as raised:
            _spawn(Settings(state_dir=tmp_path), service)
    assert f"port already taken: {port}" in str(raised.value)
    assert "demo" in str(raised.value)


def test_a_port_held_only_by_a_closing_socket_is_waited_for(tmp_path):
    """What a service stopped and started again at once meets: its port cannot be bound for a
    moment, though nothing listens on it any more."""
    holder = socket.socket()  # bound, never listening, and without SO_REUSEADDR: binds fail
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    threading.Timer(1.0, holder.close).start()
    service = Service(name="demo", summary="", endpoint=lambda s: "", ports=lambda s: [port],
                      command=lambda s: [sys.executable, "-c", f"import socket; socket.create_server(('127.0.0.1', {port}))"],
                      check=lambda s: None)
    began = time.monotonic()
    pid = _spawn(Settings(state_dir=tmp_path), service)
    assert 0.9 < time.monotonic() - began < LINGER_S
    assert psutil.Process(pid).wait(10) == 0  # it could bind the port


def test_a_port_held_past_the_wait_is_reported(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        service = Service(name="demo", summary="", endpoint=lambda s: "", ports=lambda s: [port],
                          command=lambda s: ["true"], check=lambda s: None)
        began = time.monotonic()
        with pytest.raises(StackError) as raised:
            _spawn(Settings(state_dir=tmp_path), service)
    assert time.monotonic() - began >= LINGER_S
    assert f"port already taken: {port} by no listener" in str(raised.value)


def test_the_state_folder_is_private_though_a_service_makes_its_data_folder_first(tmp_path):
    """Services start in parallel; CI saw the state folder 0755 when SeaweedFS's data folder,
    made with `mkdir(parents=True)` in its prepare step, was the first thing in it."""
    settings = Settings(state_dir=tmp_path / "state")
    service = Service(name="demo", summary="", endpoint=lambda s: "", ports=lambda s: [],
                      command=lambda s: ["true"], check=lambda s: None,
                      prepare=lambda s: s.data_dir("demo").mkdir(parents=True))
    umask = os.umask(0o022)
    try:
        _spawn(settings, service)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700
    assert settings.data_dir("demo").is_dir()


SLOW_TO_STOP = """
import signal, sys, time
name, log = sys.argv[1], sys.argv[2]
def note(what):
    with open(log, "a") as f:
        f.write(f"{name} {what} {time.time()}\\n")
def on_term(*_):
    note("term")
    time.sleep(2)
    note("exit")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
note("up")
while True:
    time.sleep(0.1)
"""


def test_down_stops_a_service_after_what_depends_on_it_and_the_others_at_once(tmp_path):
    settings = Settings(state_dir=tmp_path / "state")
    log = tmp_path / "events"

    def service(name: str, depends_on: tuple[str, ...] = ()) -> Service:
        return Service(name=name, summary="", endpoint=lambda s: "", ports=lambda s: [], check=lambda s: None,
                       command=lambda s: [sys.executable, "-c", SLOW_TO_STOP, name, str(log)], depends_on=depends_on)

    services = [service("database"), service("server", ("database",)), service("other")]
    for each in services:
        _spawn(settings, each)
    deadline = time.monotonic() + 30
    while (started := log.read_text().count(" up ") if log.exists() else 0) < 3:
        assert time.monotonic() < deadline, f"only {started} of the 3 processes started within 30 s"
        time.sleep(0.05)

    stopped = _stop(settings, services)

    events = {tuple(line.split()[:2]): float(line.split()[2]) for line in log.read_text().splitlines()}
    assert sorted(stopped) == ["database", "other", "server"]
    assert stopped.index("server") < stopped.index("database")
    assert events["database", "term"] >= events["server", "exit"]   # after what depends on it
    assert events["other", "term"] < events["server", "exit"]       # not after the others
    assert events["server", "term"] < events["other", "exit"]
    assert all(running_pid(settings, s.name) is None for s in services)


def test_down_stops_a_service_whose_child_just_exited(tmp_path):
    """A child that has exited but is not reaped yet (a zombie), as PostgreSQL's backends are for
    a moment when their clients leave: `down` said "stopped" and left the service running, so the
    next `up` found its port taken."""
    settings = Settings(state_dir=tmp_path / "state")
    service = Service(name="parent", summary="", endpoint=lambda s: "", ports=lambda s: [], check=lambda s: None,
                      command=lambda s: ["sh", "-c", "sleep 0 & exec sleep 60"])  # the shell's child is never reaped
    pid = _spawn(settings, service)
    deadline = time.monotonic() + 30
    while not any(child.status() == psutil.STATUS_ZOMBIE for child in psutil.Process(pid).children()):
        assert time.monotonic() < deadline, "the child did not become a zombie"
        time.sleep(0.05)

    assert _stop(settings, [service]) == ["parent"]

    assert running_pid(settings, "parent") is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_down_returns_once_a_service_started_by_another_process_has_exited(tmp_path):
    """`lakelab down kafka` while the process that started Kafka lives on (a test session, a
    notebook): Kafka exits at once, but its parent does not reap it, and `down` waited the whole
    grace period (30 s; 120 s while a JVM writes its class archive) for that zombie."""
    starter = subprocess.Popen([sys.executable, "-c", f"""
import time
from lakelab.settings import Settings
from services.base import Service
from services.supervisor import _spawn
settings = Settings(state_dir={str(tmp_path / "state")!r})
service = Service(name="exits", summary="", endpoint=lambda s: "", ports=lambda s: [], check=lambda s: None,
                  command=lambda s: ["sleep", "600"])
print(_spawn(settings, service), flush=True)
time.sleep(600)  # alive, and never reaps its child
"""], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        pid = int(starter.stdout.readline())
        settings = Settings(state_dir=tmp_path / "state")
        service = Service(name="exits", summary="", endpoint=lambda s: "", ports=lambda s: [], check=lambda s: None,
                          command=lambda s: [])
        began = time.monotonic()
        assert _stop(settings, [service]) == ["exits"]
        seconds = time.monotonic() - began

        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # exited; its parent has not reaped it
        assert seconds < GRACE_S / 3, f"down took {seconds:.1f} s for a service that exited on SIGTERM"
        assert running_pid(settings, "exits") is None
    finally:
        starter.kill()
        starter.wait()
