"""CDC benchmark (Lab D): runs the shop workload at rising rates through Debezium, Kafka and the
Spark/Hudi sink, and prints the highest rate the pipeline keeps up with and the end-to-end
latency (source commit -> row visible in Trino) at each rate.

Latency probes: about once a second the workload's next inserted order is a probe; a poller asks
Trino (hudi catalog) every second which probes it sees. A probe's latency is the start of the
first query that returned it minus its commit time (so it may overstate by the poll interval).

The pipeline "keeps up" at a step when every probe became visible, the backlog drained within
--drain-limit seconds after the step, and latency did not grow during the step (p50 of the last
third <= p50 of the first third + 10 s). The sustained figure is the highest achieved source rate
it kept up with. Stepping stops at the first step where it does not, or where the workload
itself fell short of the target (marked workload-bound: the two cores are shared by PostgreSQL,
Debezium, Kafka, Spark, Trino and the workload).

Uses its own schema, connector, topics and lake tables (like the tests) and removes them after.

    .venv/bin/python bench/cdc.py [--rates 100,250,500,750,1000] [--step-seconds 60]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import typer
from percentiles import percentile
from rich.console import Console
from rich.table import Table
from trino.exceptions import TrinoConnectionError, TrinoQueryError

from labs.lab_d.pipeline import Pipeline
from labs.lab_d.verify import wait_equal
from lakelab.settings import ROOT, get_settings
from producers.lab_d import Shop, run_workload
from services.trino.client import get_client as trino_connect

console = Console(width=130)


@dataclass
class Step:
    rate: float
    achieved: float = 0.0
    ops: int = 0
    probes: dict[int, float] = field(default_factory=dict)      # order id -> commit time
    visible: dict[int, float] = field(default_factory=dict)     # order id -> first seen in Trino
    ended_at: float = 0.0
    drained_s: float | None = None
    batches: list[float] = field(default_factory=list)

    def latencies(self) -> list[float]:
        return [self.visible[i] - self.probes[i] for i in sorted(self.probes) if i in self.visible]

    def percentile(self, q: float) -> float | None:
        return percentile(self.latencies(), q)

    def growing(self) -> bool:
        values = self.latencies()
        third = len(values) // 3
        if third < 3:
            return False
        return statistics.median(values[-third:]) > statistics.median(values[:third]) + 10

    @property
    def generator_bound(self) -> bool:
        """The workload itself fell short of the target (the pipeline was not the limit)."""
        return self.achieved < 0.95 * self.rate

    def kept_up(self, drain_limit: float) -> bool:
        """The pipeline kept up with what the workload achieved."""
        return (len(self.visible) == len(self.probes) > 0 and self.drained_s is not None
                and self.drained_s <= drain_limit and not self.growing())


class Prober:
    """Polls Trino for the step's pending probe ids."""

    def __init__(self, pipeline: Pipeline, step: Step):
        self.table = f'hudi.cdc."{pipeline.lake_table("orders")}"'
        self.cursor = trino_connect(pipeline.settings, "hudi", "cdc", request_timeout=60).cursor()
        self.step = step
        self.lock = threading.Lock()

    def add(self, order_id: int, committed: float) -> None:
        with self.lock:
            self.step.probes[order_id] = committed

    def pending(self) -> list[int]:
        with self.lock:
            return [i for i in self.step.probes if i not in self.step.visible]

    def poll(self) -> None:
        ids = self.pending()
        if not ids:
            return
        asked = time.time()
        try:
            self.cursor.execute(f"SELECT id FROM {self.table} WHERE id IN ({', '.join(map(str, ids))})")
            found = self.cursor.fetchall()
        except (TrinoConnectionError, TrinoQueryError) as exc:  # e.g. Trino restarting: ask again next second
            console.print(f"[yellow]probe query failed:[/] {str(exc).splitlines()[0][:120]}")
            return
        for (order_id,) in found:
            self.step.visible.setdefault(order_id, asked)


