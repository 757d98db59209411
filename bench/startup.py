"""Startup: install time, a cold start (fresh data), then warm starts (existing data) of the whole
stack side by side with the warm start of its slowest service alone (its dependencies running),
in turns; the stack's RSS once idle.

Needs the ports free (the stack down: `lakelab bench` says so otherwise). Uses a throw-away state
folder, so your lake's data is untouched; downloads come from the usual cache. Goal: the whole
stack's warm start at most 1.3x its slowest service's own.

In compose mode (`LAKELAB_MODE=compose lakelab bench startup`, the containers down): the image's build
time without and with Docker's build cache (the download cache warm either way), `up --wait` on
fresh and on existing volumes, and each container's memory once idle, in a compose project of its
own (its own volumes).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.cli import Bench
from services import compose, supervisor


def run(bench: Bench) -> None:
    rounds, idle_s = (1, 2.0) if bench.smoke else (2, 20.0)
    if bench.settings.mode == "compose":
        _compose(bench, idle_s)
        return
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


def _compose(bench: Bench, idle_s: float) -> None:
    settings = bench.settings.model_copy(update={"compose_project": f"{bench.settings.compose_project}-bench"})
    with tempfile.TemporaryDirectory(prefix="lakelab-bench-") as state:
        settings = settings.model_copy(update={"state_dir": Path(state)})
        if not bench.smoke:
            bench.step("image build without Docker's build cache")
            bench.figure("image build, no build cache (downloads cached)", compose.build(settings, no_cache=True), "s")
        bench.step("image build with Docker's build cache")
        bench.figure("image build, build cache", compose.build(settings), "s")
        try:
            bench.step("up --wait on fresh volumes")
            bench.figure("up --wait, fresh volumes", compose.up(settings), "s")
            compose.down(settings)
            bench.step("up --wait on existing volumes")
            bench.figure("up --wait, existing volumes", compose.up(settings), "s")
            bench.step(f"idle for {idle_s:g} s")
            time.sleep(idle_s)
            idle = compose.status_of(settings)
            bench.figure("idle memory of the containers", sum(c.memory_bytes for c in idle) / 2**20, "MiB")
            bench.note("idle memory / limit: " + ", ".join(
                f"{c.service} {c.memory_bytes / 2**20:.0f} / {c.memory_limit_bytes / 2**20:.0f} MiB" for c in idle))
        finally:
            compose.reset(settings)
    bench.note(f"image {settings.compose_image}: {compose.image_size(settings.compose_image) / 1e9:.2f} GB; "
               f"the build's download-cache seed {compose.SEED_IMAGE}: {compose.image_size(compose.SEED_IMAGE) / 1e9:.2f} GB")
