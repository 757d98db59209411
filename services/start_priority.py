"""While the service that starts slowest starts (Trino: 8 CPU-seconds on 2 cores), the services
started beside it get a lower share of the CPU, so the whole stack is ready sooner; their share is
given back once it is ready.

Each service runs in a session of its own (the supervisor starts it with `start_new_session`), and
Linux's autogroup scheduler shares the CPU between sessions by the session's nice value
(`/proc/<pid>/autogroup`), not by its threads' own. Any user may set that value between 0 and 19 on
their own processes and set it back, where a thread's own nice cannot be lowered again without
privileges; an unprivileged user's writes must be 100 ms apart (EAGAIN otherwise). Where the kernel
does not group by session (autogroup off, or the processes in a CPU cgroup of their own, as in a
container), the writes change nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

BACKGROUND_NICE = 10  # the weight of a session at nice 10 is a tenth of one at 0


def session_nice(pid: int) -> int | None:
    """The nice value of the session (autogroup) of process `pid`, None when it has none or is gone."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def set_session_nice(pid: int, nice: int, wait_s: float = 0.0) -> bool:
    """Set the session's nice value; False when it could not be (no autogroup, the process gone,
    not ours). An unprivileged write refused as too soon after another is retried for `wait_s`."""
    def write() -> bool:
        try:
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))
        except BlockingIOError:  # EAGAIN: within 100 ms of the system's last unprivileged write
            raise
        except OSError:
            return False
        return True

    return Retrying(stop=stop_after_delay(wait_s), wait=wait_fixed(0.1),
                    retry=retry_if_exception_type(BlockingIOError),
                    retry_error_callback=lambda state: False)(write)


class StartPriority:
    """During one `lakelab up`: the services started while any of `favoured` is still starting
    run at BACKGROUND_NICE until all of `favoured` are ready (or the start ends, failed or not)."""

    def __init__(self, favoured: Iterable[str]):
        self._starting = set(favoured)
        self._lowered: list[int] = []
        self._lock = threading.Lock()

    def started(self, name: str, pid: int) -> None:
        with self._lock:
            # one attempt: a refused write leaves the service at its normal priority
            if self._starting and name not in self._starting and set_session_nice(pid, BACKGROUND_NICE):
                self._lowered.append(pid)

    def ready(self, name: str) -> None:
        with self._lock:
            self._starting.discard(name)
            if not self._starting:
                self._restore()

    def end(self) -> None:
        with self._lock:
            self._starting.clear()
            self._restore()

    def _restore(self) -> None:
        for pid in self._lowered:
            set_session_nice(pid, 0, wait_s=2.0)
        self._lowered.clear()