def run_step(pipeline: Pipeline, rate: float, seconds: float, drain_limit: float, seed: int,
             workers: int) -> Step:
    """The workload at `rate` for `seconds`: this process (with the probes) plus `workers - 1`
    `producers.cdc_workload run` processes, each at rate/workers (one Python thread alone falls
    short of ~600 ops/s when the two cores are busy with the pipeline)."""
    step = Step(rate)
    helpers = [subprocess.Popen([sys.executable, "-m", "producers.cdc_workload", "run", "--schema", pipeline.schema,
                                 "--rate", str(rate / workers), "--duration", str(seconds),
                                 "--seed", str(seed * 100 + n)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
               for n in range(1, workers)]
    prober = Prober(pipeline, step)
    last_probe = [0.0]

    shop = Shop(pipeline.settings, pipeline.schema, seed)

    def on_commit(op: str, table: str, row_id: int, committed: float) -> None:
        if op == "insert_order" and committed - last_probe[0] >= 1.0:
            last_probe[0] = committed
            shop.orders.remove(row_id)  # the workload must not delete (or update) a probe
            prober.add(row_id, committed)

    done = threading.Event()
    batches_before = len(pipeline.sink.batches())

    def work() -> None:
        try:
            stats = run_workload(shop, rate / workers, duration=seconds, on_commit=on_commit)
            step.achieved, step.ops = stats.rate, stats.ops
        finally:
            step.ended_at = time.time()
            done.set()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while not done.is_set():
            began = time.monotonic()
            prober.poll()
            done.wait(max(0.0, 1.0 - (time.monotonic() - began)))
        worker.join()
        for helper in helpers:  # "<ops> operations in <s> s = <rate> ops/s; ..."
            out = helper.communicate(timeout=120)[0]
            line = next((x for x in out.splitlines() if " operations in " in x), "0 operations in 1 s")
            step.ops += int(line.split()[0])
            step.achieved += int(line.split()[0]) / float(line.split()[3])
    finally:
        for helper in helpers:
            if helper.poll() is None:
                helper.kill()
        shop.close()
    deadline = time.monotonic() + drain_limit + 60
    while prober.pending() and time.monotonic() < deadline:
        time.sleep(0.5)
        prober.poll()
    if not prober.pending() and step.visible:
        step.drained_s = max(0.0, max(step.visible.values()) - step.ended_at)
    step.batches = [_batch_seconds(line) for line in pipeline.sink.batches()[batches_before:]]
    return step


def _batch_seconds(line: str) -> float:
    return float(line.rsplit("total ", 1)[1].split(" ")[0])


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(
    rates: str = typer.Option("100,250,500,750,1000", help="operations per second, in order"),
    step_seconds: float = typer.Option(60.0, help="workload seconds per rate"),
    drain_limit: float = typer.Option(30.0, help="seconds after a step within which every probe must be visible"),
    orders: int = typer.Option(5000, help="orders seeded before the snapshot"),
    workers: int = typer.Option(2, help="workload processes sharing each rate"),
    keep: bool = typer.Option(False, help="keep the schema, connector and lake tables"),
) -> None:
    settings = get_settings()
    pipeline = Pipeline(settings)
    steps: list[Step] = []
    load_before = os.getloadavg()
    try:
        console.print(f"run {pipeline.run}: seeding, registering {pipeline.connector}, starting the sink")
        began = time.monotonic()
        pipeline.seed(customers=500, products=100, orders=orders)
        pipeline.register()
        pipeline.sink.start()
        diffs = wait_equal(settings, pipeline.schema, list(pipeline.tables), pipeline.suffix, timeout_s=600)
        if not all(d.equal for d in diffs):
            raise SystemExit("snapshot never reached the lake:\n" + "\n".join(map(str, diffs)) + pipeline.sink.tail())
        console.print(f"snapshot in the lake after {time.monotonic() - began:.0f} s (includes Spark startup)")
        for index, rate in enumerate(float(r) for r in rates.split(",")):
            step = run_step(pipeline, rate, step_seconds, drain_limit, seed=100 + index, workers=workers)
            steps.append(step)
            console.print(f"{rate:.0f} ops/s: achieved {step.achieved:.0f}, probes {len(step.visible)}/{len(step.probes)}, "
                          f"p50 {fmt(step.percentile(0.5))} s, p95 {fmt(step.percentile(0.95))} s, drained "
                          f"{fmt(step.drained_s)} s, batches {len(step.batches)} (mean "
                          f"{fmt(statistics.mean(step.batches) if step.batches else None)} s), "
                          f"load {os.getloadavg()[0]:.1f}")
            if not step.kept_up(drain_limit) or step.generator_bound:
                break  # the pipeline fell behind, or the workload cannot go faster here
        diffs = wait_equal(settings, pipeline.schema, list(pipeline.tables), pipeline.suffix, timeout_s=300)
        equal = all(d.equal for d in diffs)
    finally:
        if not keep:
            pipeline.cleanup()

    table = Table("target ops/s", "achieved", "probes", "p50 s", "p95 s", "max s", "drain s", "mean batch s",
                  "keeps up", title="CDC PostgreSQL -> Debezium -> Kafka -> Spark/Hudi -> Trino")
    for step in steps:
        values = step.latencies()
        table.add_row(f"{step.rate:.0f}", f"{step.achieved:.0f}", f"{len(step.visible)}/{len(step.probes)}",
                      fmt(step.percentile(0.5)), fmt(step.percentile(0.95)), fmt(max(values) if values else None),
                      fmt(step.drained_s), fmt(statistics.mean(step.batches) if step.batches else None),
                      ("yes" if step.kept_up(drain_limit) else "no") + (" (workload-bound)" if step.generator_bound else ""))
    console.print(table)
    sustained = max((s.achieved for s in steps if s.kept_up(drain_limit)), default=0)
    console.print(f"sustained: {sustained:.0f} ops/s; lake equals source after the run: {equal}; "
                  f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} (2 cores, shared)")
    print(json.dumps({"sustained_ops_s": sustained, "lake_equals_source": equal, "steps": [
        {"rate": s.rate, "achieved": round(s.achieved, 1), "p50_s": s.percentile(0.5), "p95_s": s.percentile(0.95),
         "drained_s": s.drained_s, "kept_up": s.kept_up(drain_limit)} for s in steps]}))


if __name__ == "__main__":
    typer.run(main)
