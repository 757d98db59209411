"""Lab C benchmark: seconds from a sales CSV's upload to the raw bucket until its rows are
visible in the processed table through Trino (event -> Validate -> CheckDuplicate -> Spark ETL
-> metastore partition -> Trino), over N uploads, one at a time; p50 and p95.

    .venv/bin/python bench/workflow.py [--uploads 20] [--rows 200]

Needs the running stack. The watcher and its SparkSession run in this process; the first
upload, which pays the SparkSession start, is reported apart and not counted. Everything is
written under its own prefix and table, dropped at the end.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from trino.exceptions import TrinoQueryError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from percentiles import percentile  # noqa: E402

from aws.stepfunctions import runs  # noqa: E402
from labs.lab_c import tasks as sales_tasks  # noqa: E402
from labs.lab_c import workflow  # noqa: E402
from labs.lab_c.watcher import Watcher  # noqa: E402
from lakelab.settings import get_settings  # noqa: E402
from producers.lab_c import sales_csv  # noqa: E402
from services.s3.client import get_client as s3_client  # noqa: E402
from services.trino.client import query  # noqa: E402


def main(uploads: Annotated[int, typer.Option()] = 20, rows: Annotated[int, typer.Option()] = 200,
         timeout: Annotated[float, typer.Option(help="seconds to wait for one upload")] = 300) -> None:
    settings = get_settings()
    ident = uuid.uuid4().hex[:8]
    prefix, table = f"bench/labc-{ident}/", f"default.labc_bench_{ident}"
    wf = workflow.load(prefix=f"{prefix}sales/", table=table, location=f"s3a://processed/{prefix}sales")
    s3 = s3_client(settings)
    watcher = Watcher(settings, wf)
    thread = watcher.start_thread()

    def one(i: int) -> tuple[float, float, float]:
        key = f"{prefix}sales/sales_{i:03d}.csv"
        body = sales_csv(rows, location=f"City{i % 7}", seed=1000 + i)
        began = time.monotonic()
        version = s3.put_object(Bucket="raw", Key=key, Body=body)["VersionId"]
        visible = None
        while time.monotonic() - began < timeout:
            try:
                if query(settings, f"SELECT count(*) FROM hive.{table} WHERE source_key = 's3://raw/{key}'")[0][0]:
                    visible = time.monotonic() - began
                    break
            except TrinoQueryError:
                pass  # the first run creates the table
            time.sleep(0.1)
        if visible is None:
            raise SystemExit(f"upload {i} not visible in Trino after {timeout} s")
        while (run := runs.run_for_trigger(f"raw/{key}@{version}", wf.Name)) is None or run.status == "RUNNING":
            time.sleep(0.2)  # the next upload starts when this run (quality, metadata) is done
        if run.status != "SUCCEEDED":
            raise SystemExit(f"run {run.run_id} {run.status}: {run.error} {run.cause}")
        return visible, run.output["etl"]["seconds"], run.duration_s or 0.0

    try:
        first = one(0)
        print(f"first upload (starts the SparkSession): {first[0]:.2f} s to visible in Trino")
        results = []
        for i in range(1, uploads + 1):
            results.append(one(i))
            print(f"upload {i:2d}: {results[-1][0]:6.2f} s visible (Spark job {results[-1][1]:.2f} s, "
                  f"whole run {results[-1][2]:.2f} s)")
        seconds = [r[0] for r in results]
        print(f"\n{uploads} uploads of {rows} rows, upload -> processed table visible in Trino:")
        print(f"  p50 {percentile(seconds, 0.5):.2f} s   p95 {percentile(seconds, 0.95):.2f} s   "
              f"min {min(seconds):.2f} s   max {max(seconds):.2f} s   mean {statistics.mean(seconds):.2f} s")
        print(f"  Spark ETL alone: p50 {percentile([r[1] for r in results], 0.5):.2f} s; whole run (with quality "
              f"and metadata): p50 {percentile([r[2] for r in results], 0.5):.2f} s")
    finally:
        watcher.stop()
        thread.join(30)
        sales_tasks.stop_spark()
        query(settings, f"DROP TABLE IF EXISTS hive.{table}")


if __name__ == "__main__":
    typer.run(main)
