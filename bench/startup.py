"""Startup benchmark: install time, cold start (fresh data) and warm start (existing data) per
service and in total, and the whole stack's RSS once idle.

Needs the ports free: run `lakelab down` first. Uses a throw-away state folder, so your lake's
data is untouched; downloads come from the usual cache (install time is reported separately).

    .venv/bin/python bench/startup.py [--idle-seconds 30]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lakelab.settings import get_settings
from services import supervisor

console = Console()


def main(idle_seconds: float = typer.Option(30.0, help="wait before measuring idle RSS")) -> None:
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


if __name__ == "__main__":
    typer.run(main)
