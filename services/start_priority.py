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

BACKGROUND_NICE = 10  # the weight of a session at nice 10 is a tenth of one at 0


def session_nice(pid: int) -> int | None:
    """The nice value of the session (autogroup) of process `pid`, None when it has none or is gone."""
    try:
        return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


class StartPriority:
    """During one `lakelab up`: the services started while any of `favoured` is still starting
    run at BACKGROUND_NICE until all of `favoured` are ready (or the start ends, failed or not).

    Each write is tried at once; one the kernel refuses as too soon (an unprivileged user's,
    100 ms apart) is retried by a thread of its own, so every service is reached, a tenth of a
    second apart, and no service's start waits for it."""

    def __init__(self, favoured: Iterable[str]):
        self._starting = set(favoured)
        self._lowered: set[int] = set()
        self._refused: dict[int, int] = {}  # pid -> the nice value to set, refused as too soon
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._retrying = False

    def started(self, name: str, pid: int) -> None:
        with self._lock:
            if self._starting and name not in self._starting:
                self._set(pid, BACKGROUND_NICE)

    def ready(self, name: str) -> None:
        with self._lock:
            self._starting.discard(name)
            if not self._starting:
                self._restore()

    def end(self) -> None:
        """Give every lowered session its priority back, waiting for the refused writes' retries."""
        with self._lock:
            self._starting.clear()
            self._restore()
            self._settled.wait_for(lambda: not self._refused, timeout=2.0 + 0.2 * len(self._refused))

    def _set(self, pid: int, nice: int) -> None:
        self._refused.pop(pid, None)
        try:
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))
        except BlockingIOError:  # EAGAIN: within 100 ms of the system's last unprivileged write
            self._refused[pid] = nice
            if not self._retrying:
                self._retrying = True
                threading.Thread(target=self._retry_refused, name="start-priority", daemon=True).start()
            return
        except OSError:  # no autogroup, the process gone, not ours
            return
        if nice:
            self._lowered.add(pid)
        else:
            self._lowered.discard(pid)

    def _restore(self) -> None:
        for pid in [pid for pid, nice in self._refused.items() if nice]:
            del self._refused[pid]  # never lowered
        for pid in list(self._lowered):
            self._set(pid, 0)

    def _retry_refused(self) -> None:
        with self._lock:
            while self._refused:
                self._settled.wait(0.1)  # the lock is free meanwhile
                if self._refused:
                    self._set(*next(iter(self._refused.items())))
            self._retrying = False
            self._settled.notify_all()
