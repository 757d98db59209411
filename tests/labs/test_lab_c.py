"""Lab C on the real stack: an upload to the raw bucket starts the declared workflow (validate ->
choice -> Spark ETL -> quality -> metadata, or quarantine), runs are kept in PostgreSQL, the
processed table is read in Trino; governance (versions, per-user limits) through the CLI.

One watcher (a `weed filer.meta.tail` process) and one SparkSession serve the whole module; each
session works under its own `tests/labc-<id>/` prefix and its own table."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from aws.stepfunctions import engine, runs
from aws.stepfunctions.engine import WorkflowError
from aws.stepfunctions.runs import Run
from labs.lab_c import quality, versioning, workflow
from labs.lab_c import tasks as sales_tasks
from labs.lab_c.watcher import Watcher, start_run
from lakelab.cli import app
from producers import lab_c as data
from services.s3.client import get_client as s3_client
from services.trino.client import query

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stack")]
cli = CliRunner(env={"COLUMNS": "250"})  # rich tables print whole ids at this width
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
HAPPY_PATH = ["Validate", "IsValid", "CheckDuplicate", "IsDuplicate", "ETL", "QualityCheck", "RecordMetadata",
              "QualityGate", "Succeeded"]


@dataclass
class Lab:
    prefix: str  # key prefix in the raw bucket, e.g. tests/labc-1a2b3c4d/
    table: str  # default.labc_sales_1a2b3c4d
    workflow: engine.Workflow

    def invoke(self, *args: str):
        return cli.invoke(app, ["lab-c", *args])

    def put(self, name: str, body: bytes, user: str = "ingest") -> tuple[str, str]:
        key = f"{self.prefix}sales/{name}"
        version = s3_client(_settings(), user).put_object(Bucket="raw", Key=key, Body=body)["VersionId"]
        return key, version

    def wait(self, key: str, version: str, timeout: float = 240) -> Run:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = runs.run_for_trigger(f"raw/{key}@{version}", self.workflow.Name)
            if run and run.status in TERMINAL:
                return runs.get_run(run.run_id)
            time.sleep(0.3)
        raise AssertionError(f"no finished run for raw/{key}@{version} within {timeout} s")

    def totals(self, source_key: str | None = None) -> list[list]:
        where = f"WHERE source_key = 's3://raw/{source_key}'" if source_key else ""
        return query(_settings(), f"SELECT location, sum(total_sales), sum(orders) FROM hive.{self.table} {where} "
                                  "GROUP BY location ORDER BY location")


def _settings():
    from lakelab.settings import get_settings

    return get_settings()


def _current_version(settings, key: str) -> str:
    return s3_client(settings).head_object(Bucket="raw", Key=key)["VersionId"]


def _entered(run: Run) -> list[str]:
    return [e.state for e in run.events or [] if e.kind == "StateEntered"]


@pytest.fixture(scope="module")
def lab(stack):
    settings = stack
    ident = uuid.uuid4().hex[:8]
    prefix = f"tests/labc-{ident}/"
    wf = workflow.load(prefix=f"{prefix}sales/", table=f"default.labc_sales_{ident}",
                       location=f"s3a://processed/{prefix}sales")
    watcher = Watcher(settings, wf)
    thread = watcher.start_thread()
    try:
        yield Lab(prefix, f"default.labc_sales_{ident}", wf)
    finally:
        watcher.stop()
        thread.join(30)
        sales_tasks.stop_spark()
        query(settings, f"DROP TABLE IF EXISTS hive.default.labc_sales_{ident}")


def test_upload_runs_validate_etl_quality_and_the_table_reaches_trino(lab, settings):
    result = lab.invoke("ingest", "sales", "--user", "ingest", "--prefix", lab.prefix, "--rows", "120", "--seed", "7")
    assert result.exit_code == 0, result.output
    key = f"{lab.prefix}sales/sales_data_london.csv"
    version = s3_client(settings).head_object(Bucket="raw", Key=key)["VersionId"]
    run = lab.wait(key, version)
    assert (run.status, run.error) == ("SUCCEEDED", None), run.cause
    assert _entered(run) == HAPPY_PATH

    rows = data.sales_rows(120, seed=7)
    expected = round(sum(r["Total_Sales"] for r in rows), 2)
    [[location, total, orders]] = lab.totals(key)
    assert (location, orders) == ("London", 120) and total == pytest.approx(expected, abs=0.01)
    assert run.output["etl"]["rows_in"] == 120 and run.output["etl"]["rows_dropped"] == 0

    properties = versioning.table_properties(settings, lab.table)
    assert properties["data_owner"] == "data-engineering"
    assert properties["data_source"] == f"s3://raw/{key}"
    assert properties["last_run_id"] == run.run_id and properties["quality_status"] == "passed"
    assert int(properties["row_count"]) == query(settings, f"SELECT count(*) FROM hive.{lab.table}")[0][0]
    assert abs(datetime.now(timezone.utc) - datetime.fromisoformat(properties["last_update"])) < timedelta(minutes=10)

    listed = lab.invoke("runs", "--limit", "50")
    assert listed.exit_code == 0 and run.run_id in listed.output
    shown = lab.invoke("runs", "show", run.run_id)
    assert "RecordMetadata" in shown.output and "ExecutionSucceeded" in shown.output
    assert "data_owner" in lab.invoke("catalog", lab.table).output


def test_different_schema_takes_the_failure_branch_and_is_quarantined(lab, settings):
    result = lab.invoke("ingest", "sales-different-schema", "--user", "ingest", "--prefix", lab.prefix, "--rows", "50")
    assert result.exit_code == 0, result.output
    key = f"{lab.prefix}sales/sales_data_london_different_schema.csv"
    s3 = s3_client(settings)
    version = s3.head_object(Bucket="raw", Key=key)["VersionId"]
    run = lab.wait(key, version)
    assert (run.status, run.error) == ("FAILED", "ValidationFailed")
    assert run.cause == "missing columns: Date, Total_Sales, location"
    assert _entered(run) == ["Validate", "IsValid", "ValidationFailure", "Quarantine", "Failed"]

    copied = s3.get_object(Bucket="raw", Key=f"quarantine/{key}")["Body"].read()
    assert copied == s3.get_object(Bucket="raw", Key=key, VersionId=version)["Body"].read()
    reason = json.loads(s3.get_object(Bucket="raw", Key=f"quarantine/{key}.reason.json")["Body"].read())
    assert reason["error"] == "ValidationFailed" and reason["run_id"] == run.run_id
    assert reason["version_id"] == version and reason["cause"] == ["missing columns: Date, Total_Sales, location"]
    assert lab.totals(key) == []


def test_uploading_the_same_file_again_never_doubles_the_totals(lab, settings):
    body = data.sales_csv(60, "Paris", seed=21)
    key, first = lab.put("sales_data_paris.csv", body)
    assert lab.wait(key, first).status == "SUCCEEDED"
    before = lab.totals(key)
    expected = round(sum(r["Total_Sales"] for r in data.sales_rows(60, "Paris", seed=21)), 2)
    assert before[0][1] == pytest.approx(expected, abs=0.01)

    _, second = lab.put("sales_data_paris.csv", body)  # same key, same bytes: a new version
    again = lab.wait(key, second)
    assert again.status == "SUCCEEDED" and again.current_state == "AlreadyProcessed"
    copy_key, copy_version = lab.put("sales_data_paris_copy.csv", body)  # same bytes, another key
    copy = lab.wait(copy_key, copy_version)
    assert copy.current_state == "AlreadyProcessed" and copy.output["dedup"]["same_as"] == f"s3://raw/{key}"
    assert lab.totals(key) == before and lab.totals(copy_key) == []

    # a replayed event (watcher restart) starts no second run
    event = json.loads(json.dumps(again.input))
    assert start_run(settings, lab.workflow, event).status == "DUPLICATE"

    corrected = data.sales_csv(40, "Paris", seed=22)  # new content for the key replaces its partition
    _, third = lab.put("sales_data_paris.csv", corrected)
    assert lab.wait(key, third).current_state == "Succeeded"
    [[_, total, orders]] = lab.totals(key)
    assert orders == 40
    assert total == pytest.approx(round(sum(r["Total_Sales"] for r in data.sales_rows(40, "Paris", seed=22)), 2),
                                  abs=0.01)


def test_retries_back_off_and_are_recorded(settings, tmp_path):
    calls: list[float] = []

    def flaky(payload, ctx):
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise WorkflowError("Transient", f"attempt {ctx.attempt}")
        return {"attempts": ctx.attempt}

    engine.register_resource("lab_c_test:flaky", flaky)
    path = tmp_path / "flaky.yaml"
    path.write_text(json.dumps({
        "Name": "lab_c_retry_test", "StartAt": "Flaky",
        "States": {
            "Flaky": {"Type": "Task", "Resource": "lab_c_test:flaky", "ResultPath": "$.result", "Next": "Done",
                      "Retry": [{"ErrorEquals": ["Transient"], "IntervalSeconds": 0.3, "MaxAttempts": 3,
                                 "BackoffRate": 2}]},
            "Done": {"Type": "Succeed"}}}))
    outcome = engine.execute(engine.load(path), {"n": 1}, runs.RunStore(settings), settings)
    assert outcome.status == "SUCCEEDED" and outcome.output["result"] == {"attempts": 3}
    assert calls[1] - calls[0] >= 0.3 and calls[2] - calls[1] >= 0.6
    run = runs.get_run(outcome.run_id)
    retries = [e for e in run.events if e.kind == "TaskRetry"]
    assert [(e.attempt, e.detail["delay_s"], e.detail["error"]) for e in retries] == \
        [(1, 0.3, "Transient"), (2, 0.6, "Transient")]

    calls.clear()
    exhausted = json.loads(path.read_text())
    exhausted["States"]["Flaky"]["Retry"][0]["MaxAttempts"] = 1  # one retry: two attempts, both fail
    path.write_text(json.dumps(exhausted))
    failed = engine.execute(engine.load(path), {}, runs.RunStore(settings), settings)
    assert (failed.status, failed.error) == ("FAILED", "Transient") and len(calls) == 2
    assert runs.get_run(failed.run_id).status == "FAILED"


def test_quality_report_counts_the_seeded_gaps_and_outliers_exactly(lab, settings):
    rows = data.sales_rows(60, "Leeds", seed=11, missing={"Total_Sales": 3, "Product": 2, "Date": 1},
                           outliers={"Total_Sales": 2, "Quantity": 1})
    key, version = lab.put("sales_data_leeds.csv", data.to_csv(rows, data.SALES_COLUMNS))
    run = lab.wait(key, version)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["etl"]["rows_dropped"] == 3  # no Total_Sales: nothing to add up

    # the analyst (read-only on processed) reads the report the workflow stored
    report = quality.load(settings, run.output["quality"]["report"], s3_client(settings, "analyst"))
    assert report.rows == 60 and report.passed and report.run_id == run.run_id
    missing = {c.name: c.missing for c in report.columns}
    assert missing == {"Order_ID": 0, "Date": 1, "Customer": 0, "Product": 2, "Category": 0, "Quantity": 0,
                       "Unit_Price": 0, "Total_Sales": 3, "Payment_Method": 0, "location": 0}
    assert {c.name: c.outliers for c in report.columns if c.outliers is not None} == \
        {"Order_ID": 0, "Quantity": 1, "Unit_Price": 0, "Total_Sales": 2}
    sales = [r["Total_Sales"] for r in rows if r["Total_Sales"] is not None]
    column = report.column("Total_Sales")
    assert (column.min, column.max, column.distinct) == (min(sales), max(sales), len(set(sales)))
    assert column.missing_ratio == pytest.approx(0.05)
    assert report.column("location").distinct == 1
    page = s3_client(settings, "analyst").get_object(Bucket="processed", Key=run.output["quality"]["html"].split("/", 3)[3])
    assert b"<svg" in page["Body"].read()
    shown = lab.invoke("quality", "show", run.run_id, "--user", "analyst")
    assert shown.exit_code == 0 and "Total_Sales" in shown.output and "PASSED" in shown.output


def test_a_run_under_the_quality_thresholds_fails(lab, settings):
    body = data.sales_csv(40, "York", seed=3, missing={"Total_Sales": 20})
    key, version = lab.put("sales_data_york.csv", body)
    run = lab.wait(key, version)
    assert (run.status, run.error) == ("FAILED", "QualityBelowThreshold")
    assert run.cause == "Total_Sales: 20 missing (50.0% > 20.0%)"
    assert _entered(run)[-3:] == ["RecordMetadata", "QualityGate", "QualityBelowThreshold"]
    assert versioning.table_properties(settings, lab.table)["quality_status"] == "failed"


def test_per_user_limits_hold_through_the_cli(lab, settings):
    denied = lab.invoke("ingest", "sales", "--user", "analyst", "--prefix", lab.prefix)
    assert denied.exit_code == 1 and "AccessDenied (HTTP 403) as user analyst" in denied.output

    key = f"{lab.prefix}sales/sales_data_london.csv"
    for args in (["versions", "list", "raw", key, "--user", "analyst"],  # analyst: nothing on raw
                 ["quality", "check", f"s3://raw/{key}", "--no-save", "--user", "analyst"],
                 ["quality", "check", f"s3://raw/{key}", "--no-save", "--user", "ingest"],  # ingest: write-only
                 ["versions", "restore", "raw", key, "--version-id", _current_version(settings, key), "--user", "ingest"]):
        result = lab.invoke(*args)
        assert result.exit_code == 1 and "(HTTP 403)" in result.output, (args, result.output)

    with_report = next(r for r in runs.list_runs(settings, 50, "SUCCEEDED", trigger_prefix=f"raw/{lab.prefix}")
                       if r.output and r.output.get("quality"))
    json_key = with_report.output["quality"]["report"].split("/", 3)[3]
    listed = lab.invoke("versions", "list", "processed", json_key, "--user", "analyst")  # analyst: read processed
    assert listed.exit_code == 0, listed.output
    version = versioning.list_versions(s3_client(settings), "processed", json_key)[0].version_id
    restore = lab.invoke("versions", "restore", "processed", json_key, "--version-id", version, "--user", "analyst")
    assert restore.exit_code == 1 and "AccessDenied (HTTP 403) as user analyst" in restore.output
    write = lab.invoke("ingest", "events", "--user", "ingest", "--prefix", lab.prefix, "--rows", "5")
    assert write.exit_code == 0, write.output


def test_versions_list_and_restore_through_the_cli(settings, unique):
    s3 = s3_client(settings)
    key = f"tests/labc-versions-{unique}/notes.csv"
    v1 = s3.put_object(Bucket="raw", Key=key, Body=b"a,b\n1,2\n")["VersionId"]
    v2 = s3.put_object(Bucket="raw", Key=key, Body=b"a,b\n1,3\n")["VersionId"]
    s3.delete_object(Bucket="raw", Key=key)

    listed = cli.invoke(app, ["lab-c", "versions", "list", "raw", key])
    assert listed.exit_code == 0 and v1 in listed.output and v2 in listed.output and "delete marker" in listed.output

    undelete = cli.invoke(app, ["lab-c", "versions", "restore", "raw", key])
    assert undelete.exit_code == 0 and "removed delete marker" in undelete.output, undelete.output
    assert s3.get_object(Bucket="raw", Key=key)["Body"].read() == b"a,b\n1,3\n"

    back = cli.invoke(app, ["lab-c", "versions", "restore", "raw", key, "--version-id", v1])
    assert back.exit_code == 0, back.output
    assert s3.get_object(Bucket="raw", Key=key)["Body"].read() == b"a,b\n1,2\n"
    versions = versioning.list_versions(s3, "raw", key)
    assert [v.delete_marker for v in versions] == [False, False, False]
    assert versions[0].is_latest and {v1, v2} < {v.version_id for v in versions}


def test_every_kind_of_sample_data_lands_in_raw_in_its_native_format(settings, unique):
    prefix = f"tests/labc-ingest-{unique}/"
    result = cli.invoke(app, ["lab-c", "ingest", "events", "logs", "sql", "--user", "ingest", "--prefix", prefix, "--rows", "25"])
    assert result.exit_code == 0, result.output
    s3 = s3_client(settings)
    keys = sorted(o["Key"][len(prefix):] for o in s3.list_objects_v2(Bucket="raw", Prefix=prefix)["Contents"])
    assert [k.split("/")[0] for k in keys] == ["events", "logs", "sql", "sql"]
    read = lambda k: s3.get_object(Bucket="raw", Key=prefix + k)["Body"].read().decode()  # noqa: E731
    events = read(keys[0]).splitlines()
    assert keys[0].endswith(".json") and len(events) == 25 and all(json.loads(line)["event_id"] for line in events)
    log_lines = read(keys[1]).splitlines()
    assert len(log_lines) == 25 and all(' HTTP/1.1" ' in line for line in log_lines)
    exported = read(keys[2]).splitlines()
    assert keys[2].endswith("customers.csv") and exported[0].startswith("customer_id,name,email")
    assert len(exported) >= 26
    schema = json.loads(read(keys[3]))
    assert schema["table"] == "customers" and schema["columns"][0] == {"name": "customer_id", "type": "integer",
                                                                       "nullable": False}
