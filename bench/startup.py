"""Startup benchmark. Native mode: install time, cold start (fresh data) and warm start (existing
data) per service and in total, and the whole stack's RSS once idle. Compose mode: the image's
build time without and with Docker's build cache (the download cache warm either way), `up --wait`
on fresh and on existing volumes, and each container's memory once idle; the load average (1, 5,
15 min) beside each figure, as the machine's other work moves them.

Needs the ports free: run `lakelab down` first. Uses a throw-away state folder (and in compose mode
its own compose project, so volumes too), so your lake's data is untouched; downloads come from
the usual cache.

    .venv/bin/python bench/startup.py [--mode native|compose] [--idle-seconds 30]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lakelab.settings import Settings, get_settings
from services import compose, supervisor

console = Console()


def main(
    mode: str = typer.Option(None, help="native (processes) or compose (containers); default: LAKELAB_MODE"),
    idle_seconds: float = typer.Option(30.0, help="wait before measuring idle memory"),
) -> None:
    mode = mode or get_settings().mode
    if mode not in ("native", "compose"):
        raise typer.BadParameter(f"--mode is native or compose, not {mode!r}")
    if mode == "compose":
        _compose(get_settings(), idle_seconds)
    else:
        _native(idle_seconds)


def _native(idle_seconds: float) -> None:
    base = get_settings()
    running = [s.name for s in supervisor.SERVICES if supervisor.running_pid(base, s.name)]
    if running:
        raise typer.BadParameter(f"stop the running stack first (`lakelab down`): {', '.join(running)}")
    with tempfile.TemporaryDirectory(prefix="lakelab-bench-") as state:
        settings = base.model_copy(update={"state_dir": Path(state)})
        began = time.monotonic()
        supervisor.install(settings)
        install_s = time.monotonic() - began
        try:
            cold, cold_total = _timed_up(settings)
            supervisor.down(settings)
            warm, warm_total = _timed_up(settings)
            time.sleep(idle_seconds)
            idle = {s.name: s.rss_bytes for s in supervisor.status(settings)}
        finally:
            supervisor.reset(settings)

    table = Table("service", "cold start s", "warm start s", "idle RSS MiB", title="lakelab startup (native)")
    for service in supervisor.SERVICES:
        name = service.name
        table.add_row(name, f"{cold[name]:.1f}", f"{warm[name]:.1f}", f"{idle[name] / 2**20:.0f}")
    table.add_row("[bold]total (wall)", f"{cold_total:.1f}", f"{warm_total:.1f}", f"{sum(idle.values()) / 2**20:.0f}")
    console.print(table)
    console.print(f"install step (cache {'warm' if install_s < 60 else 'cold'}): {install_s:.1f} s; "
                  f"per-service seconds run from spawn to ready, services of one wave start together")


def _timed_up(settings) -> tuple[dict[str, float], float]:
    began = time.monotonic()
    per_service = supervisor.up(settings)
    return per_service, time.monotonic() - began


def _load() -> str:
    return "load " + " ".join(f"{value:.1f}" for value in os.getloadavg())


def _compose(base: Settings, idle_seconds: float) -> None:
    if running := [c.service for c in compose.status_of(base) if c.state == "running"]:
        raise typer.BadParameter(f"stop the running containers first (`lakelab down`): {', '.join(running)}")
    figures: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="lakelab-bench-") as state:
        settings = base.model_copy(update={"state_dir": Path(state), "compose_project": "lakelab-bench"})
        figures.append(("image build, no build cache", compose.build(settings, no_cache=True), _load()))
        figures.append(("image build, build cache", compose.build(settings), _load()))
        try:
            figures.append(("up --wait, fresh volumes", compose.up(settings), _load()))
            compose.down(settings)
            figures.append(("up --wait, existing volumes", compose.up(settings), _load()))
            time.sleep(idle_seconds)
            idle, idle_load = compose.status_of(settings), _load()
        finally:
            compose.reset(settings)

    table = Table("figure", "seconds", "load average", title="lakelab startup (compose)")
    for name, seconds, load in figures:
        table.add_row(name, f"{seconds:.0f}", load)
    console.print(table)
    memory = Table("container", "idle memory MiB", "limit MiB", title=f"after {idle_seconds:.0f} s idle ({idle_load})")
    for container in idle:
        memory.add_row(container.service, f"{container.memory_bytes / 2**20:.0f}",
                       f"{container.memory_limit_bytes / 2**20:.0f}")
    memory.add_row("[bold]total", f"{sum(c.memory_bytes for c in idle) / 2**20:.0f}",
                   f"{sum(c.memory_limit_bytes for c in idle) / 2**20:.0f}")
    console.print(memory)
    image = compose.image_size(settings.compose_image)
    console.print(f"image {settings.compose_image}: {image / 1e9:.2f} GB; the build's download cache seed "
                  f"{compose.SEED_IMAGE}: {compose.image_size(compose.SEED_IMAGE) / 1e9:.2f} GB")


if __name__ == "__main__":
    typer.run(main)
