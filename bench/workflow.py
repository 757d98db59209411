"""Lab C benchmark: seconds from a sales CSV's upload to the raw bucket until its rows are
visible in the processed table through Trino (event -> Validate -> CheckDuplicate -> Spark ETL
-> metastore partition -> Trino), over N uploads, one at a time; p50 and p95.

Needs the running stack. The watcher and its SparkSession run in this process; the first
upload, which pays the SparkSession start, is reported apart and not counted. Everything is
written under its own prefix and table, dropped at the end.
"""

from __future__ import annotations

import statistics
import time
import uuid

from trino.exceptions import TrinoQueryError

from aws.stepfunctions import runs
from bench.cli import Bench
from bench.percentiles import percentile
from labs.lab_c import tasks as sales_tasks
from labs.lab_c import workflow
from labs.lab_c.watcher import Watcher
from lakelab.resources import resources
from producers.lab_c import sales_csv
from services.s3.client import get_client as s3_client
from services.trino.client import query

LAB = resources().labs.lab_c
TIMEOUT_S = 300.0  # for one upload


def run(bench: Bench) -> None:
    settings = bench.settings
    uploads, rows = (1, 20) if bench.smoke else (6, 200)
    ident = uuid.uuid4().hex[:8]
    prefix, table = f"bench/labc-{ident}/", f"default.labc_bench_{ident}"
    wf = workflow.load(prefix=f"{prefix}sales/", table=table, location=f"s3a://{LAB.processed_bucket}/{prefix}sales")
    s3 = s3_client(settings)
    watcher = Watcher(settings, wf)
    thread = watcher.start_thread()

    def one(i: int) -> tuple[float, float, float]:
        key = f"{prefix}sales/sales_{i:03d}.csv"
        body = sales_csv(rows, location=f"City{i % 7}", seed=1000 + i)
        began = time.monotonic()
        version = s3.put_object(Bucket=LAB.raw_bucket, Key=key, Body=body)["VersionId"]
        visible = None
        while time.monotonic() - began < TIMEOUT_S:
            try:
                if query(settings, f"SELECT count(*) FROM hive.{table} WHERE source_key = 's3://{LAB.raw_bucket}/{key}'")[0][0]:
                    visible = time.monotonic() - began
                    break
            except TrinoQueryError:
                pass  # the first run creates the table
            time.sleep(0.1)
        if visible is None:
            raise RuntimeError(f"upload {i} not visible in Trino after {TIMEOUT_S:g} s")
        while (done := runs.run_for_trigger(f"{LAB.raw_bucket}/{key}@{version}", wf.Name)) is None \
                or done.status == "RUNNING":
            time.sleep(0.2)  # the next upload starts when this run (quality, metadata) is done
        if done.status != "SUCCEEDED":
            raise RuntimeError(f"run {done.run_id} {done.status}: {done.error} {done.cause}")
        return visible, done.output["etl"]["seconds"], done.duration_s or 0.0

    try:
        bench.step("first upload (starts the SparkSession)")
        bench.figure("first upload, starting the SparkSession: to visible in Trino", one(0)[0], "s")
        results = []
        for i in range(1, uploads + 1):
            bench.step(f"upload {i}/{uploads}")
            results.append(one(i))
        seconds = [r[0] for r in results]
        bench.figure(f"upload of {rows} rows -> processed table visible in Trino, p50 of {uploads}",
                     percentile(seconds, 0.5), "s")
        bench.figure(f"upload -> visible in Trino, p95 of {uploads} (max {max(seconds):.1f} s, mean "
                     f"{statistics.mean(seconds):.1f} s)", percentile(seconds, 0.95), "s")
        bench.figure("Spark ETL alone, p50", percentile([r[1] for r in results], 0.5), "s")
        bench.figure("whole workflow run (with quality and metadata), p50", percentile([r[2] for r in results], 0.5), "s")
    finally:
        watcher.stop()
        thread.join(30)
        sales_tasks.stop_spark()
        query(settings, f"DROP TABLE IF EXISTS hive.{table}")
