"""The Kinesis Data Generator stand-in: records rendered from editable KDG templates
(`producers.templates`), sent to a Kafka topic at a steady rate.

A JSON template's record is sent as JSON, keyed by its `key_field` (a device id for the IoT lab),
so all events of one key land in one partition and keep their order; any other template's record
(a CSV line, a log line) is sent as the text it rendered, without a key, as the KDG does. `batch=1` sends one record at a time and waits for
its acknowledgement (the KDG's `put_record`); `batch=N` sends N records then waits for all of
them (`put_records`). `switch()` moves to the next template of a cycle between two sends.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException, Producer
from faker import Faker

from producers.templates import TEMPLATES_DIR, Context, Record, Template, load_template


def device_pool(count: int, first: int = 1, prefix: str = "sensor-") -> list[str]:
    return [f"{prefix}{n:04d}" for n in range(first, first + count)]


def encode(record: Record, key_field: str = "device_id") -> tuple[bytes, bytes | None]:
    """The Kafka value and key of a record: a JSON record as JSON keyed by its `key_field`, a text
    record as its text, without a key."""
    if isinstance(record, dict):
        key = record.get(key_field)
        return json.dumps(record).encode(), None if key is None else str(key).encode()
    return record.encode(), None


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

    `profile` is a template's name (or file), or a parsed Template. `switch()` (or SIGUSR1 when
    run from the CLI) moves to the next profile of `cycle`; the switch takes effect between two
    sends, so a batch never mixes profiles."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        profile: str | Template,
        cycle: Sequence[str] = (),
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
        # Uniform choices, as faker.js (the KDG's library) makes them: Python faker's weighted
        # ones (names by frequency) took two thirds of a record's rendering, capping the generator
        # near 3,500 records/s on a loaded core (bench/ingest.py).
        self.faker = Faker(use_weighting=False)
        if seed is not None:
            self.faker.seed_instance(seed)
        self.ctx = Context(faker=self.faker, rng=random.Random(seed), devices=list(devices or device_pool(50)),
                           device_order=device_order)
        self.template = profile if isinstance(profile, Template) else load_template(profile, self.faker, templates_dir)
        self.cycle = list(cycle) if self.profile in cycle else [self.profile, *cycle]
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

    def close(self) -> None:
        """Wait for the records in flight, then let the producer go: an idle producer still refreshes
        its topic's metadata, which re-creates the topic if it was deleted meanwhile."""
        self.producer.flush(10)
        self.producer.close()

    def records(self, count: int) -> list[Record]:
        return [self.template.render(self.ctx) for _ in range(count)]

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self.stats.errors += 1
            self.stats.last_error = str(err)

    def send(self, records: Iterable[Record]) -> int:
        """Send records (JSON keyed by `key_field`, text as it is) and wait until Kafka acknowledged all of them."""
        sent = 0
        for record in records:
            value, key = encode(record, self.key_field)
            while True:
                try:
                    self.producer.produce(self.topic, value=value, key=key, on_delivery=self._delivered)
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
        on_batch: Callable[[list[Record], float], None] | None = None,
        on_switch: Callable[[str], None] | None = None,
        switch_every: float | None = None,
        stop: threading.Event | None = None,
    ) -> Stats:
        """Send until `count` records or `duration` seconds (whichever first; neither = forever),
        or until `stop` is set (checked between two sends)."""
        stop = stop or threading.Event()
        started = self.stats.started = time.monotonic()  # the rate is of the sending, not of the setup
        next_at, next_switch = started, (started + switch_every if switch_every else None)
        while not stop.is_set():
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
                stop.wait(min(next_at - now, 0.5))
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
