"""Lab A's generator: IoT sensor records from the KDG templates iot_4, iot_2 and iot_10, into the
lab's topic, keyed by device id.

    lakelab lab-a generate --profile iot_4 --rate 200 --count 1000
    lakelab lab-a generate --profile iot_10 --rate 50 --duration 60 --batch 100
    kill -USR1 <pid>          # switch to the next profile of --cycle (template re-read from disk)
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from lakelab.console import err_console, fail
from lakelab.resources import resources
from lakelab.settings import get_settings
from producers.kdg import Generator, device_pool
from producers.templates import TEMPLATES_DIR, TemplateError

DEFAULT_CYCLE = ("iot_4", "iot_2", "iot_10")
LAB = resources().labs.lab_a


def generate(
    profile: Annotated[str, typer.Option(help="template name in producers/templates, or a path")] = "iot_4",
    rate: Annotated[float, typer.Option(help="records per second (0 = as fast as possible)")] = 10.0,
    count: Annotated[Optional[int], typer.Option(help="stop after this many records")] = None,
    duration: Annotated[Optional[float], typer.Option(help="stop after this many seconds")] = None,
    batch: Annotated[int, typer.Option(help="1 = put_record (one at a time); N = put_records of N")] = 1,
    topic: Annotated[str, typer.Option(help="Kafka topic")] = LAB.topic,
    devices: Annotated[int, typer.Option(help="size of the device pool")] = 50,
    first_device: Annotated[int, typer.Option(help="number of the first device (sensor-0001)")] = 1,
    device_order: Annotated[str, typer.Option(help="random, or cycle (every device in turn)")] = "random",
    cycle: Annotated[str, typer.Option(help="profiles SIGUSR1 cycles through, comma separated")] = ",".join(DEFAULT_CYCLE),
    switch_every: Annotated[Optional[float], typer.Option(help="also switch profile every N seconds")] = None,
    templates_dir: Annotated[Path, typer.Option(help="folder of templates")] = TEMPLATES_DIR,
    bootstrap: Annotated[Optional[str], typer.Option(help="Kafka bootstrap (default: settings)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="random seed for reproducible records")] = None,
) -> None:
    """Send IoT records rendered from a KDG-style template to Kafka."""
    console = err_console
    try:
        generator = Generator(
            bootstrap or get_settings().kafka_bootstrap, topic=topic, profile=profile,
            cycle=[c.strip() for c in cycle.split(",") if c.strip()],
            devices=device_pool(devices, first_device), device_order=device_order, rate=rate, batch=batch, seed=seed,
            templates_dir=templates_dir,
        )
    except TemplateError as exc:
        fail(f"template error: {exc}")
    signal.signal(signal.SIGUSR1, generator.request_switch)
    console.print(f"sending to [bold]{topic}[/] profile [bold]{generator.profile}[/] at "
                  f"{rate or 'max'} rec/s, batch {batch}; `kill -USR1 <pid>` switches profile")

    columns = [SpinnerColumn(), TextColumn("[bold]{task.fields[profile]}[/]"),
               TextColumn("sent {task.completed:.0f}"), TextColumn("{task.fields[rate]:.1f} rec/s"),
               TextColumn("errors {task.fields[errors]}"), TimeElapsedColumn()]
    if count:
        columns.insert(2, BarColumn())
    stats = generator.stats
    with Progress(*columns, console=console, refresh_per_second=4) as progress:
        task = progress.add_task("send", total=count, profile=generator.profile, rate=0.0, errors=0)

        def on_batch(_records, _at):
            progress.update(task, completed=stats.sent, rate=stats.rate, errors=stats.errors, profile=generator.profile)

        def on_switch(name):
            progress.console.print(f"switched to profile [bold]{name}[/] after {stats.sent} records")

        try:
            generator.run(count=count, duration=duration, on_batch=on_batch, on_switch=on_switch,
                          switch_every=switch_every)
        except KeyboardInterrupt:
            generator.producer.flush(10)
        progress.update(task, completed=stats.sent, rate=stats.rate, errors=stats.errors)
    by_profile = ", ".join(f"{k}: {v}" for k, v in stats.by_profile.items())
    console.print(f"sent {stats.sent} records in {stats.elapsed:.1f} s ({stats.rate:.1f} rec/s; {by_profile}); "
                  f"errors {stats.errors}")
    if stats.errors:
        console.print(f"[red]last error:[/] {stats.last_error}")
        raise typer.Exit(1)
