"""Startup: install time, a cold start (fresh data), then warm starts (existing data) of the whole
stack side by side with the warm start of its slowest service alone (its dependencies running),
in turns; the stack's RSS once idle.

Needs the ports free (the stack down: `lakelab bench` says so otherwise). Uses a throw-away state
folder, so your lake's data is untouched; downloads come from the usual cache. Goal: the whole
stack's warm start at most 1.3x its slowest service's own.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.cli import Bench
from services import supervisor


def run(bench: Bench) -> None:
    rounds, idle_s = (1, 2.0) if bench.smoke else (2, 20.0)
    with tempfile.TemporaryDirectory(prefix="lakelab-bench-") as state:
        settings = bench.settings.model_copy(update={"state_dir": Path(state)})
        bench.step("install step (cached downloads)")
        began = time.monotonic()
        supervisor.install(settings)
        bench.figure("install step, downloads cached", time.monotonic() - began, "s")
        try:
            bench.step("cold start: fresh data")
            cold, cold_total = _timed_up(settings, None)
            bench.figure("cold start of the whole stack", cold_total, "s")
            bench.note("cold start per service, spawn to ready: " + ", ".join(f"{n} {s:.1f} s" for n, s in cold.items()))
            bench.step("finding the slowest service's own warm start")
            alone = {}
            for service in supervisor.SERVICES:  # each alone, everything else running
                if service.optional:  # not part of a plain `lakelab up`
                    continue
                supervisor.down(settings, [service.name])
                alone[service.name] = _timed_up(settings, [service.name])[1]
            slowest = max(alone, key=alone.get)
            bench.note("warm start of each service alone (the others running): "
                       + ", ".join(f"{n} {s:.1f} s" for n, s in alone.items()))
            whole, single = [], [alone[slowest]]
            for round_number in range(rounds):
                for what in ("stack", slowest) if round_number % 2 == 0 else (slowest, "stack"):
                    bench.step(f"warm start round {round_number + 1}/{rounds}: {what}")
                    supervisor.down(settings, None if what == "stack" else [what])
                    timings, total = _timed_up(settings, None if what == "stack" else [what])
                    (whole if what == "stack" else single).append(total)
                    if what == "stack":
                        bench.note(f"warm start round {round_number + 1}, spawn to ready: "
                                   + ", ".join(f"{n} {s:.1f} s" for n, s in timings.items()))
            bench.figure(f"warm start, median of {rounds}: whole stack against {slowest} alone",
                         statistics.median(whole), "s", standard=statistics.median(single),
                         standard_name=f"{slowest} alone", at_most=1.3)
            bench.step(f"idle for {idle_s:g} s")
            time.sleep(idle_s)
            idle = {s.name: s.rss_bytes for s in supervisor.status(settings) if not s.not_started}
            bench.figure("idle RSS of the whole stack", sum(idle.values()) / 2**20, "MiB")
            bench.note("idle RSS: " + ", ".join(f"{n} {b / 2**20:.0f} MiB" for n, b in idle.items()))
        finally:
            supervisor.reset(settings)


def _timed_up(settings, names: list[str] | None) -> tuple[dict[str, float], float]:
    began = time.monotonic()
    per_service = supervisor.up(settings, names)
    return per_service, time.monotonic() - began
