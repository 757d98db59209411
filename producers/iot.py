"""The Kinesis Data Generator stand-in: IoT records from editable templates into a Kafka topic.

    python -m producers.iot --profile iot_4 --rate 200 --count 1000
    python -m producers.iot --profile iot_10 --rate 50 --duration 60 --batch 100
    kill -USR1 <pid>          # switch to the next profile of --cycle (template re-read from disk)

The Kafka key is the record's device id, so all events of one device land in one partition and
keep their order. `--batch 1` sends one record at a time and waits for its acknowledgement (the
KDG's `put_record`); `--batch N` sends N records then waits for all of them (`put_records`).
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional

import typer
from confluent_kafka import KafkaException, Producer
from faker import Faker
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from producers.templates import TEMPLATES_DIR, Context, Template, TemplateError, load_template

DEFAULT_CYCLE = ("iot_4", "iot_2", "iot_10")


def device_pool(count: int, first: int = 1, prefix: str = "sensor-") -> list[str]:
    return [f"{prefix}{n:04d}" for n in range(first, first + count)]


@dataclass
class Stats:
    sent: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)
    by_profile: Counter = field(default_factory=Counter)
    last_error: str | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


class Generator:
    """Renders records from the current profile and sends them at a steady rate.

    `switch()` (or SIGUSR1 when run from the CLI) moves to the next profile of `cycle`; the
    switch takes effect between two sends, so a batch never mixes profiles."""

    def __init__(
        self,
        bootstrap: str,
        topic: str = "iot-events",
        profile: str = "iot_4",
        cycle: Sequence[str] = DEFAULT_CYCLE,
        devices: Sequence[str] | None = None,
        rate: float = 10.0,
        batch: int = 1,
        key_field: str = "device_id",
        device_order: str = "random",
        seed: int | None = None,
        templates_dir: Path = TEMPLATES_DIR,
        producer_config: dict | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self.topic, self.rate, self.batch, self.key_field = topic, rate, batch, key_field
        self.templates_dir = templates_dir
        self.cycle = list(cycle) if profile in cycle else [profile, *cycle]
        self.faker = Faker()
        if seed is not None:
            self.faker.seed_instance(seed)
        self.ctx = Context(faker=self.faker, rng=random.Random(seed), devices=list(devices or device_pool(50)),
                           device_order=device_order)
        self.template: Template = load_template(profile, self.faker, templates_dir)
        self.stats = Stats()
        self._switch_requested = False
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "linger.ms": 0 if batch == 1 else 5,
            "enable.idempotence": True,
            "compression.type": "lz4",
            "log_level": 3,  # warnings such as "coordinator load in progress" are retried anyway
            **(producer_config or {}),
        })

    @property
    def profile(self) -> str:
        return self.template.name

    def request_switch(self, *_args) -> None:
        """Signal-safe: the switch happens before the next send."""
        self._switch_requested = True

    def switch(self, profile: str | None = None) -> str:
        if profile is None:
            position = self.cycle.index(self.profile) if self.profile in self.cycle else -1
            profile = self.cycle[(position + 1) % len(self.cycle)]
        self.template = load_template(profile, self.faker, self.templates_dir)
        return self.profile

    def records(self, count: int) -> list[dict]:
        return [self.template.render(self.ctx) for _ in range(count)]

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self.stats.errors += 1
            self.stats.last_error = str(err)

    def send(self, records: Iterable[dict]) -> int:
        """Send records keyed by device id and wait until Kafka acknowledged all of them."""
        sent = 0
        for record in records:
            key = record.get(self.key_field)
            while True:
                try:
                    self.producer.produce(
                        self.topic, value=json.dumps(record).encode(),
                        key=None if key is None else str(key).encode(), on_delivery=self._delivered,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.05)
            sent += 1
        remaining = self.producer.flush(30)
        if remaining:
            raise KafkaException(f"{remaining} records not acknowledged after 30 s")
        return sent

    def run(
        self,
        count: int | None = None,
        duration: float | None = None,
        on_batch: Callable[[list[dict], float], None] | None = None,
        on_switch: Callable[[str], None] | None = None,
        switch_every: float | None = None,
    ) -> Stats:
        """Send until `count` records or `duration` seconds (whichever first; neither = forever)."""
        started = time.monotonic()
        next_at, next_switch = started, (started + switch_every if switch_every else None)
        while True:
            now = time.monotonic()
            if (count is not None and self.stats.sent >= count) or (duration is not None and now - started >= duration):
                break
            if self._switch_requested or (next_switch is not None and now >= next_switch):
                self._switch_requested = False
                if next_switch is not None:
                    next_switch += switch_every
                profile = self.switch()
                if on_switch:
                    on_switch(profile)
            size = self.batch if count is None else min(self.batch, count - self.stats.sent)
            if self.rate > 0 and next_at > now:
                time.sleep(min(next_at - now, 0.5))
                continue
            records = self.records(size)
            self.send(records)
            self.stats.sent += size
            self.stats.by_profile[self.profile] += size
            if on_batch:
                on_batch(records, time.time())
            if self.rate > 0:
                next_at += size / self.rate
                # after a stall, do not burst to catch up more than one second's worth
                next_at = max(next_at, time.monotonic() - 1.0)
        return self.stats


app = typer.Typer(add_completion=False)


@app.command()
def main(
    profile: Annotated[str, typer.Option(help="template name in producers/templates, or a path")] = "iot_4",
    rate: Annotated[float, typer.Option(help="records per second (0 = as fast as possible)")] = 10.0,
    count: Annotated[Optional[int], typer.Option(help="stop after this many records")] = None,
    duration: Annotated[Optional[float], typer.Option(help="stop after this many seconds")] = None,
    batch: Annotated[int, typer.Option(help="1 = put_record (one at a time); N = put_records of N")] = 1,
    topic: Annotated[str, typer.Option(help="Kafka topic")] = "iot-events",
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
    from lakelab.settings import get_settings

    console = Console(stderr=True)
    try:
        generator = Generator(
            bootstrap or get_settings().kafka_bootstrap, topic=topic, profile=profile,
            cycle=[c.strip() for c in cycle.split(",") if c.strip()],
            devices=device_pool(devices, first_device), device_order=device_order, rate=rate, batch=batch, seed=seed,
            templates_dir=templates_dir,
        )
    except TemplateError as exc:
        console.print(f"[red]template error:[/] {exc}")
        raise typer.Exit(2)
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


if __name__ == "__main__":
    app()
