"""One Lab D pipeline under its own names: a PostgreSQL schema in `shop` seeded with the
e-commerce tables, a Debezium connector registered from
`services/connect/connectors/shop-postgres.json` for that schema, and the Hudi sink job as a
separate process. Tests and benchmarks run beside the lab's own pipeline this way. Several runs share one stack without colliding; `cleanup` removes everything
a run created (connector, offsets, slot, publication, topics, lake tables, checkpoint, schema)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lakelab.resources import resources
from lakelab.settings import ROOT, Settings
from producers.lab_d import TABLES, Shop, create_schema, drop_schema
from services.connect import client as connect
from spark_jobs.lab_d import SinkConfig, drop_lake_table

CONNECTOR = resources().labs.lab_d.connector


class SinkProcess:
    """`python -m spark_jobs.lab_d ...` (the sink) in its own process group, output to a log file."""

    def __init__(self, args: list[str], log: Path):
        self.args = args
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with os.fdopen(os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
            out.write(f"\n==== sink starting at {time.ctime()}\n".encode())
            out.flush()
            self.process = subprocess.Popen([sys.executable, "-m", "spark_jobs.lab_d", *self.args], cwd=ROOT,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                            umask=0o077)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def kill(self) -> None:
        """A crash: SIGKILL to the job and its JVM, no chance to finish the batch."""
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def stop(self, grace_s: float = 60.0) -> None:
        """SIGTERM to the Python driver only (it stops the query and Spark), then kill what is left."""
        if not self.alive:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(30)

    def batches(self) -> list[str]:
        """The job's per-batch summary lines so far."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line[line.index("[cdc-"):] for line in text.splitlines() if "[cdc-" in line and "] batch " in line]

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        kept = [line for line in text.splitlines() if not line.startswith(("\tat ", "	at "))]
        return "\n".join(kept[-lines:])


@dataclass
class Pipeline:
    settings: Settings
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    tables: tuple[str, ...] = TABLES
    trigger_seconds: float = 2.0
    log_dir: Path | None = None  # default: the stack's logs folder

    def __post_init__(self) -> None:
        self.log_dir = self.log_dir or self.settings.logs_dir / "lab_d"
        self.schema = f"labd_{self.run}"
        self.topic_prefix = self.schema
        self.connector = f"labd-{self.run}"
        self.suffix = f"_{self.run}"
        self.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.sink_config = SinkConfig(topic_prefix=self.topic_prefix, tables=self.tables, table_suffix=self.suffix,
                                      trigger_seconds=self.trigger_seconds)
        self.sink = SinkProcess(
            ["--topic-prefix", self.topic_prefix, "--tables", ",".join(self.tables), "--table-suffix", self.suffix,
             "--trigger-seconds", str(self.trigger_seconds)],
            self.log_dir / f"sink-{self.run}.log")

    @property
    def connector_overrides(self) -> dict[str, str]:
        """The repo's connector file, pointed at this run's schema, slot, publication and topics."""
        return {
            "schema.include.list": self.schema,
            "table.include.list": ",".join(f"{self.schema}\\.{t}" for t in self.tables),
            "topic.prefix": self.topic_prefix,
            "slot.name": self.schema,
            "publication.name": self.schema,
        }

    def lake_table(self, table: str) -> str:
        return self.sink_config.lake_table(table)

    def topic(self, table: str) -> str:
        return f"{self.topic_prefix}.{self.schema}.{table}"

    def seed(self, customers: int = 200, products: int = 50, orders: int = 1000, seed: int = 1) -> None:
        create_schema(self.settings, self.schema)
        shop = Shop(self.settings, self.schema, seed)
        try:
            shop.seed(customers, products, orders)
        finally:
            shop.close()

    def register(self) -> dict:
        return connect.register(self.settings, CONNECTOR, self.connector_overrides, self.connector)

    def cleanup(self) -> None:
        self.sink.stop()
        try:
            connect.remove(self.settings, self.connector, purge=True)
        except connect.ConnectorError:
            pass  # never registered
        for table in self.tables:
            drop_lake_table(self.settings, self.sink_config, table)
        shutil.rmtree(self.sink_config.checkpoint_location(self.settings), ignore_errors=True)
        drop_schema(self.settings, self.schema)
